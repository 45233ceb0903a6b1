// tests/sync_mt_test.cpp — the locks of <stackless/sync.hpp> between threads: CPython's
// Lib/test/lock_tests.py scenarios (Lock, RLock, Semaphore, Condition, Barrier, Event) and
// destruction with waiters, each run three ways — tasklets of one thread, tasklets spread over 4
// threads (whose main tasklets join them, parked while all wait), plain std::threads — and stress:
// 8 threads × 100 tasklets counting under a mutex, condition-variable producers and consumers, and
// waiters of other threads killed at random while wake-ups are handed out. Single-thread behaviour,
// errors and the deterministic kill/timeout races are in sync_test.cpp.
//
// No test sleeps to order events: the controller (the test body) polls atomics or lock-protected
// values with eventually(), which also schedule()s (tasklets of its own thread run) and yields; its
// time limit is only a hang guard. "N workers are blocked" is read from memory_stats().wait_nodes.
// Every thread is joined before the test body ends (the fixture's leak check). Timed waits that
// must time out: at least the requested time, less than 2 s. Under ASan/TSan the stress tests run
// fewer iterations (each constant says how many).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::expect_waited;
using stackless_testing::stopwatch;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using sync_stress = stackless_test;

constexpr auto kHangGuard = 30s;  // eventually()'s limit: a guard against hangs, never an order
constexpr auto kShort = 50ms;     // a timed wait that is meant to time out
constexpr int kN = 5;             // CPython's N
constexpr int kThreads = 4;       // threads of the "tasklets on 4 threads" way

#if STACKLESS_TEST_ASAN || STACKLESS_TEST_TSAN
constexpr int kIncrements = 10;         // sanitizers: 8 × 100 × 10 = 8,000 locked increments
constexpr int kItems = 1'000;           // sanitizers: 2 × 1,000 items through the bounded queue
constexpr int kStormRounds = 5;         // sanitizers: 5 storm rounds of 16 waiters instead of 20
constexpr int kMutexRounds = 4;         // sanitizers: 4 rounds of 12 waiters instead of 20
constexpr int kKillReleaseRounds = 50;  // sanitizers: 50 instead of 200
#else
constexpr int kIncrements = 100;  // 8 × 100 × 100 = 80,000 locked increments
constexpr int kItems = 10'000;    // 2 × 10,000 items
constexpr int kStormRounds = 20;
constexpr int kMutexRounds = 20;
constexpr int kKillReleaseRounds = 200;
#endif

// eventually polls pred — letting the caller's other tasklets run and other threads have the CPU
// — until it holds; false if the hang guard expires.
template <class Pred>
bool eventually(Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + kHangGuard;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    sl::schedule();
    std::this_thread::yield();
  }
  return true;
}

// way: how a crew's workers run.
enum class way { one_thread, four_threads, std_threads };

void PrintTo(way w, std::ostream* os) {
  *os << (w == way::one_thread     ? "tasklets_of_one_thread"
          : w == way::four_threads ? "tasklets_on_4_threads"
                                   : "std_threads");
}

// crew: n workers running body(i), started at once: tasklets of the calling thread (they run when
// it schedules or blocks), tasklets spread round-robin over 4 new threads (whose main tasklets
// join them), or one std::thread each. A worker's std::exception fails the test; tasklet_exit
// (a kill) ends a tasklet worker silently.
class crew {
 public:
  crew(way w, int n, std::function<void(int)> body)
      : way_(w),
        n_(n),
        body_(std::move(body)),
        handles_(n),
        published_(w == way::four_threads ? n : 0) {
    if (w == way::one_thread) {
      for (int i = 0; i < n; ++i) handles_[i] = tasklet([this, i] { run_one(i); });
    } else if (w == way::four_threads) {
      for (int t = 0; t < std::min(n, kThreads); ++t)
        threads_.emplace_back([this, t] {
          serve(t);
          threads_done_.fetch_add(1);
        });
    } else {
      for (int i = 0; i < n; ++i)
        threads_.emplace_back([this, i] {
          run_one(i);
          threads_done_.fetch_add(1);
        });
    }
  }
  crew(const crew&) = delete;
  crew& operator=(const crew&) = delete;
  ~crew() { join(); }

