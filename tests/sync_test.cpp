// tests/sync_test.cpp — the locks of <stackless/sync.hpp> among the tasklets of one thread:
// blocking only the caller, barging, recursive_mutex owners, std::lock_guard/unique_lock/
// scoped_lock, semaphore counts and bounds, condition variables, events, latches, barriers; errors
// of misuse; destroying an object that tasklets wait on; a wake-up racing a kill or a timeout; and
// seeded random kill storms. CPython's lock_tests.py run three ways (one thread, 4 threads, plain
// threads) and the cross-thread stress tests are in sync_mt_test.cpp.
//
// Orders are derived from the run-queue model and asserted exactly. A release never switches
// (asserted with switch_trap): it makes the woken waiter runnable. run() returns once the queue is
// empty but waits for timed waits, so a test with a tasklet in a timed wait lets it block with
// schedule(). Timing tolerance of a timed wait that times out: at least the requested time, and
// less than 2 s. Under ASan/TSan the storms run 40 rounds instead of 200.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::expect_waited;
using stackless_testing::stopwatch;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using mutex_test = stackless_test;
using recursive_mutex_test = stackless_test;
using std_wrappers = stackless_test;
using semaphore_test = stackless_test;
using condition_test = stackless_test;
using event_test = stackless_test;
using barrier_test = stackless_test;
using destroyed = stackless_test;
using wake_race = stackless_test;
using kill_storm = stackless_test;

constexpr auto kShort = 30ms;  // a timed wait that is meant to time out
constexpr const char* kDeadlock = "Deadlock: the last runnable tasklet cannot be blocked.";

#if STACKLESS_TEST_ASAN || STACKLESS_TEST_TSAN
constexpr int kStormRounds = 40;
#else
constexpr int kStormRounds = 200;
#endif

// EXPECT_SYSTEM_ERROR: statement throws std::system_error with code `errc` and a message that
// contains `text` (the fix it names).
#define EXPECT_SYSTEM_ERROR(statement, errc, text)                    \
  do {                                                                \
    try {                                                             \
      statement;                                                      \
      ADD_FAILURE() << #statement " did not throw";                   \
    } catch (const std::system_error& e_) {                           \
      EXPECT_EQ(e_.code(), std::make_error_code(errc)) << #statement; \
      EXPECT_THAT(e_.what(), HasSubstr(text)) << #statement;          \
    }                                                                 \
  } while (0)

// spin_past busy-waits until t without switching, so no timer of this thread is processed.
void spin_past(std::chrono::steady_clock::time_point t) {
  while (std::chrono::steady_clock::now() <= t) {
  }
}

// --- mutex ---------------------------------------------------------------------------------------

// Unlike stacklesslib (which raised the count to 2), unlocking an unlocked mutex throws.
TEST_F(mutex_test, try_lock_locked_and_unlock_of_an_unlocked_mutex) {
  sl::mutex m;
  EXPECT_SYSTEM_ERROR(m.unlock(), std::errc::operation_not_permitted, "unlock only after lock");
  EXPECT_FALSE(m.locked());
  m.lock();
  EXPECT_TRUE(m.locked());
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  EXPECT_SYSTEM_ERROR(m.unlock(), std::errc::operation_not_permitted, "not locked");
  EXPECT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock());  // still one holder
  m.unlock();
}

// A waiter blocks only itself (a bystander runs); unlock wakes the first waiter without
// switching; barging: a newcomer may take the lock before the woken waiter runs, and that waiter
// then waits again at the front of the queue, so it still comes before the later waiter B.
TEST_F(mutex_test, contended_lock_blocks_only_the_tasklet_and_barging_keeps_the_woken_first) {
  sl::mutex m;
  m.lock();
  auto locker = [&](std::string name) {
    return [&, name] {
      log(name + " waits");
      m.lock();
      log(name + " has");
      m.unlock();
    };
  };
  tasklet a(locker("A")), b(locker("B"));
  tasklet bystander([&] { log("bystander"); });
  sl::run();
  EXPECT_EQ(a.blocked(), -1);
  EXPECT_EQ(b.blocked(), -1);
  {
    sl::switch_trap trap;
    m.unlock();                 // A is made runnable
    EXPECT_TRUE(m.try_lock());  // the newcomer barges in
  }
  sl::run();  // A loses and waits again, at the front
  EXPECT_EQ(a.blocked(), -1);
  m.unlock();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("A waits", "B waits", "bystander", "A has", "B has"));
  EXPECT_FALSE(m.locked());
}

