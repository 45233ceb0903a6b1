// tests/scheduler_test.cpp — the scheduler of one thread: run-queue order (reference §1.4–§1.5),
// schedule()/schedule_remove() (§4.4), run() and its nesting (§4.1), runcount (§4.5), the empty
// queue rule and deadlock (§1.6), termination and error propagation (§1.7), join(), the schedule
// callback and switch_trap (§4.6). Floating-point state and many switches are in stack_test.cpp.
//
// Execution orders are asserted exactly and derived in comments from the run-queue model; those
// the reference marks [verified] say so.
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using sl::current;
using sl::main_tasklet;
using sl::runcount;
using sl::schedule;
using sl::schedule_remove;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::label;
using stackless_testing::tracker;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using scheduling = stackless_test;
using run_loop = stackless_test;
using uncaught = stackless_test;
using join = stackless_test;
using schedule_callback = stackless_test;
using switch_trap = stackless_test;

// body logs name, yields once, logs "<name> end".
auto body(std::vector<std::string>& log, std::string name) {
  return [&log, name] {
    log.push_back(name);
    schedule();
    log.push_back(name + " end");
  };
}

// ------------------------------------------------------------------------------------------------
// Run-queue order (§1.4, §1.5) and schedule()/schedule_remove() (§4.4)

TEST_F(scheduling, creation_order_and_round_robin) {
  tasklet t1(body(log_, "t1")), t2(body(log_, "t2")), t3(body(log_, "t3"));
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t1", "t2", "t3", "t1 end", "t2 end", "t3 end"));
}

TEST_F(scheduling, schedule_from_main_visits_everyone_once) {
  tasklet t1(body(log_, "t1")), t2(body(log_, "t2")), t3(body(log_, "t3"));
  schedule();  // main stays in the queue: t1, t2, t3 run, then main
  log("main");
  EXPECT_THAT(log_, ElementsAre("t1", "t2", "t3", "main"));
  EXPECT_EQ(runcount(), 4);
  EXPECT_TRUE(main_tasklet().next() == t1);
  schedule();
  log("main again");
  EXPECT_THAT(log_,
              ElementsAre("t1", "t2", "t3", "main", "t1 end", "t2 end", "t3 end", "main again"));
  EXPECT_EQ(runcount(), 1);
}

TEST_F(scheduling, schedule_alone_returns_at_once) {
  int switches = 0;
  sl::set_schedule_callback([&](tasklet, tasklet) { ++switches; });
  schedule();
  EXPECT_EQ(switches, 0);
  EXPECT_EQ(runcount(), 1);
  EXPECT_TRUE(main_tasklet().is_current());
}

TEST_F(scheduling, schedule_remove_leaves_the_queue) {
  tasklet t([this] {
    log("t");
    schedule_remove();
    log("t resumed");
  });
  tasklet u(body(log_, "u"));
  schedule();  // t removes itself, u yields to main
  log("main");
  EXPECT_TRUE(t.paused());
  EXPECT_FALSE(t.scheduled());
  EXPECT_TRUE(t.alive());
  EXPECT_EQ(runcount(), 2);
  t.insert();  // queue main, u, t
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t", "u", "main", "u end", "t resumed"));
}

TEST_F(scheduling, schedule_remove_of_last_runnable_wakes_run_caller) {
  tasklet t([this] {
    log("t");
    schedule_remove();
    log("t resumed");
  });
  sl::run();  // t leaves the queue as the last runnable: main's run() returns (§1.6 rule 1)
  log("main");
  EXPECT_TRUE(t.paused());
  EXPECT_EQ(runcount(), 1);
  t.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t", "main", "t resumed"));
}

TEST_F(scheduling, schedule_remove_of_main_alone_continues) {
  int switches = 0;
  sl::set_schedule_callback([&](tasklet, tasklet) { ++switches; });
  schedule_remove();
  EXPECT_TRUE(main_tasklet().is_current());
  EXPECT_TRUE(main_tasklet().scheduled()) << "main is re-inserted (§1.6 rule 1, T is W)";
  EXPECT_FALSE(main_tasklet().paused());
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(switches, 0);
  // The runtime is intact afterwards (no handle to main was held while it left the queue).
  tasklet t([this] { log("t"); });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t"));
  EXPECT_TRUE(main_tasklet().is_current());
}

