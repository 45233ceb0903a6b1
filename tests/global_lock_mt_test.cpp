// tests/global_lock_mt_test.cpp — threading::global_lock (DESIGN.md "Threading models", reference
// §4.7, §5): only one thread runs tasklet code at a time; the holder hands the lock over at tick
// points once its switch interval has elapsed and another thread waits, unless the current
// tasklet is atomic; parking and allow_threads release it; waiting threads are served in order.
//
// The mode must be chosen before the runtime is first used in the process, so this executable
// configures it (with a switch interval of 0: hand over at every tick point where another thread
// waits) before any test runs, and the free-mode suites live in thread_mt_test.cpp.
//
// Every thread that uses the runtime holds the lock from its first use, the test's main thread
// included (the fixture's TearDown uses the runtime), so the main thread joins its threads inside
// allow_threads. Shared state touched only by lock holders needs no other synchronization (the
// lock's hand-over orders it, also for ThreadSanitizer). No test sleeps to order events; the
// polling loops' time limits are hang guards only.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "thread_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using stackless_testing::eventually;
using stackless_testing::kHangGuard;
using stackless_testing::os_thread;
using sl::channel;
using sl::tasklet;
using sl::tasklet_exit;
using sl::tick;
using ::testing::ElementsAre;

// Chosen before main() runs, so before any test (or the fixture) can use the runtime.
const bool configured = [] {
  sl::configure({.threads = sl::threading::global_lock, .switch_interval = 0us});
  return true;
}();

using global_lock = stackless_test;
using seed_scenario = stackless_test;
using remote_run_order = stackless_test;


// ticking_until ticks (a hand-over point) until pred holds; false if the hang guard expires.
template <class Pred>
bool ticking_until(Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + kHangGuard;
  for (unsigned long n = 0; !pred(); ++n) {
    tick();
    if ((n & 1023) == 0 && std::chrono::steady_clock::now() > give_up) return false;
  }
  return true;
}

TEST_F(global_lock, is_configured_and_configure_cannot_change_it_any_more) {
  ASSERT_TRUE(configured);
  EXPECT_EQ(sl::current_config().threads, sl::threading::global_lock);
  EXPECT_EQ(sl::current_config().switch_interval, 0us);
  (void)sl::current();
  EXPECT_THROW(sl::configure({}), sl::runtime_error);
  EXPECT_EQ(sl::current_config().threads, sl::threading::global_lock);
}

// Only one thread runs tasklet code at a time: two threads' tasklets each mark a section between
// two tick points and never find the other inside.
TEST_F(global_lock, only_one_thread_runs_tasklet_code_at_a_time) {
  constexpr int kSections = 20'000;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> ready{0};
  auto body = [&] {
    tasklet worker([&] {
      ready.fetch_add(1);
      ASSERT_TRUE(ticking_until([&] { return ready.load() == 2; }));
      for (int i = 0; i < kSections; ++i) {
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        for (int k = 0; k < 10; ++k) std::atomic_signal_fence(std::memory_order_seq_cst);
        inside.fetch_sub(1);
        tick();  // the only place the lock may change hands
      }
    });
    worker.join();
  };
  { os_thread x(body), y(body); }
  EXPECT_EQ(overlaps.load(), 0);
}

#if STACKLESS_TEST_ASAN || STACKLESS_TEST_TSAN
constexpr long kSeedIterations = 100'000;  // sanitizers: 100,000 in total instead of 1,000,000
constexpr long kRacyIterations = 10'000;
#else
constexpr long kSeedIterations = 1'000'000;
constexpr long kRacyIterations = 100'000;
#endif