// The only runnable tasklet locks a mutex it holds: nothing could ever unlock it. First main
// alone, then a tasklet that main joins.
TEST_F(mutex_test, double_lock_by_the_only_runnable_tasklet_is_a_deadlock) {
  sl::mutex m;
  m.lock();
  EXPECT_THROW_WHAT(m.lock(), sl::deadlock_error, kDeadlock);
  EXPECT_TRUE(m.locked());
  m.unlock();  // the failed waiter left no trace
  tasklet t([&] {
    std::lock_guard g(m);
    EXPECT_THROW_WHAT(m.lock(), sl::deadlock_error, kDeadlock);
  });
  t.join();
  EXPECT_FALSE(m.locked());
}

// A tasklet that may not block (block_trap) gets an error and leaves no waiter behind.
TEST_F(mutex_test, block_trap_refuses_a_contended_lock) {
  sl::mutex m;
  m.lock();
  tasklet t([&] {
    sl::current().set_block_trap(true);
    EXPECT_THROW_WHAT(m.lock(), sl::runtime_error, "this tasklet does not like to be blocked.");
    EXPECT_FALSE(m.try_lock());  // try_ forms never block
  });
  sl::run();
  EXPECT_FALSE(t.alive());
  m.unlock();
  EXPECT_FALSE(m.locked());
}

TEST_F(mutex_test, timed_lock_times_out_or_gets_the_lock_released_in_time) {
  sl::mutex m;
  m.lock();
  std::vector<bool> results;
  sl::event timed_out;
  tasklet t([&] {
    stopwatch sw;
    results.push_back(m.try_lock_for(kShort));
    expect_waited(sw, kShort);
    stopwatch sw2;
    results.push_back(m.try_lock_until(std::chrono::system_clock::now() + kShort));
    expect_waited(sw2, kShort);
    results.push_back(m.try_lock_for(0ms));
    timed_out.set();
    results.push_back(m.try_lock_for(10s));  // main unlocks meanwhile
    m.unlock();
  });
  timed_out.wait();
  m.unlock();
  t.join();
  EXPECT_THAT(results, ElementsAre(false, false, false, true));
  EXPECT_FALSE(m.locked());
}

// --- recursive_mutex -----------------------------------------------------------------------------

// Owners are tasklets: another tasklet of the same thread may neither enter nor unlock, and gets
// the lock only once the owner unlocked as often as it locked.
TEST_F(recursive_mutex_test, the_owner_is_a_tasklet) {
  sl::recursive_mutex rm;
  EXPECT_SYSTEM_ERROR(rm.unlock(), std::errc::operation_not_permitted, "does not own");
  rm.lock();
  rm.lock();
  EXPECT_TRUE(rm.try_lock());
  EXPECT_TRUE(rm.try_lock_for(1ms));
  rm.unlock();
  rm.unlock();
  sl::event timed_out;
  tasklet t([&] {
    EXPECT_FALSE(rm.try_lock());
    EXPECT_SYSTEM_ERROR(rm.unlock(), std::errc::operation_not_permitted,
                        "unlock in the tasklet that locked");
    stopwatch sw;
    EXPECT_FALSE(rm.try_lock_for(kShort));
    expect_waited(sw, kShort);
    timed_out.set();
    rm.lock();
    rm.lock();
    log("t has");
    rm.unlock();
  });
  timed_out.wait();  // t times out, sets the event and goes on to wait for the lock
  EXPECT_EQ(t.blocked(), -1);
  rm.unlock();
  sl::run();
  EXPECT_EQ(t.blocked(), -1);  // depth 1: still main's
  rm.unlock();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t has"));
  // t ended holding it at depth 1: t is still the owner.
  EXPECT_SYSTEM_ERROR(rm.unlock(), std::errc::operation_not_permitted, "does not own");
  EXPECT_FALSE(rm.try_lock());
}

