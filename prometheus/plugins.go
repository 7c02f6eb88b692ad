package prometheus

import (
	"context"
	"fmt"
	"sort"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Plugin is a plugin process as the server runs it: *executor.Client and
// *task.Client are (loader.Process).
type Plugin interface {
	// Metrics gathers the plugin's own metrics through the plugin
	// protocol; nil from a plugin that has none.
	Metrics(ctx context.Context) ([]*dto.MetricFamily, error)
	// Restarts is how many times it was started again after its process
	// ended.
	Restarts() int64
}

// PluginTimeout bounds how long a scrape waits for a plugin's metrics.
const PluginTimeout = 5 * time.Second

// PluginLabel is the label the server adds to every metric a plugin
// gathers, and to its restarts: plugin="NAME".
const PluginLabel = "plugin"

// AddPlugin has the registry serve plugin p's metrics, each with the
// label plugin=name:
//
//	exed_plugin_restarts_total{plugin}  counter: its process started again after one ended
//	exed_plugin_up{plugin}              gauge: 1 when it answered this scrape's request for its metrics, else 0
//
// and the metrics p gathers itself (the sshnative executor's exed_ssh_),
// asked for at each scrape, for up to PluginTimeout. A plugin that does
// not answer leaves its own metrics out of that scrape; one built before
// plugins had metrics has none, and is up. Each name is added once: a
// second one is an error.
func (m *Metrics) AddPlugin(name string, p Plugin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.plugins[name] {
		return fmt.Errorf("prometheus: plugin %q is added already", name)
	}
	labels := prom.Labels{PluginLabel: name}
	c := &pluginCollector{p: p, label: &dto.LabelPair{Name: proto.String(PluginLabel), Value: proto.String(name)},
		restarts: prom.NewDesc("exed_plugin_restarts_total",
			"Times a plugin process was started again after its process ended (crashed, killed).", nil, labels),
		up: prom.NewDesc("exed_plugin_up",
			"1 when the plugin answered this scrape's request for its own metrics, else 0.", nil, labels)}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("prometheus: plugin %q: %w", name, err)
	}
	m.plugins[name] = true
	return nil
}

// pluginCollector collects a plugin process's metrics. It is an unchecked
// collector (Describe sends nothing): the families a plugin has are known
// only once it is asked.
type pluginCollector struct {
	p            Plugin
	label        *dto.LabelPair
	restarts, up *prom.Desc
}

func (c *pluginCollector) Describe(chan<- *prom.Desc) {}

func (c *pluginCollector) Collect(ch chan<- prom.Metric) {
	ch <- prom.MustNewConstMetric(c.restarts, prom.CounterValue, float64(c.p.Restarts()))
	ctx, cancel := context.WithTimeout(context.Background(), PluginTimeout)
	defer cancel()
	mfs, err := c.p.Metrics(ctx)
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prom.MustNewConstMetric(c.up, prom.GaugeValue, up)
	for _, mf := range mfs {
		desc := prom.NewDesc(mf.GetName(), mf.GetHelp(), nil, nil)
		for _, metric := range mf.GetMetric() {
			ch <- &labelled{desc: desc, metric: metric, label: c.label}
		}
	}
}

// labelled is a plugin's metric as the server serves it: with the plugin
// label added.
type labelled struct {
	desc   *prom.Desc
	metric *dto.Metric
	label  *dto.LabelPair
}

func (l *labelled) Desc() *prom.Desc { return l.desc }

func (l *labelled) Write(out *dto.Metric) error {
	proto.Merge(out, l.metric)
	out.Label = append(out.Label, l.label)
	sort.Slice(out.Label, func(i, j int) bool { return out.Label[i].GetName() < out.Label[j].GetName() })
	return nil
}
