// call_async_bench.cpp — call_async and the worker pool, next to the standard library's ways of
// running a call on another thread.
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_round_trip/stackless/...        a tasklet calls stackless::call_async([v] { return v + 1; })
//   BM_round_trip/std_thread_pool/...  a thread calls std_pool::submit(...).get(): the plain pool
//                                      below (std::thread workers, a std::mutex +
//                                      std::condition_variable queue, std::promise/std::future)
//   BM_round_trip/std_async/...        std::async(std::launch::async, ...).get() (a new thread per
//                                      call)
//   BM_jobs_100k_callers/stackless/...        100 tasklets each call_async 1,000 tiny jobs
//   BM_jobs_100k_callers/std_thread_pool/...  100 std::threads each submit().get() 1,000 tiny jobs
//   BM_jobs_100k_batch/stackless/...          one tasklet async()s 100,000 tiny jobs, then get()s
//                                             each
//   BM_jobs_100k_batch/std_thread_pool/...    one thread submit()s 100,000 tiny jobs, then get()s
//                                             each
//
// Both pools have the same number of workers: the hardware's count, at least 2 (the default of
// config::worker_threads). Each benchmark comes in two variants, because waking a thread on an idle
// core is slow on a virtual machine (the halted vCPU must be woken by the hypervisor), and because
// unpinned, the kernel sometimes runs the caller and the worker on one core, where a wake-up is a
// cheap same-core switch (which makes runs bimodal):
//
//   .../idle   the calling thread is pinned to CPU 0 and every worker to CPU 1 (by a job that
//              each worker runs once before the measurement; std::async's new thread pins itself
//              to CPU 1 first, one more system call per call): every wake-up crosses to a core
//              that has gone idle
//   .../busy   unpinned, and a third std::thread spins for the whole measurement, so no core ever
//              goes idle
//
// One item is one job (one round trip), so items_per_second gives the time per job uniformly. The
// calling thread sleeps while it waits, so every benchmark measures wall-clock time
// (UseRealTime). tools/bench-table turns the JSON output into the table of ns/op and ratios that
// docs/performance.md shows:
//
//   call_async_bench --benchmark_repetitions=5 --benchmark_format=json | tools/bench-table
//
// Benchmarks measure; they never assert.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <stackless/call_async.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/tasklet.hpp>

#include "bench_support.hpp"

namespace {

using bench::busy_core;

// The 100,000-job shapes: callers × calls_per_caller round trips, or batch_jobs at once.
constexpr int callers = 100;
constexpr int calls_per_caller = 1000;
constexpr int batch_jobs = callers * calls_per_caller;

// pool_threads: the workers of both pools (config::worker_threads = 0 means this count).
std::size_t pool_threads() { return std::max<std::size_t>(2, std::thread::hardware_concurrency()); }

// std_pool: the plain peer — a fixed set of std::threads taking std::function jobs from a deque
// guarded by a std::mutex and a std::condition_variable; submit() returns a std::future fed by a
// std::promise. The destructor finishes the queued jobs and joins.
class std_pool {
 public:
  explicit std_pool(std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~std_pool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  std_pool(const std_pool&) = delete;
  std_pool& operator=(const std_pool&) = delete;

  template <class F>
  auto submit(F f) -> std::future<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    auto promise = std::make_shared<std::promise<R>>();
    std::future<R> result = promise->get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.emplace_back([promise, f = std::move(f)]() mutable {
        try {
          if constexpr (std::is_void_v<R>) {
            f();
            promise->set_value();
          } else {
            promise->set_value(f());
          }
        } catch (...) {
          promise->set_exception(std::current_exception());
        }
      });
    }
    ready_.notify_one();
    return result;
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

// tiny: the job of every benchmark; its result depends on an argument so nothing folds away.
int tiny(int v) { return v + 1; }

// can_pin: there are two CPUs to put the caller and the workers on.
bool can_pin() { return std::thread::hardware_concurrency() >= 2; }

cpu_set_t only_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return set;
}

// set_worker_affinity gives every worker of the pool the CPU set `cpus`: it submits one job per
// worker, and each job waits until all have started (so each runs on a worker of its own) before
// it sets the affinity of the thread it runs on.
template <class Pool>
void set_worker_affinity(Pool& pool, std::size_t workers, cpu_set_t cpus) {
  std::atomic<std::size_t> arrived{0};
  auto job = [&arrived, workers, cpus] {
    arrived.fetch_add(1);
    while (arrived.load() < workers) std::this_thread::yield();
    pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
    return 0;
  };
  auto first = pool.submit(job);
  std::vector<decltype(first)> fs;
  fs.push_back(std::move(first));
  for (std::size_t i = 1; i < workers; ++i) fs.push_back(pool.submit(job));
  for (auto& f : fs) f.get();
}

// placement sets up a variant for its lifetime. Idle (Busy = false): the calling thread on CPU 0,
// the pool's workers on CPU 1; both are restored afterwards. Busy: nothing pinned, and a spinning
// third thread.
template <bool Busy, class Pool>
class placement {
 public:
  explicit placement(Pool* pool) : pool_(pool) {
    if constexpr (Busy) {
      busy_.emplace();
    } else if (can_pin()) {
      pthread_getaffinity_np(pthread_self(), sizeof previous_, &previous_);
      const cpu_set_t cpu0 = only_cpu(0);
      pthread_setaffinity_np(pthread_self(), sizeof cpu0, &cpu0);
      if (pool_ != nullptr) set_worker_affinity(*pool_, pool_threads(), only_cpu(1));
      pinned_ = true;
    }
  }
  ~placement() {
    if (!pinned_) return;
    if (pool_ != nullptr) set_worker_affinity(*pool_, pool_threads(), previous_);
    pthread_setaffinity_np(pthread_self(), sizeof previous_, &previous_);
  }
  placement(const placement&) = delete;
  placement& operator=(const placement&) = delete;