// --- std::lock_guard, std::unique_lock, std::scoped_lock -----------------------------------------

TEST_F(std_wrappers, work_with_mutex_and_recursive_mutex) {
  sl::mutex m, m2;
  sl::recursive_mutex rm;
  {
    std::lock_guard g(m);
    std::lock_guard g2(rm), g3(rm);
    EXPECT_TRUE(m.locked());
  }
  EXPECT_FALSE(m.locked());
  {
    std::unique_lock l(m, std::try_to_lock);
    EXPECT_TRUE(l.owns_lock());
    std::unique_lock l2(m, std::try_to_lock);
    EXPECT_FALSE(l2.owns_lock());
    stopwatch sw;
    std::unique_lock l3(m, 10ms);  // try_lock_for: main alone waits for the deadline
    EXPECT_FALSE(l3.owns_lock());
    expect_waited(sw, 10ms);
    std::unique_lock l4(rm, std::defer_lock);
    EXPECT_TRUE(l4.try_lock_until(std::chrono::steady_clock::now() + 1ms));
  }
  {
    std::scoped_lock s(m, rm, m2);
    EXPECT_TRUE(m.locked());
    EXPECT_TRUE(m2.locked());
  }
  EXPECT_FALSE(m.locked());
  EXPECT_FALSE(m2.locked());
  std::lock(m, rm, m2);
  m.unlock();
  m2.unlock();
  rm.unlock();
  EXPECT_SYSTEM_ERROR(rm.unlock(), std::errc::operation_not_permitted, "does not own");
}

// Two tasklets take the same two locks in opposite orders through scoped_lock, switching while
// they hold them: no deadlock, and the critical sections never overlap.
TEST_F(std_wrappers, scoped_lock_in_opposite_orders_does_not_deadlock) {
  sl::mutex a;
  sl::recursive_mutex b;
  int inside = 0, done = 0;
  auto worker = [&](auto&... locks) {
    for (int i = 0; i < 50; ++i, schedule()) {
      std::scoped_lock s(locks...);
      EXPECT_EQ(++inside, 1);
      schedule();
      --inside;
      ++done;
    }
  };
  tasklet t1([&] { worker(a, b); }), t2([&] { worker(b, a); });
  sl::run();
  EXPECT_EQ(done, 100);
  EXPECT_FALSE(a.locked());
}

// --- semaphore and bounded_semaphore -------------------------------------------------------------

TEST_F(semaphore_test, counts_permits_and_rejects_invalid_arguments) {
  EXPECT_EQ(sl::semaphore().value(), 1);
  sl::semaphore s(3);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  s.acquire();
  EXPECT_FALSE(s.try_acquire());
  s.release(2);
  s.release(2);  // not bounded: may exceed the initial value
  EXPECT_EQ(s.value(), 4);
  EXPECT_THROW(s.release(0), std::invalid_argument);
  EXPECT_THROW(s.release(-2), std::invalid_argument);
  EXPECT_EQ(s.value(), 4);
  EXPECT_THROW(sl::semaphore(-1), std::invalid_argument);
  EXPECT_THROW(sl::bounded_semaphore(-1), std::invalid_argument);
}

// release(n) wakes up to n waiters, first come first served, without switching.
TEST_F(semaphore_test, release_wakes_waiters_in_order) {
  sl::semaphore s(0);
  std::vector<tasklet> waiters;
  for (int i = 0; i < 4; ++i)
    waiters.emplace_back([&, i] {
      s.acquire();
      log("w" + std::to_string(i));
    });
  sl::run();
  {
    sl::switch_trap trap;
    s.release(2);
  }
  sl::run();
  EXPECT_THAT(log_, ElementsAre("w0", "w1"));
  EXPECT_EQ(waiters[2].blocked(), -1);
  s.release(3);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("w0", "w1", "w2", "w3"));
  EXPECT_EQ(s.value(), 1);
}

