// Command httpfloor is the floor of bench/jobs.sh: a net/http server that
// answers exed's two requests of an async job, as exed's shapes, and does
// nothing else. POST /ping reads the body and answers 201 {"jid"}, GET
// /jobs/{jid} answers 200 with an ended job (state 0, Done). exedload
// drives it as it drives exed, so its row is what the two HTTP requests
// of a job cost the client and a Go server on the machine, with no job
// stored, run or logged.
//
// With -work, each POST /ping also keeps its goroutine on the CPU for that
// long (a busy loop, no allocation, no system call): a server that does
// that much more per job than net/http's share. Rows at a few values
// (FLOOR_WORK in bench/jobs.sh) give the rate exed would reach on the
// machine if its own work per job came to that much.
//
//	httpfloor -addr 127.0.0.1:17900
//	httpfloor -addr 127.0.0.1:17900 -work 50us
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:17900", "address to listen on")
	work := flag.Duration("work", 0, "CPU time each POST /ping spends besides answering")
	flag.Parse()
	var n atomic.Uint64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ping", func(w http.ResponseWriter, r *http.Request) {
		spin(*work)
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

// spun keeps spin's loop from being optimised away.
var spun atomic.Uint64

// spin stays on the CPU for d: wall time on a goroutine that is not
// preempted for long, which on a loaded machine is close to CPU time.
func spin(d time.Duration) {
	if d <= 0 {
		return
	}
	var n uint64
	for start := time.Now(); time.Since(start) < d; {
		for i := range uint64(64) {
			n += i
		}
	}
	spun.Add(n)
}
