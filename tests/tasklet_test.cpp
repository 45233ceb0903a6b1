// tests/tasklet_test.cpp — the tasklet class: states and predicates (reference §2.2), insert/remove
// (§2.3), run() (§2.4), switch_to() (§2.5), kill/throw_exception/raise_exception (§2.6) and flags
// (§2.7). join() is in scheduler_test.cpp; lifetime and deep unwinding in stack_test.cpp.
//
// Execution orders are asserted exactly; the comments derive each from the run-queue model
// (reference §1.4–§1.7). Orders marked [verified] in the reference are quoted as such.
#include <cstdint>
#include <exception>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
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
using stackless_testing::tracker;
using ::testing::ElementsAre;

using tasklet_state = stackless_test;
using tasklet_queue = stackless_test;
using tasklet_run = stackless_test;
using tasklet_switch = stackless_test;
using tasklet_kill = stackless_test;
using tasklet_flags = stackless_test;

// ------------------------------------------------------------------------------------------------
// States and predicates (§2.2)

TEST_F(tasklet_state, empty_handle) {
  tasklet t;
  EXPECT_FALSE(t);
  EXPECT_TRUE(tasklet() == tasklet());
}

TEST_F(tasklet_state, main_tasklet_alone) {
  tasklet m = main_tasklet();
  EXPECT_TRUE(current() == m);
  EXPECT_TRUE(m.is_main());
  EXPECT_TRUE(m.is_current());
  EXPECT_TRUE(m.alive());
  EXPECT_TRUE(m.scheduled());
  EXPECT_FALSE(m.paused());
  EXPECT_EQ(m.blocked(), 0);
  EXPECT_EQ(m.thread_id(), std::this_thread::get_id());
  EXPECT_EQ(runcount(), 1);
  // Alone in the circular run queue, main is its own neighbour.
  EXPECT_TRUE(m.next() == m);
  EXPECT_TRUE(m.prev() == m);
}

TEST_F(tasklet_state, new_tasklet_is_scheduled_then_dead) {
  tasklet m = main_tasklet();
  tasklet t([this] { log("t"); });
  EXPECT_TRUE(t.alive());
  EXPECT_TRUE(t.scheduled());
  EXPECT_FALSE(t.paused());
  EXPECT_EQ(t.blocked(), 0);
  EXPECT_FALSE(t.is_main());
  EXPECT_FALSE(t.is_current());
  EXPECT_EQ(t.thread_id(), std::this_thread::get_id());
  EXPECT_EQ(runcount(), 2);
  // With main + t: t.prev is main and t.next is main (reference §2.2).
  EXPECT_TRUE(t.prev() == m);
  EXPECT_TRUE(t.next() == m);
  EXPECT_TRUE(m.next() == t);
  EXPECT_TRUE(m.prev() == t);

  sl::run();
  EXPECT_THAT(log_, ElementsAre("t"));
  EXPECT_TRUE(t);  // a dead tasklet's handle is still a handle
  EXPECT_FALSE(t.alive());
  EXPECT_FALSE(t.scheduled());
  EXPECT_FALSE(t.paused());
  EXPECT_EQ(t.blocked(), 0);
  EXPECT_FALSE(t.is_current());
  EXPECT_FALSE(t.next());
  EXPECT_FALSE(t.prev());
  EXPECT_EQ(runcount(), 1);
  EXPECT_TRUE(m.next() == m);
}

TEST_F(tasklet_state, start_false_is_alive_and_paused) {
  tasklet m = main_tasklet();
  tasklet t([this] { log("t"); }, {.start = false});
  EXPECT_TRUE(t.alive());
  EXPECT_FALSE(t.scheduled());
  EXPECT_TRUE(t.paused());
  EXPECT_EQ(t.blocked(), 0);
  EXPECT_FALSE(t.next());
  EXPECT_FALSE(t.prev());
  EXPECT_EQ(runcount(), 1);

  sl::run();  // nothing runnable: returns at once
  EXPECT_TRUE(log_.empty());
  EXPECT_TRUE(t.paused());

  t.insert();
  EXPECT_TRUE(t.scheduled());
  EXPECT_FALSE(t.paused());
  EXPECT_TRUE(t.prev() == m);
  EXPECT_TRUE(t.next() == m);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t"));
  EXPECT_FALSE(t.alive());
}