  // join waits for every worker to end (also one killed before it ran); hang guard: the process
  // exits with a message.
  void join() {
    if (joined_) return;
    joined_ = true;
    const bool done = eventually([&] {
      if (way_ != way::one_thread) return threads_done_.load() == threads_.size();
      return std::none_of(handles_.begin(), handles_.end(), [](auto& t) { return t.alive(); });
    });
    if (!done) {
      std::fprintf(stderr, "crew: workers still running after the hang guard\n");
      std::_Exit(3);
    }
    for (std::thread& t : threads_) t.join();
  }

  // all_blocked: eventually exactly k workers are blocked (and nothing else but the 4-thread
  // way's joining main tasklets, one per thread while it has a worker left).
  bool all_blocked(int k) const {
    const std::size_t expected =
        static_cast<std::size_t>(k) + (way_ == way::four_threads ? std::min(n_, kThreads) : 0);
    return eventually([&] { return sl::memory_stats().wait_nodes == expected; });
  }

  // handles: the workers' tasklets (not for std_threads).
  std::vector<tasklet> handles() {
    published_.wait();
    std::lock_guard g(handles_mutex_);
    return handles_;
  }

 private:
  void run_one(int i) {
    try {
      body_(i);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "worker " << i << " threw: " << e.what();
    }
  }
  void serve(int t) {
    try {
      std::vector<tasklet> mine;
      for (int i = t; i < n_; i += kThreads) {
        mine.emplace_back([this, i] { run_one(i); });
        {
          std::lock_guard g(handles_mutex_);
          handles_[i] = mine.back();
        }
        published_.count_down();
      }
      for (tasklet& k : mine) k.join();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "thread " << t << " of a crew: " << e.what();
    }
  }

  way way_;
  int n_;
  std::function<void(int)> body_;
  std::mutex handles_mutex_;
  std::vector<tasklet> handles_;
  std::latch published_;
  std::atomic<std::size_t> threads_done_{0};
  std::vector<std::thread> threads_;
  bool joined_ = false;
};

class three_ways : public stackless_test, public ::testing::WithParamInterface<way> {
 protected:
  std::unique_ptr<crew> spawn(int n, std::function<void(int)> body) {
    return std::make_unique<crew>(GetParam(), n, std::move(body));
  }
};

// under: f() with m held (for reading state that the workers change under m).
template <class F>
auto under(sl::mutex& m, F f) {
  std::lock_guard g(m);
  return f();
}

// --- Lock (CPython BaseLockTests, LockTests) -----------------------------------------------------

// test_different_thread (locked by a worker, unlocked here), test_acquire_contended, test_with,
// test_reacquire: workers block while the lock is held, and all get it after the release.
TEST_P(three_ways, mutex_acquire_contended) {
  sl::mutex m;
  spawn(1, [&](int) { m.lock(); })->join();
  EXPECT_TRUE(m.locked());
  std::atomic<int> entered{0};
  auto c = spawn(kN, [&](int) {
    std::lock_guard g(m);
    entered.fetch_add(1);
  });
  ASSERT_TRUE(c->all_blocked(kN));
  EXPECT_EQ(entered.load(), 0);
  m.unlock();
  c->join();
  EXPECT_EQ(entered.load(), kN);
  EXPECT_FALSE(m.locked());
}

