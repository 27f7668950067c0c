package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/bench/internal/procstat"
)

// percentile returns the p-th percentile (0..100) of ds by nearest rank,
// or 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration { return procstat.Percentile(ds, p) }

// row is one line of the table: a metric and one value per daemon; ratio
// is sesame/knockd when both are numbers.
type row struct {
	metric string
	vals   []string
	nums   []float64 // NaN-free; nil when there is no ratio
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// Table renders the results as one Markdown table with a sesame/knockd
// ratio column. The first result is sesame's.
func Table(rs []Result) string {
	var rows []row
	add := func(metric string, f func(r Result) (string, float64)) {
		rw := row{metric: metric}
		for _, r := range rs {
			s, n := f(r)
			rw.vals = append(rw.vals, s)
			rw.nums = append(rw.nums, n)
		}
		rows = append(rows, rw)
	}
	add("idle RSS", func(r Result) (string, float64) {
		return fmt.Sprintf("%.1f MiB", float64(r.IdleRSSKiB)/1024), float64(r.IdleRSSKiB)
	})
	for _, fam := range []string{"IPv4", "IPv6"} {
		for _, p := range []float64{50, 90, 99, 100} {
			name := fmt.Sprintf("knock-to-grant %s p%g", fam, p)
			if p == 100 {
				name = "knock-to-grant " + fam + " max"
			}
			add(name, func(r Result) (string, float64) {
				ds := r.Latency4
				if fam == "IPv6" {
					ds = r.Latency6
				}
				if len(ds) == 0 {
					return "none granted", -1
				}
				d := percentile(ds, p)
				return ms(d), float64(d)
			})
		}
	}
	for _, fam := range []string{"IPv4", "IPv6"} {
		for _, p := range []float64{50, 99} {
			add(fmt.Sprintf("knock-to-grant forwarded %s p%g", fam, p), func(r Result) (string, float64) {
				ds := r.FwdLatency4
				if fam == "IPv6" {
					ds = r.FwdLatency6
				}
				if len(ds) == 0 {
					return "n/a", -1
				}
				return ms(percentile(ds, p)), -1
			})
		}
	}
	for _, fam := range []string{"IPv4", "IPv6"} {
		for _, p := range []float64{50, 99} {
			add(fmt.Sprintf("knock-to-grant, door without / with fleet publishing, %s p%g", fam, p), func(r Result) (string, float64) {
				without, with := r.NoFleetLatency4, r.FleetLatency4
				if fam == "IPv6" {
					without, with = r.NoFleetLatency6, r.FleetLatency6
				}
				if len(without) == 0 || len(with) == 0 {
					return "n/a", -1
				}
				return ms(percentile(without, p)) + " / " + ms(percentile(with, p)), -1
			})
		}
	}
	for _, p := range []float64{50, 99} {
		add(fmt.Sprintf("sesame internal (read → nft applied), without / with fleet publishing, p%g", p), func(r Result) (string, float64) {
			if len(r.NoFleetInternal) == 0 || len(r.FleetInternal) == 0 {
				return "n/a", -1
			}
			return ms(percentile(r.NoFleetInternal, p)) + " / " + ms(percentile(r.FleetInternal, p)), -1
		})
	}
	add("fleet: opens published and acknowledged", func(r Result) (string, float64) {
		if r.FleetOpens == 0 {
			return "n/a", -1
		}
		return fmt.Sprintf("%d/%d", r.FleetPublished, r.FleetOpens), -1
	})
	for _, p := range []float64{50, 99, 100} {
		name := fmt.Sprintf("sesame internal (read → nft applied) p%g", p)
		if p == 100 {
			name = "sesame internal (read → nft applied) max"
		}
		add(name, func(r Result) (string, float64) {
			if len(r.Internal) == 0 {
				return "n/a", -1
			}
			d := percentile(r.Internal, p)
			return ms(d), -1
		})
	}
	add("knocks not granted (latency runs)", func(r Result) (string, float64) {
		return fmt.Sprint(r.LatencyFail + r.FwdLatencyFail + r.FleetLatencyFail), -1
	})
	if len(rs) > 0 {
		for i, f := range rs[0].Floods {
			at := "flood " + rateName(f.Target)
			add(at+": offered / delivered pps", func(r Result) (string, float64) {
				if i >= len(r.Floods) {
					return "-", -1
				}
				return fmt.Sprintf("%.0f / %.0f", r.Floods[i].Offered, r.Floods[i].Delivered), -1
			})
			add(at+": legit knocks granted", func(r Result) (string, float64) {
				if i >= len(r.Floods) {
					return "-", -1
				}
				fr := r.Floods[i]
				return fmt.Sprintf("%d/%d (%.0f%%)", fr.OK, fr.Legit, 100*successRate(fr)), successRate(fr)
			})
			add(at+": legit open lines logged (sesame: rate-limited, 20/s)", func(r Result) (string, float64) {
				if i >= len(r.Floods) {
					return "-", -1
				}
				fr := r.Floods[i]
				return fmt.Sprintf("%d/%d", fr.Opens, fr.Legit), -1
			})
			add(at+": legit knock-to-grant p99", func(r Result) (string, float64) {
				if i >= len(r.Floods) {
					return "-", -1
				}
				if len(r.Floods[i].LegitLatency) == 0 {
					return "none granted", -1
				}
				d := percentile(r.Floods[i].LegitLatency, 99)
				return ms(d), float64(d)
			})
			add(at+": daemon CPU", func(r Result) (string, float64) {
				if i >= len(r.Floods) {
					return "-", -1
				}
				return fmt.Sprintf("%.1f%%", 100*r.Floods[i].CPU), r.Floods[i].CPU
			})
			add(at+": peak RSS", func(r Result) (string, float64) {
				if i >= len(r.Floods) {
					return "-", -1
				}
				return fmt.Sprintf("%.1f MiB", float64(r.Floods[i].PeakRSSKiB)/1024), float64(r.Floods[i].PeakRSSKiB)
			})
			add(at+": socket drops / packets", func(r Result) (string, float64) {
				if i >= len(r.Floods) || !r.Floods[i].DropsKnown {
					return "n/a", -1
				}
				return fmt.Sprintf("%d / %d", r.Floods[i].Drops, r.Floods[i].Packets), -1
			})
		}
	}
	knockFlood := func(name string, f func(k *KnockFloodRun) string) {
		add("knock flood: "+name, func(r Result) (string, float64) {
			if r.KnockFlood == nil {
				return "n/a", -1
			}
			return f(r.KnockFlood), -1
		})
	}
	knockFlood("offered pps / spoofed sources per s", func(k *KnockFloodRun) string {
		return fmt.Sprintf("%.0f / %.0f", k.Offered, k.Sources)
	})
	knockFlood("legit knocks granted", func(k *KnockFloodRun) string {
		rate := 0.0
		if k.Legit > 0 {
			rate = float64(k.OK) / float64(k.Legit)
		}
		return fmt.Sprintf("%d/%d (%.0f%%)", k.OK, k.Legit, 100*rate)
	})
	knockFlood("TOTP / SPA / manual grant during it", func(k *KnockFloodRun) string {
		yes := func(b bool) string {
			if b {
				return "yes"
			}
			return "no"
		}
		return yes(k.Others["totp"]) + " / " + yes(k.Others["spa"]) + " / " + yes(k.Others["manual"])
	})
	knockFlood("spoofed knocks accepted / pending at the end / confirmed", func(k *KnockFloodRun) string {
		return fmt.Sprintf("%d / %d / %d", k.SpoofOpens, k.Pending, k.Confirmed)
	})
	knockFlood("daemon CPU", func(k *KnockFloodRun) string { return fmt.Sprintf("%.1f%%", 100*k.CPU) })
	knockFlood("socket drops / packets", func(k *KnockFloodRun) string {
		if !k.DropsKnown {
			return "n/a"
		}
		return fmt.Sprintf("%d / %d", k.Drops, k.Packets)
	})
	add("bulk transfer", func(r Result) (string, float64) {
		b := r.Bulk
		if b.Took <= 0 {
			return "-", -1
		}
		return fmt.Sprintf("%d MiB in %.2f s (%.0f MiB/s)", b.Bytes>>20, b.Took.Seconds(), float64(b.Bytes>>20)/b.Took.Seconds()), -1
	})
	add("bulk: daemon CPU time", func(r Result) (string, float64) {
		return fmt.Sprintf("%d ms", r.Bulk.CPU.Milliseconds()), float64(r.Bulk.CPU)
	})

	var b strings.Builder
	b.WriteString("| metric |")
	for _, r := range rs {
		b.WriteString(" " + r.Daemon + " |")
	}
	if len(rs) == 2 {
		b.WriteString(" sesame/knockd |")
	}
	b.WriteString("\n|---|")
	for range rs {
		b.WriteString("---:|")
	}
	if len(rs) == 2 {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, rw := range rows {
		b.WriteString("| " + rw.metric + " | " + strings.Join(rw.vals, " | ") + " |")
		if len(rs) == 2 {
			b.WriteString(" " + ratio(rw.nums[0], rw.nums[1]) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func successRate(f FloodRun) float64 {
	if f.Legit == 0 {
		return 0
	}
	return float64(f.OK) / float64(f.Legit)
}

func ratio(a, b float64) string {
	if a < 0 || b <= 0 {
		return ""
	}
	r := a / b
	switch {
	case r == 0:
		return "0"
	case r < 0.01:
		return fmt.Sprintf("1/%.0f", 1/r)
	}
	return fmt.Sprintf("%.2f", r)
}

// WriteText prints the table with a heading.
func WriteText(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "sesame vs knockd, same workload, same topology")
	fmt.Fprint(w, Table(rs))
}