TEST_F(scheduling, schedule_remove_while_main_is_blocked_deadlocks) {
  // W (main) is blocked in join(), so the last runnable cannot leave the queue (§1.6 rule 4);
  // the error is raised in the caller, which stays current.
  tasklet t([this] {
    try {
      schedule_remove();
      log("removed");
    } catch (const sl::deadlock_error& e) {
      log(e.what());
      log(current().scheduled() ? "still scheduled" : "not scheduled");
    }
  });
  t.join();
  log("main joined");
  EXPECT_THAT(log_, ElementsAre("Deadlock: the last runnable tasklet cannot be blocked.",
                                "still scheduled", "main joined"));
}

// ------------------------------------------------------------------------------------------------
// run() (§4.1) and runcount (§4.5)

TEST_F(run_loop, empty_queue_returns_at_once) {
  EXPECT_FALSE(sl::run(sl::run_options{}));
  sl::run();
  EXPECT_EQ(runcount(), 1);
  EXPECT_TRUE(main_tasklet().is_current());
}

TEST_F(run_loop, runcount_does_not_count_the_run_caller) {
  // [verified] two tasklets started by main's run() see 2 and then 1.
  std::vector<int> seen;
  tasklet t1([&] { seen.push_back(runcount()); });
  tasklet t2([&] { seen.push_back(runcount()); });
  EXPECT_EQ(runcount(), 3);
  sl::run();
  EXPECT_THAT(seen, ElementsAre(2, 1));
  EXPECT_EQ(runcount(), 1);
}

TEST_F(run_loop, nested_run_returns_when_queue_empties) {
  // test_inner_run_completes_first: the inner run() returns when the queue empties; the outer
  // run()'s caller stays paused until then.
  tasklet m = main_tasklet();
  bool main_paused = false;
  tasklet t1([&] {
    log("t1");
    sl::run();
    main_paused = m.paused();
    log("t1 after inner run");
  });
  tasklet t2(body(log_, "t2"));
  tasklet t3([this] { log("t3"); });
  sl::run();
  log("main");
  EXPECT_THAT(log_, ElementsAre("t1", "t2", "t3", "t2 end", "t1 after inner run", "main"));
  EXPECT_TRUE(main_paused);
}

TEST_F(run_loop, switching_to_an_outer_run_caller_ends_the_inner_run_too) {
  // §4.1 (3e, 4): main's run() returns when main is switched to; the deeper run() caller t1 is
  // popped as well and appended, and its run() returns when it next runs.
  tasklet t1([this] {
    log("t1");
    sl::run();
    log("t1 after inner run");
  });
  tasklet t2([this] {
    log("t2");
    main_tasklet().switch_to();
    log("t2 end");
  });
  sl::run();
  log("main back");
  EXPECT_TRUE(t1.scheduled());
  EXPECT_TRUE(t2.paused());
  EXPECT_EQ(runcount(), 2);
  sl::run();
  t2.run();
  EXPECT_THAT(log_, ElementsAre("t1", "t2", "main back", "t1 after inner run", "t2 end"));
}

TEST_F(run_loop, run_from_a_tasklet_with_empty_queue_returns_at_once) {
  tasklet t([this] {
    sl::run();
    log("t");
  });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t"));
}

// ------------------------------------------------------------------------------------------------
// Uncaught exceptions (§1.7)

TEST_F(uncaught, delivered_to_main_run_once_and_others_stay_queued) {
  // [verified] other tasklets stay queued where they were; a later run() continues them.
  tasklet t1(body(log_, "t1"));
  tasklet t2([this] {
    log("t2");
    throw std::runtime_error("boom");
  });
  tasklet t3(body(log_, "t3"));
  EXPECT_THROW_WHAT(sl::run(), std::runtime_error, "boom");
  EXPECT_THAT(log_, ElementsAre("t1", "t2"));
  EXPECT_FALSE(t2.alive());
  EXPECT_TRUE(t1.scheduled());
  EXPECT_TRUE(t3.scheduled());
  EXPECT_EQ(runcount(), 3);
  EXPECT_TRUE(main_tasklet().is_current());
  EXPECT_NO_THROW(sl::run());  // delivered exactly once
  ASSERT_EQ(log_.size(), 5u);
  EXPECT_THAT(std::vector<std::string>(log_.begin() + 2, log_.end()),
              UnorderedElementsAre("t1 end", "t3", "t3 end"));
}

