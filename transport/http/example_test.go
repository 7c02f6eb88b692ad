package http_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

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
