// global_lock_bench.cpp — threading::global_lock: the cost of handing the lock to another thread,
// and what two CPU-bound threads get done under it, next to their peers.
//
// configure() must precede every use of the runtime in a process and can be called once, so this
// is an executable of its own, and it runs one switch interval per process:
//
//   global_lock_bench --switch_interval_us=0      the hand-over rows (the lock moves at every tick)
//   global_lock_bench [--switch_interval_us=5000] the throughput rows (5 ms: the default interval)
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_handover/stackless/...             two threads call tick() in a loop; with a switch interval
//                                         of 0 the holder hands the lock over at every tick while
//                                         the other waits, so the lock goes back and forth
//   BM_handover/condition_variable/...    two std::threads pass a baton back and forth through a
//                                         std::mutex and two std::condition_variable
//   BM_cpu_bound/stackless                two threads, two tasklets each, doing work + tick() under
//                                         the lock (it moves every 5 ms)
//   BM_cpu_bound/one_thread               the same work and tasklets in one thread (the lock is
//                                         never contended)
//   BM_cpu_bound/std_threads              the same work in two plain std::threads without the
//                                         runtime: true parallelism, what the lock gives up
//
// The hand-over rows come in two variants, as in thread_bench: .../idle (only the two threads,
// pinned to CPUs 0 and 1, so a waiter that sleeps leaves its core idle) and .../busy (unpinned,
// and a third std::thread spins, so no core goes idle).
//
// One item of BM_handover is one hand-over: the lock (or baton) going from its holder to the other
// thread, which waits for it. Its time is the hand-over latency, from the moment the holder lets
// go until the waiter runs: both threads stamp the clock right before they may let go, and the
// one that gets the lock adds the time since the other's stamp (manual time, UseManualTime).
// A tick() that finds nobody waiting hands nothing over and adds nothing; the counter
// wall_ns_per_handover gives the wall-clock time per hand-over with such ticks included.
//
// One item of BM_cpu_bound is one work unit + tick() (about 24 ns of dependent integer work
// here); all of the work is done in every iteration, starting and joining the threads included.
// Its time is wall-clock time (UseRealTime): the measuring thread waits while others run.
//
//   global_lock_bench --switch_interval_us=0 --benchmark_format=json | tools/bench-table
//   global_lock_bench --benchmark_format=json | tools/bench-table
//
// Benchmarks measure; they never assert.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <stackless/config.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/tasklet.hpp>
#include <stackless/watchdog.hpp>

#include "bench_support.hpp"

