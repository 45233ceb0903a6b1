// watchdog_bench.cpp — the cost of a tick() point and of one hard interrupt, next to the same work
// without them.
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_tick/stackless               a loop of cheap work (three dependent ALU instructions) with
//                                   tick() in every iteration, in main with no timed run() active
//   BM_tick/no_tick                 the same loop without tick()
//   BM_tick_tight/...               the same with the cheapest work there is (one add), so the
//                                   loop is bound by instruction throughput and tick()'s four
//                                   instructions show
//   BM_tick_under_timeout/...       the same two loops in a tasklet under run({.timeout = 2^40}):
//                                   the budget counts down and never runs out
//   BM_tick_under_time_slice/...    the same two loops in a tasklet under run({.time_slice = 1 h}):
//                                   every 256th tick (time_check_ticks) reads the clock
//   BM_interrupt_cycle/stackless    a tasklet spinning on tick() is hard-interrupted by
//                                   run({.timeout = 1}) and re-inserted: one run() returning the
//                                   tasklet + insert() per item
//   BM_interrupt_cycle/voluntary    the same cycle done cooperatively: the tasklet calls
//                                   schedule_remove() after every tick, main calls run() (untimed,
//                                   it returns when the queue is empty) and insert()
//
// One item of BM_tick* is one loop iteration, so the cost of one tick() is the difference of the
// two columns (stackless - no_tick), and the ratio says how much slower the loop got. The work is
// kept in a register and passed through benchmark::DoNotOptimize every iteration; DoNotOptimize
// also clobbers memory, so tick()'s thread-local counter is loaded and stored every iteration, as
// it would be in a loop that calls anything. One item of BM_interrupt_cycle is one full cycle (two
// switches, run() and insert()).
//
//   watchdog_bench --benchmark_repetitions=5 --benchmark_format=json | tools/bench-table
//
// Benchmarks measure; they never assert.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include <stackless/scheduler.hpp>
#include <stackless/tasklet.hpp>
#include <stackless/watchdog.hpp>

namespace {

// kLoop: iterations of the inner loop per benchmark iteration (keeps the harness out of the
// per-item time).
constexpr int kLoop = 1024;

// work is one cheap, dependent step (shift, xor, add) the compiler cannot fold or vectorise away;
// tight_work is a single add.
inline std::uint64_t work(std::uint64_t x) { return (x ^ (x >> 7)) + 0x9e3779b97f4a7c15ULL; }
inline std::uint64_t tight_work(std::uint64_t x) { return x + 0x9e3779b97f4a7c15ULL; }

template <bool WithTick, bool Tight = false>
void tick_loop(benchmark::State& state) {
  std::uint64_t x = 1;
  for (auto _ : state) {
    for (int i = 0; i < kLoop; ++i) {
      x = Tight ? tight_work(x) : work(x);
      if constexpr (WithTick) stackless::tick();
      benchmark::DoNotOptimize(x);
    }
  }
  state.SetItemsProcessed(state.iterations() * kLoop);
}

// ---------------------------------------------------------------------------------------------
// BM_tick: main, no timed run() — tick() is a decrement and a branch that is never taken.

void bm_tick_stackless(benchmark::State& state) { tick_loop<true>(state); }
void bm_tick_no_tick(benchmark::State& state) { tick_loop<false>(state); }
void bm_tick_tight_stackless(benchmark::State& state) { tick_loop<true, true>(state); }
void bm_tick_tight_no_tick(benchmark::State& state) { tick_loop<false, true>(state); }

// ---------------------------------------------------------------------------------------------
// BM_tick_under_*: the loop runs in a tasklet while main waits in a timed run().

template <bool WithTick>
void under_run(benchmark::State& state, const stackless::run_options& opts) {
  stackless::tasklet t([&] { tick_loop<WithTick>(state); });
  const stackless::tasklet interrupted = stackless::run(opts);
  if (interrupted) state.SkipWithError("the measured tasklet was interrupted");
}

constexpr stackless::run_options kHugeTimeout{.timeout = std::uint64_t{1} << 40};
const stackless::run_options kLongTimeSlice{.time_slice = std::chrono::hours(1)};

void bm_tick_under_timeout_stackless(benchmark::State& state) {
  under_run<true>(state, kHugeTimeout);
}
void bm_tick_under_timeout_no_tick(benchmark::State& state) {
  under_run<false>(state, kHugeTimeout);
}
void bm_tick_under_time_slice_stackless(benchmark::State& state) {
  under_run<true>(state, kLongTimeSlice);
}
void bm_tick_under_time_slice_no_tick(benchmark::State& state) {
  under_run<false>(state, kLongTimeSlice);
}

// ---------------------------------------------------------------------------------------------
// BM_interrupt_cycle: one item is one pre-emption (or one voluntary yield) and the re-insert.

void bm_interrupt_cycle_stackless(benchmark::State& state) {
  stackless::tasklet spinner([] {
    for (;;) stackless::tick();
  });
  for (auto _ : state) {
    stackless::tasklet x = stackless::run({.timeout = 1});
    x.insert();
  }
  spinner.kill();
  state.SetItemsProcessed(state.iterations());
}

void bm_interrupt_cycle_voluntary(benchmark::State& state) {
  stackless::tasklet spinner([] {
    for (;;) {
      stackless::tick();
      stackless::schedule_remove();
    }
  });
  for (auto _ : state) {
    stackless::run();
    spinner.insert();
  }
  spinner.kill();
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(bm_tick_stackless)->Name("BM_tick/stackless");
BENCHMARK(bm_tick_no_tick)->Name("BM_tick/no_tick");
BENCHMARK(bm_tick_tight_stackless)->Name("BM_tick_tight/stackless");
BENCHMARK(bm_tick_tight_no_tick)->Name("BM_tick_tight/no_tick");
BENCHMARK(bm_tick_under_timeout_stackless)->Name("BM_tick_under_timeout/stackless");
BENCHMARK(bm_tick_under_timeout_no_tick)->Name("BM_tick_under_timeout/no_tick");
BENCHMARK(bm_tick_under_time_slice_stackless)->Name("BM_tick_under_time_slice/stackless");
BENCHMARK(bm_tick_under_time_slice_no_tick)->Name("BM_tick_under_time_slice/no_tick");
BENCHMARK(bm_interrupt_cycle_stackless)->Name("BM_interrupt_cycle/stackless");
BENCHMARK(bm_interrupt_cycle_voluntary)->Name("BM_interrupt_cycle/voluntary");

BENCHMARK_MAIN();
