// tests/thread_mt_test.cpp — threads in the default (free) threading model (reference §5, §1.6):
// channels between tasklets of different threads, insert/run/remove/kill/throw on another thread's
// tasklet, the remote run order of §5, switch_to and bind_thread across threads, a thread's main
// tasklet blocked on a channel and served by another thread, parking and the deadlock rule, thread
// exit with tasklets blocked, paused and runnable, and 4 threads × 1,000 tasklets exchanging
// 1,000,000 messages. Global-lock mode needs configure() before the runtime is used, so it has its
// own executable (global_lock_mt_test.cpp).
//
// Determinism: no test sleeps to order events. A thread waits for another through channels,
// joins, or std::atomic flags polled with eventually(); the polls' time limit is only a hang
// guard. A thread reads another thread's tasklet predicates only after synchronizing with it
// (a join, an acquire of a flag the other set after the state change, or a channel hand-off).
// Every std::thread is joined before the test body ends, so the leak check of the fixture's
// TearDown (memory_stats() counts all threads) sees their work finished.
//
// "The caller never switches" is asserted with a switch_trap around the call: any switch of the
// calling thread would throw runtime_error("switch_trap"), while waking another thread is allowed.
//
// Exceptions across threads: libstdc++ is not built with ThreadSanitizer, which therefore cannot
// see the atomic reference count of an exception object. When A drops the last reference to an
// exception that B has already caught and read, it reports B's reads racing with A's free. So a
// test that throws into (or sends an exception to) another thread keeps that thread out of the
// runtime until the throwing call has returned — A's temporary references are gone before B
// handles the exception — or holds the exception_ptr until the thread is joined.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <stdexcept>
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
using sl::current;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::tracker;
using ::testing::ElementsAre;

using cross_thread_channel = stackless_test;
using remote_tasklet = stackless_test;
using remote_run_order = stackless_test;
using bind_thread = stackless_test;
using parking = stackless_test;
using thread_exit = stackless_test;
using thread_stress = stackless_test;

// flag: a one-shot signal between threads (set with release, read with acquire).
struct flag {
  std::atomic<bool> value{false};
  void set() { value.store(true, std::memory_order_release); }
  bool is_set() const { return value.load(std::memory_order_acquire); }
  bool wait() const {
    return eventually([this] { return is_set(); });
  }
};

// on_exit: counts its destruction (an RAII object inside a tasklet body: it is destroyed when
// the tasklet returns or unwinds).
struct on_exit {
  std::atomic<int>* count;
  ~on_exit() { count->fetch_add(1, std::memory_order_relaxed); }
};

// --- channels across threads ---------------------------------------------------------------------

// [verified §5 T1] B's main tasklet blocks in receive(); as another thread exists, B parks
// instead of failing with a deadlock. A's send() completes at once without switching (the partner
// is made runnable in its own thread), and B then has the value.
TEST_F(cross_thread_channel, main_blocked_in_receive_is_served_by_another_thread) {
  channel<int> ch;
  std::atomic<int> got{0};
  os_thread b([&] { got.store(ch.receive(), std::memory_order_relaxed); });
  ASSERT_TRUE(eventually([&] { return ch.balance() == -1; }));
  {
    sl::switch_trap trap;
    ch.send(42);
  }
  b.join();
  EXPECT_EQ(got.load(), 42);
  EXPECT_EQ(ch.balance(), 0);
}

// The mirror image: B's main blocks in send(); A's receive() takes the value without switching.
TEST_F(cross_thread_channel, main_blocked_in_send_is_served_by_another_thread) {
  channel<std::string> ch;
  flag sent;
  os_thread b([&] {
    ch.send(std::string(100, 'x'));
    sent.set();
  });
  ASSERT_TRUE(eventually([&] { return ch.balance() == 1; }));
  std::string v;
  {
    sl::switch_trap trap;
    v = ch.receive();
  }
  b.join();
  EXPECT_TRUE(sent.is_set());
  EXPECT_EQ(v, std::string(100, 'x'));
}

// §5: preference is ignored across threads and so is schedule_all: whichever side acts, the
// waiting partner of the other thread is made runnable there and the caller continues. The
// caller's own runnable tasklet does not run during the operation either.
TEST_F(cross_thread_channel, hand_off_never_switches_whatever_preference_and_schedule_all) {
  struct setting {
    int preference;
    bool schedule_all;
  };
  const std::vector<setting> settings = {
      {-1, false}, {0, false}, {1, false}, {-1, true}, {1, true}};
  channel<int> to_b, from_b;
  const int rounds = static_cast<int>(settings.size());
  std::vector<int> b_got;
  os_thread b([&] {
    // A tasklet of B waits on each channel in turn (B's main waits in join, parked).
    tasklet worker([&] {
      for (int i = 0; i < rounds; ++i) {
        b_got.push_back(to_b.receive());
        from_b.send(100 + i);
      }
    });
    worker.join();
  });
  bool bystander_ran = false;
  for (int i = 0; i < rounds; ++i) {
    to_b.set_preference(settings[i].preference);
    to_b.set_schedule_all(settings[i].schedule_all);
    from_b.set_preference(settings[i].preference);
    from_b.set_schedule_all(settings[i].schedule_all);
    tasklet bystander([&] { bystander_ran = true; });
    ASSERT_TRUE(eventually([&] { return to_b.balance() == -1; })) << "round " << i;
    {
      sl::switch_trap trap;
      to_b.send(i);  // B's receiver waits: completes at once
    }
    ASSERT_TRUE(eventually([&] { return from_b.balance() == 1; })) << "round " << i;
    int v = 0;
    {
      sl::switch_trap trap;
      v = from_b.receive();  // B's sender waits: completes at once
    }
    EXPECT_EQ(v, 100 + i);
    EXPECT_FALSE(bystander_ran) << "round " << i;
    sl::run();
    EXPECT_TRUE(bystander_ran);
    bystander_ran = false;
  }
  b.join();
  EXPECT_THAT(b_got, ElementsAre(0, 1, 2, 3, 4));
}

