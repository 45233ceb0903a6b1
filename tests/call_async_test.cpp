// tests/call_async_test.cpp — call_async, thread_pool and future<T> in the default (free)
// threading model (DESIGN.md, reference §2.3, §3, §5.4–§5.6): results and exceptions of every kind
// come back; only the calling tasklet waits (eight tasklets wait on jobs blocked on a stackless
// latch that a ninth tasklet of the same thread opens); 10,000 call_async from 1,000 tasklets;
// cancel before and after a job started; a tasklet killed while it waits (the job still finishes,
// its result is destroyed, the worker is not lost); shutdown() finishing queued jobs (the
// stacklesslib defect of §3.2 fixed); cancel_pending(); a bounded queue making only the submitting
// tasklet wait; futures waited from tasklets and plain threads; wait_any, wait_all, as_completed.
// The key tests again in global-lock mode are in call_async_mt_test.cpp (configure() must come
// before the runtime is used, so that is an executable of its own).
//
// The default pool is configured with kWorkers (8) threads before any test runs, so that eight
// jobs can block at once whatever the machine's core count.
//
// Determinism: no test sleeps to order events. Jobs that must hold a worker wait on a `gate` (a
// std::mutex + std::condition_variable pair, so the worker stays a plain thread) or on a stackless
// latch; the main thread waits for a job to have started through a gate too. Tasklet orders follow
// the run-queue model and are asserted exactly; the order in which several workers finish is not,
// and no assertion depends on it. Every time limit below (kHangGuard) is a hang guard only, except
// the timed waits that are meant to time out: they take at least the requested time and less than
// 2 s (expect_waited). Every job a test starts has finished before the test body ends, so the fixture's leak
// check sees no wait node or tasklet of a worker.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "thread_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using stackless_testing::custom_error;
using stackless_testing::eventually;
using stackless_testing::expect_all_workers_serve;
using stackless_testing::expect_waited;
using stackless_testing::gate;
using stackless_testing::kHangGuard;
using stackless_testing::result_probe;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::copy_counts;
using stackless_testing::counted;
using stackless_testing::stopwatch;
using ::testing::ElementsAre;

constexpr std::size_t kWorkers = 8;

// Chosen before main() runs, so before any test (or the fixture) can use the runtime.
const bool configured = [] {
  sl::configure({.worker_threads = kWorkers});
  return true;
}();

using results = stackless_test;
using exceptions = stackless_test;
using not_blocking = stackless_test;
using stress = stackless_test;
using cancel = stackless_test;
using kill_during_wait = stackless_test;
using pool = stackless_test;
using bounded_queue = stackless_test;
using futures_across_threads = stackless_test;
using wait_functions = stackless_test;

constexpr auto kShort = 30ms;     // a timed wait that is meant to time out
constexpr const char* kCancelled = "cancelled_error: the job was cancelled before it started";
constexpr const char* kSubmitAfterShutdown =
    "thread_pool::submit after shutdown(); submit before shutting down";

// not_a_std_exception: something thrown that does not derive from std::exception.
struct not_a_std_exception {
  std::string why;
};
// no_default: a result type without a default constructor.
struct no_default {
  explicit no_default(int v) : value(v) {}
  int value;
};

int answer() { return 42; }

// ---------------------------------------------------------------------------------------------
// Results.

TEST_F(results, the_default_pool_has_the_configured_size) {
  ASSERT_TRUE(configured);
  EXPECT_EQ(sl::current_config().worker_threads, kWorkers);
  EXPECT_EQ(sl::default_pool().size(), kWorkers);
  EXPECT_EQ(&sl::default_pool(), &sl::default_pool());
}