TEST_F(semaphore_test, bounded_semaphore_refuses_to_exceed_its_initial_value) {
  sl::bounded_semaphore b(2);
  EXPECT_SYSTEM_ERROR(b.release(), std::errc::value_too_large, "release only what you acquired");
  EXPECT_EQ(b.value(), 2);
  b.acquire();
  EXPECT_SYSTEM_ERROR(b.release(2), std::errc::value_too_large, "bounded_semaphore::release");
  EXPECT_EQ(b.value(), 1);  // the release did not happen
  b.release();
  EXPECT_EQ(b.value(), 2);
}

// --- condition_variable --------------------------------------------------------------------------

// notify_one wakes the first waiter, notify_all the rest; the lock is free while they wait and
// held again when wait returns; a notify with nobody waiting is not remembered.
TEST_F(condition_test, notify_one_in_order_then_notify_all) {
  sl::mutex m;
  sl::condition_variable cv;
  cv.notify_one();
  std::vector<tasklet> waiters;
  for (int i = 0; i < 3; ++i)
    waiters.emplace_back([&, i] {
      std::unique_lock l(m);
      cv.wait(l);
      EXPECT_TRUE(l.owns_lock() && m.locked());
      log("w" + std::to_string(i));
    });
  sl::run();
  EXPECT_FALSE(m.locked());
  {
    sl::switch_trap trap;
    cv.notify_one();
  }
  sl::run();
  EXPECT_THAT(log_, ElementsAre("w0"));
  cv.notify_all();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("w0", "w1", "w2"));
}

TEST_F(condition_test, timed_waits_time_out_with_the_lock_held_again) {
  sl::recursive_mutex rm;
  sl::condition_variable cv;
  std::unique_lock l(rm);
  stopwatch sw;
  EXPECT_EQ(cv.wait_for(l, kShort), std::cv_status::timeout);
  expect_waited(sw, kShort);
  EXPECT_TRUE(l.owns_lock());
  stopwatch sw2;
  EXPECT_EQ(cv.wait_until(l, std::chrono::system_clock::now() + kShort), std::cv_status::timeout);
  expect_waited(sw2, kShort);
  int calls = 0;
  stopwatch sw3;
  EXPECT_FALSE(cv.wait_for(l, kShort, [&] { return ++calls > 100; }));
  expect_waited(sw3, kShort);
  EXPECT_EQ(calls, 2);  // before the wait and after the timeout
  EXPECT_TRUE(cv.wait_until(l, std::chrono::steady_clock::now() + 10s, [] { return true; }));
}

// CPython's test_waitfor in one thread: the predicate is checked again after every notify.
TEST_F(condition_test, predicate_wait_returns_when_it_holds) {
  sl::mutex m;
  sl::condition_variable cv;
  int state = 0;
  std::optional<bool> result;
  tasklet waiter([&] {
    std::unique_lock l(m);
    result = cv.wait_for(l, 10s, [&] {
      log("check " + std::to_string(state));
      return state == 3;
    });
  });
  schedule();
  for (int i = 0; i < 3; ++i) {
    {
      std::lock_guard g(m);
      ++state;
    }
    cv.notify_one();
    schedule();
  }
  waiter.join();
  EXPECT_EQ(result, true);
  EXPECT_THAT(log_, ElementsAre("check 0", "check 1", "check 2", "check 3"));
}

TEST_F(condition_test, waiting_without_the_lock_throws) {
  sl::mutex m;
  sl::condition_variable cv;
  std::unique_lock l(m, std::defer_lock);
  EXPECT_SYSTEM_ERROR(cv.wait(l), std::errc::operation_not_permitted, "lock it before waiting");
  EXPECT_SYSTEM_ERROR((void)cv.wait_for(l, 1ms), std::errc::operation_not_permitted,
                      "condition_variable::wait");
  EXPECT_FALSE(m.locked());
}

