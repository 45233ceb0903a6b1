// tests/watchdog_test.cpp — pre-emption: run(run_options) with a tick or wall-clock budget, tick()
// points, hard and soft interrupts, totaltimeout (reference §4.2), nested timed run() calls (§4.1),
// atomic and switch_trap deferring an interrupt (§2.7, §4.6), threadblock (§4.3), runcount inside
// run() (§4.5).
//
// Ticks are counted only by tick() (no library call ticks), so every interrupt lands at an exact
// tick and the tests assert exact counts and orders. A tasklet that counts its ticks does `tick();
// ++n;`, so when it is interrupted inside its k-th tick, n == k - 1. Spinning tasklets are bounded
// (they give up after far more ticks than any budget here), so a broken watchdog fails a test
// instead of hanging it. The only wall-clock tests are in the time_slice suite; their tolerances
// are stated there. Examples the reference marks [verified] say so.
#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using sl::current;
using sl::main_tasklet;
using sl::run_options;
using sl::runcount;
using sl::schedule;
using sl::tasklet;
using sl::tick;
using stackless_testing::label;
using ::testing::ElementsAre;

using hard_interrupt = stackless_test;
using soft_interrupt = stackless_test;
using total_timeout = stackless_test;
using atomic_section = stackless_test;
using nested_run = stackless_test;
using time_slice = stackless_test;
using tick_point = stackless_test;
using run_flags = stackless_test;

// kSpinLimit: where a spinning tasklet gives up (logs "ran away"); far above every budget here.
constexpr long kSpinLimit = 10'000'000;

// spin ticks until it is stopped from outside, counting completed ticks in *ticks.
auto spin(std::vector<std::string>& log, long* ticks) {
  return [&log, ticks] {
    for (*ticks = 0; *ticks < kSpinLimit;) {
      tick();
      ++*ticks;
    }
    log.push_back("ran away");
  };
}

// ticks_then_schedule does `slices` slices of `per_slice` ticks each, calling schedule() after
// each, and counts completed ticks in *ticks.
auto ticks_then_schedule(long* ticks, int slices, int per_slice) {
  return [ticks, slices, per_slice] {
    for (int s = 0; s < slices; ++s) {
      for (int i = 0; i < per_slice; ++i) {
        tick();
        ++*ticks;
      }
      schedule();
    }
  };
}

// name_of: the label of a tasklet returned by run(), or "none" for an empty handle.
std::string name_of(const tasklet& t) { return t ? label(t) : "none"; }

// ------------------------------------------------------------------------------------------------
// Hard interrupts (§4.2)

// [verified] A busy tasklet under run(100) is returned by run(): not scheduled, paused, alive, and
// main is alone in the run queue.
TEST_F(hard_interrupt, busy_tasklet_is_returned_paused) {
  long ticks = 0;
  tasklet busy(spin(log_, &ticks), {.name = "busy"});
  tasklet x = sl::run({.timeout = 100});
  ASSERT_TRUE(x);
  EXPECT_TRUE(x == busy);
  EXPECT_FALSE(x.scheduled());
  EXPECT_TRUE(x.paused());
  EXPECT_TRUE(x.alive());
  EXPECT_EQ(x.blocked(), 0);
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(ticks, 99);  // interrupted inside its 100th tick
  EXPECT_TRUE(main_tasklet().is_current());
  EXPECT_FALSE(main_tasklet().paused());
  busy.kill();
  EXPECT_FALSE(busy.alive());
  EXPECT_TRUE(log_.empty());
}