TEST_F(uncaught, delivered_to_innermost_run) {
  tasklet t1([this] {
    try {
      sl::run();
      log("inner run returned");
    } catch (const std::runtime_error& e) {
      log(std::string("t1 caught ") + e.what());
    }
  });
  tasklet t2([] { throw std::runtime_error("t2 failed"); });
  tasklet t3([this] { log("t3"); });
  EXPECT_NO_THROW(sl::run());
  EXPECT_THAT(log_, ElementsAre("t1 caught t2 failed", "t3"));
}

TEST_F(uncaught, surfaces_from_tasklet_run) {
  tasklet t([] { throw std::length_error("too long"); });
  EXPECT_THROW_WHAT(t.run(), std::length_error, "too long");
  EXPECT_FALSE(t.alive());
  EXPECT_NO_THROW(sl::run());
}

TEST_F(uncaught, rethrown_once_in_main_waiting_in_join) {
  tasklet t([this] {
    for (int i = 0; i < 3; ++i) {
      log("step " + std::to_string(i));
      schedule();
    }
    throw std::domain_error("late failure");
  });
  int caught = 0;
  try {
    t.join();
    log("join returned");
  } catch (const std::domain_error& e) {
    ++caught;
    EXPECT_STREQ(e.what(), "late failure");
  }
  EXPECT_EQ(caught, 1);
  EXPECT_FALSE(t.alive());
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  EXPECT_NO_THROW(schedule());
  EXPECT_NO_THROW(sl::run());
  EXPECT_THAT(log_, ElementsAre("step 0", "step 1", "step 2"));
}

TEST_F(uncaught, rethrown_once_in_main_waiting_in_schedule) {
  tasklet t([] { throw std::domain_error("failure"); });
  tasklet u(body(log_, "u"));
  EXPECT_THROW_WHAT(schedule(), std::domain_error, "failure");
  EXPECT_TRUE(log_.empty()) << "main is switched to at once";
  EXPECT_NO_THROW(sl::run());
  EXPECT_THAT(log_, ElementsAre("u", "u end"));
}

TEST_F(uncaught, error_handler_runs_in_failing_tasklet_and_swallows) {
  tasklet failing;
  bool arg_is_failing = false, current_is_failing = false;
  std::vector<std::string> handled;
  sl::error_handler previous = sl::set_error_handler([&](tasklet t, std::exception_ptr e) {
    arg_is_failing = t == failing;
    current_is_failing = current() == failing;
    try {
      std::rethrow_exception(e);
    } catch (const std::runtime_error& x) {
      handled.push_back(x.what());
    }
  });
  EXPECT_FALSE(previous);
  failing = tasklet([this] {
    log("f");
    throw std::runtime_error("oops");
  });
  tasklet after([this] { log("after"); });
  EXPECT_NO_THROW(sl::run());
  EXPECT_THAT(log_, ElementsAre("f", "after"));
  EXPECT_THAT(handled, ElementsAre("oops"));
  EXPECT_TRUE(arg_is_failing);
  EXPECT_TRUE(current_is_failing);
  EXPECT_FALSE(failing.alive());
}

TEST_F(uncaught, error_handler_that_throws_delivers_its_exception) {
  sl::set_error_handler(
      [](tasklet, std::exception_ptr) { throw std::logic_error("from handler"); });
  tasklet f([] { throw std::runtime_error("oops"); });
  tasklet after([this] { log("after"); });
  EXPECT_THROW_WHAT(sl::run(), std::logic_error, "from handler");
  EXPECT_TRUE(log_.empty());
  EXPECT_TRUE(after.scheduled());
  EXPECT_NO_THROW(sl::run());
  EXPECT_THAT(log_, ElementsAre("after"));
}

TEST_F(uncaught, set_error_handler_returns_previous) {
  int first = 0, second = 0;
  EXPECT_FALSE(sl::set_error_handler([&](tasklet, std::exception_ptr) { ++first; }));
  sl::error_handler prev = sl::set_error_handler([&](tasklet, std::exception_ptr) { ++second; });
  ASSERT_TRUE(prev);
  prev(tasklet(), nullptr);
  EXPECT_EQ(first, 1);
  prev = sl::set_error_handler({});
  ASSERT_TRUE(prev);
  prev(tasklet(), nullptr);
  EXPECT_EQ(second, 1);
  EXPECT_FALSE(sl::set_error_handler({}));
}
// ------------------------------------------------------------------------------------------------
// join(): blocking through the wait-queue primitive; the §1.6 deadlock rule