// When A acts first, A blocks; its partner in B completes the wait and A resumes in its own thread
// (here A's main: its thread parks meanwhile). Values are moved across, never copied.
TEST_F(cross_thread_channel, a_blocked_main_is_completed_by_a_tasklet_of_another_thread) {
  channel<std::unique_ptr<int>> ch;
  channel<int> back;
  const int* address = nullptr;  // written by A before its send, read by B after its receive
  std::atomic<bool> same_object{false};
  os_thread b([&] {
    tasklet worker([&] {
      std::unique_ptr<int> p = ch.receive();
      same_object.store(p.get() == address);
      back.send(*p + 1);
    });
    worker.join();  // B's main waits, parked whenever the worker waits for A
  });
  auto p = std::make_unique<int>(41);
  address = p.get();
  ch.send(std::move(p));  // blocks A's main until B's tasklet receives (or completes at once)
  EXPECT_EQ(back.receive(), 42);
  b.join();
  EXPECT_TRUE(same_object.load());
}

// send_exception across threads: B's receiver throws what A sent; the sender does not. (B stays
// out of the runtime until A's send has returned; see "Exceptions across threads" at the top.)
TEST_F(cross_thread_channel, an_exception_sent_to_another_thread_is_thrown_by_its_receiver) {
  channel<int> ch;
  std::atomic<bool> caught{false};
  flag go;
  os_thread b([&] {
    tasklet receiver([&] {
      try {
        ch.receive();
      } catch (const std::out_of_range& e) {
        caught.store(std::string(e.what()) == "from A");
      }
    });
    sl::run();  // the receiver blocks
    go.wait();
    receiver.join();
  });
  ASSERT_TRUE(eventually([&] { return ch.balance() == -1; }));
  {
    sl::switch_trap trap;
    ch.send_exception<std::out_of_range>("from A");
  }
  go.set();
  b.join();
  EXPECT_TRUE(caught.load());
}

// A tasklet joins a tasklet of another thread: join() returns when that one ends there.
TEST_F(cross_thread_channel, join_waits_for_a_tasklet_of_another_thread) {
  channel<int> ch;
  std::atomic<int> ended{0};
  tasklet remote;
  flag published;
  os_thread b([&] {
    remote = tasklet([&] {
      on_exit e{&ended};
      ch.receive();
    });
    published.set();
    sl::run();      // the tasklet blocks: run() returns (nothing else to run here)
    remote.join();  // B's main waits too, parked, until A's send completes the receive
  });
  ASSERT_TRUE(published.wait());
  tasklet t = remote;
  ASSERT_TRUE(eventually([&] { return ch.balance() == -1; }));
  ch.send(1);
  t.join();  // A's main waits for B's tasklet
  EXPECT_EQ(ended.load(), 1);
  EXPECT_FALSE(t.alive());
  b.join();
  remote = tasklet();
}

// --- insert / run / remove / kill / throw on another thread's tasklet ------------------------

// A thread whose main waits in join() on its own paused tasklet parks; insert() from another
// thread appends that tasklet there and wakes the thread, which runs it. The caller's run queue
// is unchanged and the caller does not switch.
TEST_F(remote_tasklet, insert_wakes_the_owner_which_runs_the_tasklet) {
  tasklet paused;
  flag published;
  std::atomic<bool> ran_in_b{false};
  os_thread b([&] {
    const std::thread::id me = std::this_thread::get_id();
    paused =
        tasklet([&, me] { ran_in_b.store(std::this_thread::get_id() == me); }, {.start = false});
    published.set();
    paused.join();  // B's main: blocked, B parks until the tasklet is made runnable
  });
  ASSERT_TRUE(published.wait());
  tasklet t = paused;
  const int before = sl::runcount();
  {
    sl::switch_trap trap;
    t.insert();
  }
  EXPECT_EQ(sl::runcount(), before);
  b.join();
  EXPECT_TRUE(ran_in_b.load());
  EXPECT_FALSE(t.alive());
  paused = tasklet();
}

