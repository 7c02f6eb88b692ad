// Command httpfloor is the floor of bench/jobs.sh: a net/http server that
// answers exed's two requests of an async job, as exed's shapes, and does
// nothing else. POST /ping reads the body and answers 201 {"jid"}, GET
// /jobs/{jid} answers 200 with an ended job (state 0, Done). exedload
// drives it as it drives exed, so its row is what the two HTTP requests
// of a job cost the client and a Go server on the machine, with no job
// stored, run or logged.
//
//	httpfloor -addr 127.0.0.1:17900
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:17900", "address to listen on")
	flag.Parse()
	var n atomic.Uint64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ping", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		// A jid as long as exed's (a UUID).
		fmt.Fprintf(w, `{"jid":"00000000-0000-4000-8000-%012d"}`+"\n", n.Add(1))
	})
	mux.HandleFunc("GET /jobs/{jid}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		now := strconv.FormatInt(1764541021, 10)
		_, _ = io.WriteString(w, `{"jid":"`+r.PathValue("jid")+`","operate":"ping","targets":["localhost"],"user":"","state":0,"error":"","startat":`+now+`,"endat":`+now+"}\n")
	})
	if err := http.ListenAndServe(*addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, "httpfloor:", err)
		os.Exit(1)
	}
}