TEST_F(join, waits_for_several_schedule_steps) {
  tasklet m = main_tasklet();
  int main_blocked = 0;
  bool main_scheduled = false, main_paused = true;
  std::size_t nodes = 0;
  tasklet t([&] {
    main_blocked = m.blocked();
    main_scheduled = m.scheduled();
    main_paused = m.paused();
    nodes = sl::memory_stats().wait_nodes;
    for (int i = 0; i < 5; ++i) {
      log("t" + std::to_string(i));
      schedule();
    }
  });
  tasklet u([this] {
    for (int i = 0; i < 3; ++i) {
      log("u" + std::to_string(i));
      schedule();
    }
  });
  t.join();
  log("joined");
  EXPECT_THAT(log_, ElementsAre("t0", "u0", "t1", "u1", "t2", "u2", "t3", "t4", "joined"));
  EXPECT_FALSE(t.alive());
  EXPECT_FALSE(u.alive());
  EXPECT_EQ(main_blocked, -1);
  EXPECT_TRUE(main_scheduled);
  EXPECT_FALSE(main_paused);
  EXPECT_EQ(nodes, 1u);
  EXPECT_EQ(m.blocked(), 0);
}

TEST_F(join, returns_when_the_target_is_killed) {
  tasklet t([this] {
    try {
      schedule_remove();
    } catch (const tasklet_exit&) {
      log("t killed");
      throw;
    }
  });
  schedule();  // t parks itself
  tasklet u([&] {
    t.kill();  // paused target: appended just before u, so u resumes right after t dies
    log("u after kill");
  });
  t.join();
  log("main joined");
  EXPECT_THAT(log_, ElementsAre("t killed", "u after kill", "main joined"));
  EXPECT_FALSE(t.alive());
}

TEST_F(join, main_left_waiting_by_the_last_tasklet_gets_deadlock) {
  // main waits for p, which nobody will start; when t, the last runnable, ends, main is woken with
  // deadlock_error (errors.hpp; reference §1.7 "If T ended normally and the runqueue is now
  // empty").
  tasklet p([] {}, {.start = false});
  tasklet t([this] {
    log("t");
    schedule();
    log("t end");
  });
  EXPECT_THROW(p.join(), sl::deadlock_error);
  EXPECT_THAT(log_, ElementsAre("t", "t end"));
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_TRUE(main_tasklet().is_current());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  EXPECT_TRUE(p.paused());
}

TEST_F(join, dead_tasklet_returns_at_once) {
  tasklet t([] {});
  tasklet never([] {}, {.start = false});
  sl::run();
  never.kill();
  int switches = 0;
  sl::set_schedule_callback([&](tasklet, tasklet) { ++switches; });
  current().set_block_trap(true);  // joining a dead tasklet never blocks
  EXPECT_NO_THROW(t.join());
  EXPECT_NO_THROW(never.join());
  current().set_block_trap(false);
  EXPECT_EQ(switches, 0);
}

TEST_F(join, cannot_join_itself) {
  EXPECT_THROW_WHAT(current().join(), sl::runtime_error, "a tasklet cannot join itself");
  std::string inside;
  tasklet t([&] {
    try {
      current().join();
    } catch (const sl::runtime_error& e) {
      inside = e.what();
    }
  });
  sl::run();
  EXPECT_EQ(inside, "a tasklet cannot join itself");
}

TEST_F(join, main_joining_unstarted_paused_tasklet_deadlocks) {
  bool ran = false;
  tasklet p([&] { ran = true; }, {.start = false});
  EXPECT_THROW_WHAT(p.join(), sl::deadlock_error,
                    "Deadlock: the last runnable tasklet cannot be blocked.");
  // The failed operation leaves everything as it was (§1.6 rule 4).
  EXPECT_TRUE(main_tasklet().is_current());
  EXPECT_TRUE(main_tasklet().scheduled());
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_EQ(runcount(), 1);
  EXPECT_TRUE(p.paused());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  EXPECT_FALSE(ran);
}

