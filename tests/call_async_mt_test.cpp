// tests/call_async_mt_test.cpp — call_async, thread_pool and futures in threading::global_lock
// (DESIGN.md, reference §2.3, §3, §5.4–§5.6): the key tests of call_async_test.cpp again, and what
// only this mode has to show — a thread whose tasklet waits in call_async releases the lock, so
// another thread's tasklets make progress meanwhile; a ticking sibling of the waiting tasklet hands
// the lock over at its tick points; pool workers never need the lock; shutdown() releases it while
// it joins.
//
// The mode must be chosen before the runtime is first used in the process, so this executable
// configures it (switch interval 0: hand over at every tick point where another thread waits; and
// kWorkers pool workers, so eight jobs can block at once) before any test runs.
//
// Every thread that uses the runtime holds the lock from its first use, the test's main thread
// included, so the main thread joins its threads inside allow_threads (os_thread). Jobs that must
// hold a worker wait on a `gate` of std:: primitives (the worker stays a plain thread and never
// wants the lock) or on a stackless latch (the worker then becomes a runtime thread for the job's
// duration and takes the lock like any other). No test sleeps to order events; the polling loops'
// time limits are hang guards only.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "thread_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using stackless_testing::custom_error;
using stackless_testing::eventually;
using stackless_testing::expect_all_workers_serve;
using stackless_testing::gate;
using stackless_testing::kHangGuard;
using stackless_testing::os_thread;
using stackless_testing::result_probe;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;
using sl::tick;
using stackless_testing::stopwatch;
using ::testing::ElementsAre;

constexpr std::size_t kWorkers = 8;

// Chosen before main() runs, so before any test (or the fixture) can use the runtime.
const bool configured = [] {
  sl::configure(
      {.threads = sl::threading::global_lock, .switch_interval = 0us, .worker_threads = kWorkers});
  return true;
}();

using global_lock_call_async = stackless_test;
using global_lock_pool = stackless_test;
using global_lock_futures = stackless_test;

constexpr const char* kCancelled = "cancelled_error: the job was cancelled before it started";

// wait_unlocked waits on a gate inside allow_threads (for gates opened by a thread that needs the
// lock).
bool wait_unlocked(gate& g) {
  sl::allow_threads unlocked;
  return g.wait();
}

// ---------------------------------------------------------------------------------------------

TEST_F(global_lock_call_async, is_configured) {
  ASSERT_TRUE(configured);
  EXPECT_EQ(sl::current_config().threads, sl::threading::global_lock);
  EXPECT_EQ(sl::default_pool().size(), kWorkers);
}

TEST_F(global_lock_call_async, results_and_exceptions_come_back) {
  tasklet t([&] {
    EXPECT_EQ(sl::call_async([] { return 7; }), 7);
    EXPECT_EQ(sl::call_async([] { return std::string("text"); }), "text");
    std::unique_ptr<int> p = sl::call_async([] { return std::make_unique<int>(5); });
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 5);
    int side_effect = 0;
    sl::call_async([&] { side_effect = 3; });
    EXPECT_EQ(side_effect, 3);
    try {
      sl::call_async([]() -> int { throw custom_error("disk on fire", 7); });
      ADD_FAILURE() << "no exception";
    } catch (const custom_error& e) {
      EXPECT_STREQ(e.what(), "disk on fire");
      EXPECT_EQ(e.code, 7);
    }
    EXPECT_THROW_WHAT(sl::call_async([] { throw std::invalid_argument("bad"); }),
                      std::invalid_argument, "bad");
    log("done");
  });
  t.join();
  EXPECT_THAT(log_, ElementsAre("done"));
  // From a plain thread: it becomes a runtime thread, waits (parked, without the lock), gets it.
  int from_thread = 0;
  {
    os_thread th([&] { from_thread = sl::call_async([] { return 2; }); });
  }
  EXPECT_EQ(from_thread, 2);
}