TEST_F(results, every_kind_of_value_comes_back_to_a_tasklet) {
  tasklet t([&] {
    EXPECT_EQ(sl::call_async([] { return 7; }), 7);
    EXPECT_EQ(sl::call_async([] { return std::string(1000, 'x'); }), std::string(1000, 'x'));
    std::unique_ptr<int> p = sl::call_async([] { return std::make_unique<int>(5); });
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 5);
    int side_effect = 0;
    static_assert(std::is_void_v<decltype(sl::call_async([] {}))>);
    sl::call_async([&] { side_effect = 3; });  // the job's writes are visible when it returns
    EXPECT_EQ(side_effect, 3);
    EXPECT_EQ(sl::call_async([] {
                return std::vector<int>{1, 2, 3};
              }),
              (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(sl::call_async([] { return no_default(9); }).value, 9);
    EXPECT_EQ(sl::call_async(&answer), 42);
    EXPECT_EQ(sl::call_async(std::function<int()>([] { return 11; })), 11);
    int calls = 0;
    auto stateful = [calls]() mutable { return ++calls; };  // a mutable callable runs as such
    EXPECT_EQ(sl::call_async(stateful), 1);
    log("done");
  });
  t.join();
  EXPECT_THAT(log_, ElementsAre("done"));
}

// The result is moved from the job to the caller, never copied.
TEST_F(results, a_result_is_moved_never_copied) {
  copy_counts counts;
  tasklet t([&] {
    counted c = sl::call_async([&] { return counted(&counts, 17); });
    EXPECT_EQ(c.value, 17);
  });
  t.join();
  EXPECT_EQ(counts.copies, 0);
  EXPECT_GE(counts.moves, 1);
}

// call_async from the main tasklet (nothing else to run: the thread parks) and from a plain
// thread (it simply waits).
TEST_F(results, the_main_tasklet_and_a_plain_thread_may_call_it_too) {
  EXPECT_EQ(sl::call_async([] { return 1; }), 1);
  int from_thread = 0;
  std::thread th([&] { from_thread = sl::call_async([] { return 2; }); });
  th.join();
  EXPECT_EQ(from_thread, 2);
}

// async never switches; its future's get() blocks only the calling tasklet.
TEST_F(results, async_returns_at_once_and_get_waits) {
  tasklet t([&] {
    sl::future<int> f;
    {
      sl::switch_trap trap;  // any switch would throw
      f = sl::async([] { return 3; });
    }
    EXPECT_TRUE(f.valid());
    log("submitted");
    EXPECT_EQ(f.get(), 3);
    EXPECT_TRUE(f.ready());
    log("got");
  });
  t.join();
  EXPECT_THAT(log_, ElementsAre("submitted", "got"));
}

TEST_F(results, future_misuse_throws_logic_error) {
  sl::future<int> empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_FALSE(empty.cancel());
  EXPECT_THROW_WHAT(empty.get(), std::logic_error, "future::get on an empty future");
  sl::future<int> f = sl::async([] { return 1; });
  EXPECT_EQ(f.get(), 1);
  EXPECT_THROW_WHAT(f.get(), std::logic_error, "future::get called twice");
}

// ---------------------------------------------------------------------------------------------
// Exceptions: type, message and payload intact.

TEST_F(exceptions, every_kind_of_exception_comes_back_intact) {
  tasklet t([&] {
    try {
      sl::call_async([]() -> int { throw custom_error("disk on fire", 7); });
      ADD_FAILURE() << "no exception";
    } catch (const custom_error& e) {
      EXPECT_STREQ(e.what(), "disk on fire");
      EXPECT_EQ(e.code, 7);
    }
    try {
      sl::call_async([] {
        throw std::system_error(std::make_error_code(std::errc::no_such_file_or_directory),
                                "open /nonexistent");
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::make_error_code(std::errc::no_such_file_or_directory));
      EXPECT_THAT(e.what(), ::testing::StartsWith("open /nonexistent"));
    }
    EXPECT_THROW_WHAT(sl::call_async([]() -> int { throw std::out_of_range("index 3"); }),
                      std::out_of_range, "index 3");
    EXPECT_THROW_WHAT(sl::call_async([]() -> std::unique_ptr<int> {
                        throw std::invalid_argument("bad argument");
                      }),
                      std::invalid_argument, "bad argument");
    EXPECT_THROW_WHAT(sl::call_async([]() -> std::string { throw sl::runtime_error("ours"); }),
                      sl::runtime_error, "ours");
    try {
      sl::call_async([] { throw 42; });
      ADD_FAILURE() << "no exception";
    } catch (int v) {
      EXPECT_EQ(v, 42);
    }
    try {
      sl::call_async([]() -> int { throw not_a_std_exception{"not derived from std::exception"}; });
      ADD_FAILURE() << "no exception";
    } catch (const not_a_std_exception& e) {
      EXPECT_EQ(e.why, "not derived from std::exception");
    }
    // A nested exception keeps its nesting.
    try {
      sl::call_async([] {
        try {
          throw std::runtime_error("inner");
        } catch (...) {
          std::throw_with_nested(std::logic_error("outer"));
        }
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::logic_error& e) {
      EXPECT_STREQ(e.what(), "outer");
      EXPECT_THROW_WHAT(std::rethrow_if_nested(e), std::runtime_error, "inner");
    }
    log("done");
  });
  t.join();
  EXPECT_THAT(log_, ElementsAre("done"));
}

// An exception waits in its future until get() rethrows it; ready() does not throw.
TEST_F(exceptions, a_futures_exception_waits_for_get) {
  sl::future<int> f = sl::async([]() -> int { throw custom_error("later", 2); });
  f.wait();
  EXPECT_TRUE(f.ready());
  EXPECT_THROW_WHAT(f.get(), custom_error, "later");
}

// ---------------------------------------------------------------------------------------------
// Only the calling tasklet waits.

// Eight tasklets each call_async a job that blocks on a stackless latch; the jobs can only finish
// once the ninth tasklet, of the same thread, opens it. It runs while all eight wait and their jobs
// are blocked, which proves the thread is not blocked.
TEST_F(not_blocking, other_tasklets_run_while_eight_wait_on_jobs_blocked_on_a_latch) {
  constexpr int kWaiters = 8;
  ASSERT_GE(sl::default_pool().size(), std::size_t{kWaiters});
  sl::latch all_started(kWaiters);  // counted down by the jobs, on the workers
  sl::latch release(1);             // the jobs wait on it; the ticker opens it
  std::vector<int> got(kWaiters, -1);
  std::vector<tasklet> waiters;
  for (int i = 0; i < kWaiters; ++i)
    waiters.emplace_back([&, i] {
      got[i] = sl::call_async([&, i] {
        all_started.count_down();
        release.wait();
        return i * 10;
      });
      log("got");
    });
  long schedules = 0;
  tasklet ticker([&] {
    log("ticker runs");
    const stopwatch sw;
    while (!all_started.try_wait() && sw.elapsed() < kHangGuard) {
      ++schedules;
      schedule();  // alone in the run queue: returns at once
    }
    EXPECT_TRUE(all_started.try_wait()) << "the eight jobs never all started";
    for (const tasklet& w : waiters) EXPECT_NE(w.blocked(), 0);
    EXPECT_EQ(got, std::vector<int>(kWaiters, -1));
    log("ticker opens the latch");
    release.count_down();
  });
  for (tasklet& w : waiters) w.join();
  ticker.join();
  EXPECT_EQ(got, (std::vector<int>{0, 10, 20, 30, 40, 50, 60, 70}));
  ASSERT_EQ(log_.size(), 2u + kWaiters);
  EXPECT_EQ(log_[0], "ticker runs");
  EXPECT_EQ(log_[1], "ticker opens the latch");
  std::printf("[  INFO    ] the ticker scheduled %ld times before the eight jobs had started\n",
              schedules);
}

// A job may use a stackless mutex that a tasklet holds: the job's worker waits for it (as a
// runtime thread of its own) and takes it once the tasklet releases it.
TEST_F(not_blocking, a_job_may_wait_for_a_stackless_mutex_held_by_a_tasklet) {
  sl::mutex m;
  m.lock();  // held by the main tasklet
  int shared = 0;
  tasklet t([&] {
    const int v = sl::call_async([&] {
      std::lock_guard g(m);
      return ++shared;
    });
    log("job returned " + std::to_string(v));
  });
  schedule();  // t runs until it waits in call_async
  log("main unlocks");
  m.unlock();
  t.join();
  EXPECT_THAT(log_, ElementsAre("main unlocks", "job returned 1"));
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

// The deadlock rule (guide, "Parking and deadlock"): a job in flight could still wake a waiting
// thread, so the thread parks (every test here relies on that); idle workers could not, so a wait
// that nothing else can end fails with deadlock_error even though the pool's threads exist.
TEST_F(not_blocking, idle_workers_do_not_keep_a_deadlocked_wait_alive) {
  expect_all_workers_serve(sl::default_pool());  // the pool exists; its workers are idle again
  sl::event never_set;
  EXPECT_THROW(never_set.wait(), sl::deadlock_error);
}

// ---------------------------------------------------------------------------------------------
// Many calls.

TEST_F(stress, ten_thousand_calls_from_a_thousand_tasklets_all_return_the_right_value) {
  constexpr int kTasklets = 1000, kCallsEach = 10;
  std::atomic<int> jobs_run{0};
  int right = 0, wrong = 0;  // touched by tasklets of this thread only
  std::vector<tasklet> ts;
  ts.reserve(kTasklets);
  for (int i = 0; i < kTasklets; ++i)
    ts.emplace_back([&, i] {
      for (int k = 0; k < kCallsEach; ++k) {
        const long v = sl::call_async([&jobs_run, i, k] {
          jobs_run.fetch_add(1, std::memory_order_relaxed);
          return static_cast<long>(i) * 1000 + k;
        });
        (v == static_cast<long>(i) * 1000 + k ? right : wrong) += 1;
      }
    });
  for (tasklet& t : ts) t.join();
  EXPECT_EQ(right, kTasklets * kCallsEach);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(jobs_run.load(), kTasklets * kCallsEach);
  expect_all_workers_serve(sl::default_pool());
}

// ---------------------------------------------------------------------------------------------
// cancel().

// A job that has not started can be cancelled: it never runs, its future is ready, get() throws
// cancelled_error, and a tasklet waiting on it is woken with that error. A running or finished
// job cannot be cancelled.
TEST_F(cancel, before_the_start_the_job_never_runs_after_it_the_job_is_unaffected) {
  sl::thread_pool p(1);
  gate started, release;
  sl::future<int> running = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 1;
  });
  ASSERT_TRUE(started.wait());
  std::atomic<bool> queued_ran{false};
  auto token = std::make_shared<int>(0);
  const std::weak_ptr<int> callable_alive = token;
  sl::future<int> queued = p.submit([&queued_ran, token] {
    queued_ran.store(true);
    return 2;
  });
  token.reset();
  EXPECT_EQ(p.pending(), 1u);
  EXPECT_FALSE(queued.ready());
  tasklet waiter([&] {
    try {
      queued.get();
      log("waiter got a value");
    } catch (const sl::cancelled_error& e) {
      log(std::string("waiter: ") + e.what());
    }
  });
  schedule();  // the waiter blocks in get()
  EXPECT_NE(waiter.blocked(), 0);
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.ready());
  EXPECT_FALSE(queued.cancel()) << "a second cancel of the same job";
  waiter.join();
  EXPECT_THAT(log_, ElementsAre(std::string("waiter: ") + kCancelled));
  EXPECT_THROW_WHAT(queued.get(), sl::cancelled_error, kCancelled);

  EXPECT_FALSE(running.cancel()) << "the job had started";
  EXPECT_FALSE(running.ready());
  release.open();
  EXPECT_EQ(running.get(), 1);
  EXPECT_FALSE(running.cancel()) << "the job had finished";
  p.shutdown();  // the worker skips the cancelled job
  EXPECT_FALSE(queued_ran.load());
  EXPECT_TRUE(callable_alive.expired()) << "the cancelled job's callable was not destroyed";
}

// cancel_pending() cancels every queued job at once (a tasklet waiting on one is woken) and
// destroys their callables; the running job finishes.
TEST_F(cancel, cancel_pending_cancels_every_queued_job) {
  constexpr int kQueued = 10;
  sl::thread_pool p(1);
  gate started, release;
  sl::future<int> running = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 100;
  });
  ASSERT_TRUE(started.wait());
  std::atomic<int> ran{0};
  auto token = std::make_shared<int>(0);
  const std::weak_ptr<int> callables_alive = token;
  std::vector<sl::future<int>> queued;
  for (int i = 0; i < kQueued; ++i)
    queued.push_back(p.submit([&ran, token, i] {
      ran.fetch_add(1);
      return i;
    }));
  token.reset();
  EXPECT_EQ(p.pending(), std::size_t{kQueued});
  tasklet waiter([&] {
    try {
      queued[3].get();
      log("waiter got a value");
    } catch (const sl::cancelled_error& e) {
      log(std::string("waiter: ") + e.what());
    }
  });
  schedule();  // the waiter blocks in get()
  EXPECT_EQ(p.cancel_pending(), std::size_t{kQueued});
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_TRUE(callables_alive.expired());
  waiter.join();
  EXPECT_THAT(log_, ElementsAre(std::string("waiter: ") + kCancelled));
  for (auto& f : queued) {
    EXPECT_TRUE(f.ready());
    EXPECT_FALSE(f.cancel());
    EXPECT_THROW_WHAT(f.get(), sl::cancelled_error, kCancelled);
  }
  EXPECT_FALSE(running.ready());
  release.open();
  EXPECT_EQ(running.get(), 100);
  EXPECT_EQ(p.cancel_pending(), 0u);
  p.shutdown();
  EXPECT_EQ(ran.load(), 0);
  // Cancelling a job individually first: cancel_pending() does not count it again.
  sl::thread_pool q(1);
  gate started2, release2;
  sl::future<void> busy = q.submit([&] {
    started2.open();
    EXPECT_TRUE(release2.wait());
  });
  ASSERT_TRUE(started2.wait());
  sl::future<int> a = q.submit([] { return 1; });
  sl::future<int> b = q.submit([] { return 2; });
  EXPECT_TRUE(a.cancel());
  EXPECT_EQ(q.cancel_pending(), 1u);
  release2.open();
  busy.get();
  EXPECT_THROW_WHAT(a.get(), sl::cancelled_error, kCancelled);
  EXPECT_THROW_WHAT(b.get(), sl::cancelled_error, kCancelled);
}