// run() on another thread's tasklet makes it the next to run there; the caller continues.
TEST_F(remote_tasklet, run_makes_it_run_in_its_own_thread_and_the_caller_continues) {
  tasklet paused;
  flag published;
  std::atomic<bool> ran_in_b{false};
  os_thread b([&] {
    const std::thread::id me = std::this_thread::get_id();
    paused =
        tasklet([&, me] { ran_in_b.store(std::this_thread::get_id() == me); }, {.start = false});
    published.set();
    paused.join();
  });
  ASSERT_TRUE(published.wait());
  tasklet t = paused;
  {
    sl::switch_trap trap;
    t.run();
  }
  EXPECT_TRUE(current().is_main());
  b.join();
  EXPECT_TRUE(ran_in_b.load());
  paused = tasklet();
}

// remove() on another thread's runnable tasklet takes it out of that thread's queue (it becomes
// paused); a later insert() puts it back. B stays out of the runtime (spinning on a flag) while A
// posts, so B sees each request before it could run the tasklet.
TEST_F(remote_tasklet, remove_pauses_a_runnable_tasklet_and_insert_resumes_it) {
  tasklet queued;
  flag published, removed, checked, inserted;
  std::atomic<int> runs{0};
  std::atomic<bool> paused_after_remove{false};
  std::atomic<int> runcount_after_remove{0};
  os_thread b([&] {
    queued = tasklet([&] { runs.fetch_add(1); });  // runnable, never ran
    published.set();
    removed.wait();
    sl::run();  // takes the posted remove(): nothing left to run
    paused_after_remove.store(queued.paused());
    runcount_after_remove.store(sl::runcount());
    checked.set();
    inserted.wait();
    sl::run();  // takes the posted insert(): runs it
  });
  ASSERT_TRUE(published.wait());
  tasklet t = queued;
  {
    sl::switch_trap trap;
    t.remove();
  }
  removed.set();
  ASSERT_TRUE(checked.wait());
  EXPECT_TRUE(paused_after_remove.load());
  EXPECT_EQ(runcount_after_remove.load(), 1);
  EXPECT_EQ(runs.load(), 0);
  t.insert();
  inserted.set();
  b.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_FALSE(t.alive());
  queued = tasklet();
}

// §5: kill() of another thread's blocked tasklet always behaves as pending — the caller does not
// switch, the tasklet is unblocked and dies in its own thread (RAII runs) — and it is unlinked
// from its channel: a later send finds no receiver (a killed waiter is never resumed,
// pypy/pypy#2595).
TEST_F(remote_tasklet, kill_of_a_blocked_tasklet_unlinks_it_from_its_channel) {
  channel<int> ch;
  tasklet victim;
  flag published, go;
  std::atomic<int> unwound{0};
  std::atomic<bool> received{false};
  os_thread b([&] {
    victim = tasklet([&] {
      on_exit e{&unwound};
      ch.receive();
      received.store(true);
    });
    sl::run();  // the victim blocks
    published.set();
    go.wait();
    victim.join();  // takes the kill: the victim dies here
  });
  ASSERT_TRUE(published.wait());
  tasklet t = victim;
  EXPECT_EQ(t.blocked(), -1);
  EXPECT_EQ(ch.balance(), -1);
  {
    sl::switch_trap trap;
    t.kill();  // not pending, but across threads it is anyway
  }
  go.set();
  b.join();
  EXPECT_EQ(unwound.load(), 1);
  EXPECT_FALSE(received.load());
  EXPECT_FALSE(t.alive());
  EXPECT_EQ(t.blocked(), 0);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_FALSE(ch.queue());
  int v = 5;
  EXPECT_FALSE(ch.try_send(v));
  EXPECT_EQ(v, 5);
  victim = tasklet();
}

// throw_exception and raise_exception into another thread's blocked tasklet: thrown where it
// waits, in its own thread; the tasklet may catch it and go on.
TEST_F(remote_tasklet, throw_into_a_blocked_tasklet_is_thrown_where_it_waits) {
  channel<int> ch;
  tasklet catcher;
  flag published, go1, handled1, go2;
  std::vector<std::string> b_log;  // written by B only, read after the join
  os_thread b([&] {
    catcher = tasklet([&] {
      for (int i = 0; i < 2; ++i) {
        try {
          ch.receive();
          b_log.push_back("received");
        } catch (const std::invalid_argument& e) {
          b_log.push_back(std::string("invalid_argument ") + e.what());
        } catch (const std::range_error& e) {
          b_log.push_back(std::string("range_error ") + e.what());
        }
      }
    });
    sl::run();  // the catcher blocks
    published.set();
    go1.wait();
    sl::run();  // takes the first exception; the catcher handles it and blocks again
    handled1.set();
    go2.wait();
    catcher.join();  // takes the second one; the catcher ends
  });
  ASSERT_TRUE(published.wait());
  tasklet t = catcher;
  {
    sl::switch_trap trap;
    t.throw_exception(std::make_exception_ptr(std::invalid_argument("one")));
  }
  go1.set();
  ASSERT_TRUE(handled1.wait());
  EXPECT_EQ(t.blocked(), -1);
  {
    sl::switch_trap trap;
    t.raise_exception<std::range_error>("two");
  }
  go2.set();
  b.join();
  EXPECT_THAT(b_log, ElementsAre("invalid_argument one", "range_error two"));
  catcher = tasklet();
}