// A tasklet that never yields is interrupted again and again; re-inserted each time, it completes.
// With timeout T and N ticks of work, it is interrupted at ticks T, 2T, ..., floor(N/T)·T, so the
// caller needs floor(N/T) + 1 run() calls: ceil(N/T) when T does not divide N, and one more when it
// does (the last interrupt falls on the last tick; the last run() only lets it return).
TEST_F(hard_interrupt, runaway_completes_when_reinserted_every_time) {
  struct work {
    long n;
    long t;
  };
  for (const work w :
       {work{1050, 100}, work{1000, 100}, work{99, 100}, work{1, 1}, work{5000, 7}}) {
    SCOPED_TRACE("N=" + std::to_string(w.n) + " T=" + std::to_string(w.t));
    long done = 0;
    tasklet worker([&done, n = w.n] {
      for (long i = 0; i < n; ++i) {
        tick();
        ++done;
      }
    });
    long rounds = 0, interrupts = 0;
    std::vector<long> progress;  // ticks completed when each interrupt hit
    while (worker.alive() && rounds < 100'000) {
      ++rounds;
      tasklet x = sl::run({.timeout = static_cast<std::uint64_t>(w.t)});
      if (x) {
        EXPECT_TRUE(x == worker);
        ++interrupts;
        progress.push_back(done);
        x.insert();
      }
    }
    EXPECT_EQ(done, w.n);
    EXPECT_EQ(interrupts, w.n / w.t);
    EXPECT_EQ(rounds, w.n / w.t + 1);
    if (w.n % w.t != 0) {
      EXPECT_EQ(rounds, (w.n + w.t - 1) / w.t);  // ceil(N/T)
    }
    for (std::size_t k = 0; k < progress.size(); ++k)
      EXPECT_EQ(progress[k], static_cast<long>(k + 1) * w.t - 1) << "interrupt " << k + 1;
  }
}

// The interrupted tasklet can be killed: tasklet_exit is thrown at its tick() and its destructors
// run before kill() returns.
TEST_F(hard_interrupt, interrupted_tasklet_can_be_killed) {
  long ticks = 0;
  tasklet busy([&] {
    struct guard {
      std::vector<std::string>& log;
      ~guard() { log.push_back("~guard"); }
    } g{log_};
    spin(log_, &ticks)();
  });
  tasklet x = sl::run({.timeout = 50});
  ASSERT_TRUE(x == busy);
  EXPECT_TRUE(log_.empty());
  x.kill();
  EXPECT_THAT(log_, ElementsAre("~guard"));
  EXPECT_FALSE(busy.alive());
  EXPECT_EQ(ticks, 49);
  EXPECT_EQ(runcount(), 1);
}

// A pending kill makes the interrupted tasklet runnable; it dies (destructors run) when it next
// runs.
TEST_F(hard_interrupt, pending_kill_of_interrupted_tasklet) {
  long ticks = 0;
  tasklet busy([&] {
    struct guard {
      std::vector<std::string>& log;
      ~guard() { log.push_back("~guard"); }
    } g{log_};
    spin(log_, &ticks)();
  });
  tasklet x = sl::run({.timeout = 50});
  ASSERT_TRUE(x == busy);
  x.kill(/*pending=*/true);
  EXPECT_TRUE(busy.alive());
  EXPECT_TRUE(busy.scheduled());
  EXPECT_EQ(runcount(), 2);
  EXPECT_TRUE(log_.empty());
  EXPECT_FALSE(sl::run({.timeout = 50}));  // it dies at once: nothing else to interrupt
  EXPECT_THAT(log_, ElementsAre("~guard"));
  EXPECT_FALSE(busy.alive());
  EXPECT_EQ(ticks, 49);
}

// tick(n) counts n ticks at once: with timeout 100, tick(60) passes and the second tick(60) is
// interrupted.
TEST_F(hard_interrupt, tick_n_counts_n_ticks) {
  tasklet t([&] {
    tick(60);
    log("60");
    tick(60);
    log("120");
  });
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == t);
  EXPECT_THAT(log_, ElementsAre("60"));
  x.insert();
  EXPECT_FALSE(sl::run({.timeout = 100}));
  EXPECT_THAT(log_, ElementsAre("60", "120"));
}

// The slice restarts at every switch: tasklets that switch before their budget runs out are
// never interrupted, however long they run in total.
TEST_F(hard_interrupt, slice_restarts_at_every_switch) {
  long a = 0, b = 0;
  tasklet ta(ticks_then_schedule(&a, 50, 99));
  tasklet tb(ticks_then_schedule(&b, 50, 99));
  EXPECT_FALSE(sl::run({.timeout = 100}));
  EXPECT_EQ(a, 50 * 99);
  EXPECT_EQ(b, 50 * 99);
}

// autoschedule: the loop of the Stackless test suite (test_watchdog.py, SimpleScheduler): run
// with a budget of 100 ticks until only the caller is left, re-inserting every interrupted
// tasklet. Returns how many times run() returned.
int autoschedule(bool soft, int* interrupted = nullptr) {
  int returns = 0;
  while (runcount() > 1 && returns < 10'000) {
    tasklet x = sl::run({.timeout = 100, .soft = soft});
    ++returns;
    if (x) {
      if (interrupted != nullptr) ++*interrupted;
      x.insert();
    }
  }
  return returns;
}