// ---------------------------------------------------------------------------------------------
// A tasklet killed while it waits in call_async.

// The kill unwinds the tasklet at once; the job goes on, finishes on its worker, and its result
// (nobody will take it) is destroyed exactly once; the worker then takes jobs again.
TEST_F(kill_during_wait, the_job_finishes_on_its_worker_and_its_result_is_destroyed) {
  std::atomic<int> destroyed{0};
  std::atomic<bool> job_returned{false};
  gate started, release;
  tasklet victim([&] {
    try {
      result_probe r = sl::call_async([&] {
        started.open();
        EXPECT_TRUE(release.wait());
        job_returned.store(true);
        return result_probe(&destroyed, 7);
      });
      log("call_async returned " + std::to_string(r.value));
    } catch (const tasklet_exit&) {
      log("killed while waiting");
      throw;
    }
  });
  schedule();  // the victim runs until it waits in call_async
  ASSERT_TRUE(started.wait());
  EXPECT_NE(victim.blocked(), 0);
  victim.kill();
  EXPECT_FALSE(victim.alive());
  EXPECT_THAT(log_, ElementsAre("killed while waiting"));
  EXPECT_FALSE(job_returned.load()) << "the job is still blocked";
  EXPECT_EQ(destroyed.load(), 0);
  release.open();
  EXPECT_TRUE(eventually([&] { return destroyed.load() == 1; }));
  EXPECT_TRUE(job_returned.load());
  expect_all_workers_serve(sl::default_pool());
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_THAT(log_, ElementsAre("killed while waiting"));
}