// Lock, Semaphore and Event test_try_acquire_contended, test_timeout, test_acquire_timeout,
// test_state_after_timeout (issue 11618).
TEST_P(three_ways, try_and_timed_waits_while_held_elsewhere) {
  sl::mutex m;
  sl::semaphore sem(2);
  sl::event e;
  m.lock();
  sem.acquire();
  sem.acquire();
  auto c = spawn(2, [&](int) {
    EXPECT_FALSE(m.try_lock() || m.try_lock_for(0ms) || sem.try_acquire() || e.wait_for(0ms));
    stopwatch sw;
    EXPECT_FALSE(m.try_lock_for(kShort));
    expect_waited(sw, kShort);
    stopwatch sw2;
    EXPECT_FALSE(sem.try_acquire_until(std::chrono::steady_clock::now() + kShort));
    expect_waited(sw2, kShort);
    stopwatch sw3;
    EXPECT_FALSE(e.wait_for(kShort));
    expect_waited(sw3, kShort);
  });
  c->join();
  e.set();
  EXPECT_TRUE(e.wait_for(0ms));
  m.unlock();
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
  sem.release();
  EXPECT_TRUE(sem.try_acquire_for(kShort));
}

// --- RLock (CPython RLockTests) ------------------------------------------------------------------

// test_reacquire, test_different_thread, test__is_owned: the owner is a tasklet; another (of any
// thread, or the main tasklet of another thread) can neither enter nor unlock it.
TEST_P(three_ways, recursive_mutex_belongs_to_its_tasklet) {
  sl::recursive_mutex rm;
  std::atomic<int> step{0};
  auto c = spawn(1, [&](int) {
    rm.lock();
    rm.lock();
    EXPECT_TRUE(rm.try_lock());
    rm.unlock();
    step.store(1);
    EXPECT_TRUE(eventually([&] { return step.load() == 2; }));
    rm.unlock();
    rm.unlock();
  });
  ASSERT_TRUE(eventually([&] { return step.load() == 1; }));
  EXPECT_FALSE(rm.try_lock());
  try {
    rm.unlock();
    ADD_FAILURE() << "unlock by a non-owner did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::make_error_code(std::errc::operation_not_permitted));
  }
  stopwatch sw;
  EXPECT_FALSE(rm.try_lock_for(kShort));
  expect_waited(sw, kShort);
  step.store(2);
  rm.lock();  // waits until the worker has unlocked twice
  rm.lock();
  rm.unlock();
  rm.unlock();
  c->join();
}

// --- Semaphore (CPython BaseSemaphoreTests) ------------------------------------------------------

// test_acquire_contended: 10 workers acquire twice from a semaphore of 7 (one taken here); each
// phase's releases (7, then 6, then 1) let exactly that many acquisitions through.
TEST_P(three_ways, semaphore_acquire_contended) {
  constexpr int kValue = 7;
  sl::semaphore sem(kValue);
  sem.acquire();
  std::atomic<int> phase{0}, total{0};
  std::atomic<int> per_phase[4] = {};  // acquisitions seen in each phase
  auto counts = [&] {
    return std::vector<int>{per_phase[0], per_phase[1], per_phase[2], per_phase[3]};
  };
  auto c = spawn(10, [&](int) {
    for (int k = 0; k < 2; ++k) {
      sem.acquire();
      per_phase[phase.load()].fetch_add(1);
      total.fetch_add(1);
    }
  });
  const int expected_totals[3] = {6, 13, 19};
  for (int p = 0; p < 3; ++p) {
    ASSERT_TRUE(eventually([&] { return total.load() >= expected_totals[p]; }));
    EXPECT_EQ(total.load(), expected_totals[p]);
    if (p == 2) {
      EXPECT_FALSE(sem.try_acquire());  // still empty
    }
    phase.store(p + 1);
    for (int i = 0; i < (p == 0 ? kValue : p == 1 ? kValue - 1 : 1); ++i) sem.release();
  }
  c->join();
  EXPECT_THAT(counts(), ElementsAre(6, 7, 6, 1));
  EXPECT_EQ(sem.value(), 0);
}

// release(n) lets exactly n waiters through.
TEST_P(three_ways, semaphore_release_n_wakes_n) {
  sl::semaphore sem(0);
  std::atomic<int> done{0};
  auto c = spawn(kN, [&](int) {
    sem.acquire();
    done.fetch_add(1);
  });
  ASSERT_TRUE(c->all_blocked(kN));
  sem.release(3);
  ASSERT_TRUE(eventually([&] { return done.load() == 3; }));
  EXPECT_EQ(sem.value(), 0);
  sem.release(2);
  c->join();
  EXPECT_EQ(done.load(), kN);
  EXPECT_EQ(sem.value(), 0);
}