// Killing another thread's tasklet that never ran ends it without running its code; its callable
// is destroyed in its own thread.
TEST_F(remote_tasklet, kill_of_a_never_started_tasklet_ends_it_without_running_it) {
  tasklet fresh;
  flag published, go;
  std::atomic<bool> ran{false};
  int destroyed = 0;  // written by B (the callable dies there), read after the join
  os_thread b([&] {
    fresh = tasklet([&ran, t = tracker(&destroyed)] { ran.store(true); }, {.start = false});
    published.set();
    go.wait();
    fresh.join();
  });
  ASSERT_TRUE(published.wait());
  tasklet t = fresh;
  t.kill();
  go.set();
  b.join();
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(destroyed, 1);
  EXPECT_FALSE(t.alive());
  fresh = tasklet();
}

// Stackless loses a kill aimed at the *running* tasklet of another thread (the bomb is
// overwritten at its next schedule, reference §7). Here it is not lost: the tasklet, running
// while the kill is posted, dies at its next switch point.
TEST_F(remote_tasklet, kill_of_the_running_tasklet_of_another_thread_is_not_lost) {
  tasklet spinner;
  flag published, running, go;
  std::atomic<int> unwound{0};
  std::atomic<int> rounds{0};
  os_thread b([&] {
    spinner = tasklet([&] {
      on_exit e{&unwound};
      running.set();
      go.wait();  // B's current, outside the runtime, while A kills it
      for (int i = 0; i < 1'000; ++i) {
        rounds.fetch_add(1);
        schedule();  // the first switch point takes the kill
      }
    });
    published.set();
    spinner.join();
  });
  ASSERT_TRUE(published.wait());
  tasklet t = spinner;
  ASSERT_TRUE(running.wait());
  EXPECT_TRUE(t.is_current());
  t.kill();
  go.set();
  b.join();
  EXPECT_EQ(unwound.load(), 1);
  EXPECT_EQ(rounds.load(), 1);
  EXPECT_FALSE(t.alive());
  spinner = tasklet();
}

// §5: switch_to() cannot go to another thread's tasklet.
TEST_F(remote_tasklet, switch_to_a_tasklet_of_another_thread_throws) {
  tasklet fresh;
  flag published, done;
  std::atomic<bool> ran{false};
  os_thread b([&] {
    fresh = tasklet([&] { ran.store(true); }, {.start = false});
    published.set();
    done.wait();  // B stays out of the runtime while A looks at its tasklet
  });
  ASSERT_TRUE(published.wait());
  tasklet t = fresh;
  EXPECT_THROW_WHAT(t.switch_to(), sl::runtime_error, "can't switch to a different thread.");
  EXPECT_TRUE(t.paused());
  EXPECT_FALSE(t.is_current());
  EXPECT_FALSE(t.is_main());
  done.set();
  b.join();  // B ends: its never-started tasklet ends without running
  EXPECT_FALSE(ran.load());
  EXPECT_FALSE(t.alive());
  fresh = tasklet();
}

// is_main / is_current are relative to the tasklet's own thread (stackless #51).
TEST_F(remote_tasklet, is_main_and_is_current_are_relative_to_the_owner_thread) {
  tasklet b_main;
  flag published, done;
  os_thread b([&] {
    b_main = sl::main_tasklet();
    published.set();
    done.wait();
  });
  ASSERT_TRUE(published.wait());
  tasklet t = b_main;
  EXPECT_TRUE(t.is_main());
  EXPECT_TRUE(t.is_current());
  EXPECT_FALSE(t == sl::main_tasklet());
  EXPECT_EQ(t.thread_id(), b.id());
  EXPECT_NE(t.thread_id(), std::this_thread::get_id());
  done.set();
  b.join();
  b_main = tasklet();
}

// --- the remote run order (§5) -------------------------------------------------------------------

// [verified §5 TestRemoteSchedule.testRunOrder] In thread A under atomic: t2.insert(),
// t3.insert(), t1.run() on tasklets of thread B → B runs t1, t2, t3. In free mode B is not held
// off by A's atomic, so B stays out of the runtime (spinning on a flag) until A has posted all
// three; then B's run() takes them in one go. (The same example with B parked is in
// global_lock_mt_test.cpp, where A's atomic holds B off as the GIL does in Stackless.)
TEST_F(remote_run_order, insert_insert_run_runs_t1_t2_t3_in_the_remote_thread) {
  std::vector<tasklet> ts;
  std::vector<std::string> b_log;  // written by B only, read after the join
  flag published, posted;
  os_thread b([&] {
    for (const char* name : {"t1", "t2", "t3"})
      ts.push_back(
          tasklet([&b_log, name] { b_log.push_back(name); }, {.name = name, .start = false}));
    published.set();
    posted.wait();
    sl::run();
  });
  ASSERT_TRUE(published.wait());
  tasklet t1 = ts[0], t2 = ts[1], t3 = ts[2];
  {
    sl::atomic a;
    t2.insert();
    t3.insert();
    t1.run();
  }
  EXPECT_EQ(sl::runcount(), 1);
  posted.set();
  b.join();
  EXPECT_THAT(b_log, ElementsAre("t1", "t2", "t3"));
  ts.clear();
}