// The thread calling call_async releases the lock while it waits: thread B, which needs the lock
// from its first use, runs its tasklets to the end and only then lets the job finish. This thread
// holds the lock until its main tasklet waits in call_async; a thread that kept it while waiting
// would never let B run (the job would give up after the hang guard and return -1).
TEST_F(global_lock_call_async, the_callers_thread_releases_the_lock_while_it_waits) {
  constexpr int kSteps = 1000;
  (void)sl::current();  // this thread holds the lock
  std::atomic<bool> b_done{false};
  std::atomic<int> b_progress{0};
  os_thread b([&] {
    (void)sl::current();  // waits for the lock
    std::vector<tasklet> ts;
    for (int k = 0; k < 2; ++k)
      ts.emplace_back([&] {
        for (int i = 0; i < kSteps; ++i) {
          b_progress.fetch_add(1);
          tick();
          schedule();
        }
      });
    for (tasklet& t : ts) t.join();
    b_done.store(true);
  });
  const int v = sl::call_async([&] { return eventually([&] { return b_done.load(); }) ? 7 : -1; });
  EXPECT_EQ(v, 7);
  EXPECT_EQ(b_progress.load(), 2 * kSteps);
}

// The same with a sibling: while one tasklet waits in call_async, another tasklet of the thread
// keeps ticking (so the thread never parks); its tick points hand the lock to thread B.
TEST_F(global_lock_call_async, a_ticking_sibling_hands_the_lock_over_while_a_tasklet_waits) {
  constexpr int kSteps = 1000;
  (void)sl::current();
  std::atomic<bool> b_done{false};
  std::atomic<int> b_progress{0};
  os_thread b([&] {
    (void)sl::current();
    tasklet t([&] {
      for (int i = 0; i < kSteps; ++i) {
        b_progress.fetch_add(1);
        tick();
      }
    });
    t.join();
    b_done.store(true);
  });
  int v = 0;
  long ticks = 0;
  tasklet waiter([&] {
    v = sl::call_async([&] { return eventually([&] { return b_done.load(); }) ? 7 : -1; });
  });
  tasklet ticker([&] {
    const stopwatch sw;
    while (!b_done.load() && sw.elapsed() < kHangGuard) {
      ++ticks;
      tick();
      schedule();
    }
  });
  waiter.join();
  ticker.join();
  EXPECT_EQ(v, 7);
  EXPECT_EQ(b_progress.load(), kSteps);
  std::printf("[  INFO    ] the sibling ticked %ld times while B made %d steps\n", ticks, kSteps);
}

// Pool workers never need the lock: a job runs to its end while this thread keeps the lock and
// never reaches a tick point.
TEST_F(global_lock_call_async, jobs_run_while_the_callers_thread_keeps_the_lock) {
  (void)sl::current();
  std::atomic<bool> ran{false};
  sl::future<int> f = sl::async([&] {
    ran.store(true);
    return 4;
  });
  EXPECT_TRUE(eventually([&] { return ran.load(); }));
  EXPECT_TRUE(eventually([&] { return f.ready(); }));
  EXPECT_EQ(f.get(), 4);
}

// Eight tasklets each call_async a job that blocks on a stackless latch; a ninth tasklet of the
// same thread runs meanwhile and opens it. (The workers become runtime threads in latch::wait and
// take the lock when this thread lets them.)
TEST_F(global_lock_call_async, other_tasklets_run_while_eight_wait_on_jobs_blocked_on_a_latch) {
  constexpr int kWaiters = 8;
  sl::latch all_started(kWaiters);
  sl::latch release(1);
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
  tasklet ticker([&] {
    log("ticker runs");
    const stopwatch sw;
    while (!all_started.try_wait() && sw.elapsed() < kHangGuard) {
      tick();
      schedule();
    }
    EXPECT_TRUE(all_started.try_wait()) << "the eight jobs never all started";
    for (const tasklet& w : waiters) EXPECT_NE(w.blocked(), 0);
    log("ticker opens the latch");
    release.count_down();
  });
  for (tasklet& w : waiters) w.join();
  ticker.join();
  EXPECT_EQ(got, (std::vector<int>{0, 10, 20, 30, 40, 50, 60, 70}));
  ASSERT_EQ(log_.size(), 2u + kWaiters);
  EXPECT_EQ(log_[0], "ticker runs");
  EXPECT_EQ(log_[1], "ticker opens the latch");
}