// The job finished (its value is stored and the waiter's wake-up is on its way) but the waiting
// tasklet is killed before it resumes: the unclaimed value is destroyed with the last handle.
TEST_F(kill_during_wait, a_kill_after_the_job_finished_destroys_the_unclaimed_result) {
  std::atomic<int> destroyed{0};
  gate release;
  sl::future<result_probe> f = sl::async([&] {
    EXPECT_TRUE(release.wait());
    return result_probe(&destroyed, 8);
  });
  tasklet victim([&, g = f]() mutable {
    try {
      result_probe r = g.get();
      log("got " + std::to_string(r.value));
    } catch (const tasklet_exit&) {
      log("killed");
      throw;
    }
  });
  schedule();  // the victim blocks in get()
  release.open();
  ASSERT_TRUE(eventually([&] { return f.ready(); }));  // main does not switch: no resume yet
  victim.kill();
  EXPECT_FALSE(victim.alive());
  EXPECT_THAT(log_, ElementsAre("killed"));
  EXPECT_EQ(destroyed.load(), 0) << "the value waits in the state that f still shares";
  f = {};
  EXPECT_TRUE(eventually([&] { return destroyed.load() == 1; }));
  expect_all_workers_serve(sl::default_pool());
  EXPECT_EQ(destroyed.load(), 1);
}