// --- Condition (CPython ConditionTests) ----------------------------------------------------------

// _check_notify: notify 3 (notify_one × 3), then 5, then notify_all; waiters count themselves
// under the lock before waiting, so holding the lock and seeing the count means they all wait.
TEST_P(three_ways, condition_notify_one_and_all) {
  sl::mutex m;
  sl::condition_variable cv;
  int phase = 0, ready = 0;        // under m
  std::vector<int> first, second;  // the phase each wait returned in (-1: timed out), under m
  auto c = spawn(kN, [&](int) {
    std::unique_lock l(m);
    for (std::vector<int>* results : {&first, &second}) {
      ++ready;
      const bool notified = cv.wait_for(l, kHangGuard) == std::cv_status::no_timeout;
      results->push_back(notified ? phase : -1);
    }
  });
  ASSERT_TRUE(eventually([&] { return under(m, [&] { return ready == kN; }); }));
  {
    std::lock_guard g(m);
    ready = 0;
    EXPECT_TRUE(first.empty());
    for (int i = 0; i < 3; ++i) cv.notify_one();
    phase = 1;
  }
  ASSERT_TRUE(
      eventually([&] { return under(m, [&] { return first.size() == 3 && ready == 3; }); }));
  under(m, [&] {
    EXPECT_THAT(first, ElementsAre(1, 1, 1));
    EXPECT_TRUE(second.empty());
    for (int i = 0; i < kN; ++i) cv.notify_one();  // 2 in their first wait, 3 in their second
    phase = 2;
  });
  ASSERT_TRUE(
      eventually([&] { return under(m, [&] { return first.size() + second.size() == 8; }); }));
  ASSERT_TRUE(eventually([&] { return under(m, [&] { return ready == kN; }); }));
  under(m, [&] {
    EXPECT_THAT(first, ElementsAre(1, 1, 1, 2, 2));
    EXPECT_THAT(second, ElementsAre(2, 2, 2));
    cv.notify_all();
    phase = 3;
  });
  c->join();
  EXPECT_THAT(second, ElementsAre(2, 2, 2, 3, 3));
}

// test_waitfor, test_waitfor_timeout, test_timeout: a predicate wait returns when it holds;
// timed waits time out, with the lock held again.
TEST_P(three_ways, condition_wait_with_predicate_and_timeouts) {
  sl::mutex m;
  sl::condition_variable cv, never_notified;
  int state = 0;
  auto c = spawn(3, [&](int i) {
    std::unique_lock l(m);
    stopwatch sw;
    if (i == 0) {
      cv.wait(l, [&] { return state == 4; });
      EXPECT_EQ(state, 4);
    } else if (i == 1) {
      EXPECT_FALSE(cv.wait_for(l, kShort, [&] { return state == 5; }));
      expect_waited(sw, kShort);
    } else {
      EXPECT_EQ(never_notified.wait_until(l, std::chrono::steady_clock::now() + kShort),
                std::cv_status::timeout);
      expect_waited(sw, kShort);
    }
    EXPECT_TRUE(l.owns_lock());
  });
  for (int i = 0; i < 4; ++i) {
    under(m, [&] { return ++state; });
    cv.notify_all();
    sl::schedule();
  }
  c->join();
}

// --- Barrier (CPython BarrierTests, N = 5) -------------------------------------------------------

struct deliberate {};  // thrown on purpose (not a std::exception)