TEST_F(tasklet_state, queue_geometry_of_three) {
  tasklet m = main_tasklet();
  tasklet t1([] {}), t2([] {});
  EXPECT_TRUE(m.next() == t1);
  EXPECT_TRUE(t1.next() == t2);
  EXPECT_TRUE(t2.next() == m);
  EXPECT_TRUE(m.prev() == t2);
  EXPECT_TRUE(t2.prev() == t1);
  EXPECT_TRUE(t1.prev() == m);
  sl::run();
}

TEST_F(tasklet_state, predicates_seen_from_inside) {
  tasklet m = main_tasklet();
  tasklet t;
  struct seen {
    bool cur_is_t, is_current, is_main, alive, scheduled, paused, main_current, main_paused,
        main_scheduled;
    int runcount;
  } in_run{}, in_schedule{};
  auto observe = [&](seen& s) {
    tasklet c = current();
    s = {c == t,     c.is_current(), c.is_main(), c.alive(),     c.scheduled(),
         c.paused(), m.is_current(), m.paused(),  m.scheduled(), runcount()};
  };
  t = tasklet([&] { observe(in_run); });
  sl::run();  // main waits inside run(): paused, not counted
  EXPECT_TRUE(in_run.cur_is_t && in_run.is_current && !in_run.is_main && in_run.alive);
  EXPECT_TRUE(in_run.scheduled && !in_run.paused);
  EXPECT_FALSE(in_run.main_current);
  EXPECT_TRUE(in_run.main_paused);
  EXPECT_FALSE(in_run.main_scheduled);
  EXPECT_EQ(in_run.runcount, 1);

  t = tasklet([&] { observe(in_schedule); });
  schedule();  // main stays in the queue
  EXPECT_TRUE(in_schedule.cur_is_t && in_schedule.is_current && !in_schedule.paused);
  EXPECT_FALSE(in_schedule.main_paused);
  EXPECT_TRUE(in_schedule.main_scheduled);
  EXPECT_EQ(in_schedule.runcount, 2);
}

TEST_F(tasklet_state, ids_are_unique_and_names_kept) {
  tasklet a([] {}, {.name = "alpha"});
  tasklet b([] {});
  tasklet c([] {}, {.name = "gamma", .start = false});
  std::set<std::uint64_t> ids{main_tasklet().id(), a.id(), b.id(), c.id()};
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(a.name(), "alpha");
  EXPECT_EQ(b.name(), "");
  EXPECT_EQ(c.name(), "gamma");
  sl::run();
  const std::uint64_t old_id = a.id();
  EXPECT_EQ(a.name(), "alpha");  // still readable once dead
  tasklet d([] {});
  EXPECT_FALSE(ids.count(d.id())) << "ids are never reused";
  EXPECT_NE(d.id(), old_id);
  sl::run();
}

TEST_F(tasklet_state, bind_thread_to_the_owner_is_a_noop) {
  tasklet t([this] { log("t"); }, {.start = false});
  EXPECT_NO_THROW(t.bind_thread());
  EXPECT_NO_THROW(t.bind_thread(std::this_thread::get_id()));
  EXPECT_EQ(t.thread_id(), std::this_thread::get_id());
  std::thread other([] {});
  const std::thread::id other_id = other.get_id();
  other.join();
  // A thread that has ended (or never used the runtime) is not a place to bind to.
  try {
    t.bind_thread(other_id);
    ADD_FAILURE() << "bind_thread to an ended thread did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "bad thread");
  }
  EXPECT_EQ(t.thread_id(), std::this_thread::get_id());
  t.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t"));
}