// ---------------------------------------------------------------------------------------------
// thread_pool: size, shutdown, destructor.

TEST_F(pool, size_is_the_requested_count_or_the_hardware_count_at_least_two) {
  sl::thread_pool three(3);
  EXPECT_EQ(three.size(), 3u);
  sl::thread_pool hardware(0);
  EXPECT_EQ(hardware.size(), std::max<std::size_t>(2, std::thread::hardware_concurrency()));
  expect_all_workers_serve(three);
}

// shutdown() lets every queued job finish, in FIFO order, then joins; submit() after it throws.
// The gate job holds the one worker until shutdown() has begun (the releaser thread learns that
// from its submit() failing; the probe jobs it submitted before are queued jobs too).
TEST_F(pool, shutdown_finishes_every_queued_job) {
  constexpr int kQueued = 20;
  sl::thread_pool p(1);
  gate started, release;
  sl::future<int> first = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return -1;
  });
  ASSERT_TRUE(started.wait());
  std::vector<int> order;  // written by the one worker only
  std::vector<sl::future<int>> queued;
  for (int i = 0; i < kQueued; ++i)
    queued.push_back(p.submit([&order, i] {
      order.push_back(i);
      return i;
    }));
  EXPECT_EQ(p.pending(), std::size_t{kQueued});
  std::atomic<int> probes{0}, probes_ran{0};
  std::string refusal;
  std::thread releaser([&] {
    for (;;) {
      try {
        p.submit([&] { probes_ran.fetch_add(1); });
        probes.fetch_add(1);
      } catch (const sl::runtime_error& e) {
        refusal = e.what();
        break;
      }
      std::this_thread::yield();
    }
    release.open();
  });
  p.shutdown();
  releaser.join();
  EXPECT_EQ(refusal, kSubmitAfterShutdown);
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_TRUE(first.ready());
  EXPECT_EQ(first.get(), -1);
  for (int i = 0; i < kQueued; ++i) {
    EXPECT_TRUE(queued[i].ready());
    EXPECT_EQ(queued[i].get(), i);
  }
  std::vector<int> fifo;
  for (int i = 0; i < kQueued; ++i) fifo.push_back(i);
  EXPECT_EQ(order, fifo);
  EXPECT_EQ(probes_ran.load(), probes.load());
  p.shutdown();  // idempotent
  EXPECT_THROW_WHAT(p.submit([] {}), sl::runtime_error, kSubmitAfterShutdown);
}