// --- event, latch --------------------------------------------------------------------------------

TEST_F(event_test, set_clear_and_timed_waits) {
  sl::event e;
  stopwatch sw;
  EXPECT_FALSE(e.wait_until(std::chrono::system_clock::now() + kShort));
  expect_waited(sw, kShort);
  e.set();
  sl::switch_trap trap;  // a set event never blocks
  EXPECT_TRUE(e.is_set() && e.wait() && e.wait_for(0ms));
  e.clear();
  EXPECT_FALSE(e.is_set() || e.wait_for(0ms));
}

// set() wakes every waiter; a waiter woken by set() returns true even if clear() came before it
// ran (CPython issue 13502; stacklesslib returned false).
TEST_F(event_test, set_wakes_all_and_a_clear_before_they_run_does_not_take_it_back) {
  sl::event e;
  std::vector<bool> results;
  std::vector<tasklet> waiters;
  for (int i = 0; i < 3; ++i) waiters.emplace_back([&] { results.push_back(e.wait()); });
  waiters.emplace_back([&] { results.push_back(e.wait_for(10s)); });
  schedule();  // all four wait
  {
    sl::switch_trap trap;
    e.set();
    e.clear();
  }
  sl::run();
  EXPECT_THAT(results, ElementsAre(true, true, true, true));
}

TEST_F(event_test, latch_counts_down_and_releases_waiters) {
  sl::latch l(3);
  EXPECT_FALSE(l.try_wait());
  tasklet w1([&] {
    l.wait();
    log("w1");
  });
  tasklet w2([&] {
    l.arrive_and_wait();  // 3 -> 2
    log("w2");
  });
  sl::run();
  l.count_down(2);
  EXPECT_TRUE(l.try_wait());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("w1", "w2"));
  EXPECT_THROW(l.count_down(), std::invalid_argument);
  EXPECT_TRUE(l.try_wait()) << "a count_down that throws changed the count";
  EXPECT_THROW(sl::latch(-1), std::invalid_argument);
  EXPECT_TRUE(sl::latch(0).try_wait());
  sl::latch never(1);
  stopwatch sw;
  EXPECT_FALSE(never.wait_for(kShort));
  expect_waited(sw, kShort);
}

// --- barrier -------------------------------------------------------------------------------------

// CPython test_single_thread.
TEST_F(barrier_test, one_party_passes_at_once) {
  sl::barrier b(1);
  EXPECT_EQ(b.arrive_and_wait(), 0);
  EXPECT_EQ(b.arrive_and_wait(), 0);
  EXPECT_EQ(b.parties(), 1);
  EXPECT_THROW(sl::barrier(0), std::invalid_argument);
}

// Arrival indices follow the run order; the last to arrive runs the completion function before
// anyone continues. In round 2, b (released last) arrives first: its exit from round 1 re-armed
// the barrier and woke c and a, which waited for round 1 to drain.
TEST_F(barrier_test, indices_and_completion_in_run_order) {
  sl::barrier b(3, [&] { log("completion in " + stackless_testing::label(sl::current())); });
  std::vector<tasklet> ts;
  for (const char* name : {"a", "b", "c"})
    ts.emplace_back(
        [&, name] {
          for (int round = 0; round < 2; ++round)
            log(name + (" " + std::to_string(b.arrive_and_wait())));
        },
        sl::tasklet_options{.name = name});
  sl::run();
  EXPECT_THAT(log_, ElementsAre("completion in c", "c 2", "a 0", "b 1", "completion in a", "a 2",
                                "b 0", "c 1"));
  EXPECT_EQ(b.n_waiting(), 0);
  EXPECT_FALSE(b.broken());
}