// test_barrier, test_barrier_10 (multipass), test_wait_return, test_action.
TEST_P(three_ways, barrier_passes_repeatedly_with_indices_and_completion) {
  constexpr int kPasses = 10;
  std::atomic<int> completions{0}, before{0}, after{0};
  std::atomic<int> index_count[kN] = {};
  sl::barrier b(kN, [&] { completions.fetch_add(1); });
  auto c = spawn(kN, [&](int) {
    for (int i = 0; i < kPasses; ++i) {
      before.fetch_add(1);
      EXPECT_EQ(after.load(), i * kN);
      const auto index = b.arrive_and_wait();
      ASSERT_TRUE(index >= 0 && index < kN);
      index_count[index].fetch_add(1);
      EXPECT_EQ(completions.load(), 2 * i + 1);
      after.fetch_add(1);
      EXPECT_EQ(before.load(), (i + 1) * kN);
      b.arrive_and_wait();
    }
  });
  c->join();
  for (const auto& n : index_count) EXPECT_EQ(n.load(), kPasses);
  EXPECT_EQ(completions.load(), 2 * kPasses);
  EXPECT_EQ(b.n_waiting(), 0);
  EXPECT_FALSE(b.broken());
}

// test_reset: the worker at index N/2 waits until the others wait, then resets: they get
// barrier_broken, and everyone passes the barrier again afterwards.
TEST_P(three_ways, barrier_reset) {
  sl::barrier b(kN);
  std::atomic<int> passed{0}, broken{0}, again{0};
  auto c = spawn(kN, [&](int) {
    if (b.arrive_and_wait() == kN / 2) {
      EXPECT_TRUE(eventually([&] { return b.n_waiting() == kN - 1; }));
      b.reset();
    } else {
      try {
        b.arrive_and_wait();
        passed.fetch_add(1);
      } catch (const sl::barrier_broken&) {
        broken.fetch_add(1);
      }
    }
    b.arrive_and_wait();
    again.fetch_add(1);
  });
  c->join();
  EXPECT_EQ(passed.load(), 0);
  EXPECT_EQ(broken.load(), kN - 1);
  EXPECT_EQ(again.load(), kN);
}

// test_abort, test_abort_and_reset: the worker at index N/2 fails and aborts, the others get
// barrier_broken; then everyone synchronises on a second barrier, one resets the first, and
// everyone passes it.
TEST_P(three_ways, barrier_abort_and_reset) {
  sl::barrier b(kN), b2(kN);
  std::atomic<int> passed{0}, broken{0}, again{0};
  auto c = spawn(kN, [&](int) {
    try {
      if (b.arrive_and_wait() == kN / 2) throw deliberate{};
      b.arrive_and_wait();
      passed.fetch_add(1);
    } catch (const sl::barrier_broken&) {
      broken.fetch_add(1);
    } catch (const deliberate&) {
      b.abort();
    }
    if (b2.arrive_and_wait() == kN / 2) {
      EXPECT_TRUE(b.broken());
      b.reset();
    }
    b2.arrive_and_wait();
    b.arrive_and_wait();
    again.fetch_add(1);
  });
  c->join();
  EXPECT_EQ(passed.load(), 0);
  EXPECT_EQ(broken.load(), kN - 1);
  EXPECT_EQ(again.load(), kN);
}

// test_timeout: one worker is late (it arrives only once the others have given up); the timeout
// breaks the barrier for everyone.
TEST_P(three_ways, barrier_timeout_breaks_it) {
  sl::barrier b(kN);
  std::atomic<int> gave_up{0};
  auto c = spawn(kN, [&](int) {
    const bool late = b.arrive_and_wait() == kN / 2;
    if (late) {
      EXPECT_TRUE(eventually([&] { return gave_up.load() == kN - 1; }));
    }
    EXPECT_THROW(b.arrive_and_wait_for(kShort), sl::barrier_broken);
    gave_up.fetch_add(1);
  });
  c->join();
  EXPECT_TRUE(b.broken());
}

// test_action_exception: the completion function's exception reaches the last arriver, the
// others get barrier_broken.
TEST_P(three_ways, barrier_completion_exception) {
  sl::barrier b(kN, [] { throw deliberate{}; });
  std::atomic<int> passed{0}, broken{0}, failed{0};
  auto c = spawn(kN, [&](int) {
    try {
      b.arrive_and_wait();
      passed.fetch_add(1);
    } catch (const sl::barrier_broken&) {
      broken.fetch_add(1);
    } catch (const deliberate&) {
      failed.fetch_add(1);
    }
  });
  c->join();
  EXPECT_EQ(passed.load(), 0);
  EXPECT_EQ(broken.load(), kN - 1);
  EXPECT_EQ(failed.load(), 1);
  EXPECT_TRUE(b.broken());
}