// Three greedy tasklets (1000 ticks, no switch) and three cooperative ones (1000 ticks, schedule()
// after every 150) under a budget of 100 ticks per slice (test_tasklet_with_schedule).
//   hard, greedy:      10 interrupts each (ticks 100, 200, ..., 1000) + 1 empty return = 31
//   hard, cooperative: one interrupt per full slice of 150 (6) + one in the last slice of 100 = 7
//                      each, + 1 empty return = 22
//   soft, greedy:      a greedy tasklet's only voluntary switch is its end: 3
//   soft, cooperative: every slice exceeds 100 ticks, so every schedule() (and the end) goes to
//                      the watchdog: 7 each = 21
// So greedy tasklets are interrupted more often under hard pre-emption, and cooperative ones under
// soft pre-emption.
struct greedy_vs_cooperative {
  int greedy = 0;
  int cooperative = 0;
  int greedy_hard_interrupts = 0;
  int cooperative_hard_interrupts = 0;
};

greedy_vs_cooperative compare(bool soft) {
  greedy_vs_cooperative r;
  long ticks[3] = {};
  {
    std::vector<tasklet> ts;
    for (long& n : ticks)
      ts.emplace_back([&n] {
        for (int i = 0; i < 1000; ++i) {
          tick();
          ++n;
        }
      });
    r.greedy = autoschedule(soft, &r.greedy_hard_interrupts);
    for (const tasklet& t : ts) EXPECT_FALSE(t.alive());
    for (long n : ticks) EXPECT_EQ(n, 1000);
  }
  {
    std::vector<tasklet> ts;
    for (long& n : ticks) {
      n = 0;
      ts.emplace_back([&n] {
        for (int i = 0; i < 1000; ++i) {
          tick();
          ++n;
          if ((i + 1) % 150 == 0) schedule();
        }
      });
    }
    r.cooperative = autoschedule(soft, &r.cooperative_hard_interrupts);
    for (const tasklet& t : ts) EXPECT_FALSE(t.alive());
    for (long n : ticks) EXPECT_EQ(n, 1000);
  }
  return r;
}

TEST_F(hard_interrupt, greedy_tasklets_are_interrupted_more_often) {
  const greedy_vs_cooperative r = compare(/*soft=*/false);
  EXPECT_EQ(r.greedy, 31);
  EXPECT_EQ(r.greedy_hard_interrupts, 30);
  EXPECT_EQ(r.cooperative, 22);
  EXPECT_EQ(r.cooperative_hard_interrupts, 21);
  EXPECT_GT(r.greedy, r.cooperative);
}

TEST_F(soft_interrupt, cooperative_tasklets_are_interrupted_more_often) {
  const greedy_vs_cooperative r = compare(/*soft=*/true);
  EXPECT_EQ(r.greedy, 3);
  EXPECT_EQ(r.cooperative, 21);
  EXPECT_EQ(r.greedy_hard_interrupts, 0);  // a soft run() never returns a tasklet
  EXPECT_EQ(r.cooperative_hard_interrupts, 0);
  EXPECT_LT(r.greedy, r.cooperative);
}

// ------------------------------------------------------------------------------------------------
// Soft interrupts (§4.2)

// [verified] a and b alternate with schedule(), 300 ticks per slice; soft run(200) returns an
// empty handle after a's first slice; both are still scheduled and runcount is 3.
TEST_F(soft_interrupt, returns_after_the_first_slice_and_stops_nobody) {
  long a = 0, b = 0;
  tasklet ta(
      [&] {
        for (int s = 0; s < 1000; ++s) {
          log("a");
          for (int i = 0; i < 300; ++i, ++a) tick();
          schedule();
        }
      },
      {.name = "a"});
  tasklet tb(
      [&] {
        for (int s = 0; s < 1000; ++s) {
          log("b");
          for (int i = 0; i < 300; ++i, ++b) tick();
          schedule();
        }
      },
      {.name = "b"});
  tasklet x = sl::run({.timeout = 200, .soft = true});
  EXPECT_FALSE(x);
  EXPECT_THAT(log_, ElementsAre("a"));
  EXPECT_EQ(a, 300);  // a was not stopped at tick 200: it finished its slice
  EXPECT_EQ(b, 0);
  EXPECT_TRUE(ta.scheduled());
  EXPECT_TRUE(tb.scheduled());
  EXPECT_EQ(runcount(), 3);
  ta.kill();
  tb.kill();
}

