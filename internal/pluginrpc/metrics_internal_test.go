package pluginrpc

import (
	"context"
	"errors"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gatheringTask is a task with metrics of its own.
type gatheringTask struct {
	exe.Task
	*prometheus.Registry
}

// failing is a collector whose every collection fails.
type failing struct{ desc *prometheus.Desc }

func (f failing) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f failing) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.desc, errors.New("cannot read"))
}

// A task plugin's metrics go through the wire and back as they were; a
// registry with a failing collector still sends what it gathered.
func TestTaskMetricsRoundTrip(t *testing.T) {
	reg := prometheus.NewRegistry()
	runs := prometheus.NewCounter(prometheus.CounterOpts{Name: "task_runs_total", Help: "Runs."})
	reg.MustRegister(runs, failing{prometheus.NewDesc("task_broken", "Broken.", nil, nil)})
	runs.Add(7)
	ctx := context.Background()
	res, err := (&TaskServer{Impl: gatheringTask{Registry: reg}}).Metrics(ctx, &pluginpb.Empty{})
	require.NoError(t, err)
	mfs, err := metricsFromPB(ctx, res, nil)
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	assert.Equal(t, "task_runs_total", mfs[0].GetName())
	assert.Equal(t, 7.0, mfs[0].GetMetric()[0].GetCounter().GetValue())

	// A task without metrics sends none.
	res, err = (&TaskServer{Impl: nil}).Metrics(ctx, &pluginpb.Empty{})
	require.NoError(t, err)
	assert.Empty(t, res.GetFamilies())
}

// Unimplemented (a plugin built before the call) is no metrics and no
// error; other errors are errors, and bytes that are no metric family too.
func TestMetricsAnswers(t *testing.T) {
	ctx := context.Background()
	mfs, err := metricsFromPB(ctx, nil, status.Error(codes.Unimplemented, "unknown method Metrics"))
	assert.NoError(t, err)
	assert.Nil(t, mfs)
	_, err = metricsFromPB(ctx, nil, status.Error(codes.Unavailable, "connection refused"))
	assert.Error(t, err)
	_, err = metricsFromPB(ctx, &pluginpb.MetricFamilies{Families: [][]byte{{0xff, 0xff}}}, nil)
	assert.ErrorContains(t, err, "decode a metric family")
}
