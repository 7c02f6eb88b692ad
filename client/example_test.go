package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/0ops/exed/client"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
)

// exampleServer serves exed's API for the embedded default (memory store,
// sshnative on localhost) under /exe, as a service embedding it does;
// stop it with the function returned.
func exampleServer() (string, func()) {
	executor, _ := sshnative.New(sshnative.Config{})
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor})
	mux := http.NewServeMux()
	exehttp.New(engine, exehttp.Options{Prefix: "/exe"}).Register(mux)
	srv := httptest.NewServer(mux)
	return srv.URL + "/exe/", func() {
		srv.Close()
		_ = engine.Shutdown(context.Background())
	}
}

// Run a command as a job and follow its events as each host finishes.
func ExampleClient_Follow() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url) // client.WithToken(...) when the server has tokens
	if err != nil {
		fmt.Println(err)
		return
	}
	jid, err := c.SubmitExecute(ctx, []string{"localhost"}, "echo hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := c.Follow(ctx, jid, client.FollowOptions{})
	for ev, err := range stream.Events() {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d %s | %s | rc=%d >> %q\n", ev.Seq, ev.Host, ev.Status, ev.Exec.RTC, ev.Exec.Stdout)
	}
	fmt.Println("job:", stream.Job().State)
	// Output:
	// 1 localhost | CHANGED | rc=0 >> "hello\n"
	// job: Done
}

// A sync call answers one event per host.
func ExampleClient_Ping() {
	url, stop := exampleServer()
	defer stop()

	c, _ := client.New(url)
	out, err := c.Ping(context.Background(), "localhost")
	fmt.Println(out["localhost"].Status, err)
	// Output: OK <nil>
}

// The API's refusals are *client.Error, with the status and the server's
// message.
func ExampleError() {
	url, stop := exampleServer()
	defer stop()

	c, _ := client.New(url)
	_, err := c.SubmitPing(context.Background(), "db9.example.com")
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Message)
	}
	// Output: 404 no hosts match that target: db9.example.com
}