// The destructor shuts down: queued jobs whose futures were dropped still run.
TEST_F(pool, the_destructor_finishes_queued_jobs_and_joins) {
  std::atomic<int> ran{0};
  {
    sl::thread_pool p(2);
    for (int i = 0; i < 50; ++i) (void)p.submit([&] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 50);
}

TEST_F(pool, a_job_cannot_shut_down_its_own_pool) {
  sl::thread_pool p(1);
  sl::future<std::string> f = p.submit([&] {
    try {
      p.shutdown();
      return std::string("no error");
    } catch (const sl::runtime_error& e) {
      return std::string(e.what());
    }
  });
  EXPECT_EQ(f.get(), "thread_pool::shutdown called by one of its own jobs; call it from outside");
  expect_all_workers_serve(p);
}

// ---------------------------------------------------------------------------------------------
// A bounded queue makes only the submitting tasklet wait.

TEST_F(bounded_queue, a_full_queue_blocks_only_the_submitting_tasklet) {
  sl::thread_pool p(1, 2);
  gate started, release;
  sl::future<int> f0 = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 0;
  });
  ASSERT_TRUE(started.wait());  // the worker took job 0 off the queue
  sl::future<int> f1 = p.submit([] { return 1; });
  sl::future<int> f2 = p.submit([] { return 2; });  // the queue is full now
  EXPECT_EQ(p.pending(), 2u);
  sl::future<int> f3;
  tasklet submitter([&] {
    log("submitter submits");
    f3 = p.submit([] { return 3; });
    log("submitter submitted");
  });
  tasklet other([&] {
    log("other runs");
    EXPECT_NE(submitter.blocked(), 0);
    EXPECT_EQ(p.pending(), 2u);
    log("other opens the gate");
    release.open();
  });
  submitter.join();
  other.join();
  EXPECT_THAT(log_, ElementsAre("submitter submits", "other runs", "other opens the gate",
                                "submitter submitted"));
  EXPECT_EQ(f0.get(), 0);
  EXPECT_EQ(f1.get(), 1);
  EXPECT_EQ(f2.get(), 2);
  EXPECT_EQ(f3.get(), 3);
}

// A tasklet killed while it waits for room in a bounded queue: nothing was queued.
TEST_F(bounded_queue, a_submitter_killed_while_waiting_for_room_queues_nothing) {
  sl::thread_pool p(1, 1);
  gate started, release;
  sl::future<int> f0 = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 0;
  });
  ASSERT_TRUE(started.wait());
  sl::future<int> f1 = p.submit([] { return 1; });  // full
  std::atomic<bool> ran{false};
  tasklet submitter([&] {
    try {
      (void)p.submit([&] { ran.store(true); });
    } catch (const tasklet_exit&) {
      log("killed");
      throw;
    }
  });
  schedule();
  EXPECT_NE(submitter.blocked(), 0);
  submitter.kill();
  EXPECT_THAT(log_, ElementsAre("killed"));
  EXPECT_EQ(p.pending(), 1u);
  release.open();
  EXPECT_EQ(f0.get(), 0);
  EXPECT_EQ(f1.get(), 1);
  EXPECT_EQ(p.submit([] { return 2; }).get(), 2);  // the slot was not lost
  p.shutdown();
  EXPECT_FALSE(ran.load());
}

// ---------------------------------------------------------------------------------------------
// Futures across threads.

