// sync_bench.cpp — the cost of the locks of <stackless/sync.hpp>, next to their peers.
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_uncontended/stackless          lock() + unlock() of a stackless::mutex nobody else wants
//   BM_uncontended/std_mutex          the same with std::mutex
//   BM_uncontended/boost_fiber        the same with boost::fibers::mutex
//   BM_tasklet_contention/stackless   100 tasklets of one thread take turns on one
//                                     stackless::mutex; every 4th critical section calls
//                                     stackless::schedule() while it holds the lock
//   BM_tasklet_contention/boost_fiber the same with 100 fibers, boost::fibers::mutex and
//                                     boost::this_fiber::yield()
//   BM_semaphore_uncontended/stackless    acquire() + release() of a stackless::semaphore(1):
//                                         the only permit is taken and given back
//   BM_semaphore_uncontended/std_counting_semaphore   the same with std::counting_semaphore<>(1)
//   BM_semaphore_spare_permit/...     the same two with 2 permits, so one is always left
//   BM_cv_ping_pong/stackless         two tasklets hand a turn to each other with one
//                                     stackless::condition_variable and stackless::mutex
//   BM_cv_ping_pong/boost_fiber       the same with two fibers, boost::fibers::condition_variable
//                                     and boost::fibers::mutex
//   BM_thread_contention/stackless/...   two std::threads (Google Benchmark's ->Threads(2)) lock
//                                        and unlock one stackless::mutex in a loop
//   BM_thread_contention/std_mutex/...   the same with std::mutex
//   BM_tasklet_contention/.../mt, BM_cv_ping_pong/.../mt   the single-thread rows again, once the
//                                     process has had two runtime threads (see below)
//
// One item is one critical section (lock + work + unlock), one acquire + release, or one round
// trip of the ping-pong (two notify/wait pairs), so items_per_second gives the time per operation
// uniformly; for BM_thread_contention it is the throughput of both threads together in wall-clock
// time (UseRealTime). tools/bench-table turns the JSON output into the table of ns/op and ratios
// that docs/performance.md shows:
//
//   sync_bench --benchmark_repetitions=5 --benchmark_format=json | tools/bench-table
//
// Threading modes. The wait queues of the stackless locks are unguarded while one thread uses the
// runtime and spinlocked from the moment a second one appears, for the rest of the process
// (src/core/mt.hpp). Google Benchmark runs the benchmarks in the order they are registered below:
// the single-thread rows first, in a single-threaded process, as a program without threads would
// see them; then BM_thread_contention, which makes the process multi-threaded; then the /mt rows,
// which make sure of it first. Free mode (the default) throughout. Benchmarks measure; they never
// assert.
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <semaphore>
#include <thread>
#include <vector>

#include <stackless/config.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/sync.hpp>
#include <stackless/tasklet.hpp>