// The soft interrupt replaces the switch to the tasklet N that would have run; N stays queued and
// runs right after the watchdog (Stackless inserts the watchdog just before N: scheduling.c,
// slp_schedule_soft_irq), so the interrupted tasklet keeps its round-robin turn and goes last.
TEST_F(soft_interrupt, tasklet_that_would_have_run_runs_next) {
  auto slices = [this](std::string name) {
    return [this, name] {
      for (int s = 1; s <= 3; ++s) {
        log(name + std::to_string(s));
        for (int i = 0; i < 300; ++i) tick();
        schedule();
      }
    };
  };
  tasklet a(slices("a"), {.name = "a"});
  tasklet b(slices("b"), {.name = "b"});
  EXPECT_FALSE(sl::run({.timeout = 200, .soft = true}));
  EXPECT_THAT(log_, ElementsAre("a1"));
  EXPECT_TRUE(main_tasklet().next() == b) << "next after main: " << label(main_tasklet().next());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("a1", "b1", "a2", "b2", "a3", "b3"));
}

// A soft interrupt that falls due in a tasklet that never switches takes effect when it ends.
TEST_F(soft_interrupt, taken_when_the_tasklet_ends) {
  tasklet a([&] {
    for (int i = 0; i < 1000; ++i) tick();
    log("a end");
  });
  tasklet b([&] { log("b"); });
  EXPECT_FALSE(sl::run({.timeout = 100, .soft = true}));
  EXPECT_THAT(log_, ElementsAre("a end"));
  EXPECT_FALSE(a.alive());
  EXPECT_TRUE(b.scheduled());
  EXPECT_EQ(runcount(), 2);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("a end", "b"));
}

// A preferred channel hand-off (send to a waiting receiver, preference -1) does not take the soft
// interrupt: it is passed on to the receiver, whose next voluntary switch (here its end) takes it.
TEST_F(soft_interrupt, preferred_hand_off_passes_it_on) {
  sl::channel<int> ch;
  tasklet receiver([&] {
    log("receiver waits");
    const int v = ch.receive();
    log("receiver got " + std::to_string(v));
  });
  tasklet sender([&] {
    for (int i = 0; i < 150; ++i) tick();  // the soft interrupt falls due at tick 100
    log("sender sends");
    ch.send(7);
    log("sender sent");
  });
  EXPECT_FALSE(sl::run({.timeout = 100, .soft = true}));
  EXPECT_THAT(log_, ElementsAre("receiver waits", "sender sends", "receiver got 7"));
  EXPECT_TRUE(sender.scheduled());
  EXPECT_FALSE(receiver.alive());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("receiver waits", "sender sends", "receiver got 7", "sender sent"));
}

// ------------------------------------------------------------------------------------------------
// totaltimeout (§4.2)

// Cooperative tasklets (40 ticks per slice) are never interrupted by a per-slice budget of 100;
// with totaltimeout the 100 ticks are for the whole run() call, and run() returns the tasklet
// running when they are used up: a (40), b (40), a again in its 20th tick of the slice.
TEST_F(total_timeout, returns_the_tasklet_running_when_the_total_runs_out) {
  long a = 0, b = 0;
  tasklet ta(ticks_then_schedule(&a, 10, 40), {.name = "a"});
  tasklet tb(ticks_then_schedule(&b, 10, 40), {.name = "b"});
  tasklet x = sl::run({.timeout = 100, .totaltimeout = true});
  EXPECT_TRUE(x == ta) << name_of(x);
  EXPECT_EQ(a, 59);  // inside its 60th tick: 40 + 40 + 20 = 100
  EXPECT_EQ(b, 40);
  EXPECT_TRUE(tb.scheduled());
  x.insert();
  // Per slice, the same budget never runs out.
  EXPECT_FALSE(sl::run({.timeout = 100}));
  EXPECT_EQ(a, 400);
  EXPECT_EQ(b, 400);
}

