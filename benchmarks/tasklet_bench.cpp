// tasklet_bench.cpp — the cost of a tasklet switch and of a tasklet's life, next to its peers.
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_switch/stackless     two tasklets ping-pong with stackless::schedule() inside stackless::run()
//   BM_switch/boost_fiber   two fibers ping-pong with boost::this_fiber::yield()
//   BM_switch/raw_fcontext  two Boost.Context fcontexts ping-pong with jump_fcontext (the floor)
//   BM_create_run/stackless    stackless::tasklet t([] {}); stackless::run();
//   BM_create_run/boost_fiber  boost::fibers::fiber(allocator_arg, pooled stack, [] {}).join()
//   BM_spill/stackless      stackless::spill(f) in a 16 KiB tasklet: f runs on a fresh segment
//   BM_spill/not_needed     stackless::spill(f) in a 64 KiB tasklet: the check, then a plain call
//   BM_spill/direct_call    f called directly
//
// Every benchmark counts items, one item being one switch (one way) or one created-and-finished
// tasklet, so items_per_second gives the time per operation uniformly. tools/bench-table turns the
// JSON output into the table of ns/op and ratios that docs/performance.md shows:
//
//   tasklet_bench --benchmark_repetitions=5 --benchmark_format=json | tools/bench-table
//
// Benchmarks measure; they never assert.
#include <benchmark/benchmark.h>

#include <boost/context/detail/fcontext.hpp>
#include <boost/fiber/all.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>

#include <stackless/scheduler.hpp>
#include <stackless/stack.hpp>
#include <stackless/tasklet.hpp>

namespace {

// Stack size of every Boost.Fiber fiber and raw context: the default stack size of a tasklet
// (stackless::config::default_stack_size), so both sides touch alike stacks.
constexpr std::size_t peer_stack_size = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// BM_switch: one item is one switch from one execution context to the other.

// The timed loop runs in tasklet `a`; each schedule() goes a -> b and b's schedule() comes back
// b -> a, so one loop iteration is two switches. The run() caller (the main tasklet) is paused
// meanwhile and is not part of the ping-pong.
void bm_switch_stackless(benchmark::State& state) {
  bool done = false;
  stackless::tasklet a([&] {
    for (auto _ : state) stackless::schedule();
    done = true;
  });
  stackless::tasklet b([&] {
    while (!done) stackless::schedule();
  });
  stackless::run();
  state.SetItemsProcessed(2 * state.iterations());
}

// Same shape: the timed loop runs in fiber `a`, fiber `b` yields back; the main fiber waits in
// join() and is not in the ready queue, so every yield goes straight to the other fiber.
void bm_switch_boost_fiber(benchmark::State& state) {
  bool done = false;
  boost::fibers::fiber a([&] {
    for (auto _ : state) boost::this_fiber::yield();
    done = true;
  });
  boost::fibers::fiber b([&] {
    while (!done) boost::this_fiber::yield();
  });
  a.join();
  b.join();
  state.SetItemsProcessed(2 * state.iterations());
}

namespace ctx = boost::context::detail;

// The partner context: bounces every jump straight back, forever. It never returns (returning
// from a make_fcontext function exits the thread); its stack is simply freed when the benchmark
// ends, which is safe because nothing on it needs destroying.
void raw_partner(ctx::transfer_t t) {
  for (;;) t = ctx::jump_fcontext(t.fctx, nullptr);
}

// The physical floor: the timed loop jumps to the partner and the partner jumps back, two
// one-way switches per iteration, with no scheduler at all.
void bm_switch_raw_fcontext(benchmark::State& state) {
  auto stack = std::make_unique<std::byte[]>(peer_stack_size);
  void* top = stack.get() + peer_stack_size;  // x86-64 and AArch64 stacks grow down
  ctx::fcontext_t partner = ctx::make_fcontext(top, peer_stack_size, &raw_partner);
  for (auto _ : state) partner = ctx::jump_fcontext(partner, nullptr).fctx;
  state.SetItemsProcessed(2 * state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_create_run: one item is one tasklet/fiber created, run to completion and gone.

// With the default stack cache: after the first iteration every tasklet reuses a cached stack.
void bm_create_run_stackless(benchmark::State& state) {
  for (auto _ : state) {
    stackless::tasklet t([] {});
    stackless::run();
  }
  state.SetItemsProcessed(state.iterations());
}

// The pool is made once outside the loop, so Boost.Fiber also reuses its stacks.
void bm_create_run_boost_fiber(benchmark::State& state) {
  boost::fibers::pooled_fixedsize_stack pool(peer_stack_size);
  for (auto _ : state) boost::fibers::fiber(std::allocator_arg, pool, [] {}).join();
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_spill: one item is one call of a small function. In a 16 KiB tasklet less than the 16 KiB
// spill_threshold remains, so every spill() takes a segment from the stack cache, jumps to it,
// calls f, jumps back and returns the segment.

int __attribute__((noinline)) add_one(int v) { return v + 1; }

template <std::size_t StackSize>
void bm_spill(benchmark::State& state) {
  stackless::tasklet_options options;
  options.stack_size = StackSize;
  stackless::tasklet t(
      [&] {
        int v = 0;
        for (auto _ : state) v = stackless::spill([v] { return add_one(v); });
        benchmark::DoNotOptimize(v);
      },
      options);
  stackless::run();
  state.SetItemsProcessed(state.iterations());
}

void bm_spill_direct_call(benchmark::State& state) {
  int v = 0;
  for (auto _ : state) {
    v = add_one(v);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(bm_switch_stackless)->Name("BM_switch/stackless");
BENCHMARK(bm_switch_boost_fiber)->Name("BM_switch/boost_fiber");
BENCHMARK(bm_switch_raw_fcontext)->Name("BM_switch/raw_fcontext");
BENCHMARK(bm_create_run_stackless)->Name("BM_create_run/stackless");
BENCHMARK(bm_create_run_boost_fiber)->Name("BM_create_run/boost_fiber");
BENCHMARK(bm_spill<16 * 1024>)->Name("BM_spill/stackless");
BENCHMARK(bm_spill<64 * 1024>)->Name("BM_spill/not_needed");
BENCHMARK(bm_spill_direct_call)->Name("BM_spill/direct_call");

BENCHMARK_MAIN();