// --- Event (CPython EventTests) ------------------------------------------------------------------

// _check_notify / test_notify: set() releases every waiter; again after an explicit clear().
TEST_P(three_ways, event_set_releases_every_waiter) {
  sl::event e;
  for (int round = 0; round < 2; ++round) {
    std::atomic<int> first{0}, second{0};
    auto c = spawn(kN, [&](int) {
      if (e.wait()) first.fetch_add(1);
      if (e.wait()) second.fetch_add(1);
    });
    ASSERT_TRUE(c->all_blocked(kN));
    EXPECT_EQ(first.load(), 0);
    e.set();
    c->join();
    EXPECT_EQ(first.load(), kN);
    EXPECT_EQ(second.load(), kN);
    e.set();
    e.clear();
  }
}

// test_set_and_clear (issue 13502): woken by set(), wait returns true even if cleared since.
TEST_P(three_ways, event_set_then_clear_still_releases_the_waiters) {
  sl::event e;
  std::atomic<int> released{0};
  auto c = spawn(kN, [&](int) {
    if (e.wait_for(kHangGuard)) released.fetch_add(1);
  });
  ASSERT_TRUE(c->all_blocked(kN));
  e.set();
  e.clear();
  c->join();
  EXPECT_EQ(released.load(), kN);
  EXPECT_FALSE(e.is_set());
}

// --- destruction with waiters --------------------------------------------------------------------

TEST_P(three_ways, destroying_an_object_wakes_its_waiters_with_an_error) {
  constexpr int kWaiters = 3;
  sl::mutex cm;
  for (int kind = 0; kind < 4; ++kind) {
    SCOPED_TRACE("kind " + std::to_string(kind));
    auto m = std::make_unique<sl::mutex>();
    auto s = std::make_unique<sl::semaphore>(0);
    auto cv = std::make_unique<sl::condition_variable>();
    auto e = std::make_unique<sl::event>();
    m->lock();
    // The workers use plain pointers: the unique_ptrs are reset here while they wait.
    sl::mutex* mp = m.get();
    sl::semaphore* sp = s.get();
    sl::condition_variable* cvp = cv.get();
    sl::event* ep = e.get();
    int in_cv = 0;  // under cm: counted before waiting on cv (the waiters also wait for cm)
    std::atomic<int> errors{0};
    auto c = spawn(kWaiters, [&, mp, sp, cvp, ep](int) {
      try {
        if (kind == 0) mp->lock();
        if (kind == 1) sp->acquire();
        if (kind == 2) {
          std::unique_lock l(cm);
          ++in_cv;
          cvp->wait(l);
        }
        if (kind == 3) ep->wait();
        ADD_FAILURE() << "the wait returned";
      } catch (const sl::runtime_error& err) {
        EXPECT_THAT(err.what(), HasSubstr("was destroyed while a tasklet waited on it"));
        errors.fetch_add(1);
      }
    });
    ASSERT_TRUE(
        eventually([&] { return kind != 2 || under(cm, [&] { return in_cv == kWaiters; }); }));
    ASSERT_TRUE(c->all_blocked(kWaiters));
    if (kind == 0) m.reset();
    if (kind == 1) s.reset();
    if (kind == 2) cv.reset();
    if (kind == 3) e.reset();
    c->join();
    EXPECT_EQ(errors.load(), kWaiters);
    if (m) m->unlock();
  }
  EXPECT_FALSE(cm.locked());
}

INSTANTIATE_TEST_SUITE_P(sync, three_ways,
                         ::testing::Values(way::one_thread, way::four_threads, way::std_threads),
                         [](const auto& info) { return ::testing::PrintToString(info.param); });

// --- stress --------------------------------------------------------------------------------------