// The seed scenario. Tasklets of two threads (two per thread) each do a multi-step
// read-modify-write of a shared long — read, tick(), modify, tick(), write — followed by a tick()
// and a schedule() outside the critical section.
//  * Inside stackless::atomic: the tick points between the steps never hand the lock to the other
//    thread, so no update is lost over kSeedIterations in total, and no write ever finds the value
//    changed since its read.
//  * Without atomic (same threads, same switch interval 0): the tick points between the steps
//    hand the lock over whenever the other thread waits, so the value changes between a read and
//    its write (an interleaving) and updates are lost: the first part would fail without atomic.
//    When the other thread waits is up to the OS (a thread that has just handed the lock over
//    may be descheduled before it queues again), so each tasklet does at least
//    kRacyIterations / 4 iterations and then goes on until an interleaving has been seen; a
//    broken hand-over fails through the hang guard, never by luck.
// Before each part the threads meet (each waits for the other, ticking), so both are inside their
// loops for the whole part.
TEST_F(seed_scenario, atomic_read_modify_write_across_threads_loses_no_update) {
  constexpr int kThreads = 2, kTaskletsPerThread = 2;
  constexpr long kPerTasklet = kSeedIterations / (kThreads * kTaskletsPerThread);
  constexpr long kRacyPerTasklet = kRacyIterations / (kThreads * kTaskletsPerThread);
  // All of these are touched only by lock holders.
  long shared = 0;
  long changed_in_atomic = 0;  // a write found the value changed since its read, inside atomic
  long racy_shared = 0;
  long racy_updates = 0;   // read-modify-writes done without atomic
  long interleavings = 0;  // the same as changed_in_atomic, without atomic
  bool hung = false;
  std::atomic<int> arrived_atomic{0}, arrived_racy{0};

  auto rmw_atomic = [&] {
    for (long i = 0; i < kPerTasklet; ++i) {
      {
        sl::atomic critical;
        const long v = shared;  // step 1: read
        tick();
        const long next = v + 1;  // step 2: modify
        tick();
        if (shared != v) ++changed_in_atomic;
        shared = next;  // step 3: write
      }
      tick();  // outside atomic: the lock may go to the other thread here
      sl::schedule();
    }
  };
  auto rmw_racy = [&] {
    const auto give_up = std::chrono::steady_clock::now() + kHangGuard;
    for (long i = 0; i < kRacyPerTasklet || interleavings == 0; ++i) {
      const long v = racy_shared;
      tick();  // may hand the lock over between the read...
      const long next = v + 1;
      tick();  // ...and the write
      if (racy_shared != v) ++interleavings;
      racy_shared = next;
      ++racy_updates;
      tick();
      sl::schedule();
      if ((i & 1023) == 0 && std::chrono::steady_clock::now() > give_up) {
        hung = true;
        return;
      }
    }
  };
  auto thread_body = [&] {
    (void)sl::current();  // from here on this thread holds the lock whenever it runs
    // Part 1: atomic.
    arrived_atomic.fetch_add(1);
    ASSERT_TRUE(ticking_until([&] { return arrived_atomic.load() == kThreads; }));
    {
      std::vector<tasklet> ts;
      for (int k = 0; k < kTaskletsPerThread; ++k) ts.push_back(tasklet(rmw_atomic));
      for (tasklet& t : ts) t.join();
    }
    // Part 2: the same without atomic.
    arrived_racy.fetch_add(1);
    ASSERT_TRUE(ticking_until([&] { return arrived_racy.load() == kThreads; }));
    std::vector<tasklet> ts;
    for (int k = 0; k < kTaskletsPerThread; ++k) ts.push_back(tasklet(rmw_racy));
    for (tasklet& t : ts) t.join();
  };
  { os_thread x(thread_body), y(thread_body); }
  EXPECT_EQ(shared, kSeedIterations);
  EXPECT_EQ(changed_in_atomic, 0);
  EXPECT_FALSE(hung) << "no hand-over between the steps within the hang guard";
  EXPECT_GT(interleavings, 0);
  EXPECT_GE(racy_updates, kRacyIterations);
  EXPECT_LT(racy_shared, racy_updates) << "without atomic, updates are lost";
  std::printf("[  INFO    ] without atomic: %ld interleavings, %ld of %ld updates lost\n",
              interleavings, racy_updates - racy_shared, racy_updates);
}

