package replicator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamflow/iamflow/internal/telemetry"
)

// Gauges of the deletions the mass-deletion guard holds, read when /metrics
// is scraped: a hold waits for a person, so alert on it.
//
//	iamflow_replicator_held_deletions{link,target}     deletions waiting for approval (0 for every direction without any)
//	iamflow_replicator_oldest_hold_age_seconds{link,target}  how long the oldest hold has waited (absent when none)
var (
	descHeld = prometheus.NewDesc("iamflow_replicator_held_deletions",
		"Deletions the mass-deletion guard holds for approval, by link and target.", []string{"link", "target"}, nil)
	descHoldAge = prometheus.NewDesc("iamflow_replicator_oldest_hold_age_seconds",
		"How long the oldest hold of a link and target has waited for approval.", []string{"link", "target"}, nil)
)

// holdGauge is the collector of the gauges above: the guard's holds of the
// service's directions.
type holdGauge struct {
	guard *guard
	dirs  []*direction
	now   func() time.Time
}

// registerHoldGauge puts the hold gauges on r (nil: nowhere).
func registerHoldGauge(r prometheus.Registerer, g holdGauge) error {
	if r == nil {
		return nil
	}
	_, err := telemetry.Register(r, g) // several services may share a registry (tests): the first one's reports
	return err
}

// Describe implements prometheus.Collector.
func (g holdGauge) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHeld
	ch <- descHoldAge
}

// Collect implements prometheus.Collector.
func (g holdGauge) Collect(ch chan<- prometheus.Metric) {
	type key struct{ link, target string }
	held := map[key]int{}
	for _, d := range g.dirs {
		held[key{d.link.Name, d.target}] = 0
	}
	oldest := map[key]float64{}
	now := g.now()
	for _, h := range g.guard.pending() {
		k := key{h.Link, h.Target}
		held[k] += len(h.Actions)
		if age := now.Sub(h.At).Seconds(); age > oldest[k] {
			oldest[k] = age
		}
	}
	for k, n := range held {
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(n), k.link, k.target)
		if age, ok := oldest[k]; ok {
			ch <- prometheus.MustNewConstMetric(descHoldAge, prometheus.GaugeValue, age, k.link, k.target)
		}
	}
}
