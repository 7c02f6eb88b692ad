package pluginrpc

import (
	"context"
	"fmt"

	"github.com/0ops/exed/internal/pluginpb"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Gatherer is implemented by plugin implementations that have metrics of
// their own: prometheus.Gatherer, which a *prometheus.Registry is. The
// Metrics call of the plugin protocol serves what it gathers.
type Gatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// gatherPB gathers impl's metrics if it is a Gatherer (none otherwise)
// and encodes them for the wire. A registry that gathered some families
// and failed on others (one collector's error) sends those it has: the
// server's scrape is better with them than without.
func gatherPB(impl any) (*pluginpb.MetricFamilies, error) {
	out := &pluginpb.MetricFamilies{}
	g, ok := impl.(Gatherer)
	if !ok {
		return out, nil
	}
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, toStatus(fmt.Errorf("gather metrics: %w", err))
	}
	for _, mf := range mfs {
		b, err := proto.Marshal(mf)
		if err != nil {
			return nil, toStatus(fmt.Errorf("encode metric family %s: %w", mf.GetName(), err))
		}
		out.Families = append(out.Families, b)
	}
	return out, nil
}

// metricsFromPB decodes a Metrics answer. A plugin built before the call
// existed answers Unimplemented: it has no metrics, which is no error.
func metricsFromPB(ctx context.Context, res *pluginpb.MetricFamilies, err error) ([]*dto.MetricFamily, error) {
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	out := make([]*dto.MetricFamily, 0, len(res.GetFamilies()))
	for _, b := range res.GetFamilies() {
		mf := &dto.MetricFamily{}
		if err := proto.Unmarshal(b, mf); err != nil {
			return nil, fmt.Errorf("decode a metric family: %w", err)
		}
		out = append(out, mf)
	}
	return out, nil
}

// Metrics serves the implementation's metrics, if it gathers any.
func (s *ExecutorServer) Metrics(context.Context, *pluginpb.Empty) (*pluginpb.MetricFamilies, error) {
	return gatherPB(s.Impl)
}

// Metrics asks the plugin for its metrics; nil from a plugin that has
// none, or was built before the call existed.
func (c *ExecutorClient) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	res, err := c.RPC.Metrics(ctx, &pluginpb.Empty{})
	return metricsFromPB(ctx, res, err)
}

// Metrics serves the implementation's metrics, if it gathers any.
func (s *TaskServer) Metrics(context.Context, *pluginpb.Empty) (*pluginpb.MetricFamilies, error) {
	return gatherPB(s.Impl)
}

// Metrics asks the plugin for its metrics, as ExecutorClient.Metrics.
func (c *TaskClient) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	res, err := c.RPC.Metrics(ctx, &pluginpb.Empty{})
	return metricsFromPB(ctx, res, err)
}