// Soft with totaltimeout: the run() returns (empty) at the first voluntary switch after the total
// budget is used up.
TEST_F(total_timeout, soft_returns_at_the_next_switch) {
  long a = 0, b = 0;
  tasklet ta(ticks_then_schedule(&a, 10, 40), {.name = "a"});
  tasklet tb(ticks_then_schedule(&b, 10, 40), {.name = "b"});
  EXPECT_FALSE(sl::run({.timeout = 100, .soft = true, .totaltimeout = true}));
  EXPECT_EQ(a, 80);  // a finished the slice in which the budget ran out
  EXPECT_EQ(b, 40);
  EXPECT_EQ(runcount(), 3);
  sl::run();
  EXPECT_EQ(a, 400);
  EXPECT_EQ(b, 400);
}

// ------------------------------------------------------------------------------------------------
// atomic (§2.7, §4.2)

// [verified] 20,000 ticks inside atomic under run(100): the section is never broken, and the
// interrupt lands at the first tick after it (the guard's destructor does not switch, so the
// statement after the block runs; the next tick() does not return).
TEST_F(atomic_section, is_never_broken_and_the_interrupt_lands_right_after) {
  long inside = 0;
  bool atomic_inside = false;
  tasklet t([&] {
    {
      sl::atomic guard;
      atomic_inside = current().atomic();
      for (int i = 0; i < 20'000; ++i) {
        tick();
        ++inside;
      }
    }
    log("after atomic");
    tick();
    log("after tick");
  });
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == t);
  EXPECT_TRUE(atomic_inside);
  EXPECT_EQ(inside, 20'000);
  EXPECT_THAT(log_, ElementsAre("after atomic"));
  EXPECT_FALSE(t.atomic());
  x.insert();
  EXPECT_FALSE(sl::run({.timeout = 100}));
  EXPECT_THAT(log_, ElementsAre("after atomic", "after tick"));
}

// set_atomic(false) returns without switching (the deferred interrupt is not taken there); the
// next tick() takes it.
TEST_F(atomic_section, set_atomic_false_does_not_switch_but_the_next_tick_does) {
  tasklet t([&] {
    const bool previous = current().set_atomic(true);
    log(previous ? "was atomic" : "was not atomic");
    for (int i = 0; i < 500; ++i) tick();
    EXPECT_TRUE(current().set_atomic(previous));
    log("restored");
    tick();
    log("after tick");
  });
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == t);
  EXPECT_THAT(log_, ElementsAre("was not atomic", "restored"));
  x.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("was not atomic", "restored", "after tick"));
}

// Nesting is safe: leaving an inner atomic section restores "atomic", so the deferred interrupt
// still waits for the outer section to end.
TEST_F(atomic_section, nested_sections_restore_the_previous_value) {
  tasklet t([&] {
    {
      sl::atomic outer;
      for (int i = 0; i < 150; ++i) tick();  // falls due at tick 100: deferred
      {
        sl::atomic inner;
        for (int i = 0; i < 150; ++i) tick();
      }
      log(current().atomic() ? "inner done, still atomic" : "inner done, not atomic");
      for (int i = 0; i < 150; ++i) tick();
      log("outer body done");
    }
    log("outer done");
    tick();
    log("after tick");
  });
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == t);
  EXPECT_THAT(log_, ElementsAre("inner done, still atomic", "outer body done", "outer done"));
  x.insert();
  sl::run();
  EXPECT_EQ(log_.back(), "after tick");
}

// [verified] The flag belongs to the tasklet: an atomic tasklet may still switch voluntarily, and
// the tasklet it switches to is pre-empted normally.
TEST_F(atomic_section, flag_belongs_to_the_tasklet) {
  long a = 0, b = 0;
  tasklet ta(
      [&] {
        sl::atomic guard;
        for (int i = 0; i < 150; ++i, ++a) tick();  // due at tick 100, deferred
        log("a yields");
        schedule();
        log("a resumes");
      },
      {.name = "a"});
  tasklet tb(
      [&] {
        log(current().atomic() ? "b atomic" : "b not atomic");
        for (int i = 0; i < 150; ++i, ++b) tick();
        log("b done");
      },
      {.name = "b"});
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == tb) << name_of(x);
  EXPECT_EQ(a, 150);
  EXPECT_EQ(b, 99);
  EXPECT_THAT(log_, ElementsAre("a yields", "b not atomic"));
  x.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("a yields", "b not atomic", "a resumes", "b done"));
}