namespace {

using bench::busy_core;
using bench::pinned;
using bench::with_load;

// ---------------------------------------------------------------------------------------------
// BM_handover (switch interval 0). Manual time: the sum of the hand-over latencies.

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// handover_timer: the thread that may let go of the lock (or baton) stamps the time right before;
// the thread that gets it adds the time since that stamp. Between the two, the lock (mutex)
// orders the accesses, so relaxed atomics suffice.
struct handover_timer {
  std::atomic<std::int64_t> let_go{0};
  std::atomic<std::int64_t> total_ns{0};
  void letting_go() noexcept { let_go.store(now_ns(), std::memory_order_relaxed); }
  void running() noexcept {
    total_ns.fetch_add(now_ns() - let_go.load(std::memory_order_relaxed),
                       std::memory_order_relaxed);
  }
  std::int64_t total() const noexcept { return total_ns.load(std::memory_order_relaxed); }
};

// lock_holder: which of the two threads ran last. A thread that finds, right after its tick(),
// that the other one ran last has just been handed the lock.
struct lock_holder {
  std::atomic<int> last{0};
  bool handed_to(int who, handover_timer& timer) noexcept {
    if (last.load(std::memory_order_relaxed) == who) return false;
    last.store(who, std::memory_order_relaxed);
    timer.running();
    return true;
  }
};

// This thread (A) holds the lock from its first use of the runtime. Thread B's first use waits
// for the lock; A lets B in with allow_threads and waits until B runs, so that from the first
// timed tick on B is always either running or waiting for the lock. Both stamp the time before
// every tick() (only the one that hands the lock over counts). An iteration of A ticks until the
// lock has gone to B and come back: exactly two hand-overs. A tick that finds no thread waiting
// hands nothing over — B may be between giving the lock up and asking for it again — and is not
// counted; the counter wall_ns_per_handover shows the wall-clock time per hand-over, such ticks
// included. At the end A sets `stop` and releases the lock while it joins B, so B can end.
template <bool Busy>
void bm_handover_stackless(benchmark::State& state) {
  if (stackless::current_config().switch_interval.count() != 0) {
    state.SkipWithError("run with --switch_interval_us=0");
    return;
  }
  pinned<!Busy> pin_a(0);
  stackless::current();  // this thread's first use (once per process): it holds the lock
  handover_timer timer;
  lock_holder holder;
  std::atomic<bool> b_started{false};
  std::atomic<bool> stop{false};
  std::thread b([&] {
    pinned<!Busy> pin_b(1);
    stackless::current();  // first use: waits for the lock
    b_started.store(true, std::memory_order_release);
    while (!stop.load(std::memory_order_relaxed)) {
      timer.letting_go();
      stackless::tick();
      holder.handed_to(2, timer);
    }
  });
  {
    stackless::allow_threads unlocked;
    while (!b_started.load(std::memory_order_acquire)) std::this_thread::yield();
  }  // waits for the lock: B's next tick hands it back
  holder.last.store(1, std::memory_order_relaxed);
  std::int64_t wall = 0;
  with_load<Busy>([&] {
    const std::int64_t start = now_ns();
    for (auto _ : state) {
      const std::int64_t before = timer.total();
      do {
        timer.letting_go();
        stackless::tick();
      } while (!holder.handed_to(1, timer));
      state.SetIterationTime(static_cast<double>(timer.total() - before) * 1e-9);
    }
    wall = now_ns() - start;
    stop.store(true, std::memory_order_relaxed);
  });
  {
    stackless::allow_threads unlocked;
    b.join();
  }
  state.SetItemsProcessed(2 * state.iterations());
  state.counters["wall_ns_per_handover"] =
      static_cast<double>(wall) / (2.0 * static_cast<double>(state.iterations()));
}

// The peer: A passes the baton to B and waits until it comes back; B passes it straight back.
// Two hand-overs per iteration, timed the same way. The passer unlocks before notifying.
struct baton {
  std::mutex m;
  std::condition_variable to_a_cv;
  std::condition_variable to_b_cv;
  int holder = 1;  // 1: A, 2: B
  bool stop = false;
};

template <bool Busy>
void bm_handover_condition_variable(benchmark::State& state) {
  pinned<!Busy> pin_a(0);
  handover_timer timer;
  baton s;
  std::thread b([&] {
    pinned<!Busy> pin_b(1);
    for (;;) {
      std::unique_lock lock(s.m);
      s.to_b_cv.wait(lock, [&] { return s.holder == 2; });
      if (s.stop) return;
      timer.running();
      timer.letting_go();
      s.holder = 1;
      lock.unlock();
      s.to_a_cv.notify_one();
    }
  });
  auto pass_to_b = [&](bool stop) {
    timer.letting_go();
    {
      std::lock_guard lock(s.m);
      s.holder = 2;
      s.stop = stop;
    }
    s.to_b_cv.notify_one();
  };
  std::int64_t wall = 0;
  with_load<Busy>([&] {
    const std::int64_t start = now_ns();
    for (auto _ : state) {
      const std::int64_t before = timer.total();
      pass_to_b(false);
      std::unique_lock lock(s.m);
      s.to_a_cv.wait(lock, [&] { return s.holder == 1; });
      timer.running();
      state.SetIterationTime(static_cast<double>(timer.total() - before) * 1e-9);
    }
    wall = now_ns() - start;
    pass_to_b(true);
  });
  b.join();
  state.SetItemsProcessed(2 * state.iterations());
  state.counters["wall_ns_per_handover"] =
      static_cast<double>(wall) / (2.0 * static_cast<double>(state.iterations()));
}

// ---------------------------------------------------------------------------------------------
// BM_cpu_bound (switch interval > 0, 5 ms by default). This thread never uses the runtime here;
// the work runs in threads started for each iteration.

constexpr int kTasklets = 4;                            // in all, split evenly over the threads
constexpr std::int64_t kUnits = std::int64_t{1} << 21;  // work units + ticks per iteration, in all
constexpr int kWorkSteps = 32;                          // dependent steps per work unit

// work_unit: kWorkSteps dependent ALU steps (shift, xor, add) the compiler cannot fold away.
inline std::uint64_t work_unit(std::uint64_t x) {
  for (int i = 0; i < kWorkSteps; ++i) x = (x ^ (x >> 7)) + 0x9e3779b97f4a7c15ULL;
  return x;
}

// stackless_worker: this thread's share of the tasklets, each doing `units` work units + ticks.
void stackless_worker(int tasklets, std::int64_t units, std::atomic<std::uint64_t>& sink) {
  std::uint64_t sum = 0;
  for (int t = 0; t < tasklets; ++t) {
    stackless::tasklet([&sum, units, t] {
      std::uint64_t x = static_cast<std::uint64_t>(t) + 1;
      for (std::int64_t i = 0; i < units; ++i) {
        x = work_unit(x);
        benchmark::DoNotOptimize(x);
        stackless::tick();
      }
      sum += x;
    });
  }
  stackless::run();
  sink.fetch_add(sum, std::memory_order_relaxed);
}

void plain_worker(int tasklets, std::int64_t units, std::atomic<std::uint64_t>& sink) {
  std::uint64_t sum = 0;
  for (int t = 0; t < tasklets; ++t) {
    std::uint64_t x = static_cast<std::uint64_t>(t) + 1;
    for (std::int64_t i = 0; i < units; ++i) {
      x = work_unit(x);
      benchmark::DoNotOptimize(x);
    }
    sum += x;
  }
  sink.fetch_add(sum, std::memory_order_relaxed);
}

template <int Threads, bool Runtime>
void bm_cpu_bound(benchmark::State& state) {
  if (stackless::current_config().switch_interval.count() == 0) {
    state.SkipWithError("run with a switch interval > 0 (the default, 5000 us)");
    return;
  }
  constexpr int per_thread = kTasklets / Threads;
  constexpr std::int64_t units = kUnits / kTasklets;
  std::atomic<std::uint64_t> sink{0};
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int i = 0; i < Threads; ++i)
      threads.emplace_back(Runtime ? &stackless_worker : &plain_worker, per_thread, units,
                           std::ref(sink));
    // A no-op here (this thread never used the runtime, so it holds no lock), but a thread that
    // holds the lock must release it around a join, or the workers could never get it.
    stackless::allow_threads unlocked;
    for (auto& t : threads) t.join();
  }
  benchmark::DoNotOptimize(sink.load());
  state.SetItemsProcessed(state.iterations() * kUnits);
}

