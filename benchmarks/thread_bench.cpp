// thread_bench.cpp — a round trip between two OS threads (free mode), next to its peers.
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_round_trip/stackless/...             a tasklet of this thread sends an int on `ping` to a
//                                           tasklet of thread B, which sends it back + 1 on `pong`
//                                           (stackless::channel<int>)
//   BM_round_trip/boost_fiber/...           the same between a fiber of this thread and a fiber of
//                                           thread B, with boost::fibers::unbuffered_channel<int>
//   BM_round_trip/boost_fiber_buffered/...  ... and boost::fibers::buffered_channel<int> (capacity 2)
//   BM_round_trip/condition_variable/...    the same between two std::threads with a std::mutex and
//                                           two std::condition_variable (no tasklets, no fibers)
//
// Each comes in two variants, because waking a thread on an idle core is slow on a virtual machine
// (the halted vCPU must be woken by the hypervisor):
//
//   .../idle   only the two threads, pinned to CPUs 0 and 1: whenever one waits, its core goes
//              idle, and every wake-up has to wake that core
//   .../busy   unpinned, and a third std::thread spins for the whole measurement, so no core
//              ever goes idle (on two CPUs the two threads then mostly share the other core)
//
// One item is one round trip (two cross-thread wake-ups). Time is wall-clock time (UseRealTime):
// the measuring thread sleeps while it waits, so its CPU time would undercount. tools/bench-table
// turns the JSON output into the table of ns/op and ratios that docs/performance.md shows:
//
//   thread_bench --benchmark_repetitions=5 --benchmark_format=json | tools/bench-table
//
// Free mode (the default threading model). Thread B is started for each benchmark run and ended
// cleanly by the sentinel -1; it is started before the timed loop. Benchmarks measure; they never
// assert.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <boost/fiber/all.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <stackless/channel.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/tasklet.hpp>

#include "bench_support.hpp"

namespace {

using bench::busy_core;
using bench::pinned;
using bench::with_load;

// ---------------------------------------------------------------------------------------------
// stackless: thread B's tasklet is the echo; this thread's tasklet `driver` runs the timed loop.
// Each thread's main tasklet waits in join(), so a thread whose tasklet waits for the other
// thread parks in the kernel until the channel hands it a partner.

template <bool Busy>
void bm_round_trip_stackless(benchmark::State& state) {
  pinned<!Busy> pin_a(0);
  stackless::channel<int> ping;
  stackless::channel<int> pong;
  std::thread b([&] {
    pinned<!Busy> pin_b(1);
    stackless::tasklet echo([&] {
      for (int v = ping.receive(); v >= 0; v = ping.receive()) pong.send(v + 1);
    });
    echo.join();
  });
  with_load<Busy>([&] {
    stackless::tasklet driver([&] {
      int v = 0;
      for (auto _ : state) {
        ping.send(v);
        v = pong.receive();
        benchmark::DoNotOptimize(v);
      }
      ping.send(-1);
    });
    driver.join();
  });
  b.join();
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// Boost.Fiber: the same shape with a fiber in each thread (default round_robin scheduler, whose
// idle thread waits on a std::condition_variable until another thread readies one of its fibers).

using boost_unbuffered = boost::fibers::unbuffered_channel<int>;
struct boost_buffered : boost::fibers::buffered_channel<int> {
  boost_buffered() : boost::fibers::buffered_channel<int>(2) {}
};

template <class Channel, bool Busy>
void bm_round_trip_boost_fiber(benchmark::State& state) {
  pinned<!Busy> pin_a(0);
  Channel ping;
  Channel pong;
  std::thread b([&] {
    pinned<!Busy> pin_b(1);
    boost::fibers::fiber echo([&] {
      int v = 0;
      while (ping.pop(v) == boost::fibers::channel_op_status::success && v >= 0) pong.push(v + 1);
    });
    echo.join();
  });
  with_load<Busy>([&] {
    boost::fibers::fiber driver([&] {
      int v = 0;
      for (auto _ : state) {
        ping.push(v);
        pong.pop(v);
        benchmark::DoNotOptimize(v);
      }
      ping.push(-1);
    });
    driver.join();
  });
  b.join();
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// condition_variable: two std::threads pass the value through one mutex-protected slot; `to_b`
// and `to_a` say whose turn it is. The notifier unlocks before notifying (the woken thread does
// not then block on the mutex).

struct cv_slot {
  std::mutex m;
  std::condition_variable to_b_cv;
  std::condition_variable to_a_cv;
  bool to_b = false;  // a value waits for B
  bool to_a = false;  // a value waits for A
  int value = 0;
};

template <bool Busy>
void bm_round_trip_condition_variable(benchmark::State& state) {
  pinned<!Busy> pin_a(0);
  cv_slot s;
  std::thread b([&] {
    pinned<!Busy> pin_b(1);
    for (;;) {
      std::unique_lock lock(s.m);
      s.to_b_cv.wait(lock, [&] { return s.to_b; });
      s.to_b = false;
      if (s.value < 0) return;
      s.value += 1;
      s.to_a = true;
      lock.unlock();
      s.to_a_cv.notify_one();
    }
  });
  auto send_to_b = [&](int v) {
    {
      std::lock_guard lock(s.m);
      s.value = v;
      s.to_b = true;
    }
    s.to_b_cv.notify_one();
  };
  with_load<Busy>([&] {
    int v = 0;
    for (auto _ : state) {
      send_to_b(v);
      std::unique_lock lock(s.m);
      s.to_a_cv.wait(lock, [&] { return s.to_a; });
      s.to_a = false;
      v = s.value;
      benchmark::DoNotOptimize(v);
    }
    send_to_b(-1);
  });
  b.join();
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(bm_round_trip_stackless<false>)->Name("BM_round_trip/stackless/idle")->UseRealTime();
BENCHMARK(bm_round_trip_boost_fiber<boost_unbuffered, false>)
    ->Name("BM_round_trip/boost_fiber/idle")
    ->UseRealTime();
BENCHMARK(bm_round_trip_boost_fiber<boost_buffered, false>)
    ->Name("BM_round_trip/boost_fiber_buffered/idle")
    ->UseRealTime();
BENCHMARK(bm_round_trip_condition_variable<false>)
    ->Name("BM_round_trip/condition_variable/idle")
    ->UseRealTime();
BENCHMARK(bm_round_trip_stackless<true>)->Name("BM_round_trip/stackless/busy")->UseRealTime();
BENCHMARK(bm_round_trip_boost_fiber<boost_unbuffered, true>)
    ->Name("BM_round_trip/boost_fiber/busy")
    ->UseRealTime();
BENCHMARK(bm_round_trip_boost_fiber<boost_buffered, true>)
    ->Name("BM_round_trip/boost_fiber_buffered/busy")
    ->UseRealTime();
BENCHMARK(bm_round_trip_condition_variable<true>)
    ->Name("BM_round_trip/condition_variable/busy")
    ->UseRealTime();

BENCHMARK_MAIN();