// A switch_trap defers the interrupt like atomic does (§4.6); it fires at the first tick after the
// trap is gone.
TEST_F(atomic_section, switch_trap_defers_the_interrupt) {
  long inside = 0;
  tasklet t([&] {
    {
      sl::switch_trap trap;
      for (int i = 0; i < 500; ++i, ++inside) tick();
      log("trap done");
    }
    log("trap gone");
    tick();
    log("after tick");
  });
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == t);
  EXPECT_EQ(inside, 500);
  EXPECT_THAT(log_, ElementsAre("trap done", "trap gone"));
  x.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("trap done", "trap gone", "after tick"));
}

// ------------------------------------------------------------------------------------------------
// Nested run() calls (§4.1)

// A runner tasklet that calls run() itself (main is in an untimed run()) is the one woken: its
// run() returns the interrupted tasklet.
TEST_F(nested_run, runner_tasklet_is_the_one_woken) {
  long ticks = 0;
  tasklet runner(
      [&] {
        tasklet x = sl::run({.timeout = 100});
        log("runner woken, main paused: " + std::string(main_tasklet().paused() ? "yes" : "no"));
        log("interrupted: " + name_of(x));
        if (x) x.kill();
        log("runner done");
      },
      {.name = "runner"});
  tasklet busy(spin(log_, &ticks), {.name = "busy"});
  sl::run();
  EXPECT_THAT(log_,
              ElementsAre("runner woken, main paused: yes", "interrupted: busy", "runner done"));
  EXPECT_EQ(ticks, 99);
  EXPECT_FALSE(busy.alive());
}