namespace {

// Stack size of every Boost.Fiber fiber: the default stack size of a tasklet
// (stackless::config::default_stack_size), so both sides touch alike stacks.
constexpr std::size_t peer_stack_size = 64 * 1024;

// Tasklet contention shape: contenders tasklets (fibers) run sections_each critical sections
// each; every yield_every-th one yields while it holds the lock, which is what makes the others
// find it taken.
constexpr int contenders = 100;
constexpr int sections_each = 1000;
constexpr int yield_every = 4;

// Stacks each thread keeps for reuse (config::stack_cache_limit, default 16). Boost.Fiber's
// pooled_fixedsize_stack keeps every stack it ever handed out; the stackless cache is raised so
// that both sides reuse the stacks of the 100 contenders. See main().
constexpr std::size_t stack_cache_limit = 128;

// work is "a little work": work_steps dependent steps (shift, xor, add, about 3 cycles each) the
// compiler cannot fold away. It runs inside every critical section on the protected value, and in
// BM_thread_contention also between two sections on a value of the thread's own.
constexpr int work_steps = 8;
inline std::uint64_t work(std::uint64_t x) {
  for (int i = 0; i < work_steps; ++i) x = (x ^ (x >> 7)) + 0x9e3779b97f4a7c15ULL;
  return x;
}

// ---------------------------------------------------------------------------------------------
// BM_uncontended: one item is one lock() + unlock() by the main thread (in Boost.Fiber's case its
// main fiber), with nobody else wanting the lock.

template <class Mutex>
void bm_uncontended(benchmark::State& state) {
  Mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_tasklet_contention: one item is one critical section. Every iteration creates the
// contenders, which run to their end; creating and ending 100 tasklets (fibers) is part of the
// time, well under 1% of it.

// contend is the body of one contender: `yield` is schedule() or boost::this_fiber::yield().
template <class Mutex, class Yield>
void contend(Mutex& m, std::uint64_t& shared, Yield yield) {
  for (int i = 0; i < sections_each; ++i) {
    m.lock();
    shared = work(shared);
    if (i % yield_every == 0) yield();
    m.unlock();
  }
}

void bm_tasklet_contention_stackless(benchmark::State& state) {
  std::uint64_t shared = 1;
  for (auto _ : state) {
    stackless::mutex m;
    for (int t = 0; t < contenders; ++t)
      stackless::tasklet([&] { contend(m, shared, [] { stackless::schedule(); }); });
    stackless::run();
  }
  benchmark::DoNotOptimize(shared);
  state.SetItemsProcessed(state.iterations() * contenders * sections_each);
}

// Fibers are launched with launch::post (the default): created ready, run when main joins. The
// stack pool is made once outside the loop, so after the first iteration every fiber reuses a
// pooled stack.
void bm_tasklet_contention_boost_fiber(benchmark::State& state) {
  boost::fibers::pooled_fixedsize_stack pool(peer_stack_size);
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(contenders);
  std::uint64_t shared = 1;
  for (auto _ : state) {
    boost::fibers::mutex m;
    for (int t = 0; t < contenders; ++t)
      fibers.emplace_back(std::allocator_arg, pool,
                          [&] { contend(m, shared, [] { boost::this_fiber::yield(); }); });
    for (auto& f : fibers) f.join();
    fibers.clear();
  }
  benchmark::DoNotOptimize(shared);
  state.SetItemsProcessed(state.iterations() * contenders * sections_each);
}

// ---------------------------------------------------------------------------------------------
// BM_semaphore_*: one item is one acquire() + release() by the main thread, nobody waiting.
// With one permit the value goes 1 -> 0 -> 1; with a spare permit it goes 2 -> 1 -> 2 and never
// reaches 0 (libstdc++'s std::counting_semaphore wakes possible waiters, a futex system call,
// whenever a release finds the value at 0).

template <class Semaphore, std::ptrdiff_t Permits>
void bm_semaphore(benchmark::State& state) {
  Semaphore s(Permits);
  for (auto _ : state) {
    s.acquire();
    s.release();
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_cv_ping_pong: one item is one round trip: `a` hands the turn to `b` (notify_one, then wait
// for the turn to come back), `b` hands it back the same way. Both hold the mutex through a
// std::unique_lock except while they wait. The timed loop runs in `a`; the caller of run()/join()
// waits meanwhile and is not part of the ping-pong.

template <class Mutex, class CondVar>
struct turn_state {
  Mutex m;
  CondVar cv;
  int turn = 0;  // 0: a's turn, 1: b's turn
  bool done = false;
};

template <class Turn>
void ping(benchmark::State& state, Turn& s) {
  std::unique_lock lock(s.m);
  for (auto _ : state) {
    s.turn = 1;
    s.cv.notify_one();
    s.cv.wait(lock, [&] { return s.turn == 0; });
  }
  s.done = true;
  s.cv.notify_one();
}

template <class Turn>
void pong(Turn& s) {
  std::unique_lock lock(s.m);
  for (;;) {
    s.cv.wait(lock, [&] { return s.turn == 1 || s.done; });
    if (s.done) return;
    s.turn = 0;
    s.cv.notify_one();
  }
}

// b is created first, so it already waits when a first notifies.
void bm_cv_ping_pong_stackless(benchmark::State& state) {
  turn_state<stackless::mutex, stackless::condition_variable> s;
  stackless::tasklet b([&] { pong(s); });
  stackless::tasklet a([&] { ping(state, s); });
  stackless::run();
  state.SetItemsProcessed(state.iterations());
}

void bm_cv_ping_pong_boost_fiber(benchmark::State& state) {
  turn_state<boost::fibers::mutex, boost::fibers::condition_variable> s;
  boost::fibers::fiber b([&] { pong(s); });
  boost::fibers::fiber a([&] { ping(state, s); });
  a.join();
  b.join();
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_thread_contention: Google Benchmark runs the function on two threads at once (the main
// thread and one it starts), each with its own timed loop over the same mutex. One item is one
// critical section of either thread; between two sections a thread does the same little work on a
// value of its own. Time is wall-clock time, so ns/op is the inverse of the two threads' combined
// throughput.

template <class Mutex>
void bm_thread_contention(benchmark::State& state) {
  static Mutex m;
  static std::uint64_t shared = 1;
  std::uint64_t own = static_cast<std::uint64_t>(state.thread_index()) + 1;
  for (auto _ : state) {
    m.lock();
    shared = work(shared);
    m.unlock();
    own = work(own);
    benchmark::DoNotOptimize(own);
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// The /mt rows: the process has had two runtime threads, so the wait queues are spinlocked.

// make_multithreaded starts a second runtime thread while this one uses the runtime, which turns
// locking on for the rest of the process; BM_thread_contention has done that already unless a
// --benchmark_filter left it out.
void make_multithreaded() {
  static const bool done = [] {
    stackless::current();
    std::thread([] { stackless::current(); }).join();
    return true;
  }();
  (void)done;
}

template <class Mutex>
void bm_uncontended_mt(benchmark::State& state) {
  make_multithreaded();
  bm_uncontended<Mutex>(state);
}

void bm_tasklet_contention_stackless_mt(benchmark::State& state) {
  make_multithreaded();
  bm_tasklet_contention_stackless(state);
}

void bm_cv_ping_pong_stackless_mt(benchmark::State& state) {
  make_multithreaded();
  bm_cv_ping_pong_stackless(state);
}

}  // namespace

// Single-threaded process (see the top of this file): keep these first.
BENCHMARK(bm_uncontended<stackless::mutex>)->Name("BM_uncontended/stackless");
BENCHMARK(bm_uncontended<std::mutex>)->Name("BM_uncontended/std_mutex");
BENCHMARK(bm_uncontended<boost::fibers::mutex>)->Name("BM_uncontended/boost_fiber");
BENCHMARK(bm_tasklet_contention_stackless)->Name("BM_tasklet_contention/stackless");
BENCHMARK(bm_tasklet_contention_boost_fiber)->Name("BM_tasklet_contention/boost_fiber");
BENCHMARK(bm_semaphore<stackless::semaphore, 1>)->Name("BM_semaphore_uncontended/stackless");
BENCHMARK(bm_semaphore<std::counting_semaphore<>, 1>)
    ->Name("BM_semaphore_uncontended/std_counting_semaphore");
BENCHMARK(bm_semaphore<stackless::semaphore, 2>)->Name("BM_semaphore_spare_permit/stackless");
BENCHMARK(bm_semaphore<std::counting_semaphore<>, 2>)
    ->Name("BM_semaphore_spare_permit/std_counting_semaphore");
BENCHMARK(bm_cv_ping_pong_stackless)->Name("BM_cv_ping_pong/stackless");
BENCHMARK(bm_cv_ping_pong_boost_fiber)->Name("BM_cv_ping_pong/boost_fiber");

// Two threads: from here on the process is multi-threaded.
BENCHMARK(bm_thread_contention<stackless::mutex>)
    ->Name("BM_thread_contention/stackless")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(bm_thread_contention<std::mutex>)
    ->Name("BM_thread_contention/std_mutex")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(bm_uncontended_mt<stackless::mutex>)->Name("BM_uncontended/stackless/mt");
BENCHMARK(bm_uncontended_mt<std::mutex>)->Name("BM_uncontended/std_mutex/mt");
BENCHMARK(bm_uncontended_mt<boost::fibers::mutex>)->Name("BM_uncontended/boost_fiber/mt");
BENCHMARK(bm_tasklet_contention_stackless_mt)->Name("BM_tasklet_contention/stackless/mt");
BENCHMARK(bm_tasklet_contention_boost_fiber)->Name("BM_tasklet_contention/boost_fiber/mt");
BENCHMARK(bm_cv_ping_pong_stackless_mt)->Name("BM_cv_ping_pong/stackless/mt");
BENCHMARK(bm_cv_ping_pong_boost_fiber)->Name("BM_cv_ping_pong/boost_fiber/mt");

// main is BENCHMARK_MAIN() with the stack cache raised first (stack_cache_limit above): the
// runtime must be configured before its first use.
int main(int argc, char** argv) {
  stackless::configure({.stack_cache_limit = stack_cache_limit});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