// 8 threads × 100 tasklets, each incrementing a plain counter kIncrements times under one mutex
// (switching inside the critical section every 4th time): the exact total. The threads start
// together.
TEST_F(sync_stress, eight_threads_of_100_tasklets_count_exactly_under_a_mutex) {
  sl::mutex m;
  long counter = 0;
  std::latch start(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      std::vector<tasklet> ts;
      start.arrive_and_wait();
      for (int i = 0; i < 100; ++i)
        ts.emplace_back([&] {
          for (int k = 0; k < kIncrements; ++k) {
            std::lock_guard g(m);
            const long v = counter;
            if (k % 4 == 0) sl::schedule();
            counter = v + 1;
          }
        });
      for (tasklet& x : ts) x.join();
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter, 8L * 100 * kIncrements);
  EXPECT_FALSE(m.locked());
}

// Two plain threads produce kItems numbered items each into a queue of 4 guarded by a mutex and
// two condition variables; 8 consumer tasklets on 2 threads take them. Every item arrives exactly
// once; a lost wake-up would show as a wait that runs into the hang guard.
TEST_F(sync_stress, condition_variable_producers_and_consumers_across_threads_lose_nothing) {
  constexpr int kTotal = 2 * kItems;
  constexpr std::size_t kCapacity = 4;
  sl::mutex m;
  sl::condition_variable not_empty, not_full;
  std::deque<int> queue;
  int popped = 0;
  std::vector<int> seen(kTotal, 0);
  auto consumer = [&] {
    std::unique_lock l(m);
    for (;;) {
      if (!not_empty.wait_for(l, kHangGuard, [&] { return !queue.empty() || popped == kTotal; })) {
        ADD_FAILURE() << "a consumer waited out the hang guard";
        return;
      }
      if (queue.empty()) return;  // all taken
      ++seen[queue.front()];
      queue.pop_front();
      if (++popped == kTotal) not_empty.notify_all();
      l.unlock();
      not_full.notify_one();
      l.lock();
    }
  };
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([&, p] {
      for (int j = 0; j < kItems; ++j) {
        std::unique_lock l(m);
        if (!not_full.wait_for(l, kHangGuard, [&] { return queue.size() < kCapacity; })) {
          ADD_FAILURE() << "a producer waited out the hang guard";
          return;
        }
        queue.push_back(p * kItems + j);
        l.unlock();
        not_empty.notify_one();
      }
    });
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      std::vector<tasklet> ts;
      for (int i = 0; i < 4; ++i) ts.emplace_back(consumer);
      for (tasklet& x : ts) x.join();
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(popped, kTotal);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), kTotal);
}

// A kill of a waiter of another thread, then at once a release that claims that waiter before
// its thread has taken the kill, so that both requests reach the thread together. The waiter must
// end every time: killed (the permit stays) or with the permit.
TEST_F(sync_stress, a_kill_then_a_release_for_a_waiter_of_another_thread) {
  for (int round = 0; round < kKillReleaseRounds; ++round) {
    sl::semaphore sem(0);
    std::atomic<int> got{0};
    crew c(way::four_threads, 1, [&](int) {
      sem.acquire();
      got.fetch_add(1);
    });
    ASSERT_TRUE(c.all_blocked(1));
    std::vector<tasklet> waiter = c.handles();  // released after the thread is joined
    waiter[0].kill(round % 2 == 0);
    sem.release();
    c.join();
    EXPECT_EQ(got.load() + sem.value(), 1);
  }
}