// The same when B's main is running other tasklets: t1 runs right after B's current.
TEST_F(remote_run_order, run_puts_the_tasklet_right_after_the_remote_current) {
  std::vector<tasklet> ts;
  std::vector<std::string> b_log;
  flag published, posted;
  os_thread b([&] {
    tasklet first([&] {
      b_log.push_back("first");
      published.set();
      posted.wait();  // current of B while A posts
      schedule();     // takes the requests: queue is now first, t1, second, t2
      b_log.push_back("first again");
    });
    tasklet second([&] { b_log.push_back("second"); });
    ts.push_back(tasklet([&] { b_log.push_back("t1"); }, {.start = false}));
    ts.push_back(tasklet([&] { b_log.push_back("t2"); }, {.start = false}));
    sl::run();
  });
  ASSERT_TRUE(published.wait());
  tasklet t1 = ts[0], t2 = ts[1];
  t2.insert();
  t1.run();
  posted.set();
  b.join();
  EXPECT_THAT(b_log, ElementsAre("first", "t1", "second", "t2", "first again"));
  ts.clear();
}

// --- bind_thread ---------------------------------------------------------------------------------

// bind_thread(id) hands a tasklet that never started to another runtime thread: it belongs there
// and runs there.
TEST_F(bind_thread, moves_a_never_started_tasklet_to_another_thread) {
  channel<std::thread::id> where;
  std::thread::id b_id;
  flag b_ready;
  std::atomic<bool> ok{false};
  os_thread b([&] {
    b_id = current().thread_id();  // B becomes a runtime thread
    b_ready.set();
    const std::thread::id ran_in = where.receive();  // parked until the moved tasklet sends
    ok.store(ran_in == std::this_thread::get_id());
  });
  ASSERT_TRUE(b_ready.wait());
  tasklet t([&] { where.send(std::this_thread::get_id()); }, {.start = false});
  EXPECT_EQ(t.thread_id(), std::this_thread::get_id());
  t.bind_thread(b_id);
  EXPECT_EQ(t.thread_id(), b_id);
  t.insert();  // posted to B, which now owns it
  EXPECT_EQ(sl::runcount(), 1);
  b.join();
  EXPECT_TRUE(ok.load());
  EXPECT_FALSE(t.alive());
}

// §2.8: rebinding a paused tasklet before its thread ends keeps it alive: B hands its tasklet to
// A, B ends, and A runs it.
TEST_F(bind_thread, rescues_a_tasklet_from_a_thread_that_ends) {
  tasklet moved;
  const std::thread::id a_id = current().thread_id();  // A is a runtime thread: a valid target
  std::atomic<int> runs{0};
  os_thread b([&] {
    moved = tasklet([&] { runs.fetch_add(1); }, {.start = false});
    moved.bind_thread(a_id);
  });
  b.join();
  tasklet t = std::move(moved);
  EXPECT_TRUE(t.alive());
  EXPECT_EQ(t.thread_id(), a_id);
  t.insert();
  sl::run();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_FALSE(t.alive());
}

// Misuse of bind_thread: a thread that is not a runtime thread ("bad thread"), a tasklet that has
// started (C state on its stack), a runnable one, and calling it from a thread other than the
// owner.
TEST_F(bind_thread, errors) {
  std::latch release(1);
  os_thread plain([&] { release.wait(); });  // never uses the runtime
  tasklet fresh([] {}, {.start = false});
  EXPECT_THROW_WHAT(fresh.bind_thread(plain.id()), std::invalid_argument, "bad thread");
  EXPECT_TRUE(fresh.alive());
  EXPECT_EQ(fresh.thread_id(), std::this_thread::get_id());
  release.count_down();
  plain.join();

  std::thread::id b_id;
  flag b_ready, done;
  tasklet foreign;
  os_thread b([&] {
    b_id = current().thread_id();
    foreign = tasklet([] {}, {.start = false});
    b_ready.set();
    done.wait();
  });
  ASSERT_TRUE(b_ready.wait());

  tasklet started([] { sl::schedule_remove(); });  // runs, then pauses with frames on its stack
  sl::run();
  ASSERT_TRUE(started.paused());
  EXPECT_THROW_WHAT(started.bind_thread(b_id), sl::runtime_error,
                    "tasklet has C state on its stack");
  tasklet runnable([] {});
  EXPECT_THROW_WHAT(runnable.bind_thread(b_id), sl::runtime_error,
                    "can't (re)bind a runnable tasklet");
  fresh.bind_thread();  // to the calling thread, which owns it: a no-op
  EXPECT_EQ(fresh.thread_id(), std::this_thread::get_id());

  tasklet f = foreign;
  EXPECT_THROW(f.bind_thread(std::this_thread::get_id()), sl::runtime_error);
  EXPECT_EQ(f.thread_id(), b_id);
  done.set();
  b.join();
  foreign = tasklet();
  f = tasklet();

  started.kill();
  sl::run();
}