 private:
  Pool* pool_;
  std::optional<busy_core> busy_;
  cpu_set_t previous_{};
  bool pinned_ = false;
};

// ---------------------------------------------------------------------------------------------
// BM_round_trip: one item is one call, from the caller's submit to its having the result.

template <bool Busy>
void bm_round_trip_stackless(benchmark::State& state) {
  placement<Busy, stackless::thread_pool> place(&stackless::default_pool());
  stackless::tasklet caller([&] {
    int v = 0;
    for (auto _ : state) {
      v = stackless::call_async([v] { return tiny(v); });
      benchmark::DoNotOptimize(v);
    }
  });
  caller.join();
  state.SetItemsProcessed(state.iterations());
}

template <bool Busy>
void bm_round_trip_std_thread_pool(benchmark::State& state) {
  std_pool pool(pool_threads());
  placement<Busy, std_pool> place(&pool);
  int v = 0;
  for (auto _ : state) {
    v = pool.submit([v] { return tiny(v); }).get();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

template <bool Busy>
void bm_round_trip_std_async(benchmark::State& state) {
  placement<Busy, std_pool> place(nullptr);
  const bool pin = !Busy && can_pin();
  int v = 0;
  for (auto _ : state) {
    v = std::async(std::launch::async, [v, pin] {
          if (pin) {
            const cpu_set_t cpu1 = only_cpu(1);
            pthread_setaffinity_np(pthread_self(), sizeof cpu1, &cpu1);
          }
          return tiny(v);
        }).get();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_jobs_100k_callers: one item is one job. Every iteration creates `callers` callers (tasklets
// of one thread, or std::threads), each making calls_per_caller blocking round trips; up to
// `callers` jobs are in flight at once. Creating the callers is part of the time (about 1%). The
// std::threads inherit the calling thread's affinity (CPU 0 in the idle variant).

template <bool Busy>
void bm_jobs_callers_stackless(benchmark::State& state) {
  placement<Busy, stackless::thread_pool> place(&stackless::default_pool());
  std::int64_t sum = 0;
  for (auto _ : state) {
    std::vector<stackless::tasklet> ts;
    ts.reserve(callers);
    for (int c = 0; c < callers; ++c)
      ts.emplace_back([&sum] {
        for (int i = 0; i < calls_per_caller; ++i)
          sum += stackless::call_async([i] { return tiny(i); });
      });
    for (stackless::tasklet& t : ts) t.join();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * batch_jobs);
}

template <bool Busy>
void bm_jobs_callers_std_thread_pool(benchmark::State& state) {
  std_pool pool(pool_threads());
  placement<Busy, std_pool> place(&pool);
  std::atomic<std::int64_t> sum{0};
  for (auto _ : state) {
    std::vector<std::thread> ts;
    ts.reserve(callers);
    for (int c = 0; c < callers; ++c)
      ts.emplace_back([&] {
        std::int64_t local = 0;
        for (int i = 0; i < calls_per_caller; ++i)
          local += pool.submit([i] { return tiny(i); }).get();
        sum.fetch_add(local, std::memory_order_relaxed);
      });
    for (std::thread& t : ts) t.join();
  }
  benchmark::DoNotOptimize(sum.load());
  state.SetItemsProcessed(state.iterations() * batch_jobs);
}

// BM_jobs_100k_batch: one item is one job. One caller submits batch_jobs jobs without waiting,
// then takes every result in submission order.

template <bool Busy>
void bm_jobs_batch_stackless(benchmark::State& state) {
  placement<Busy, stackless::thread_pool> place(&stackless::default_pool());
  std::int64_t sum = 0;
  stackless::tasklet caller([&] {
    std::vector<stackless::future<int>> fs;
    fs.reserve(batch_jobs);
    for (auto _ : state) {
      for (int i = 0; i < batch_jobs; ++i) fs.push_back(stackless::async([i] { return tiny(i); }));
      for (auto& f : fs) sum += f.get();
      fs.clear();
    }
  });
  caller.join();
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * batch_jobs);
}

template <bool Busy>
void bm_jobs_batch_std_thread_pool(benchmark::State& state) {
  std_pool pool(pool_threads());
  placement<Busy, std_pool> place(&pool);
  std::int64_t sum = 0;
  std::vector<std::future<int>> fs;
  fs.reserve(batch_jobs);
  for (auto _ : state) {
    for (int i = 0; i < batch_jobs; ++i) fs.push_back(pool.submit([i] { return tiny(i); }));
    for (auto& f : fs) sum += f.get();
    fs.clear();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * batch_jobs);
}

}  // namespace

BENCHMARK(bm_round_trip_stackless<false>)->Name("BM_round_trip/stackless/idle")->UseRealTime();
BENCHMARK(bm_round_trip_std_thread_pool<false>)
    ->Name("BM_round_trip/std_thread_pool/idle")
    ->UseRealTime();
BENCHMARK(bm_round_trip_std_async<false>)->Name("BM_round_trip/std_async/idle")->UseRealTime();
BENCHMARK(bm_jobs_callers_stackless<false>)
    ->Name("BM_jobs_100k_callers/stackless/idle")
    ->UseRealTime();
BENCHMARK(bm_jobs_callers_std_thread_pool<false>)
    ->Name("BM_jobs_100k_callers/std_thread_pool/idle")
    ->UseRealTime();
BENCHMARK(bm_jobs_batch_stackless<false>)->Name("BM_jobs_100k_batch/stackless/idle")->UseRealTime();
BENCHMARK(bm_jobs_batch_std_thread_pool<false>)
    ->Name("BM_jobs_100k_batch/std_thread_pool/idle")
    ->UseRealTime();
BENCHMARK(bm_round_trip_stackless<true>)->Name("BM_round_trip/stackless/busy")->UseRealTime();
BENCHMARK(bm_round_trip_std_thread_pool<true>)
    ->Name("BM_round_trip/std_thread_pool/busy")
    ->UseRealTime();
BENCHMARK(bm_round_trip_std_async<true>)->Name("BM_round_trip/std_async/busy")->UseRealTime();
BENCHMARK(bm_jobs_callers_stackless<true>)
    ->Name("BM_jobs_100k_callers/stackless/busy")
    ->UseRealTime();
BENCHMARK(bm_jobs_callers_std_thread_pool<true>)
    ->Name("BM_jobs_100k_callers/std_thread_pool/busy")
    ->UseRealTime();
BENCHMARK(bm_jobs_batch_stackless<true>)->Name("BM_jobs_100k_batch/stackless/busy")->UseRealTime();
BENCHMARK(bm_jobs_batch_std_thread_pool<true>)
    ->Name("BM_jobs_100k_batch/std_thread_pool/busy")
    ->UseRealTime();

BENCHMARK_MAIN();