TEST_F(join, main_joining_started_paused_tasklet_deadlocks) {
  int destroyed = 0;
  tasklet p([&] {
    tracker guard(&destroyed);
    schedule_remove();
    log("resumed");
  });
  schedule();
  ASSERT_TRUE(p.paused());
  EXPECT_THROW_WHAT(p.join(), sl::deadlock_error,
                    "Deadlock: the last runnable tasklet cannot be blocked.");
  EXPECT_EQ(runcount(), 1);
  p = tasklet();  // last handle gone: p is killed at the next switch
  sl::run();
  EXPECT_EQ(destroyed, 1);
  EXPECT_TRUE(log_.empty());
}

TEST_F(join, joining_inside_run_wakes_the_run_caller) {
  tasklet p([this] { log("p"); }, {.start = false});
  tasklet t([&] {
    p.join();
    log("t joined");
  });
  sl::run();  // t is the last runnable and blocks: main's run() returns, no deadlock
  EXPECT_TRUE(log_.empty());
  EXPECT_EQ(t.blocked(), -1);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 1u);
  p.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("p", "t joined"));
}

TEST_F(join, block_trap_refuses_to_block) {
  tasklet p([this] { log("p"); });
  current().set_block_trap(true);
  EXPECT_THROW_WHAT(p.join(), sl::runtime_error, "this tasklet does not like to be blocked.");
  current().set_block_trap(false);
  EXPECT_TRUE(log_.empty()) << "nothing switched";
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_EQ(runcount(), 2);

  std::string inside;
  tasklet q([this] {
    log("q");
    schedule();
  });
  tasklet t([&] {
    current().set_block_trap(true);
    try {
      q.join();
    } catch (const sl::runtime_error& e) {
      inside = e.what();
    }
  });
  sl::run();
  EXPECT_EQ(inside, "this tasklet does not like to be blocked.");
  EXPECT_THAT(log_, ElementsAre("p", "q"));
}

// ------------------------------------------------------------------------------------------------
// The schedule callback (§4.6)

TEST_F(schedule_callback, one_tasklet_scheduling_inside_run) {
  // [verified] one tasklet doing schedule() inside run() gives exactly (main,t1),(t1,main).
  std::vector<std::pair<std::string, std::string>> seen;
  int current_is_prev = 0;
  sl::set_schedule_callback([&](tasklet prev, tasklet next) {
    seen.emplace_back(label(prev), label(next));
    current_is_prev += current() == prev;
  });
  tasklet t1([] { schedule(); }, {.name = "t1"});
  sl::run();
  EXPECT_THAT(seen, ElementsAre(Pair("main", "t1"), Pair("t1", "main")));
  EXPECT_EQ(current_is_prev, 2) << "during the callback current() is prev";
}

TEST_F(schedule_callback, two_tasklets_round_robin) {
  // Derived from §1.4: every actual switch, including each tasklet's last one, is reported.
  std::vector<std::pair<std::string, std::string>> seen;
  sl::set_schedule_callback(
      [&](tasklet prev, tasklet next) { seen.emplace_back(label(prev), label(next)); });
  tasklet t1([] { schedule(); }, {.name = "t1"});
  tasklet t2([] { schedule(); }, {.name = "t2"});
  sl::run();
  EXPECT_THAT(seen, ElementsAre(Pair("main", "t1"), Pair("t1", "t2"), Pair("t2", "t1"),
                                Pair("t1", "t2"), Pair("t2", "main")));
}

TEST_F(schedule_callback, returns_previous) {
  int first = 0, second = 0;
  EXPECT_FALSE(sl::set_schedule_callback([&](tasklet, tasklet) { ++first; }));
  sl::schedule_callback prev = sl::set_schedule_callback([&](tasklet, tasklet) { ++second; });
  ASSERT_TRUE(prev);
  prev(tasklet(), tasklet());
  EXPECT_EQ(first, 1);
  tasklet t([] {});
  sl::run();
  EXPECT_EQ(second, 2);
  EXPECT_EQ(first, 1);
  prev = sl::set_schedule_callback({});
  ASSERT_TRUE(prev);
  EXPECT_FALSE(sl::set_schedule_callback({}));
}