// --- parking and the deadlock rule (§1.6) --------------------------------------------------------

// stop_serving: thrown into a thread's main tasklet to end its run({.threadblock = true}).
struct stop_serving {};

// §4.3: a thread in run({.threadblock = true}) does not return when its queue empties while
// another thread could still make one of its tasklets runnable: it parks and runs what that thread
// sends. Here the other thread (A, which could always send more) ends the service by throwing
// into B's main tasklet, which run() then throws.
TEST_F(parking, run_threadblock_serves_other_threads_until_stopped) {
  channel<int> requests;
  std::atomic<int> sum{0};
  std::atomic<int> served_after_empty{0};
  std::atomic<bool> stopped{false};
  tasklet b_main;
  flag published;
  const std::exception_ptr stop = std::make_exception_ptr(stop_serving{});  // outlives B
  os_thread b([&] {
    b_main = sl::main_tasklet();
    // One tasklet per request; each blocks in receive() until A sends.
    for (int i = 0; i < 3; ++i) tasklet([&] { sum.fetch_add(requests.receive()); });
    published.set();
    try {
      sl::run({.threadblock = true});  // without threadblock: returns once all three block
    } catch (const stop_serving&) {
      stopped.store(true);
    }
    served_after_empty.store(sum.load());
  });
  ASSERT_TRUE(published.wait());
  tasklet t = b_main;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(eventually([&] { return requests.balance() < 0; }));
    requests.send(i);
  }
  ASSERT_TRUE(eventually([&] { return sum.load() == 6; }));
  t.throw_exception(stop);
  b.join();
  EXPECT_TRUE(stopped.load());
  EXPECT_EQ(served_after_empty.load(), 6);
  b_main = tasklet();
}

// A thread in run({.threadblock = true}) whose tasklets are done returns once every other thread
// is parked for good (nobody could make one of its tasklets runnable any more), so the main
// tasklet of another thread that waits for it is served: that wait must not fail with
// deadlock_error merely because the threadblock thread is parked at that moment (it would return
// from run() and send). Whichever thread parks first, the outcome must be the same.
TEST_F(parking, run_threadblock_returns_when_the_other_thread_waits_for_it) {
  channel<int> done;
  std::atomic<int> ran{0};
  std::atomic<bool> stopped{false};
  tasklet b_main;
  flag running;
  const std::exception_ptr stop = std::make_exception_ptr(stop_serving{});  // outlives B
  os_thread b([&] {
    b_main = sl::main_tasklet();
    tasklet([&] {
      ran.fetch_add(1);
      running.set();
    });
    try {
      sl::run({.threadblock = true});
      done.send(7);
    } catch (const stop_serving&) {
      stopped.store(true);
    }
  });
  ASSERT_TRUE(running.wait());
  tasklet t = b_main;
  int v = 0;
  try {
    v = done.receive();
  } catch (const sl::deadlock_error& e) {
    ADD_FAILURE() << "the wait for the threadblock thread failed: " << e.what();
    t.throw_exception(stop);  // end B's run() so B can end
  }
  b.join();
  EXPECT_EQ(v, 7);
  EXPECT_FALSE(stopped.load());
  EXPECT_EQ(ran.load(), 1);
  b_main = tasklet();
}

// Two threads whose mains each wait on the other, with no other thread: not both can park. The
// one that would park last gets deadlock_error (which one depends on timing; the test accepts
// either) and, having its tasklet back, serves the other.
TEST_F(parking, two_threads_waiting_on_each_other_deadlock_exactly_one) {
  channel<int> to_a, to_b;
  std::atomic<int> deadlocks{0};
  std::atomic<int> served{0};
  os_thread b([&] {
    try {
      EXPECT_EQ(to_b.receive(), 1);
      served.fetch_add(1);
    } catch (const sl::deadlock_error& e) {
      EXPECT_STREQ(e.what(), "Deadlock: the last runnable tasklet cannot be blocked.");
      deadlocks.fetch_add(1);
      to_a.send(2);
    }
  });
  try {
    EXPECT_EQ(to_a.receive(), 2);
    served.fetch_add(1);
  } catch (const sl::deadlock_error& e) {
    EXPECT_STREQ(e.what(), "Deadlock: the last runnable tasklet cannot be blocked.");
    deadlocks.fetch_add(1);
    to_b.send(1);
  }
  b.join();
  EXPECT_EQ(deadlocks.load(), 1);
  EXPECT_EQ(served.load(), 1);
  EXPECT_EQ(to_a.balance(), 0);
  EXPECT_EQ(to_b.balance(), 0);
}

