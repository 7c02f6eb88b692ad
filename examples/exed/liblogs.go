package main

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"strings"

	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/grpc/grpclog"
)

// libraryLogs sends what libraries log on their own into the process's
// log, so that its every line has the configured format (a JSON log with
// a line of another shape in it breaks whatever reads it): the standard
// log package, go-redis's logger, and gRPC's errors (gRPC prints nothing
// else by default either). These loggers are global: the process sets
// them once, at start, before it uses any of those libraries.
func libraryLogs(log hclog.Logger) {
	stdlog.SetFlags(0)
	stdlog.SetPrefix("")
	stdlog.SetOutput(log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	goredis.SetLogger(redisLog{log.Named("redis")})
	grpcErrors := log.Named("grpc").StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error})
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, grpcErrors))
}

// redisLog is go-redis's Logging on hclog. go-redis logs without levels,
// and what it logs is out of the ordinary (a pool or connection problem):
// a warning.
type redisLog struct{ log hclog.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.log.Warn(strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")))
}