TEST_F(global_lock_call_async, ten_thousand_calls_from_a_thousand_tasklets) {
  constexpr int kTasklets = 1000, kCallsEach = 10;
  int right = 0, wrong = 0;
  std::vector<tasklet> ts;
  ts.reserve(kTasklets);
  for (int i = 0; i < kTasklets; ++i)
    ts.emplace_back([&, i] {
      for (int k = 0; k < kCallsEach; ++k) {
        const long v = sl::call_async([i, k] { return static_cast<long>(i) * 1000 + k; });
        (v == static_cast<long>(i) * 1000 + k ? right : wrong) += 1;
      }
    });
  for (tasklet& t : ts) t.join();
  EXPECT_EQ(right, kTasklets * kCallsEach);
  EXPECT_EQ(wrong, 0);
}

// A tasklet killed while it waits: the job finishes on its worker, its result is destroyed once,
// the worker is not lost.
TEST_F(global_lock_call_async, a_kill_during_the_wait_leaves_the_job_to_finish) {
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
  schedule();
  ASSERT_TRUE(started.wait());
  victim.kill();
  EXPECT_FALSE(victim.alive());
  EXPECT_FALSE(job_returned.load());
  release.open();
  EXPECT_TRUE(eventually([&] { return destroyed.load() == 1; }));
  expect_all_workers_serve(sl::default_pool());
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_THAT(log_, ElementsAre("killed while waiting"));
}

// ---------------------------------------------------------------------------------------------

TEST_F(global_lock_pool, cancel_before_and_after_the_start) {
  sl::thread_pool p(1);
  gate started, release;
  sl::future<int> running = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 1;
  });
  ASSERT_TRUE(started.wait());
  std::atomic<bool> queued_ran{false};
  sl::future<int> queued = p.submit([&] {
    queued_ran.store(true);
    return 2;
  });
  tasklet waiter([&] {
    try {
      queued.get();
    } catch (const sl::cancelled_error& e) {
      log(e.what());
    }
  });
  schedule();
  EXPECT_TRUE(queued.cancel());
  EXPECT_FALSE(running.cancel());
  waiter.join();
  EXPECT_THAT(log_, ElementsAre(kCancelled));
  EXPECT_THROW_WHAT(queued.get(), sl::cancelled_error, kCancelled);
  release.open();
  EXPECT_EQ(running.get(), 1);
  EXPECT_FALSE(running.cancel());
  p.shutdown();
  EXPECT_FALSE(queued_ran.load());
}

// shutdown() finishes every queued job and releases the lock while it joins the workers: the
// releaser thread needs the lock before it opens the gate that holds the one worker, and this
// thread keeps the lock until shutdown() — so the 20 jobs are queued when shutdown() begins.
TEST_F(global_lock_pool, shutdown_finishes_queued_jobs_and_releases_the_lock) {
  constexpr int kQueued = 20;
  (void)sl::current();
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
  os_thread releaser([&] {
    (void)sl::current();  // waits for the lock: it comes free only inside shutdown()
    release.open();
  });
  p.shutdown();
  releaser.join();
  EXPECT_EQ(first.get(), -1);
  std::vector<int> fifo;
  for (int i = 0; i < kQueued; ++i) {
    EXPECT_EQ(queued[i].get(), i);
    fifo.push_back(i);
  }
  EXPECT_EQ(order, fifo);
  EXPECT_THROW(p.submit([] {}), sl::runtime_error);
}