TEST_F(tasklet_state, copies_refer_to_the_same_tasklet) {
  tasklet t([this] { log("t"); }, {.start = false});
  tasklet copy = t;
  EXPECT_TRUE(copy == t);
  EXPECT_FALSE(copy == tasklet([] {}, {.start = false}));
  copy.insert();
  EXPECT_TRUE(t.scheduled());
  sl::run();
  EXPECT_FALSE(t.alive());
  EXPECT_THAT(log_, ElementsAre("t"));
}

// ------------------------------------------------------------------------------------------------
// insert() / remove() (§2.3) and their errors

TEST_F(tasklet_queue, remove_and_insert_transitions) {
  tasklet m = main_tasklet();
  tasklet t1([this] { log("t1"); }), t2([this] { log("t2"); });
  EXPECT_TRUE(&t1.remove() == &t1);  // returns self
  EXPECT_TRUE(t1.paused());
  EXPECT_FALSE(t1.scheduled());
  EXPECT_FALSE(t1.next());
  EXPECT_EQ(runcount(), 2);
  t1.remove();  // not in a run queue: no-op
  EXPECT_EQ(runcount(), 2);

  EXPECT_TRUE(&t1.insert() == &t1);  // appended: main, t2, t1
  EXPECT_TRUE(t1.scheduled());
  EXPECT_FALSE(t1.paused());
  EXPECT_TRUE(m.next() == t2);
  EXPECT_TRUE(t2.next() == t1);
  EXPECT_TRUE(t1.next() == m);
  t1.insert();  // already queued: no-op, keeps its place
  t2.insert();
  EXPECT_EQ(runcount(), 3);
  EXPECT_TRUE(m.next() == t2);

  m.insert();  // current: no-op
  EXPECT_EQ(runcount(), 3);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t2", "t1"));
}

TEST_F(tasklet_queue, dead_tasklet_cannot_run) {
  tasklet t([] {});
  sl::run();
  ASSERT_FALSE(t.alive());
  EXPECT_THROW_WHAT(t.insert(), sl::runtime_error, "You cannot run an unbound(dead) tasklet");
  EXPECT_THROW_WHAT(t.run(), sl::runtime_error, "You cannot run an unbound(dead) tasklet");
  EXPECT_THROW_WHAT(t.switch_to(), sl::runtime_error, "You cannot run an unbound(dead) tasklet");
  t.remove();  // dead: no-op
  EXPECT_FALSE(t.scheduled());
  EXPECT_EQ(runcount(), 1);
}

TEST_F(tasklet_queue, current_cannot_be_removed) {
  EXPECT_THROW_WHAT(current().remove(), sl::runtime_error,
                    "The current tasklet cannot be removed.");
  EXPECT_TRUE(main_tasklet().scheduled());
  std::string inside;
  tasklet t([&] {
    try {
      current().remove();
    } catch (const sl::runtime_error& e) {
      inside = e.what();
    }
  });
  sl::run();
  EXPECT_EQ(inside, "The current tasklet cannot be removed.");
}

TEST_F(tasklet_queue, blocked_tasklet_cannot_be_moved) {
  tasklet p([this] { log("p"); }, {.name = "p", .start = false});
  tasklet b(
      [&] {
        p.join();
        log("b joined");
      },
      {.name = "b"});
  sl::run();  // b blocks in join(); the queue empties, main's run() returns (§1.6)
  EXPECT_TRUE(log_.empty());
  EXPECT_TRUE(b.alive());
  EXPECT_EQ(b.blocked(), -1);
  EXPECT_TRUE(b.scheduled());
  EXPECT_FALSE(b.paused());
  EXPECT_FALSE(b.next());
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 1u);

  EXPECT_THROW_WHAT(b.insert(), sl::runtime_error, "You cannot run a blocked tasklet");
  EXPECT_THROW_WHAT(b.run(), sl::runtime_error, "You cannot run a blocked tasklet");
  EXPECT_THROW_WHAT(b.switch_to(), sl::runtime_error, "You cannot run a blocked tasklet");
  EXPECT_THROW_WHAT(b.remove(), sl::runtime_error, "You cannot remove a blocked tasklet.");
  EXPECT_EQ(b.blocked(), -1);

  p.insert();
  sl::run();
  EXPECT_THAT(log_, ElementsAre("p", "b joined"));
  EXPECT_FALSE(b.alive());
  EXPECT_EQ(b.blocked(), 0);
}