// remote_storm: kStormRounds rounds of 16 waiter tasklets over 4 threads, each calling take()
// once, while the controller (another thread) hands out wake-ups (give) and kills random waiters
// (now or pending); every 4 steps it waits until quiet(live): nothing handed out lies unused while
// a live waiter is blocked. A lost wake-up never gets quiet and runs into the hang guard. Then
// check(got) compares what was handed out with what was taken.
void remote_storm(unsigned seed, const std::function<void()>& take,
                  const std::function<void()>& give, const std::function<bool(int)>& quiet,
                  const std::function<void(int)>& check) {
  constexpr int kWaiters = 16;
  std::mt19937 rng(seed);
  for (int round = 0; round < kStormRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::atomic<int> live{kWaiters}, got{0}, killed{0};
    crew c(way::four_threads, kWaiters, [&](int) {
      struct leave {
        std::atomic<int>& live;
        ~leave() { live.fetch_sub(1); }
      } l{live};
      try {
        take();
      } catch (const tasklet_exit&) {
        killed.fetch_add(1);
        throw;
      }
      got.fetch_add(1);
    });
    std::vector<tasklet> waiters = c.handles();
    ASSERT_TRUE(
        c.all_blocked(kWaiters));  // all started (a waiter killed before it ran never counts)
    for (int step = 0; live.load() > 0; ++step) {
      if (rng() % 3 == 0)
        waiters[rng() % kWaiters].kill(rng() % 2 == 0);
      else
        give();
      if (step % 4 == 3) {
        ASSERT_TRUE(eventually([&] { return quiet(live.load()); })) << "lost at step " << step;
      }
    }
    c.join();
    EXPECT_EQ(got.load() + killed.load(), kWaiters);
    check(got.load());
  }
}

TEST_F(sync_stress, killing_semaphore_waiters_of_other_threads_loses_no_permit) {
  sl::semaphore sem(0);
  int released = 0;
  remote_storm(
      11, [&] { sem.acquire(); },
      [&] {
        sem.release();
        ++released;
      },
      [&](int live) { return sem.value() == 0 || live == 0; },
      [&](int got) {
        EXPECT_EQ(got + sem.value(), released);
        while (sem.try_acquire()) {
        }
        released = 0;
      });
}

TEST_F(sync_stress, killing_condition_waiters_of_other_threads_loses_no_notify) {
  sl::mutex m;
  sl::condition_variable cv;
  int tokens = 0, produced = 0;  // under m
  remote_storm(
      12,
      [&] {
        std::unique_lock l(m);
        cv.wait(l, [&] { return tokens > 0; });
        --tokens;
      },
      [&] {
        const int n = under(m, [&] {
          ++tokens;
          return ++produced;
        });
        n % 7 == 0 ? cv.notify_all() : cv.notify_one();
      },
      [&](int live) { return under(m, [&] { return tokens == 0 || live == 0; }); },
      [&](int got) {
        EXPECT_EQ(got + tokens, produced);
        tokens = produced = 0;
      });
}

// Mutex: 12 waiters over 4 threads block on a mutex held here; random ones are killed just
// before and just after the unlock; every live one must still get the lock.
TEST_F(sync_stress, killing_mutex_waiters_of_other_threads_loses_no_unlock) {
  constexpr int kWaiters = 12;
  std::mt19937 rng(13);
  sl::mutex m;
  for (int round = 0; round < kMutexRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    m.lock();
    std::atomic<int> live{kWaiters}, got{0}, killed{0};
    crew c(way::four_threads, kWaiters, [&](int) {
      struct leave {
        std::atomic<int>& live;
        ~leave() { live.fetch_sub(1); }
      } l{live};
      try {
        m.lock();
      } catch (const tasklet_exit&) {
        killed.fetch_add(1);
        throw;
      }
      got.fetch_add(1);
      m.unlock();
    });
    std::vector<tasklet> waiters = c.handles();
    ASSERT_TRUE(c.all_blocked(kWaiters));
    std::shuffle(waiters.begin(), waiters.end(), rng);
    const int before = static_cast<int>(rng() % 3), after = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < before; ++i) waiters[i].kill(i % 2 == 0);
    m.unlock();
    for (int i = before; i < before + after; ++i) waiters[i].kill(i % 2 == 0);
    ASSERT_TRUE(eventually([&] { return live.load() == 0; }))
        << "a wake-up was lost: live=" << live.load() << " locked=" << m.locked();
    c.join();
    EXPECT_EQ(got.load() + killed.load(), kWaiters);
    EXPECT_FALSE(m.locked());
  }
}

}  // namespace