// A main tasklet waiting for a thread that ends without serving it: once no other thread could
// wake it, its wait fails with deadlock_error instead of parking forever.
TEST_F(parking, main_waiting_for_a_thread_that_ends_gets_deadlock_error) {
  channel<int> ch;
  os_thread b([&] {
    tasklet t([&] { ch.send(1); }, {.start = false});  // never runs: B ends first
    (void)t;
  });
  EXPECT_THROW_WHAT(ch.receive(), sl::deadlock_error,
                    "Deadlock: the last runnable tasklet cannot be blocked.");
  b.join();
  EXPECT_EQ(ch.balance(), 0);
}

// --- thread exit ---------------------------------------------------------------------------------

// A thread that ends with tasklets blocked on a channel, paused (started, and never started) and
// runnable (started, and never started) kills them: the started ones unwind with tasklet_exit (RAII
// destructors run in that thread), the others are dropped without running; they leave their
// channel. Handles held by another thread then report them dead, operations that need their
// thread fail with a clear error, and sending to their channel finds nobody — no crash, no leak.
TEST_F(thread_exit, kills_blocked_paused_and_runnable_tasklets) {
  channel<int> ch;
  std::vector<tasklet> left;  // blocked, paused, runnable (started), fresh paused, fresh runnable
  std::atomic<int> unwound{0};
  std::atomic<int> went_on{0};
  int fresh_destroyed = 0;  // written by B, read after the join
  std::atomic<bool> fresh_ran{false};
  os_thread b([&] {
    left.push_back(tasklet(
        [&] {
          on_exit e{&unwound};
          ch.receive();
          went_on.fetch_add(1);
        },
        {.name = "blocked"}));
    left.push_back(tasklet(
        [&] {
          on_exit e{&unwound};
          sl::schedule_remove();
          went_on.fetch_add(1);
        },
        {.name = "paused"}));
    left.push_back(tasklet(
        [&] {
          on_exit e{&unwound};
          for (int i = 0; i < 1'000'000; ++i) schedule();
          went_on.fetch_add(1);
        },
        {.name = "runnable"}));
    schedule();  // blocked blocks, paused pauses, runnable yields back to main
    EXPECT_EQ(left[0].blocked(), -1);
    EXPECT_TRUE(left[1].paused());
    EXPECT_TRUE(left[2].scheduled());
    left.push_back(tasklet([&, t = tracker(&fresh_destroyed)] { fresh_ran.store(true); },
                           {.name = "fresh paused", .start = false}));
    left.push_back(tasklet([&, t = tracker(&fresh_destroyed)] { fresh_ran.store(true); },
                           {.name = "fresh runnable"}));
    EXPECT_EQ(ch.balance(), -1);
  });  // B's main returns: the thread ends with all five alive
  b.join();
  EXPECT_EQ(unwound.load(), 3);
  EXPECT_EQ(went_on.load(), 0);
  EXPECT_EQ(fresh_destroyed, 2);
  EXPECT_FALSE(fresh_ran.load());
  ASSERT_EQ(left.size(), 5u);
  for (tasklet& t : left) {
    SCOPED_TRACE(std::string(t.name()));
    EXPECT_FALSE(t.alive());
    EXPECT_FALSE(t.scheduled());
    EXPECT_EQ(t.blocked(), 0);
    EXPECT_FALSE(t.paused());
    EXPECT_FALSE(t.is_current());
    EXPECT_THROW_WHAT(t.insert(), sl::runtime_error, "tasklet has no thread");
    EXPECT_THROW_WHAT(t.run(), sl::runtime_error, "tasklet has no thread");
    EXPECT_THROW_WHAT(t.throw_exception(std::make_exception_ptr(std::logic_error("x"))),
                      sl::runtime_error, "tasklet has no thread");
    EXPECT_THROW(t.switch_to(), sl::runtime_error);
    EXPECT_NO_THROW(t.remove());  // no-ops (reference §5)
    EXPECT_NO_THROW(t.kill());
    EXPECT_NO_THROW(t.kill(true));
    EXPECT_NO_THROW(t.join());  // returns at once
  }
  // Their channel: nobody waits on it any more.
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_FALSE(ch.queue());
  int v = 3;
  EXPECT_FALSE(ch.try_send(v));
  EXPECT_FALSE(ch.send_for(v, 1ms));
  EXPECT_EQ(v, 3);
  left.clear();  // the last handles, dropped in another thread than the owner's
}

// A tasklet of the ending thread that catches tasklet_exit once and goes on is killed again;
// its second unwinding completes.
TEST_F(thread_exit, a_tasklet_that_survives_one_kill_is_killed_again) {
  std::atomic<int> kills_seen{0};
  std::atomic<int> unwound{0};
  os_thread b([&] {
    tasklet([&] {
      on_exit e{&unwound};
      for (;;) {
        try {
          sl::schedule_remove();
          return;
        } catch (const tasklet_exit&) {
          if (kills_seen.fetch_add(1) == 1) throw;
        }
      }
    });
    schedule();
  });
  b.join();
  EXPECT_EQ(kills_seen.load(), 2);
  EXPECT_EQ(unwound.load(), 1);
}