// A completion function that throws breaks the barrier: the last arriver gets its exception, the
// others barrier_broken, and so does every later arrival until reset().
TEST_F(barrier_test, throwing_completion_breaks_it_until_reset) {
  bool fail = true;
  sl::barrier b(3, [&] {
    if (fail) throw std::logic_error("completion failed");
  });
  std::vector<std::string> outcomes;
  auto party = [&] {
    try {
      outcomes.push_back(std::to_string(b.arrive_and_wait()));
    } catch (const sl::barrier_broken& e) {
      outcomes.push_back("broken");
      EXPECT_STREQ(e.what(), "barrier_broken: the barrier was broken; reset() it to reuse");
    } catch (const std::logic_error& e) {
      outcomes.push_back(e.what());
    }
  };
  for (int round = 0; round < 2; ++round) {
    std::vector<tasklet> ts;
    for (int i = 0; i < 3; ++i) ts.emplace_back(party);
    sl::run();
    if (round == 0) {
      EXPECT_TRUE(b.broken());
      EXPECT_THROW(b.arrive_and_wait(), sl::barrier_broken);
      b.reset();
      fail = false;
    }
  }
  EXPECT_THAT(outcomes, ElementsAre("completion failed", "broken", "broken", "2", "0", "1"));
  EXPECT_FALSE(b.broken());
}

// --- destroying an object that tasklets wait on --------------------------------------------------

// Two tasklets wait on each kind of object; destroying it makes both waits throw runtime_error
// "<what> was destroyed while a tasklet waited on it" (what: the object whose queue they were in).
TEST_F(destroyed, an_object_wakes_its_waiters_with_an_error) {
  sl::mutex cm;
  struct kind {
    std::string what;
    std::function<void()> wait, destroy;
  };
  auto m = std::make_unique<sl::mutex>();
  auto rm = std::make_unique<sl::recursive_mutex>();
  auto s = std::make_unique<sl::semaphore>(0);
  auto b = std::make_unique<sl::bounded_semaphore>(0);
  auto cv = std::make_unique<sl::condition_variable>();
  auto e = std::make_unique<sl::event>();
  auto l = std::make_unique<sl::latch>(1);
  m->lock();
  rm->lock();
  const std::vector<kind> kinds = {
      {"mutex", [&] { m->lock(); }, [&] { m.reset(); }},
      {"mutex", [&] { rm->lock(); }, [&] { rm.reset(); }},
      {"semaphore", [&] { s->acquire(); }, [&] { s.reset(); }},
      {"semaphore", [&] { b->acquire(); }, [&] { b.reset(); }},
      {"condition_variable",
       [&] {
         std::unique_lock g(cm);
         cv->wait(g);
       },
       [&] { cv.reset(); }},
      {"event", [&] { e->wait(); }, [&] { e.reset(); }},
      {"event", [&] { l->wait(); }, [&] { l.reset(); }},  // a latch waits on its event
  };
  for (const kind& k : kinds) {
    std::vector<std::string> errors;
    auto waiter = [&] {
      try {
        k.wait();
        errors.push_back("returned");
      } catch (const sl::runtime_error& err) {
        errors.push_back(err.what());
      }
    };
    tasklet w1(waiter), w2(waiter);
    sl::run();
    EXPECT_EQ(w1.blocked(), -1);
    k.destroy();
    sl::run();
    const std::string expected = k.what + " was destroyed while a tasklet waited on it";
    EXPECT_THAT(errors, ElementsAre(expected, expected));
  }
  EXPECT_FALSE(cm.locked());
}

// --- a wake-up racing a kill or a timeout --------------------------------------------------------