// Port of _test_watchdog_priority (test_watchdog.py): runner r3 starts r2, r2 starts r1, r1
// starts r0, each inside atomic and inside run(10000, totaltimeout) — only r3's, the outermost,
// counts. t1 and t2 alternate in slices of 100 ticks; after the 10,000 ticks counted from r3's
// run(), in t2's slice, r3 is woken first (hard: its run() returns t2; soft: t2's schedule() goes
// to r3). r3's run() re-appends r2, r1 and r0, whose run() calls return empty, in that order.
void watchdog_priority(std::vector<std::string>& log, bool soft) {
  long t1_ticks = 0, t2_ticks = 0;
  auto task = [](long* n) {
    return [n] {
      for (int s = 0; s < 1000; ++s) {
        for (int i = 0; i < 100; ++i) {
          tick();
          ++*n;
        }
        schedule();
      }
    };
  };
  tasklet t1(task(&t1_ticks), {.name = "t1"});
  tasklet t2(task(&t2_ticks), {.name = "t2"});
  std::function<void(int)> runner = [&](int level) {
    if (level > 0)
      tasklet([&runner, level] { runner(level - 1); }, {.name = "r" + std::to_string(level - 1)});
    tasklet x;
    {
      sl::atomic guard;
      x = sl::run({.timeout = 10'000, .soft = soft, .ignore_nesting = true, .totaltimeout = true});
    }
    log.push_back("r" + std::to_string(level) + " woken: " + name_of(x));
    if (level == 3) {
      log.push_back("t1 " + std::to_string(t1_ticks) + ", t2 " + std::to_string(t2_ticks));
      t1.kill();
      t2.kill();
    }
  };
  tasklet t3([&] { runner(3); }, {.name = "r3"});
  sl::run();
  EXPECT_FALSE(t1.alive());
  EXPECT_FALSE(t2.alive());
  EXPECT_FALSE(t3.alive());
}

TEST_F(nested_run, outermost_of_three_timed_runners_is_woken_first_hard) {
  watchdog_priority(log_, /*soft=*/false);
  // Before r3's run(): one slice each of t1 and t2 (not counted). Then 100 slices alternate,
  // t1 first; the 10,000th counted tick is the last of t2's 51st slice.
  EXPECT_THAT(log_, ElementsAre("r3 woken: t2", "t1 5100, t2 5099", "r2 woken: none",
                                "r1 woken: none", "r0 woken: none"));
}

TEST_F(nested_run, outermost_of_three_timed_runners_is_woken_first_soft) {
  watchdog_priority(log_, /*soft=*/true);
  EXPECT_THAT(log_, ElementsAre("r3 woken: none", "t1 5100, t2 5100", "r2 woken: none",
                                "r1 woken: none", "r0 woken: none"));
}

// Three nested timed run() calls with different budgets: only the outermost one's counts (the
// inner budgets, 10 and 20, are ignored), and the outermost run() returns the interrupted tasklet.
TEST_F(nested_run, inner_budgets_are_ignored) {
  long ticks = 0;
  tasklet busy;
  tasklet r1(
      [&] {
        tasklet r2(
            [&] {
              tasklet r3(
                  [&] {
                    busy = tasklet(spin(log_, &ticks), {.name = "busy"});
                    tasklet x = sl::run({.timeout = 20});
                    log("r3: " + name_of(x));
                  },
                  {.name = "r3"});
              tasklet x = sl::run({.timeout = 10});
              log("r2: " + name_of(x));
            },
            {.name = "r2"});
        tasklet x = sl::run({.timeout = 100});
        log("r1: " + name_of(x) + " after " + std::to_string(ticks) + " ticks");
        log("queued after r1: " + label(current().next()) + ", " + label(current().next().next()));
        x.kill();
      },
      {.name = "r1"});
  sl::run();
  EXPECT_THAT(log_, ElementsAre("r1: busy after 99 ticks", "queued after r1: r2, r3", "r2: none",
                                "r3: none"));
}

// Exceptions of tasklets started inside an inner run() surface from that run(), timed or not,
// while an outer timed run() is active; the outer run() then returns normally.
TEST_F(nested_run, exceptions_surface_in_the_inner_run) {
  tasklet runner(
      [&] {
        tasklet([] { throw std::runtime_error("foo"); });
        EXPECT_THROW_WHAT(sl::run(), std::runtime_error, "foo");
        log("caught foo");
        tasklet([] {
          for (int i = 0; i < 10; ++i) tick();
          throw std::runtime_error("bar");
        });
        EXPECT_THROW_WHAT(sl::run({.timeout = 5}), std::runtime_error, "bar");  // inner: ignored
        log("caught bar");
      },
      {.name = "runner"});
  EXPECT_FALSE(sl::run({.timeout = 1000}));
  EXPECT_THAT(log_, ElementsAre("caught foo", "caught bar"));
  EXPECT_FALSE(runner.alive());
}

// An exception while the owner's run() is the innermost: it surfaces from the timed run(), and
// the next timed run() works normally.
TEST_F(nested_run, exception_surfaces_from_the_timed_run) {
  tasklet([] {
    for (int i = 0; i < 50; ++i) tick();
    throw std::runtime_error("late");
  });
  EXPECT_THROW_WHAT(sl::run({.timeout = 100}), std::runtime_error, "late");
  long ticks = 0;
  tasklet busy(spin(log_, &ticks));
  tasklet x = sl::run({.timeout = 100});
  EXPECT_TRUE(x == busy);
  EXPECT_EQ(ticks, 99);
  x.kill();
}

// [verified §4.5] Inside run() the caller is not counted: two tasklets started by main's timed
// run() see runcount 2 and then 1.
TEST_F(nested_run, runcount_inside_run) {
  std::vector<int> seen;
  tasklet([&] { seen.push_back(runcount()); });
  tasklet([&] { seen.push_back(runcount()); });
  EXPECT_EQ(runcount(), 3);
  EXPECT_FALSE(sl::run({.timeout = 1000}));
  EXPECT_THAT(seen, ElementsAre(2, 1));
  EXPECT_EQ(runcount(), 1);
}

// ------------------------------------------------------------------------------------------------
// Wall-clock budget: time_slice, time_check_ticks

// A spinning tasklet is interrupted by run({.time_slice = 2ms}). Tolerance: run() returns after at
// least 2 ms (the deadline) and within 2 s.
TEST_F(time_slice, spinning_tasklet_is_interrupted) {
  long ticks = 0;
  tasklet busy(spin(log_, &ticks), {.name = "busy"});
  const auto start = std::chrono::steady_clock::now();
  tasklet x = sl::run({.time_slice = 2ms});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(x == busy);
  EXPECT_FALSE(x.scheduled());
  EXPECT_GE(elapsed, 2ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_GT(ticks, 0);
  EXPECT_EQ((ticks + 1) % 256, 0) << "the clock is read every time_check_ticks (256) ticks";
  EXPECT_TRUE(log_.empty());
  busy.kill();
}

// The clock is read only every time_check_ticks ticks: a tasklet whose slice is long over (it slept
// 5 ms at its start) is interrupted in exactly its 64th tick with time_check_ticks = 64.
TEST_F(time_slice, clock_is_read_every_time_check_ticks) {
  long ticks = 0;
  tasklet t([&] {
    std::this_thread::sleep_for(5ms);  // the whole thread sleeps; no tick, no switch
    spin(log_, &ticks)();
  });
  tasklet x = sl::run({.time_slice = 1ms, .time_check_ticks = 64});
  EXPECT_TRUE(x == t);
  EXPECT_EQ(ticks, 63);
  x.kill();
}

// A time_slice does not blur the tick budget: with timeout 1000 and a time slice of an hour (the
// clock read every 256 ticks), the interrupt still lands in exactly the 1000th tick.
TEST_F(time_slice, tick_budget_stays_exact) {
  long ticks = 0;
  tasklet busy(spin(log_, &ticks));
  tasklet x = sl::run({.timeout = 1000, .time_slice = std::chrono::hours(1)});
  EXPECT_TRUE(x == busy);
  EXPECT_EQ(ticks, 999);
  x.kill();
}

// Under a time_slice too, atomic defers the interrupt to the first tick after the section.
TEST_F(time_slice, atomic_defers_it) {
  tasklet t([&] {
    {
      sl::atomic guard;
      std::this_thread::sleep_for(3ms);
      for (int i = 0; i < 1000; ++i) tick();
    }
    log("after atomic");
    tick();
    log("after tick");
  });
  tasklet x = sl::run({.time_slice = 1ms, .time_check_ticks = 16});
  EXPECT_TRUE(x == t);
  EXPECT_THAT(log_, ElementsAre("after atomic"));
  x.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("after atomic", "after tick"));
}

// ------------------------------------------------------------------------------------------------
// tick() without a timed run(), and the remaining run_options flags

// Without a timed run() active, tick() never switches, whatever it counts.
TEST_F(tick_point, never_switches_without_a_timed_run) {
  tasklet t([&] { log("t"); });
  for (int i = 0; i < 8; ++i) tick(UINT32_MAX);
  EXPECT_TRUE(log_.empty());
  tasklet inner([&] {
    for (int i = 0; i < 8; ++i) tick(UINT32_MAX);
    log("inner ticked");
  });
  sl::run();  // untimed
  EXPECT_THAT(log_, ElementsAre("t", "inner ticked"));
}

// The budget is uninstalled when the timed run() returns: ticks after it never switch.
TEST_F(tick_point, budget_ends_with_the_run_call) {
  tasklet t([&] {
    for (int i = 0; i < 50; ++i) tick();
    log("t done");
  });
  EXPECT_FALSE(sl::run({.timeout = 100}));
  tasklet u([&] {
    for (int i = 0; i < 1000; ++i) tick();
    log("u done");
  });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t done", "u done"));
}

TEST_F(run_flags, empty_queue_returns_at_once) {
  EXPECT_FALSE(sl::run({.timeout = 100}));
  EXPECT_FALSE(sl::run({.timeout = 100, .soft = true}));
  EXPECT_FALSE(sl::run({.time_slice = 1ms}));
  EXPECT_EQ(runcount(), 1);
}

// [verified §4.3, the part a single thread can show] run(threadblock) with nothing to run and no
// other thread returns at once. (Parking until another thread sends needs threads: issue 5.)
TEST_F(run_flags, threadblock_with_nothing_to_run_returns_at_once) {
  EXPECT_FALSE(sl::run({.threadblock = true}));
  EXPECT_FALSE(sl::run({.timeout = 1'000'000'000, .threadblock = true}));
  EXPECT_EQ(runcount(), 1);
}

// ignore_nesting has nothing to ignore in C++: with or without it (on run() or on the tasklet),
// the interrupt lands at the same tick.
TEST_F(run_flags, ignore_nesting_changes_nothing) {
  for (const bool flag : {false, true}) {
    long ticks = 0;
    tasklet busy(spin(log_, &ticks));
    EXPECT_FALSE(busy.set_ignore_nesting(flag));
    EXPECT_EQ(busy.ignore_nesting(), flag);
    tasklet x = sl::run({.timeout = 100, .ignore_nesting = flag});
    EXPECT_TRUE(x == busy);
    EXPECT_EQ(ticks, 99);
    x.kill();
  }
}

}  // namespace