TEST_F(global_lock_pool, cancel_pending_cancels_the_queued_jobs) {
  sl::thread_pool p(1);
  gate started, release;
  sl::future<int> running = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 100;
  });
  ASSERT_TRUE(started.wait());
  std::vector<sl::future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(p.submit([i] { return i; }));
  EXPECT_EQ(p.cancel_pending(), 5u);
  for (auto& f : queued) EXPECT_THROW_WHAT(f.get(), sl::cancelled_error, kCancelled);
  release.open();
  EXPECT_EQ(running.get(), 100);
}

// A full bounded queue blocks only the submitting tasklet.
TEST_F(global_lock_pool, a_full_bounded_queue_blocks_only_the_submitter) {
  sl::thread_pool p(1, 1);
  gate started, release;
  sl::future<int> f0 = p.submit([&] {
    started.open();
    EXPECT_TRUE(release.wait());
    return 0;
  });
  ASSERT_TRUE(started.wait());
  sl::future<int> f1 = p.submit([] { return 1; });  // full
  sl::future<int> f2;
  tasklet submitter([&] {
    log("submitter submits");
    f2 = p.submit([] { return 2; });
    log("submitter submitted");
  });
  tasklet other([&] {
    log("other runs");
    EXPECT_NE(submitter.blocked(), 0);
    release.open();
  });
  submitter.join();
  other.join();
  EXPECT_THAT(log_, ElementsAre("submitter submits", "other runs", "submitter submitted"));
  EXPECT_EQ(f0.get() + f1.get() + f2.get(), 3);
}

// ---------------------------------------------------------------------------------------------

// Runtime threads (each takes the lock, then parks in wait() and releases it) and tasklets wait on
// the same future; one completion wakes them all.
TEST_F(global_lock_futures, threads_and_tasklets_wait_on_the_same_future) {
  constexpr int kEach = 3;
  (void)sl::current();
  gate release;
  sl::future<int> f = sl::async([&] {
    EXPECT_TRUE(release.wait());
    return 99;
  });
  std::atomic<int> woken{0};
  {
    std::vector<std::unique_ptr<os_thread>> threads;
    for (int i = 0; i < kEach; ++i)
      threads.push_back(std::make_unique<os_thread>([&woken, g = f] {
        g.wait();
        EXPECT_TRUE(g.ready());
        woken.fetch_add(1);
      }));
    std::vector<tasklet> ts;
    for (int i = 0; i < kEach; ++i)
      ts.emplace_back([&] {
        f.wait();
        woken.fetch_add(1);
      });
    schedule();  // the tasklets block in wait()
    release.open();
    for (tasklet& t : ts) t.join();
  }  // joins the threads
  EXPECT_EQ(woken.load(), 2 * kEach);
  EXPECT_EQ(f.get(), 99);
}

// A future made by another runtime thread's tasklet, taken here; and wait_any / as_completed
// across the two.
TEST_F(global_lock_futures, results_cross_threads_and_wait_any_sees_them) {
  (void)sl::current();
  sl::future<std::unique_ptr<int>> from_b;
  gate made;
  {
    os_thread b([&] {
      tasklet t([&] { from_b = sl::async([] { return std::make_unique<int>(5); }); });
      t.join();
      made.open();
    });
    ASSERT_TRUE(wait_unlocked(made));
  }
  std::unique_ptr<int> got = from_b.get();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, 5);

  gate g0, g1;
  std::vector<sl::future<int>> fs;
  fs.push_back(sl::async([&] { return g0.wait() ? 0 : -1; }));
  fs.push_back(sl::async([&] { return g1.wait() ? 1 : -1; }));
  std::size_t first = 99;
  tasklet waiter([&] { first = sl::wait_any(fs); });
  tasklet opener([&] {
    EXPECT_NE(waiter.blocked(), 0);
    g1.open();
  });
  waiter.join();
  opener.join();
  EXPECT_EQ(first, 1u);
  g0.open();
  sl::wait_all(fs);
  std::vector<std::size_t> order = sl::as_completed(fs);
  EXPECT_THAT(order, ElementsAre(0u, 1u));  // both ready: index order
  EXPECT_EQ(fs[0].get() + fs[1].get(), 1);
}

}  // namespace