// parse_switch_interval takes --switch_interval_us=N out of argv (the rest goes to Google
// Benchmark); 5000 (the default config) when absent, -1 when malformed.
long parse_switch_interval(int& argc, char** argv) {
  constexpr const char* kFlag = "--switch_interval_us=";
  long us = 5000;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kFlag, std::strlen(kFlag)) == 0) {
      char* end = nullptr;
      const char* digits = argv[i] + std::strlen(kFlag);
      us = std::strtol(digits, &end, 10);
      if (end == digits || *end != '\0' || us < 0) return -1;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  const long us = parse_switch_interval(argc, argv);
  if (us < 0) {
    std::fprintf(stderr, "usage: %s [--switch_interval_us=N] [benchmark flags]\n", argv[0]);
    return 1;
  }
  stackless::configure({.threads = stackless::threading::global_lock,
                        .switch_interval = std::chrono::microseconds(us)});
  if (us == 0) {
    benchmark::RegisterBenchmark("BM_handover/stackless/idle", bm_handover_stackless<false>)
        ->UseManualTime();
    benchmark::RegisterBenchmark("BM_handover/condition_variable/idle",
                                 bm_handover_condition_variable<false>)
        ->UseManualTime();
    benchmark::RegisterBenchmark("BM_handover/stackless/busy", bm_handover_stackless<true>)
        ->UseManualTime();
    benchmark::RegisterBenchmark("BM_handover/condition_variable/busy",
                                 bm_handover_condition_variable<true>)
        ->UseManualTime();
  } else {
    benchmark::RegisterBenchmark("BM_cpu_bound/stackless", bm_cpu_bound<2, true>)->UseRealTime();
    benchmark::RegisterBenchmark("BM_cpu_bound/one_thread", bm_cpu_bound<1, true>)->UseRealTime();
    benchmark::RegisterBenchmark("BM_cpu_bound/std_threads", bm_cpu_bound<2, false>)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
