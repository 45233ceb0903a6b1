// memory_bench.go — the Go peer of benchmarks/memory_bench.cpp: what a goroutine costs in memory
// and in creation time. memory_bench runs this binary once per configuration, each in a fresh
// process, and reads the one result line it prints:
//
//	go build -o /tmp/memory_bench_go benchmarks/go/memory_bench.go
//	build/release/benchmarks/memory_bench --go=/tmp/memory_bench_go
//
//	-mode=blocked -n=N     N goroutines, each blocked receiving from one unbuffered channel: the
//	                       increase of VmRSS from before the first `go` until all N are blocked,
//	                       and the time that took; then the channel is closed and the goroutines
//	                       that ran to their end are counted
//	-mode=create_run -n=N  N times: start one goroutine that does nothing but wg.Done(), and wait
//	                       for it with wg.Wait() (as BM_create_run joins its fiber)
//
// GOMAXPROCS=1, like the C++ peers, which all run on one OS thread. The result line
//
//	RESULT created=.. blocked=.. finished=.. rss_kib=.. pte_kib=.. vm_kib=.. maps=.. ns=.. error=
//
// is the one memory_bench.cpp's children print; keep the two in step. Standard library only; needs
// Go >= 1.19 (Debian bookworm's golang-go).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// memory is the process's memory as /proc/self/status reports it, in KiB.
type memory struct {
	rss, pte, size int64
}

// readMemory reads VmRSS, VmPTE and VmSize of this process.
func readMemory() memory {
	var m memory
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			m.rss = v
		case "VmPTE:":
			m.pte = v
		case "VmSize:":
			m.size = v
		}
	}
	return m
}

// countMaps returns the number of memory mappings of this process.
func countMaps() int64 {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return -1
	}
	return int64(bytes.Count(data, []byte{'\n'}))
}

// report is what one run measured; print writes the result line.
type report struct {
	created, blocked, finished int64
	before, after              memory
	maps                       int64
	ns                         float64
	err                        string
}

func (r *report) print() {
	fmt.Printf("RESULT created=%d blocked=%d finished=%d rss_kib=%d pte_kib=%d vm_kib=%d maps=%d "+
		"ns=%.1f error=%s\n", r.created, r.blocked, r.finished, r.after.rss-r.before.rss,
		r.after.pte-r.before.pte, r.after.size-r.before.size, r.maps, r.ns, r.err)
}

func nsPer(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / float64(n)
}

// blocked: n goroutines, each blocked in a receive from ch.
func blocked(n int64) report {
	var r report
	ch := make(chan int)
	var started, finished int64
	r.before = readMemory()
	t0 := time.Now()
	for ; r.created < n; r.created++ {
		go func() {
			atomic.AddInt64(&started, 1)
			<-ch
			atomic.AddInt64(&finished, 1)
		}()
	}
	// With GOMAXPROCS=1 the new goroutines run only when this one yields.
	for atomic.LoadInt64(&started) < n {
		runtime.Gosched()
	}
	runtime.Gosched()
	elapsed := time.Since(t0)
	r.after = readMemory()
	r.maps = countMaps()
	r.blocked = atomic.LoadInt64(&started) - atomic.LoadInt64(&finished)
	r.ns = nsPer(elapsed, r.created)
	close(ch)
	for i := 0; i < 1000 && atomic.LoadInt64(&finished) < n; i++ {
		runtime.Gosched()
	}
	r.finished = atomic.LoadInt64(&finished)
	return r
}

// createRun: n times, one goroutine started, run to its end and waited for.
func createRun(n int64) report {
	var r report
	var wg sync.WaitGroup
	r.before = readMemory()
	t0 := time.Now()
	for ; r.created < n; r.created++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	elapsed := time.Since(t0)
	r.after = readMemory()
	r.maps = countMaps()
	r.blocked, r.finished = r.created, r.created
	r.ns = nsPer(elapsed, r.created)
	return r
}

func main() {
	mode := flag.String("mode", "blocked", "blocked or create_run")
	n := flag.Int64("n", 100000, "goroutines")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	var r report
	switch *mode {
	case "blocked":
		r = blocked(*n)
	case "create_run":
		r = createRun(*n)
	default:
		fmt.Fprintf(os.Stderr, "memory_bench.go: unknown -mode=%s\n", *mode)
		os.Exit(2)
	}
	r.print()
}
