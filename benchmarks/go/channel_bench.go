// channel_bench.go — the Go peer of benchmarks/channel_bench.cpp: goroutines and unbuffered Go
// channels on one OS thread (GOMAXPROCS=1), measured the same way and printed in Google
// Benchmark's JSON shape, so that tools/bench-table can put it into the same table:
//
//	go run benchmarks/go/channel_bench.go -out go.json
//	tools/bench-table channel.json --go go.json
//
//	BM_ping_pong/go   two goroutines pass an int there and back over two unbuffered channels;
//	                  one item is one round trip
//	BM_fan_in/go      1,000 producer goroutines send 100 ints each to one consumer goroutine
//	                  over one unbuffered channel; one item is one message
//
// The shapes (who is created first, the sentinel, the constants) are those of channel_bench.cpp;
// keep them in step. Go cannot run inside the C++ benchmark process, so ratios to Go are taken
// between processes (docs/performance.md). Standard library only; needs Go >= 1.19 (Debian
// bookworm's golang-go).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Fan-in shape: as fan_in_producers / fan_in_messages in channel_bench.cpp.
const (
	fanInProducers = 1000
	fanInMessages  = 100
)

// benchmark is one named benchmark: run does b.N operations' worth of work and items says how
// many items (operations) one b.N step is.
type benchmark struct {
	name  string
	items int64
	run   func(b *testing.B)
}

var benchmarks = []benchmark{
	{"BM_ping_pong/go", 1, pingPong},
	{"BM_fan_in/go", fanInProducers * fanInMessages, fanIn},
}

// pingPong: the echo goroutine is started first and is waiting when the driver (the benchmark
// goroutine) first sends; it ends at the sentinel -1.
func pingPong(b *testing.B) {
	ping := make(chan int)
	pong := make(chan int)
	done := make(chan struct{})
	go func() {
		for v := <-ping; v >= 0; v = <-ping {
			pong <- v
		}
		close(done)
	}()
	runtime.Gosched() // let the echo reach its first receive
	b.ResetTimer()
	v := 0
	for i := 0; i < b.N; i++ {
		ping <- v
		v = <-pong
	}
	ping <- -1
	<-done
}

// fanIn: every step starts one consumer and fanInProducers producers (consumer first) and waits
// until all have ended, as a C++ iteration's run() does.
func fanIn(b *testing.B) {
	var sum int64
	for n := 0; n < b.N; n++ {
		ch := make(chan int)
		var wg sync.WaitGroup
		wg.Add(fanInProducers + 1)
		go func() {
			for i := 0; i < fanInProducers*fanInMessages; i++ {
				sum += int64(<-ch)
			}
			wg.Done()
		}()
		for p := 0; p < fanInProducers; p++ {
			go func() {
				for i := 0; i < fanInMessages; i++ {
					ch <- i
				}
				wg.Done()
			}()
		}
		wg.Wait()
	}
	if sum < 0 {
		fmt.Fprintln(os.Stderr, sum)
	}
}

// entry is one repetition in Google Benchmark's JSON shape (the fields tools/bench-table reads).
type entry struct {
	Name            string  `json:"name"`
	RunName         string  `json:"run_name"`
	RunType         string  `json:"run_type"`
	Repetitions     int     `json:"repetitions"`
	RepetitionIndex int     `json:"repetition_index"`
	Iterations      int     `json:"iterations"`
	RealTime        float64 `json:"real_time"`
	CPUTime         float64 `json:"cpu_time"`
	TimeUnit        string  `json:"time_unit"`
	ItemsPerSecond  float64 `json:"items_per_second"`
}

func main() {
	testing.Init()
	reps := flag.Int("repetitions", 5, "repetitions of each benchmark")
	benchtime := flag.Duration("benchtime", 500*time.Millisecond, "minimum time of one repetition")
	filter := flag.String("filter", ".", "run only the benchmarks whose name matches this regexp")
	procs := flag.Int("gomaxprocs", 1, "GOMAXPROCS (the C++ peers all run on one OS thread)")
	out := flag.String("out", "", "write the JSON here instead of to stdout")
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	match, err := regexp.Compile(*filter)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)

	host, _ := os.Hostname()
	doc := struct {
		Context    map[string]any `json:"context"`
		Benchmarks []entry        `json:"benchmarks"`
	}{
		Context: map[string]any{
			"date":       time.Now().Format(time.RFC3339),
			"host_name":  host,
			"executable": "benchmarks/go/channel_bench.go",
			"num_cpus":   runtime.NumCPU(),
			"library":    runtime.Version(),
			"gomaxprocs": runtime.GOMAXPROCS(0),
		},
		Benchmarks: []entry{},
	}
	for _, bm := range benchmarks {
		if !match.MatchString(bm.name) {
			continue
		}
		for r := 0; r < *reps; r++ {
			res := testing.Benchmark(bm.run)
			if res.N == 0 {
				fmt.Fprintf(os.Stderr, "%s: benchmark failed\n", bm.name)
				os.Exit(1)
			}
			items := float64(res.N) * float64(bm.items)
			nsPerIter := float64(res.T.Nanoseconds()) / float64(res.N)
			e := entry{
				Name: bm.name, RunName: bm.name, RunType: "iteration",
				Repetitions: *reps, RepetitionIndex: r, Iterations: res.N,
				RealTime: nsPerIter, CPUTime: nsPerIter, TimeUnit: "ns",
				ItemsPerSecond: items / res.T.Seconds(),
			}
			doc.Benchmarks = append(doc.Benchmarks, e)
			fmt.Fprintf(os.Stderr, "%-20s %12d iterations %12.1f ns/item\n", bm.name, res.N,
				1e9/e.ItemsPerSecond)
		}
	}

	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	data = append(data, '\n')
	if *out == "" {
		os.Stdout.Write(data)
	} else if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