TEST_F(schedule_callback, exception_is_printed_and_ignored) {
  sl::set_schedule_callback([](tasklet, tasklet) { throw std::runtime_error("callback failure"); });
  tasklet t(body(log_, "t"));
  ::testing::internal::CaptureStderr();
  sl::run();
  const std::string err = ::testing::internal::GetCapturedStderr();
  sl::set_schedule_callback({});
  EXPECT_THAT(log_, ElementsAre("t", "t end")) << "the switches still happen";
  std::size_t reports = 0;
  for (std::size_t pos = err.find("Error in scheduling callback"); pos != std::string::npos;
       pos = err.find("Error in scheduling callback", pos + 1))
    ++reports;
  EXPECT_EQ(reports, 2u) << "one report per switch (main->t, t->main); stderr was:\n" << err;
}

using schedule_callback_DeathTest = stackless_test;

void switch_inside_schedule_callback() {
  sl::set_schedule_callback([](tasklet, tasklet) { schedule(); });
  tasklet t([] {}, {.name = "t"});
  schedule();
}

TEST_F(schedule_callback_DeathTest, switching_inside_the_callback_is_fatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(switch_inside_schedule_callback(), "stackless: .*schedule callback");
}

// ------------------------------------------------------------------------------------------------
// switch_trap (§4.6)

TEST_F(switch_trap, every_switch_throws_and_changes_nothing) {
  tasklet m = main_tasklet();
  tasklet t([this] { log("t"); }, {.name = "t"});
  tasklet p([this] { log("p"); }, {.name = "p", .start = false});
  {
    sl::switch_trap trap;
    EXPECT_THROW_WHAT(schedule(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(schedule_remove(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(sl::run(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(t.run(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(t.switch_to(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(t.kill(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(t.raise_exception<std::logic_error>("x"), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(t.join(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(p.run(), sl::runtime_error, "switch_trap");
    EXPECT_THROW_WHAT(p.switch_to(), sl::runtime_error, "switch_trap");
    // Nothing moved.
    EXPECT_TRUE(m.is_current());
    EXPECT_TRUE(m.scheduled());
    EXPECT_EQ(m.blocked(), 0);
    EXPECT_EQ(runcount(), 2);
    EXPECT_TRUE(m.next() == t);
    EXPECT_TRUE(t.next() == m);
    EXPECT_TRUE(t.alive());
    EXPECT_TRUE(p.paused());
    EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
    EXPECT_TRUE(log_.empty());
  }
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t"));
  EXPECT_TRUE(p.paused());
}

TEST_F(switch_trap, self_switches_and_queue_operations_are_allowed) {
  tasklet t([this] {
    try {
      schedule();
      log("t resumed");
    } catch (const tasklet_exit&) {
      log("t killed");
      throw;
    }
  });
  schedule();  // t waits in schedule()
  {
    sl::switch_trap trap;
    EXPECT_NO_THROW(current().run());
    EXPECT_NO_THROW(current().switch_to());
    EXPECT_NO_THROW(t.remove());
    EXPECT_TRUE(t.paused());
    EXPECT_NO_THROW(t.insert());
    EXPECT_TRUE(t.scheduled());
    EXPECT_NO_THROW(t.kill(/*pending=*/true));  // a pending kill does not switch
    EXPECT_TRUE(log_.empty());
  }
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t killed"));
}

TEST_F(switch_trap, nests) {
  tasklet t([this] { log("t"); });
  {
    sl::switch_trap outer;
    {
      sl::switch_trap inner;
      EXPECT_THROW_WHAT(schedule(), sl::runtime_error, "switch_trap");
    }
    EXPECT_THROW_WHAT(schedule(), sl::runtime_error, "switch_trap");
  }
  EXPECT_NO_THROW(schedule());
  EXPECT_THAT(log_, ElementsAre("t"));
}

TEST_F(switch_trap, inside_a_tasklet) {
  std::string error;
  tasklet t([&] {
    sl::switch_trap trap;
    try {
      schedule();  // u is runnable, so this would switch
    } catch (const sl::runtime_error& e) {
      error = e.what();
    }
    log("t");
  });
  tasklet u([this] { log("u"); });
  sl::run();
  EXPECT_EQ(error, "switch_trap");
  EXPECT_THAT(log_, ElementsAre("t", "u"));
}

}  // namespace