// Plain threads and tasklets wait on the same future; one completion wakes them all.
TEST_F(futures_across_threads, threads_and_tasklets_wait_on_the_same_future) {
  constexpr int kEach = 3;
  gate release;
  sl::future<int> f = sl::async([&] {
    EXPECT_TRUE(release.wait());
    return 99;
  });
  std::atomic<int> woken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kEach; ++i)
    threads.emplace_back([&woken, g = f] {
      g.wait();
      EXPECT_TRUE(g.ready());
      woken.fetch_add(1);
    });
  std::vector<tasklet> ts;
  for (int i = 0; i < kEach; ++i)
    ts.emplace_back([&] {
      f.wait();
      EXPECT_TRUE(f.ready());
      woken.fetch_add(1);
    });
  schedule();  // the tasklets block in wait()
  EXPECT_EQ(woken.load(), 0);
  release.open();
  for (tasklet& t : ts) t.join();
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(woken.load(), 2 * kEach);
  EXPECT_EQ(f.get(), 99);
}

// A tasklet's async() result taken by a plain thread, and a plain thread's async() result taken
// by a tasklet.
TEST_F(futures_across_threads, results_cross_between_tasklets_and_threads) {
  sl::future<std::unique_ptr<int>> from_tasklet;
  tasklet t([&] { from_tasklet = sl::async([] { return std::make_unique<int>(5); }); });
  t.join();
  std::unique_ptr<int> got;
  sl::future<std::string> from_thread;
  std::thread th([&] {
    got = from_tasklet.get();
    from_thread = sl::async([] { return std::string("from a thread"); });
  });
  th.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, 5);
  tasklet u([&] { log(from_thread.get()); });
  u.join();
  EXPECT_THAT(log_, ElementsAre("from a thread"));
}

// wait_for / wait_until time out (from a tasklet and from a plain thread) while the job is held,
// then succeed once it finished.
TEST_F(futures_across_threads, timed_waits_time_out_then_succeed) {
  gate release;
  sl::future<int> f = sl::async([&] {
    EXPECT_TRUE(release.wait());
    return 5;
  });
  tasklet t([&] {
    const stopwatch sw;
    EXPECT_FALSE(f.wait_for(kShort));
    expect_waited(sw, kShort);
    const stopwatch sw2;
    EXPECT_FALSE(f.wait_until(std::chrono::steady_clock::now() + kShort));
    expect_waited(sw2, kShort);
    const stopwatch sw3;
    EXPECT_FALSE(f.wait_until(std::chrono::system_clock::now() + kShort));
    expect_waited(sw3, kShort);
  });
  t.join();
  std::thread th([&, g = f] {
    const stopwatch sw;
    EXPECT_FALSE(g.wait_for(kShort));
    expect_waited(sw, kShort);
  });
  th.join();
  EXPECT_FALSE(f.ready());
  release.open();
  EXPECT_TRUE(f.wait_for(kHangGuard));
  EXPECT_TRUE(f.wait_until(std::chrono::steady_clock::now() + kHangGuard));
  EXPECT_TRUE(f.wait_for(0s));
  EXPECT_EQ(f.get(), 5);
}

// ---------------------------------------------------------------------------------------------
// wait_any, wait_all, as_completed.

// wait_any blocks until one future is ready and returns its index; with several ready, the
// lowest. The vector and the variadic form (futures of different types) agree.
TEST_F(wait_functions, wait_any_returns_the_index_of_a_ready_future) {
  gate g0, g1, g2;
  std::vector<sl::future<int>> fs;
  fs.push_back(sl::async([&] { return g0.wait() ? 0 : -1; }));
  fs.push_back(sl::async([&] { return g1.wait() ? 1 : -1; }));
  fs.push_back(sl::async([&] { return g2.wait() ? 2 : -1; }));
  std::size_t first = 99;
  tasklet waiter([&] {
    log("waiter waits");
    first = sl::wait_any(fs);
    log("waiter woke");
  });
  tasklet opener([&] {
    EXPECT_NE(waiter.blocked(), 0);
    log("opener opens gate 2");
    g2.open();
  });
  waiter.join();
  opener.join();
  EXPECT_THAT(log_, ElementsAre("waiter waits", "opener opens gate 2", "waiter woke"));
  EXPECT_EQ(first, 2u);
  {
    sl::switch_trap trap;  // something is ready: no wait, no switch
    EXPECT_EQ(sl::wait_any(fs), 2u);
    EXPECT_EQ(sl::wait_any(fs[0], fs[1], fs[2]), 2u);
  }
  g0.open();
  fs[0].wait();
  EXPECT_EQ(sl::wait_any(fs), 0u) << "the lowest ready index";
  sl::future<std::string> s = sl::async([&] { return g1.wait() ? std::string("one") : ""; });
  EXPECT_EQ(sl::wait_any(s, fs[0]), 1u) << "futures of different types";
  g1.open();
  EXPECT_EQ(s.get(), "one");
  EXPECT_EQ(fs[0].get(), 0);
  EXPECT_EQ(fs[1].get(), 1);
  EXPECT_EQ(fs[2].get(), 2);
}