// ------------------------------------------------------------------------------------------------
// run() (§2.4)

auto logging_body(std::vector<std::string>& log, std::string name) {
  return [&log, name] {
    log.push_back(name);
    schedule();
    log.push_back(name + " end");
  };
}

TEST_F(tasklet_run, doc_example_runs_from_target_to_caller) {
  // [verified] queue main,t1,t2,t3: t2.run() prints t2, t3, then main resumes; t1 is skipped.
  tasklet t1(logging_body(log_, "t1"));
  tasklet t2(logging_body(log_, "t2"));
  tasklet t3(logging_body(log_, "t3"));
  t2.run();
  log("main");
  EXPECT_THAT(log_, ElementsAre("t2", "t3", "main"));
  // The queue is still main,t1,t2,t3.
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t2", "t3", "main", "t1", "t2 end", "t3 end", "t1 end"));
}

TEST_F(tasklet_run, doc_example_after_remove_runs_only_target) {
  // [verified] after t2.remove(), t2.run() appends t2 just before main: prints only t2.
  tasklet t1(logging_body(log_, "t1"));
  tasklet t2(logging_body(log_, "t2"));
  tasklet t3(logging_body(log_, "t3"));
  t2.remove();
  t2.run();
  log("main");
  EXPECT_THAT(log_, ElementsAre("t2", "main"));
  // The queue is main,t1,t3,t2.
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t2", "main", "t1", "t3", "t2 end", "t1 end", "t3 end"));
}

TEST_F(tasklet_run, paused_target_runs_then_caller) {
  tasklet o(logging_body(log_, "o"));
  tasklet p(logging_body(log_, "p"), {.start = false});
  p.run();  // appended just before main, so main resumes when p yields
  log("main");
  EXPECT_THAT(log_, ElementsAre("p", "main"));
  sl::run();
  EXPECT_THAT(log_, ElementsAre("p", "main", "o", "p end", "o end"));
}

TEST_F(tasklet_run, run_current_is_noop) {
  int switches = 0;
  sl::set_schedule_callback([&](tasklet, tasklet) { ++switches; });
  current().run();
  current().switch_to();
  EXPECT_EQ(switches, 0);
  EXPECT_TRUE(main_tasklet().scheduled());
  EXPECT_EQ(runcount(), 1);
}

// ------------------------------------------------------------------------------------------------
// switch_to() (§2.5)

TEST_F(tasklet_switch, caller_is_paused_inside_target) {
  tasklet m = main_tasklet();
  bool main_paused = false, main_scheduled = true;
  int count = 0;
  tasklet t([&] {
    log("t");
    main_paused = m.paused();  // [verified] main.paused is True, main.scheduled is False
    main_scheduled = m.scheduled();
    count = runcount();
    schedule();
    log("t2");
  });
  tasklet u([&] {
    log("u");
    schedule();
    log("u2");
  });
  t.switch_to();
  // main left the queue: t and u alternate without main; when the last one ends, main (no run()
  // active) is switched back to (§1.7).
  log("main");
  EXPECT_THAT(log_, ElementsAre("t", "u", "t2", "u2", "main"));
  EXPECT_TRUE(main_paused);
  EXPECT_FALSE(main_scheduled);
  EXPECT_EQ(count, 2);
  EXPECT_TRUE(m.scheduled());
}

TEST_F(tasklet_switch, switching_back_and_forth) {
  tasklet m = main_tasklet();
  tasklet t(
      [&] {
        log("t");
        m.switch_to();  // t becomes paused, main resumes
        log("t end");
      },
      {.start = false});
  t.switch_to();
  log("main");
  EXPECT_TRUE(t.paused());
  EXPECT_FALSE(t.scheduled());
  EXPECT_TRUE(t.alive());
  EXPECT_EQ(runcount(), 1);
  t.switch_to();
  log("main end");
  EXPECT_THAT(log_, ElementsAre("t", "main", "t end", "main end"));
  EXPECT_FALSE(t.alive());
}

