package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/0ops/exed/client"
	"github.com/0ops/exed/exe"
)

// screen returns how this command writes its output.
func (a *app) screen() *screen {
	return &screen{out: a.stdout, errOut: a.stderr, progress: a.stdoutTTY && !a.json,
		errSame: a.stderrTTY && a.stdoutTTY, color: a.color && !a.json, width: a.width}
}

// printJSON writes v as one line of JSON.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(append(b, '\n'))
	return err
}

// interrupts delivers Ctrl-C (SIGINT) from now until stop is called, so
// that one pressed while a job is being submitted is not lost.
func interrupts() (<-chan os.Signal, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	return sigs, func() { signal.Stop(sigs) }
}

// watch follows job jid to its end, printing each host's result as it
// comes (or, with --json, each line of the follow stream), with the
// progress summary on a terminal. Ctrl-C asks the server to cancel the
// job and goes on showing hosts until it ends; a second one stops
// following and leaves the job running. It returns nil when the job
// ended Done, exitStatus(2) when it ended Failure.
func (a *app) watch(ctx context.Context, jid string, start time.Time, sigs <-chan os.Signal) error {
	job, err := a.client.Job(ctx, jid, false)
	if err != nil {
		return err
	}
	if start.IsZero() {
		start = time.Unix(job.StartAt, 0)
	}
	scr := a.screen()
	t := newTally(job, start)
	if a.json {
		if err := a.printJSON(job); err != nil {
			return err
		}
	}

	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	stream := a.client.Follow(fctx, jid, client.FollowOptions{})
	type item struct {
		ev  exe.Event
		err error
	}
	items := make(chan item)
	go func() {
		defer close(items)
		for ev, err := range stream.Events() {
			select {
			case items <- item{ev, err}:
			case <-fctx.Done():
				return
			}
		}
	}()

	var tick <-chan time.Time
	if scr.progress {
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		tick = ticker.C
	}
	cancelled := make(chan error, 1)
	cancelling := false
	cancel := func(why string) {
		cancelling = true
		t.state = "cancelling"
		scr.notice("%s: cancelling job %s; hosts still report until it ends (Ctrl-C again to stop following and leave it running)", why, jid)
		go func() {
			cctx, done := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer done()
			_, err := a.client.Cancel(cctx, jid)
			cancelled <- err
		}()
	}
	redraw := func() { scr.draw(t.line(time.Now())) }
	redraw()
	for {
		select {
		case it, ok := <-items:
			if !ok {
				scr.clear()
				return a.finish(scr, t, stream.Job())
			}
			if it.err != nil {
				scr.clear()
				return fmt.Errorf("following job %s: %w; follow it again with: exectl job %s --follow", jid, it.err, jid)
			}
			t.add(it.ev)
			if a.json {
				if err := a.printJSON(map[string]exe.Event{it.ev.Host: it.ev}); err != nil {
					return err
				}
			} else {
				scr.print(hostBlock(it.ev), statusColor(it.ev.Status))
			}
			redraw()
		case <-sigs:
			if cancelling {
				scr.clear()
				scr.notice("left job %s running; follow it with: exectl job %s --follow", jid, jid)
				return exitStatus(exitInterrupted)
			}
			cancel("Ctrl-C")
			redraw()
		case err := <-cancelled:
			var apiErr *client.Error
			if err != nil && !(errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict) {
				// 409: it had just finished; the stream says how.
				scr.notice("cancel: %s", describe(err, a.url))
			}
			redraw()
		case <-tick:
			redraw()
		}
	}
}

// finish prints the end of a followed job (the recap of a deploy or task,
// or with --json the final job line) and says how it ended.
func (a *app) finish(scr *screen, t *tally, job *exe.Job) error {
	if a.json {
		if err := a.printJSON(job); err != nil {
			return err
		}
	} else if t.multi {
		scr.print(t.recap(scr.color), "")
	}
	return a.outcome(scr, job)
}

// outcome is the exit status of a job that ended: nil when Done; when
// Failure, exitStatus(2) after a line on stderr with the job's error.
func (a *app) outcome(scr *screen, job *exe.Job) error {
	if job.State != exe.JobFailure {
		return nil
	}
	scr.notice("job %s ended Failure: %s", job.JID, job.Error)
	return exitStatus(exitHostsFailed)
}
