package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/hibiken/asynq"
)

// frontJob is the job object of exed's wire format (API.md), as much of
// it as an asynq task can fill: asynq keeps no submit time, so startat
// is 0.
type frontJob struct {
	JID     string   `json:"jid"`
	Operate string   `json:"operate"`
	Targets []string `json:"targets"`
	User    string   `json:"user"`
	State   int      `json:"state"`
	Error   string   `json:"error"`
	StartAt int64    `json:"startat"`
	EndAt   int64    `json:"endat"`
}

// States of the wire format.
const (
	frontDone    = 0
	frontRunning = 1
	frontFailure = 2
)

// front serves exed's two requests of an async job over asynq:
//
//   - POST /ping decodes {"targets":[...]} (400 without targets), enqueues
//     the no-op task with the targets as its payload, kept for retention
//     once completed, and answers 201 {"jid"}: the task's id;
//   - GET /jobs/{jid} reads the task (asynq's Inspector) and answers its
//     job object, Done once completed, Failure once archived, Running
//     before; 404 for a task it does not hold (or before any was queued);
//   - GET /jobs/{jid}?follow=1 answers application/x-ndjson and writes
//     the job object once it has ended, reading the task every 2 ms
//     until then (asynq has no event to wait on). Unlike exed's follow
//     it writes nothing before the end, neither the job line nor events:
//     exedload reads only the last line.
//
// Tasks are enqueued with no retry (asynq.MaxRetry(0)): a task that
// fails is archived at once and its job is a Failure, as an exed job
// whose host fails ends at once; asynq's default of 25 retries would
// leave it Running for hours.
//
// It is what an HTTP API over asynq does for a job, so that its row in
// bench/jobs.sh pays for what exed's does: the two requests, a stored
// outcome, and a read of it.
func front(opt asynq.RedisClientOpt, addr string, retention time.Duration) {
	client := asynq.NewClient(opt)
	defer client.Close()
	ins := asynq.NewInspector(opt)
	defer ins.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /ping", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Targets []string `json:"targets"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			frontMessage(w, http.StatusBadRequest, "bad request body: "+err.Error())
			return
		}
		if len(req.Targets) == 0 {
			frontMessage(w, http.StatusBadRequest, "targets: want at least one host")
			return
		}
		payload, _ := json.Marshal(req.Targets)
		info, err := client.EnqueueContext(r.Context(), asynq.NewTask(taskType, payload),
			asynq.Retention(retention), asynq.MaxRetry(0))
		if err != nil {
			frontMessage(w, http.StatusInternalServerError, "enqueue: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(struct {
			JID string `json:"jid"`
		}{info.ID})
	})
	mux.HandleFunc("GET /jobs/{jid}", func(w http.ResponseWriter, r *http.Request) {
		jid := r.PathValue("jid")
		job, err := frontRead(ins, jid)
		if err != nil {
			frontError(w, err)
			return
		}
		if r.URL.Query().Get("follow") != "1" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(job)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for job.State == frontRunning {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			if job, err = frontRead(ins, jid); err != nil {
				frontError(w, err)
				return
			}
		}
		_ = json.NewEncoder(w).Encode(job)
	})
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, "asynqpeer front:", err)
		os.Exit(1)
	}
}

// frontRead is the job object of task jid.
func frontRead(ins *asynq.Inspector, jid string) (frontJob, error) {
	info, err := ins.GetTaskInfo("default", jid)
	if err != nil {
		return frontJob{}, err
	}
	job := frontJob{JID: jid, Operate: "ping", State: frontRunning}
	_ = json.Unmarshal(info.Payload, &job.Targets)
	switch info.State {
	case asynq.TaskStateCompleted:
		job.State, job.EndAt = frontDone, info.CompletedAt.Unix()
	case asynq.TaskStateArchived:
		job.State, job.Error, job.EndAt = frontFailure, info.LastErr, info.LastFailedAt.Unix()
	}
	return job, nil
}

func frontError(w http.ResponseWriter, err error) {
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		frontMessage(w, http.StatusNotFound, "job not found")
		return
	}
	frontMessage(w, http.StatusInternalServerError, err.Error())
}

// frontMessage answers exed's error shape, {"message"}.
func frontMessage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}