TEST_F(tasklet_switch, main_switching_away_without_a_handle) {
  // Nobody holds a handle to main while it is paused: the runtime must keep it.
  tasklet t([this] { log("t"); }, {.start = false});
  t.switch_to();
  log("main");
  tasklet u([this] { log("u"); });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t", "main", "u"));
  EXPECT_TRUE(main_tasklet().is_current());
}

// ------------------------------------------------------------------------------------------------
// kill / throw_exception / raise_exception (§2.6)

struct victim_and_other {
  tasklet v, o;
  victim_and_other(std::vector<std::string>& log) {
    v = tasklet(
        [&log] {
          log.push_back("v start");
          try {
            schedule();
            log.push_back("v resumed");
          } catch (const tasklet_exit&) {
            log.push_back("v exit");
            throw;
          }
        },
        {.name = "v"});
    o = tasklet(
        [&log] {
          log.push_back("o start");
          schedule();
          log.push_back("o resumed");
          schedule();
          log.push_back("o end");
        },
        {.name = "o"});
    schedule();  // both start and yield: the queue is main, v, o again
  }
};

TEST_F(tasklet_kill, runnable_target_keeps_its_place) {
  // [verified] main,v,o: v.kill() => v handles tasklet_exit, then o runs, then main returns.
  victim_and_other s(log_);
  s.v.kill();
  log("main after kill");
  EXPECT_FALSE(s.v.alive());
  sl::run();
  EXPECT_THAT(log_,
              ElementsAre("v start", "o start", "v exit", "o resumed", "main after kill", "o end"));
}

TEST_F(tasklet_kill, paused_target_returns_right_after_it_dies) {
  victim_and_other s(log_);
  s.v.remove();
  s.v.kill();  // appended just before main
  log("main after kill");
  EXPECT_FALSE(s.v.alive());
  sl::run();
  EXPECT_THAT(log_,
              ElementsAre("v start", "o start", "v exit", "main after kill", "o resumed", "o end"));
}

TEST_F(tasklet_kill, blocked_target_is_unblocked_and_returns_right_after_it_dies) {
  tasklet p([] {}, {.start = false});
  tasklet b([&] {
    try {
      p.join();
      log("b joined");
    } catch (const tasklet_exit&) {
      log("b exit");
      throw;
    }
  });
  tasklet o([this] {
    log("o start");
    schedule();
    log("o end");
  });
  schedule();  // b blocks in join(), o runs and yields: queue main, o
  ASSERT_EQ(b.blocked(), -1);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 1u);
  b.kill();
  log("main after kill");
  EXPECT_FALSE(b.alive());
  EXPECT_EQ(b.blocked(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  EXPECT_TRUE(p.paused());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("o start", "b exit", "main after kill", "o end"));
}

TEST_F(tasklet_kill, pending_kill_of_paused_target_appends) {
  // [verified: appended at the end]
  victim_and_other s(log_);
  s.v.remove();
  s.v.kill(/*pending=*/true);
  log("after pending kill");
  EXPECT_TRUE(s.v.alive());
  EXPECT_TRUE(s.v.scheduled());
  EXPECT_TRUE(s.o.next() == s.v);
  EXPECT_TRUE(main_tasklet().prev() == s.v);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("v start", "o start", "after pending kill", "o resumed", "v exit",
                                "o end"));
}

TEST_F(tasklet_kill, pending_kill_of_queued_target_keeps_its_place) {
  victim_and_other s(log_);
  s.v.kill(/*pending=*/true);
  log("after pending kill");
  EXPECT_TRUE(main_tasklet().next() == s.v);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("v start", "o start", "after pending kill", "v exit", "o resumed",
                                "o end"));
}

