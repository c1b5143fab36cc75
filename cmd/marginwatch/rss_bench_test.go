package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// rssAccounts is the scale for resident memory.
const rssAccounts = 100

// BenchmarkStreamRSS is the resident memory of the real binary watching
// 100 streamed Binance USDⓈ-M accounts. All of them are the fake's one-way
// account (3 positions) behind one key on one fake, as accounts behind one
// IP share a budget and a mark-price hub: 100 user-data connections and
// listen keys, one combined mark-price connection. The weight budget plan
// spreads the first polls (about 57 weight each, 5,700 in all) over the
// default reconcile_interval of 5 minutes, so one run takes about 6
// minutes: it waits until every account has polled once and streams
// (/metrics: marginwatch_polls_total{result="ok"} ≥ 1 and
// marginwatch_stream_up 1 for all), lets it run a minute (ticks every
// second), then reads VmRSS and VmHWM (the peak, start-up included) of
// the process. Also reported: the fake's heaviest minute of REST weight
// and its 429/418 answers. Skipped with -short.
//
//	go test -run='^$' -bench=StreamRSS -benchtime=1x -count=2 -timeout=30m ./cmd/marginwatch/
func BenchmarkStreamRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("runs the daemon for about 6 minutes")
	}
	for b.Loop() {
		for name, v := range streamRSS(b) {
			b.ReportMetric(v, name)
		}
	}
}

// goMetrics are the Go runtime's figures on /metrics that say where the
// resident memory goes, by benchmark unit.
var goMetrics = map[string]string{
	"go_memstats_heap_alloc_bytes":  "heap-live-MB", // live + not yet collected
	"go_memstats_heap_inuse_bytes":  "heap-inuse-MB",
	"go_memstats_stack_inuse_bytes": "stacks-MB",
	"go_memstats_sys_bytes":         "go-sys-MB",
	"go_goroutines":                 "goroutines",
}

// streamRSS runs the daemon and returns the figures to report, by unit.
func streamRSS(b *testing.B) map[string]float64 {
	fake := binancetest.NewServer(b, binancetest.Options{Account: binancetest.USDMOneWay})
	var risk []struct{ Symbol, MarkPrice string }
	if err := json.Unmarshal([]byte(fake.Body("/fapi/v3/positionRisk")), &risk); err != nil {
		b.Fatal(err)
	}
	for _, r := range risk { // the stream's marks start where REST has them
		fake.SetMark(r.Symbol, r.MarkPrice)
	}
	rulesPath, err := filepath.Abs("../../rules.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "state_dir: state\nlisten: %q\nrule_files: [%q]\nnotifiers: [{name: term, type: console}]\naccounts:\n", listen, rulesPath)
	ws := "ws" + strings.TrimPrefix(fake.URL, "http")
	for i := range rssAccounts {
		fmt.Fprintf(&cfg, "  - {name: a%03d, exchange: binance-usdm, endpoint: %q, api_key: %q, api_secret: %q, stream: true, stream_endpoint: %q}\n",
			i, fake.URL, binancetest.Key, binancetest.Secret, ws)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}

	bin, err := buildBinary()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-config", path)
	var errb lockedLog
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { // drain the console
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
		}
	}()
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	// Every account polled once and streaming; 10 minutes at most.
	up := regexp.MustCompile(`(?m)^marginwatch_stream_up\{account="a\d+"\} 1$`)
	polled := regexp.MustCompile(`(?m)^marginwatch_polls_total\{account="a\d+",result="ok"\} [1-9]`)
	deadline := time.Now().Add(10 * time.Minute)
	var nUp, nPolled int
	for {
		_, body, err := get("http://" + listen + "/metrics")
		if err == nil {
			nUp, nPolled = len(up.FindAllString(body, -1)), len(polled.FindAllString(body, -1))
			if nUp == rssAccounts && nPolled == rssAccounts {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 10 minutes %d accounts stream and %d polled (of %d); err %v; stderr:\n%s", nUp, nPolled, rssAccounts, err, errb.String())
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(time.Minute) // steady state: ticks, keepalives, a reconciliation or two
	if n := fake.UserConnections(); n < rssAccounts {
		b.Errorf("%d user-data connections, want %d", n, rssAccounts)
	}
	out := map[string]float64{"peak-weight/min": float64(fake.PeakMinuteWeight()), "refused": float64(fake.Refused())}
	for _, f := range []string{"VmRSS", "VmHWM", "RssAnon", "RssFile"} {
		out[f+"-MB"] = procStatusMB(b, cmd.Process.Pid, f)
	}
	if _, body, err := get("http://" + listen + "/metrics"); err == nil {
		for _, l := range strings.Split(body, "\n") {
			name, v, ok := strings.Cut(l, " ")
			if unit, want := goMetrics[name]; want && ok {
				f, _ := strconv.ParseFloat(v, 64)
				if strings.HasSuffix(unit, "-MB") {
					f /= 1 << 20
				}
				out[unit] = f
			}
		}
	}
	b.Logf("%d accounts: VmRSS %.1f MB (anon %.1f, file %.1f), VmHWM %.1f MB; Go heap in use %.1f MB, stacks %.1f MB, %v goroutines; %d user-data and %d market connections; fake: peak %d weight/min, %d refused",
		rssAccounts, out["VmRSS-MB"], out["RssAnon-MB"], out["RssFile-MB"], out["VmHWM-MB"], out["heap-inuse-MB"], out["stacks-MB"], out["goroutines"],
		fake.UserConnections(), fake.MarketConnections(), fake.PeakMinuteWeight(), fake.Refused())
	return out
}

// procStatusMB reads field (VmRSS, VmHWM) of /proc/pid/status in MB.
func procStatusMB(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("%s: %q", field, l)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// lockedLog collects the daemon's stderr for a failure message.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