// A woken waiter that is killed before it runs passes the wake-up on to the next waiter, for
// semaphore, mutex and condition_variable; with kill(pending=true) too.
TEST_F(wake_race, a_woken_waiter_that_is_killed_passes_the_wake_up_on) {
  for (bool pending : {false, true}) {
    sl::semaphore s(0);
    sl::mutex m, cm;
    sl::condition_variable cv;
    m.lock();
    const std::vector<std::pair<std::function<void()>, std::function<void()>>> kinds = {
        {[&] { s.acquire(); }, [&] { s.release(); }},
        {[&] { m.lock(); }, [&] { m.unlock(); }},
        {[&] {
           std::unique_lock l(cm);
           EXPECT_EQ(cv.wait_for(l, 10s), std::cv_status::no_timeout);
         },
         [&] { cv.notify_one(); }},
    };
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      SCOPED_TRACE("kind " + std::to_string(i) + (pending ? ", pending kill" : ""));
      log_.clear();
      auto body = [&](std::string name) {
        return [&, name] {
          try {
            kinds[i].first();
            log(name + " got");
          } catch (const tasklet_exit&) {
            log(name + " killed");
            throw;
          }
        };
      };
      tasklet a(body("A")), b(body("B"));
      schedule();  // both wait (the cv waiters in timed waits)
      ASSERT_EQ(b.blocked(), -1);
      kinds[i].second();  // A is made runnable
      EXPECT_EQ(a.blocked(), 0);
      a.kill(pending);
      b.join();
      EXPECT_THAT(log_, ElementsAre("A killed", "B got"));
    }
    EXPECT_TRUE(m.locked());  // B's
    m.unlock();
    EXPECT_EQ(s.value(), 0);
  }
}

// The deadline passed but the thread has not processed A's timer yet when the release comes:
// the release wins and A's timed wait succeeds.
TEST_F(wake_race, a_release_after_the_deadline_but_before_the_timer_fired_is_taken) {
  sl::semaphore s(0);
  sl::mutex m;
  m.lock();
  std::vector<bool> results;
  tasklet a([&] {
    results.push_back(s.try_acquire_for(20ms));
    results.push_back(m.try_lock_for(20ms));
  });
  for (int i = 0; i < 2; ++i) {
    schedule();  // A waits
    spin_past(std::chrono::steady_clock::now() + 21ms);
    sl::switch_trap trap;
    i == 0 ? s.release() : m.unlock();
  }
  a.join();
  EXPECT_THAT(results, ElementsAre(true, true));
  EXPECT_EQ(s.value(), 0);
  m.unlock();  // A's
}

// A's timer has fired (A is runnable with a timeout) when X — whose earlier timer fired in the
// same pass, so X runs first — releases: the release is not lost and A's wait succeeds. For
// semaphore, mutex, condition_variable (predicate form) and event.
TEST_F(wake_race, a_release_after_the_timer_fired_but_before_the_waiter_ran_is_taken) {
  sl::semaphore s(0);
  sl::mutex m, cm;
  sl::condition_variable cv;
  sl::event e;
  bool ready = false;
  m.lock();
  const std::vector<std::pair<std::function<bool()>, std::function<void()>>> cases = {
      {[&] { return s.try_acquire_for(30ms); }, [&] { s.release(); }},
      {[&] { return m.try_lock_for(30ms); }, [&] { m.unlock(); }},
      {[&] {
         std::unique_lock l(cm);
         return cv.wait_for(l, 30ms, [&] { return ready; });
       },
       [&] {
         {
           std::lock_guard g(cm);
           ready = true;
         }
         cv.notify_one();
       }},
      {[&] { return e.wait_for(30ms); }, [&] { e.set(); }},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    std::optional<bool> result;
    tasklet a([&] { result = cases[i].first(); });
    schedule();  // A waits until t0 + 30 ms at most
    const auto t0 = std::chrono::steady_clock::now();
    tasklet x([&] {
      sl::sleep_until(t0 + 1ms);
      cases[i].second();
    });
    schedule();            // X sleeps
    spin_past(t0 + 31ms);  // both deadlines pass; no timer is processed meanwhile
    a.join();              // both timers fire in deadline order: X runs first, then A
    EXPECT_EQ(result, true);
  }
  EXPECT_EQ(s.value(), 0);
  m.unlock();  // A's
}

// A waiter whose timeout fired is killed before it runs; the next release reaches the other one.
TEST_F(wake_race, a_waiter_killed_after_its_timeout_fired_leaves_no_trace) {
  sl::semaphore s(0);
  tasklet a([&] {
    (void)s.try_acquire_for(20ms);
    log("A returned");
  });
  tasklet b([&] {
    s.acquire();
    log("B got");
  });
  schedule();
  const auto t0 = std::chrono::steady_clock::now();
  tasklet x([&] {
    sl::sleep_until(t0 + 1ms);
    a.kill();
    s.release();
  });
  schedule();
  spin_past(t0 + 21ms);
  b.join();
  EXPECT_THAT(log_, ElementsAre("B got"));
  EXPECT_EQ(s.value(), 0);
}