TEST_F(tasklet_kill, never_started_target_ends_without_running) {
  int destroyed_a = 0, destroyed_b = 0;
  bool ran = false;
  tasklet a([&ran, tr = tracker(&destroyed_a)] { ran = true; });
  tasklet b([&ran, tr = tracker(&destroyed_b)] { ran = true; }, {.start = false});
  a.kill();
  b.kill();
  EXPECT_FALSE(a.alive());
  EXPECT_FALSE(b.alive());
  EXPECT_FALSE(a.scheduled());
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(destroyed_a, 1);
  EXPECT_EQ(destroyed_b, 1);
  sl::run();
  EXPECT_FALSE(ran);
}

TEST_F(tasklet_kill, throw_to_never_started_target_surfaces_in_caller) {
  // test_new: s.throw(IndexError) raises IndexError in main.
  bool ran = false;
  tasklet s([&] { ran = true; });
  EXPECT_THROW_WHAT(s.throw_exception(std::make_exception_ptr(std::out_of_range("index"))),
                    std::out_of_range, "index");
  EXPECT_FALSE(ran);
  EXPECT_FALSE(s.alive());
  EXPECT_EQ(runcount(), 1);
}

TEST_F(tasklet_kill, pending_throw_to_never_started_target_surfaces_in_next_run) {
  bool ran = false;
  tasklet s([&] { ran = true; });
  s.throw_exception(std::make_exception_ptr(std::out_of_range("index")), /*pending=*/true);
  EXPECT_TRUE(s.alive());
  EXPECT_THROW_WHAT(sl::run(), std::out_of_range, "index");
  EXPECT_FALSE(ran);
  EXPECT_FALSE(s.alive());
  sl::run();  // delivered exactly once
}

TEST_F(tasklet_kill, kill_of_dead_tasklet_is_noop) {
  tasklet t([] {});
  sl::run();
  EXPECT_NO_THROW(t.kill());
  EXPECT_NO_THROW(t.kill(/*pending=*/true));
  EXPECT_FALSE(t.alive());
  EXPECT_FALSE(t.scheduled());
  EXPECT_EQ(runcount(), 1);
}

TEST_F(tasklet_kill, kill_of_current_throws_in_caller) {
  EXPECT_THROW(current().kill(), tasklet_exit);
  EXPECT_THROW(current().kill(/*pending=*/true), tasklet_exit);  // pending is ignored for self
  int handled = 0;
  sl::set_error_handler([&](tasklet, std::exception_ptr) { ++handled; });
  tasklet t([this] {
    log("before");
    current().kill();
    log("after");
  });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("before"));
  EXPECT_FALSE(t.alive());
  EXPECT_EQ(handled, 0) << "tasklet_exit ends a tasklet silently";
}

TEST_F(tasklet_kill, throw_to_dead_tasklet_fails) {
  tasklet t([] {});
  sl::run();
  auto e = std::make_exception_ptr(std::logic_error("x"));
  EXPECT_THROW_WHAT(t.throw_exception(e), sl::runtime_error, "You cannot throw to a dead tasklet");
  EXPECT_THROW_WHAT(t.throw_exception(e, true), sl::runtime_error,
                    "You cannot throw to a dead tasklet");
  EXPECT_THROW_WHAT(t.raise_exception<std::logic_error>("x"), sl::runtime_error,
                    "You cannot throw to a dead tasklet");
}

TEST_F(tasklet_kill, raise_exception_is_thrown_where_target_waits) {
  struct custom {
    int value;
  };
  tasklet t([this] {
    try {
      schedule();
    } catch (const std::invalid_argument& e) {
      log(std::string("caught ") + e.what());
    }
    try {
      schedule();
    } catch (const custom& c) {
      log("custom " + std::to_string(c.value));
    }
  });
  schedule();
  t.raise_exception<std::invalid_argument>("bad argument");
  log("main");
  t.throw_exception(std::make_exception_ptr(custom{42}));
  log("main end");
  EXPECT_THAT(log_, ElementsAre("caught bad argument", "main", "custom 42", "main end"));
  EXPECT_FALSE(t.alive());
}