// Another thread sending to a channel on which a tasklet of an ended thread waited: the killed
// waiter left the channel, so the sender waits for a real partner and gets it.
TEST_F(thread_exit, a_channel_outlives_the_thread_of_its_waiters) {
  channel<int> ch;
  std::atomic<int> unwound{0};
  os_thread b([&] {
    tasklet([&] {
      on_exit e{&unwound};
      ch.receive();
    });
    schedule();
  });
  b.join();
  EXPECT_EQ(unwound.load(), 1);
  int got = 0;
  tasklet receiver([&] { got = ch.receive(); });
  ch.send(9);
  EXPECT_EQ(got, 9);
  sl::run();
}

// Handles to the tasklets of a thread that is ending, dropped by another thread at the same time:
// each record is freed exactly once (the fixture's leak check), whoever drops the last reference.
TEST_F(thread_exit, handles_dropped_by_another_thread_while_the_owner_ends) {
  constexpr int kTasklets = 200;
  std::vector<tasklet> handles;
  std::atomic<int> unwound{0};
  flag published;
  os_thread b([&] {
    for (int i = 0; i < kTasklets; ++i)
      handles.push_back(tasklet([&] {
        on_exit e{&unwound};
        sl::schedule_remove();
      }));
    schedule();  // every tasklet runs and pauses
    published.set();
  });  // B ends while A drops the handles
  ASSERT_TRUE(published.wait());
  for (tasklet& t : handles) t = tasklet();
  b.join();
  EXPECT_EQ(unwound.load(), kTasklets);
}

// --- stress --------------------------------------------------------------------------------------

#if STACKLESS_TEST_ASAN || STACKLESS_TEST_TSAN
constexpr int kPerSender = 50;  // sanitizers: 100,000 messages instead of 1,000,000
#else
constexpr int kPerSender = 500;
#endif

// 4 threads × 1,000 tasklets (500 senders, 500 receivers each) exchange 4 × 500 × kPerSender
// messages (1,000,000; under sanitizers 100,000). The senders of thread i send on channel i+1
// (mod 4), whose receivers all live in thread i+1, so every hand-off crosses threads. Each message
// is a unique number; every one must be received exactly once, by the right thread, and the sums
// must match. Each thread's main joins its tasklets (parked whenever they all wait).
TEST_F(thread_stress, four_threads_exchange_a_million_messages_exactly_once) {
  constexpr int threads = 4, senders = 500, receivers = 500;
  constexpr std::uint64_t total = std::uint64_t{threads} * senders * kPerSender;
  static_assert(senders * kPerSender % receivers == 0);
  constexpr int per_receiver = senders * kPerSender / receivers;
  std::vector<channel<std::uint64_t>> chans(threads);
  std::vector<std::atomic<std::uint8_t>> seen(total);
  std::atomic<std::uint64_t> sum{0}, received{0}, misrouted{0}, sent{0};
  std::latch start(threads);
  std::vector<std::unique_ptr<os_thread>> pool;
  for (int i = 0; i < threads; ++i)
    pool.push_back(std::make_unique<os_thread>([&, i] {
      std::vector<tasklet> mine;
      mine.reserve(senders + receivers);
      channel<std::uint64_t> out = chans[(i + 1) % threads], in = chans[i];
      for (int s = 0; s < senders; ++s)
        mine.push_back(tasklet([&, out, i, s]() mutable {
          const std::uint64_t base =
              (std::uint64_t{static_cast<unsigned>(i)} * senders + s) * kPerSender;
          for (int k = 0; k < kPerSender; ++k) {
            out.send(base + k);
            sent.fetch_add(1, std::memory_order_relaxed);
          }
        }));
      for (int r = 0; r < receivers; ++r)
        mine.push_back(tasklet([&, in, i]() mutable {
          std::uint64_t local_sum = 0;
          for (int k = 0; k < per_receiver; ++k) {
            const std::uint64_t v = in.receive();
            local_sum += v;
            if (v >= total) {
              misrouted.fetch_add(1);
              continue;
            }
            const int from = static_cast<int>(v / (std::uint64_t{senders} * kPerSender));
            if ((from + 1) % threads != i) misrouted.fetch_add(1);
            seen[v].fetch_add(1, std::memory_order_relaxed);
          }
          sum.fetch_add(local_sum, std::memory_order_relaxed);
          received.fetch_add(per_receiver, std::memory_order_relaxed);
        }));
      start.arrive_and_wait();  // all threads are set up before the first message
      for (tasklet& t : mine) t.join();
    }));
  for (auto& t : pool) t->join();
  EXPECT_EQ(sent.load(), total);
  EXPECT_EQ(received.load(), total);
  EXPECT_EQ(misrouted.load(), 0u);
  EXPECT_EQ(sum.load(), total * (total - 1) / 2);
  std::uint64_t once = 0;
  for (const auto& s : seen) once += s.load(std::memory_order_relaxed) == 1 ? 1 : 0;
  EXPECT_EQ(once, total);
  for (auto& ch : chans) EXPECT_EQ(ch.balance(), 0);
}

}  // namespace