// --- random kill storms --------------------------------------------------------------------------

// storm runs kStormRounds rounds of 8 waiters, each calling take() once, and random steps: give()
// (a release), a kill of a random waiter (now or pending), or run(). After every run() every live
// waiter is blocked, so quiet() must hold: nothing given lies unused while a live waiter waits.
struct storm_round {
  int live = 0, got = 0, killed = 0;
};

void storm(unsigned seed, const std::function<void()>& start_round,
           const std::function<void()>& take, const std::function<void()>& give,
           const std::function<bool(const storm_round&)>& quiet,
           const std::function<void(const storm_round&)>& check) {
  constexpr int kWaiters = 8;
  std::mt19937 rng(seed);
  for (int round = 0; round < kStormRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    start_round();
    storm_round r;
    std::vector<tasklet> waiters;
    for (int i = 0; i < kWaiters; ++i)
      waiters.emplace_back([&] {
        ++r.live;
        struct leave {
          int& live;
          ~leave() { --live; }
        } l{r.live};
        try {
          take();
        } catch (const tasklet_exit&) {
          ++r.killed;
          throw;
        }
        ++r.got;
      });
    sl::run();
    ASSERT_EQ(r.live, kWaiters);
    while (r.live > 0) {
      const unsigned step = rng() % 5;
      if (step < 2) {
        give();
      } else if (step < 4) {
        waiters[rng() % kWaiters].kill(step == 3);
      } else {
        sl::run();
        ASSERT_TRUE(quiet(r)) << "a wake-up was lost: live=" << r.live;
      }
    }
    sl::run();
    EXPECT_EQ(r.got + r.killed, kWaiters);
    check(r);
  }
}

TEST_F(kill_storm, semaphore) {
  std::unique_ptr<sl::semaphore> s;
  int released = 0;
  storm(
      1,
      [&] {
        s = std::make_unique<sl::semaphore>(0);
        released = 0;
      },
      [&] { s->acquire(); },
      [&] {
        s->release();
        ++released;
      },
      [&](const storm_round& r) { return s->value() == 0 || r.live == 0; },
      [&](const storm_round& r) { EXPECT_EQ(r.got + s->value(), released); });
}

// main holds the mutex at the start of a round; give() unlocks it, or takes it again (barging).
TEST_F(kill_storm, mutex) {
  sl::mutex m;
  bool main_holds = false;
  storm(
      2,
      [&] {
        m.lock();
        main_holds = true;
      },
      [&] {
        m.lock();
        m.unlock();
      },
      [&] {
        if (main_holds || m.try_lock()) {
          if (main_holds) m.unlock();
          main_holds = !main_holds;
        }
      },
      [&](const storm_round& r) { return main_holds || r.live == 0; },
      [&](const storm_round&) {
        EXPECT_EQ(m.locked(), main_holds);
        if (main_holds) m.unlock();
      });
}

// give() adds a token and notifies one waiter (every 7th time all of them).
TEST_F(kill_storm, condition_variable) {
  sl::mutex m;
  sl::condition_variable cv;
  int tokens = 0, produced = 0;
  storm(
      3, [&] { tokens = produced = 0; },
      [&] {
        std::unique_lock l(m);
        cv.wait(l, [&] { return tokens > 0; });
        --tokens;
      },
      [&] {
        {
          std::lock_guard g(m);
          ++tokens;
        }
        ++produced % 7 == 0 ? cv.notify_all() : cv.notify_one();
      },
      [&](const storm_round& r) { return tokens == 0 || r.live == 0; },
      [&](const storm_round& r) { EXPECT_EQ(r.got + tokens, produced); });
}

}  // namespace