// A cancelled future counts as ready for wait_any and wait_all.
TEST_F(wait_functions, a_cancelled_future_is_ready) {
  sl::thread_pool p(1);
  gate started, release;
  sl::future<int> busy = p.submit([&] {
    started.open();
    return release.wait() ? 1 : -1;
  });
  ASSERT_TRUE(started.wait());
  std::vector<sl::future<int>> fs{busy, p.submit([] { return 2; })};
  EXPECT_TRUE(fs[1].cancel());
  EXPECT_EQ(sl::wait_any(fs), 1u);
  release.open();
  sl::wait_all(fs);
  EXPECT_EQ(busy.get(), 1);
}

// wait_all returns once every future is ready (vector and variadic forms, mixed types).
TEST_F(wait_functions, wait_all_returns_when_every_future_is_ready) {
  gate g0, g1;
  std::vector<sl::future<int>> fs;
  fs.push_back(sl::async([&] { return g0.wait() ? 0 : -1; }));
  fs.push_back(sl::async([&] { return g1.wait() ? 1 : -1; }));
  fs.push_back(sl::async([] { return 2; }));
  tasklet waiter([&] {
    sl::wait_all(fs);
    log("waiter: all ready");
    for (const auto& f : fs) EXPECT_TRUE(f.ready());
  });
  tasklet opener([&] {
    log("opener opens gate 1");
    g1.open();
    fs[1].wait();  // the waiter still waits for fs[0]
    EXPECT_NE(waiter.blocked(), 0);
    log("opener opens gate 0");
    g0.open();
  });
  waiter.join();
  opener.join();
  EXPECT_THAT(log_, ElementsAre("opener opens gate 1", "opener opens gate 0", "waiter: all ready"));
  sl::future<void> v = sl::async([] {});
  sl::future<std::string> s = sl::async([] { return std::string("s"); });
  sl::wait_all(v, s, fs[0]);
  EXPECT_TRUE(v.ready());
  EXPECT_TRUE(s.ready());
  EXPECT_EQ(fs[0].get() + fs[1].get() + fs[2].get(), 3);
}

// as_completed yields completion order, not index order. fs[1] and fs[3] are ready before it is
// called; fs[4], fs[0], fs[2] are opened in that order by another tasklet, each only after the
// as_completed caller has been resumed (and has consumed the previous one), which a schedule
// callback reports.
TEST_F(wait_functions, as_completed_yields_the_completion_order) {
  gate gates[5];
  std::vector<sl::future<int>> fs;
  for (int i = 0; i < 5; ++i)
    fs.push_back(sl::async([&gates, i] { return gates[i].wait() ? i : -1; }));
  gates[1].open();
  gates[3].open();
  fs[1].wait();
  fs[3].wait();
  std::vector<std::size_t> order;
  tasklet consumer([&] { order = sl::as_completed(fs); });
  int resumed = 0;  // switches to the consumer; touched by this thread only
  sl::set_schedule_callback([&](const tasklet&, const tasklet& next) {
    if (next == consumer) ++resumed;
  });
  tasklet opener([&] {
    // The consumer ran first: it took 1 and 3 without switching and now waits for the rest.
    EXPECT_NE(consumer.blocked(), 0);
    for (int k : {4, 0, 2}) {
      const int before = resumed;
      gates[k].open();
      const stopwatch sw;
      while (resumed == before && sw.elapsed() < kHangGuard) schedule();
      EXPECT_GT(resumed, before);
    }
  });
  consumer.join();
  opener.join();
  sl::set_schedule_callback({});
  EXPECT_THAT(order, ElementsAre(1u, 3u, 4u, 0u, 2u));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fs[i].get(), i);
}

// A tasklet killed while it waits in wait_any leaves no wait node on any of the futures (the
// fixture checks); the futures complete normally afterwards.
TEST_F(wait_functions, a_kill_during_wait_any_unlinks_every_wait) {
  gate release;
  std::vector<sl::future<int>> fs;
  for (int i = 0; i < 3; ++i) fs.push_back(sl::async([&, i] { return release.wait() ? i : -1; }));
  tasklet victim([&] {
    try {
      (void)sl::wait_any(fs);
      log("woke");
    } catch (const tasklet_exit&) {
      log("killed");
      throw;
    }
  });
  schedule();
  EXPECT_NE(victim.blocked(), 0);
  victim.kill();
  EXPECT_THAT(log_, ElementsAre("killed"));
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  release.open();
  sl::wait_all(fs);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(fs[i].get(), i);
}

}  // namespace
