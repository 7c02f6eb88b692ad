package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
)

// Mounting the exed API inside an existing service, under /exed.
func ExampleAPI_Register() {
	executor, _ := sshnative.New(sshnative.Config{})
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor})
	defer engine.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "my service") })
	exehttp.New(engine, exehttp.Options{Prefix: "/exed"}).Register(mux)

	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, _ := http.Get(srv.URL + "/exed/ping?target=localhost")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(res.StatusCode, " ", string(body))
	// Output: 200 {"localhost":{"status":1}}
}

// Resuming a follow as Server-Sent Events: the client saw events up to 1
// and asks for the rest (a browser's EventSource sends Last-Event-ID by
// itself when it reconnects).
func ExampleAPI_follow() {
	executor, _ := sshnative.New(sshnative.Config{})
	store := memory.New(memory.Options{})
	engine, _ := exe.NewEngine(exe.Config{Store: store, Executor: executor})
	defer engine.Shutdown(context.Background())
	srv := httptest.NewServer(exehttp.New(engine, exehttp.Options{}))
	defer srv.Close()

	// A job with two events, ended (here written to the store directly).
	ctx := context.Background()
	_ = store.Create(ctx, &exe.Job{JID: "j1", State: exe.JobRunning, Request: exe.Request{Operate: exe.OpPing, Targets: []string{"a", "b"}}})
	_ = store.Append(ctx, "j1", exe.Event{Host: "a", Status: exe.HostOK}, exe.Event{Host: "b", Status: exe.HostUnreachable, Msg: "refused"})
	_ = store.Finish(ctx, "j1", exe.JobFailure, "1 of 2 hosts failed")

	req, _ := http.NewRequest("GET", srv.URL+"/jobs/j1?follow=1", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "1")
	res, _ := http.DefaultClient.Do(req)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "data: {\"jid\"") { // the job objects are long
			fmt.Println(line)
		}
	}
	// Output:
	// retry: 2000
	// event: job
	//
	// id: 2
	// event: host
	// data: {"b":{"msg":"refused","status":4}}
	//
	// event: done
	//
	//
}

// The OpenAPI document of the API, as GET /openapi.json serves it.
func ExampleOpenAPI() {
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	_ = json.Unmarshal(exehttp.OpenAPI(), &doc)
	fmt.Println(doc.OpenAPI, len(doc.Paths) > 0)
	// Output: 3.0.3 true
}

// Serving the job dashboard beside the API: the page is at /exed/ui/,
// with its Content Security Policy, and calls the API under /exed/.
func ExampleOptions_dashboard() {
	executor, _ := sshnative.New(sshnative.Config{})
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor})
	defer engine.Shutdown(context.Background())

	mux := http.NewServeMux()
	exehttp.New(engine, exehttp.Options{Prefix: "/exed", UI: true, Tokens: []string{"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, _ := http.Get(srv.URL + "/exed/ui/")
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Content-Type"))
	fmt.Println(res.Header.Get("Content-Security-Policy") == exehttp.UIContentSecurityPolicy)
	res, _ = http.Get(srv.URL + "/exed/jobs")
	res.Body.Close()
	fmt.Println(res.StatusCode, "without a token")
	// Output:
	// 200 text/html; charset=utf-8
	// true
	// 401 without a token
}