TEST_F(tasklet_kill, tasklet_that_catches_exit_stays_alive) {
  tasklet t([this] {
    try {
      schedule();
    } catch (const tasklet_exit&) {
      log("caught exit");
    }
    schedule();
    log("end");
  });
  schedule();
  t.kill();
  log("main");
  EXPECT_TRUE(t.alive());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("caught exit", "main", "end"));
}

TEST_F(tasklet_kill, exception_from_cleanup_surfaces_in_killer) {
  tasklet v([] {
    try {
      schedule();
    } catch (const tasklet_exit&) {
      throw std::logic_error("cleanup failed");
    }
  });
  schedule();
  EXPECT_THROW_WHAT(v.kill(), std::logic_error, "cleanup failed");
  EXPECT_FALSE(v.alive());
  EXPECT_NO_THROW(sl::run());  // delivered exactly once
}

TEST_F(tasklet_kill, tasklet_exit_is_not_a_std_exception) {
  static_assert(!std::is_base_of_v<std::exception, tasklet_exit>);
  tasklet t([this] {
    try {
      try {
        schedule();
      } catch (const std::exception&) {
        log("swallowed by std::exception");
      }
    } catch (...) {
      log("seen by catch(...)");
      throw;
    }
    log("kept running");
  });
  schedule();
  t.kill();
  EXPECT_THAT(log_, ElementsAre("seen by catch(...)"));
  EXPECT_FALSE(t.alive());
}

// ------------------------------------------------------------------------------------------------
// Flags (§2.7)

TEST_F(tasklet_flags, set_atomic_returns_previous) {
  tasklet m = main_tasklet();
  EXPECT_FALSE(m.atomic());
  EXPECT_FALSE(m.set_atomic(true));
  EXPECT_TRUE(m.atomic());
  EXPECT_TRUE(m.set_atomic(true));
  EXPECT_TRUE(m.set_atomic(false));
  EXPECT_FALSE(m.atomic());
}

TEST_F(tasklet_flags, atomic_guard_restores_and_nests) {
  tasklet m = main_tasklet();
  {
    sl::atomic outer;
    EXPECT_TRUE(m.atomic());
    {
      sl::atomic inner;
      EXPECT_TRUE(m.atomic());
    }
    EXPECT_TRUE(m.atomic()) << "the inner guard restores the outer's value";
  }
  EXPECT_FALSE(m.atomic());
  m.set_atomic(true);
  { sl::atomic guard; }
  EXPECT_TRUE(m.atomic()) << "a guard entered while atomic leaves it atomic";
  m.set_atomic(false);
}

TEST_F(tasklet_flags, atomic_is_per_tasklet_and_not_inherited) {
  // [verified] all flags of a new tasklet start cleared, atomic included.
  tasklet m = main_tasklet();
  m.set_atomic(true);
  bool inside = true, main_seen = false;
  tasklet t([&] {
    inside = current().atomic();
    main_seen = m.atomic();
    sl::atomic guard;
    schedule();
  });
  EXPECT_FALSE(t.atomic());
  schedule();  // atomic does not stop voluntary switches
  m.set_atomic(false);
  EXPECT_FALSE(inside);
  EXPECT_TRUE(main_seen);
  EXPECT_TRUE(t.atomic()) << "t is suspended inside its atomic guard";
  EXPECT_FALSE(m.atomic());
  sl::run();
  EXPECT_FALSE(t.atomic());
}

TEST_F(tasklet_flags, ignore_nesting_and_block_trap) {
  tasklet t([] {}, {.start = false});
  EXPECT_FALSE(t.ignore_nesting());
  EXPECT_FALSE(t.set_ignore_nesting(true));
  EXPECT_TRUE(t.ignore_nesting());
  EXPECT_TRUE(t.set_ignore_nesting(false));
  EXPECT_FALSE(t.ignore_nesting());
  EXPECT_FALSE(t.block_trap());
  t.set_block_trap(true);
  EXPECT_TRUE(t.block_trap());
  t.set_block_trap(false);
  EXPECT_FALSE(t.block_trap());
}

}  // namespace