// atomic keeps the lock across any number of tick points: a thread waiting for the lock (here to
// make its first use of the runtime) does not run until the holder leaves the atomic section and
// reaches a tick point; then it runs at once.
TEST_F(global_lock, atomic_keeps_the_lock_across_tick_points) {
  (void)sl::current();  // this thread holds the lock
  std::atomic<bool> b_starting{false}, b_ran{false};
  os_thread b([&] {
    b_starting.store(true);
    (void)sl::current();  // waits for the lock
    b_ran.store(true);
  });
  ASSERT_TRUE(eventually([&] { return b_starting.load(); }));
  {
    sl::atomic critical;
    for (int i = 0; i < 200'000; ++i) tick();
    EXPECT_FALSE(b_ran.load());
  }
  EXPECT_TRUE(ticking_until([&] { return b_ran.load(); }));
}

// Fairness: a thread that loops on tick() (without atomic) cannot keep the lock from waiting
// threads — each tick point with a waiter hands the lock to the longest waiting thread, and the
// ticking thread queues behind it. Two other threads each need the lock for kSteps steps (one
// tick point each); the main thread spins in tick() until both are done. An unfair lock (the
// holder re-taking it at once) would starve them and the loop would hit its hang guard.
TEST_F(global_lock, a_ticking_thread_cannot_starve_waiting_threads) {
  constexpr int kSteps = 2'000;
  (void)sl::current();
  std::atomic<int> progress_b{0}, progress_c{0};
  std::vector<char> holders;  // who held the lock, one entry per step (appended by holders only)
  auto stepper = [&](std::atomic<int>& progress, char name) {
    return [&progress, &holders, name] {
      (void)sl::current();
      for (int i = 0; i < kSteps; ++i) {
        holders.push_back(name);
        progress.fetch_add(1);
        tick();
      }
    };
  };
  os_thread b(stepper(progress_b, 'b')), c(stepper(progress_c, 'c'));
  long main_ticks = 0;
  EXPECT_TRUE(ticking_until([&] {
    ++main_ticks;
    holders.push_back('a');
    return progress_b.load() == kSteps && progress_c.load() == kSteps;
  }));
  b.join();
  c.join();
  long switches = 0;
  for (std::size_t i = 1; i < holders.size(); ++i) switches += holders[i] != holders[i - 1];
  std::printf("[  INFO    ] %ld main ticks while b and c made %d steps each; %ld hand-overs\n",
              main_ticks, kSteps, switches);
}

// Parking releases the lock: a thread whose main tasklet waits on a channel lets the other
// thread run, and is served by it.
TEST_F(global_lock, a_parked_thread_releases_the_lock) {
  channel<int> ch;
  std::atomic<int> got{0};
  (void)sl::current();
  os_thread b([&] { got.store(ch.receive()); });  // B parks (and releases the lock)
  ASSERT_TRUE(ticking_until([&] { return ch.balance() == -1; }));
  ch.send(5);  // completes at once: B's receiver is made runnable in B
  b.join();
  EXPECT_EQ(got.load(), 5);
}

// [verified §5 TestRemoteSchedule.testRunOrder] In thread A under atomic: t2.insert(),
// t3.insert(), t1.run() on tasklets of thread B, which is parked → B runs t1, t2, t3. B's main
// waits in join() (parked, the lock released); A's requests wake B, which then waits for the lock:
// A's atomic keeps it across the tick points between the requests, so B takes all three at once.
// t1.run() makes t1 the tasklet B runs next ("as its current if that thread is parked").
TEST_F(remote_run_order, insert_insert_run_on_a_parked_thread_runs_t1_t2_t3) {
  (void)sl::current();
  std::vector<tasklet> ts;
  std::vector<std::string> b_log;  // written by B, read after the join
  std::atomic<bool> published{false};
  os_thread b([&] {
    for (const char* name : {"t1", "t2", "t3"})
      ts.push_back(
          tasklet([&b_log, name] { b_log.push_back(name); }, {.name = name, .start = false}));
    published.store(true);
    for (tasklet& t : ts) t.join();  // B parks: it holds the lock until then
  });
  {
    // B holds the lock from its first use until it parks, so once A has it back, B is parked.
    sl::allow_threads unlocked;
    ASSERT_TRUE(eventually([&] { return published.load(); }));
  }
  tasklet t1 = ts[0], t2 = ts[1], t3 = ts[2];
  {
    sl::atomic critical;
    t2.insert();
    tick();
    t3.insert();
    tick();
    t1.run();
    tick();
  }
  b.join();
  EXPECT_THAT(b_log, ElementsAre("t1", "t2", "t3"));
  ts.clear();
}

// allow_threads releases the lock around a blocking call that is not the runtime's own.
TEST_F(global_lock, allow_threads_lets_other_threads_run) {
  (void)sl::current();
  std::atomic<bool> b_ran{false};
  std::latch b_done(1);
  os_thread b([&] {
    (void)sl::current();
    b_ran.store(true);
    b_done.count_down();
  });
  {
    sl::allow_threads unlocked;
    b_done.wait();  // would never return while this thread held the lock
  }
  EXPECT_TRUE(b_ran.load());
}

}  // namespace
