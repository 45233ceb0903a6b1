// tests/select_test.cpp — select() over several channel operations (select.hpp): exactly one case
// completes; a tasklet blocked in select counts in the balance and queue of every channel it waits
// on and leaves all of them when a case fires or it is killed; after() and or_else(); a uniform
// choice among ready cases; invalid selects; exceptions; closing channels; preference of a
// hand-off to a waiting select; the blocking rules.
//
// Timing: only after() tests measure time; a 20 ms timeout must take >= 20 ms and < 2 s.
#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using sl::after;
using sl::channel;
using sl::current;
using sl::main_tasklet;
using sl::on_receive;
using sl::on_send;
using sl::or_else;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::copy_counts;
using stackless_testing::counted;
using stackless_testing::stopwatch;
using ::testing::ElementsAre;

using select_cases = stackless_test;
using select_waiting = stackless_test;
using select_timeout = stackless_test;
using select_fairness = stackless_test;
using select_errors = stackless_test;

constexpr const char* closed_message = "Send/receive operation on a closed channel";
constexpr const char* deadlock_message = "Deadlock: the last runnable tasklet cannot be blocked.";
constexpr const char* block_trap_message = "this tasklet does not like to be blocked.";

// blocked_sender starts a tasklet that sends v on ch once (it blocks until received).
tasklet blocked_sender(channel<int>& ch, int v) {
  return tasklet([&ch, v] { ch.send(v); });
}

// ------------------------------------------------------------------------------------------------
// Ready cases

TEST_F(select_cases, a_ready_receive_completes_exactly_one_case) {
  channel<int> a, b;
  tasklet sa = blocked_sender(a, 1), sb = blocked_sender(b, 2);
  schedule();  // both senders block
  std::vector<std::string> fired;
  const std::size_t i =
      sl::select(on_receive(a, [&](int v) { fired.push_back("a" + std::to_string(v)); }),
                 on_receive(b, [&](int v) { fired.push_back("b" + std::to_string(v)); }));
  ASSERT_LT(i, 2u);
  EXPECT_THAT(fired, ElementsAre(i == 0 ? "a1" : "b2"));
  EXPECT_EQ(a.balance(), i == 0 ? 0 : 1);
  EXPECT_EQ(b.balance(), i == 1 ? 0 : 1);
  // The other sender is still waiting; take its value too.
  EXPECT_EQ(i == 0 ? b.receive() : a.receive(), i == 0 ? 2 : 1);
  sl::run();
}

TEST_F(select_cases, a_send_case_to_a_waiting_receiver) {
  channel<std::unique_ptr<int>> ch;
  channel<int> other;
  std::unique_ptr<int> got;
  tasklet r([&] { got = ch.receive(); });
  schedule();  // r blocks
  auto p = std::make_unique<int>(5);
  const int* address = p.get();
  bool fn_called = false;
  const std::size_t i =
      sl::select(on_receive(other), on_send(ch, std::move(p), [&] { fn_called = true; }));
  EXPECT_EQ(i, 1u);
  EXPECT_TRUE(fn_called);
  sl::run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got.get(), address);
  EXPECT_EQ(*got, 5);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(other.balance(), 0);
}

TEST_F(select_cases, values_are_moved_never_copied) {
  copy_counts counts;
  channel<counted> ch;
  int got = 0;
  // A send case to a waiting receiver, then a receive case from a waiting sender.
  tasklet r([&] { got = ch.receive().value; });
  schedule();
  EXPECT_EQ(sl::select(on_send(ch, counted(&counts, 3))), 0u);
  sl::run();
  EXPECT_EQ(got, 3);
  tasklet s([&] { ch.send(counted(&counts, 4)); });
  schedule();
  sl::select(on_receive(ch, [&](counted c) { got = c.value; }));
  EXPECT_EQ(got, 4);
  // A select that waits, then receives.
  tasklet w([&] { sl::select(on_receive(ch, [&](counted c) { got = c.value; })); });
  schedule();
  ch.send(counted(&counts, 5));
  EXPECT_EQ(got, 5);
  sl::run();
  EXPECT_EQ(counts.copies, 0);
}

TEST_F(select_cases, or_else_runs_when_nothing_is_ready) {
  channel<int> a, b;
  bool fired = false;
  current().set_block_trap(true);  // or_else never blocks
  const std::size_t i = sl::select(on_receive(a), on_send(b, 1), or_else([&] { fired = true; }));
  current().set_block_trap(false);
  EXPECT_EQ(i, 2u);
  EXPECT_TRUE(fired);
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(select_cases, or_else_is_never_chosen_when_a_case_is_ready) {
  channel<int> a;
  tasklet s([&] {
    for (;;) a.send(1);
  });
  int else_count = 0;
  for (int k = 0; k < 200; ++k) {
    schedule();  // s blocks sending again
    ASSERT_EQ(a.balance(), 1);
    EXPECT_EQ(sl::select(or_else([&] { ++else_count; }), on_receive(a)), 1u);
  }
  EXPECT_EQ(else_count, 0);
  s.kill();
}

// ------------------------------------------------------------------------------------------------
// Waiting in select

TEST_F(select_waiting, counts_in_every_channel_and_leaves_all_when_one_fires) {
  channel<int> a, b, c;
  std::vector<std::string> inside;
  tasklet t([&] {
    const std::size_t i =
        sl::select(on_receive(a),
                   on_receive(b,
                              [&](int v) {
                                // The function runs after the operation: t waits nowhere.
                                inside.push_back("b " + std::to_string(v));
                                inside.push_back(std::to_string(a.balance()) + " " +
                                                 std::to_string(c.balance()));
                              }),
                   on_send(c, 5));
    log("t fired " + std::to_string(i));
  });
  schedule();  // t blocks in select
  EXPECT_EQ(a.balance(), -1);
  EXPECT_EQ(b.balance(), -1);
  EXPECT_EQ(c.balance(), 1);
  EXPECT_TRUE(a.queue() == t);
  EXPECT_TRUE(b.queue() == t);
  EXPECT_TRUE(c.queue() == t);
  EXPECT_NE(t.blocked(), 0);
  EXPECT_TRUE(t.scheduled());
  b.send(9);  // preference -1: t runs at once
  EXPECT_THAT(inside, ElementsAre("b 9", "0 0"));
  EXPECT_THAT(log_, ElementsAre("t fired 1"));
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(c.balance(), 0);
  EXPECT_FALSE(a.queue());
  EXPECT_FALSE(c.queue());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(select_waiting, two_partners_at_once_complete_only_one_case) {
  channel<int> a, b;
  a.set_preference(0);  // the hand-off on a appends t instead of running it
  tasklet t([&] {
    sl::select(on_receive(a, [&](int v) { log("t got a " + std::to_string(v)); }),
               on_receive(b, [&](int v) { log("t got b " + std::to_string(v)); }));
  });
  schedule();  // t waits on a and b
  tasklet s1([&] {
    a.send(1);
    log("s1 sent");
  });
  tasklet s2([&] {
    b.send(2);
    log("s2 sent");
  });
  // Queue main, s1, s2. s1 hands over on a (t is appended behind main) and ends; s2 finds nobody
  // on b, because t left b when the a case fired, and blocks; main resumes before t runs.
  schedule();
  EXPECT_THAT(log_, ElementsAre("s1 sent"));
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 1);
  EXPECT_TRUE(b.queue() == s2);
  EXPECT_EQ(b.receive(), 2);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("s1 sent", "t got a 1", "s2 sent"));
}

TEST_F(select_waiting, close_does_not_wake_a_select) {
  // Only a receiver inside range-for iteration is woken by close() (channel.hpp).
  channel<int> a, b;
  tasklet t([&] {
    sl::select(on_receive(a), on_receive(b, [&](int v) { log("b " + std::to_string(v)); }));
  });
  schedule();
  a.close();
  sl::run();
  EXPECT_EQ(a.balance(), -1);
  EXPECT_TRUE(t.scheduled());
  EXPECT_TRUE(log_.empty());
  b.send(2);
  EXPECT_THAT(log_, ElementsAre("b 2"));
  EXPECT_TRUE(a.closed());
}

TEST_F(select_waiting, a_kill_removes_it_from_every_channel) {
  channel<int> a, b;
  tasklet t([&] {
    try {
      sl::select(on_receive(a), on_send(b, 1), after(10s));
      log("fired");
    } catch (const tasklet_exit&) {
      log("t killed");
      throw;
    }
  });
  schedule();
  EXPECT_EQ(a.balance(), -1);
  EXPECT_EQ(b.balance(), 1);
  t.kill();
  EXPECT_THAT(log_, ElementsAre("t killed"));
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_FALSE(a.queue());
  EXPECT_FALSE(b.queue());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  stopwatch w;
  sl::run();  // the 10 s timeout of the dead select must not hold run() back
  EXPECT_LT(w.elapsed(), 2s);
}

TEST_F(select_waiting, a_pending_kill_or_a_throw_removes_it_at_once) {
  channel<int> a, b;
  tasklet t([&] {
    try {
      sl::select(on_receive(a), on_receive(b));
    } catch (const std::invalid_argument& e) {
      log(std::string("caught ") + e.what());
    }
    sl::select(on_receive(a), on_receive(b));
  });
  schedule();
  t.raise_exception<std::invalid_argument>("wake up");
  EXPECT_THAT(log_, ElementsAre("caught wake up"));  // t then waits in the second select
  EXPECT_EQ(a.balance(), -1);
  EXPECT_EQ(b.balance(), -1);
  t.kill(/*pending=*/true);
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_TRUE(t.alive());
  sl::run();
  EXPECT_FALSE(t.alive());
}

TEST_F(select_waiting, a_hand_off_to_a_waiting_select_follows_preference) {
  // Like the send rows of the §3.2 table, with W waiting in select instead of receive().
  struct row {
    int preference;
    bool schedule_all;
    std::vector<std::string> expected;
  };
  const row rows[] = {
      {-1, false, {"A", "W got 7", "O", "A after"}},
      {0, false, {"A", "A after", "O", "W got 7"}},
      {1, false, {"A", "A after", "O", "W got 7"}},
      {-1, true, {"A", "O", "W got 7", "A after"}},
  };
  for (const row& r : rows) {
    SCOPED_TRACE("preference " + std::to_string(r.preference) +
                 (r.schedule_all ? " schedule_all" : ""));
    log_.clear();
    channel<int> a, b;
    a.set_preference(r.preference);
    a.set_schedule_all(r.schedule_all);
    tasklet w([&] {
      sl::select(on_receive(b), on_receive(a, [&](int v) { log("W got " + std::to_string(v)); }));
    });
    sl::run();
    tasklet act([&] {
      log("A");
      a.send(7);
      log("A after");
    });
    tasklet o([&] { log("O"); });
    sl::run();
    EXPECT_EQ(log_, r.expected);
    EXPECT_EQ(b.balance(), 0);
  }
}

TEST_F(select_waiting, a_channel_held_only_by_the_waiting_select_still_works) {
  auto owner = std::make_unique<channel<int>>();
  channel<int>& orphan = *owner;
  channel<int> live;
  tasklet r([&] {
    sl::select(on_receive(orphan, [&](int) { log("orphan"); }),
               on_receive(live, [&](int v) { log("live " + std::to_string(v)); }));
  });
  schedule();
  owner.reset();  // the select keeps the channel alive (and never touches the handle again)
  EXPECT_EQ(live.balance(), -1);
  live.send(3);  // r leaves the orphaned channel too, which can then go
  EXPECT_THAT(log_, ElementsAre("live 3"));
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(select_waiting, the_channel_callback_is_not_called) {
  channel<int> a;
  int calls = 0;
  sl::set_channel_callback([&](tasklet, bool, bool) { ++calls; });
  tasklet w([&] { sl::select(on_receive(a)); });
  schedule();
  sl::select(on_send(a, 1));
  sl::run();
  sl::set_channel_callback({});
  EXPECT_EQ(calls, 0);
}

TEST_F(select_waiting, a_send_case_fires_when_a_receiver_comes) {
  channel<std::unique_ptr<int>> ch;
  channel<int> other;
  auto p = std::make_unique<int>(77);
  const int* address = p.get();
  tasklet t([&] {
    const std::size_t i =
        sl::select(on_receive(other), on_send(ch, std::move(p), [&] { log("sent"); }));
    log("t fired " + std::to_string(i));
  });
  schedule();
  EXPECT_EQ(ch.balance(), 1);
  EXPECT_EQ(other.balance(), -1);
  std::unique_ptr<int> got = ch.receive();  // receiving with preference -1: t is appended
  ASSERT_TRUE(got);
  EXPECT_EQ(got.get(), address);
  EXPECT_EQ(other.balance(), 0);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("sent", "t fired 1"));
}

TEST_F(select_waiting, an_uncaught_exception_unblocks_main_from_every_channel) {
  channel<int> a, b;
  tasklet t([] { throw std::length_error("boom"); });
  EXPECT_THROW_WHAT(sl::select(on_receive(a), on_send(b, 1), after(10s)), std::length_error,
                    "boom");
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  stopwatch w;
  sl::sleep_for(1ms);  // the 10 s timeout is gone with the select
  EXPECT_LT(w.elapsed(), 2s);
}

// ------------------------------------------------------------------------------------------------
// after()

TEST_F(select_timeout, after_fires_when_nothing_completes) {
  channel<int> a, b;
  bool fired = false;
  stopwatch w;
  // main alone: not a deadlock, the thread sleeps until the deadline.
  const std::size_t i =
      sl::select(on_receive(a), on_send(b, 1), after(20ms, [&] { fired = true; }));
  EXPECT_EQ(i, 2u);
  EXPECT_TRUE(fired);
  EXPECT_GE(w.elapsed(), 20ms);
  EXPECT_LT(w.elapsed(), 2s);
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(select_timeout, after_alone_sleeps_and_others_run_meanwhile) {
  tasklet t([&] {
    stopwatch w;
    EXPECT_EQ(sl::select(after(30ms)), 0u);
    EXPECT_GE(w.elapsed(), 30ms);
    log("t woke");
  });
  tasklet u([&] {
    for (int k = 0; k < 3; ++k) {
      log("u" + std::to_string(k));
      schedule();
    }
  });
  sl::run();  // run() does not return while t waits for its deadline
  EXPECT_THAT(log_, ElementsAre("u0", "u1", "u2", "t woke"));
}

TEST_F(select_timeout, a_ready_case_wins_over_an_expired_after) {
  channel<int> a;
  tasklet s([&] {
    for (;;) a.send(1);
  });
  int timeouts = 0;
  for (int k = 0; k < 200; ++k) {
    schedule();  // s waits to send again
    EXPECT_EQ(sl::select(after(0ms, [&] { ++timeouts; }), on_receive(a)), 1u);
  }
  EXPECT_EQ(timeouts, 0);
  s.kill();
}

TEST_F(select_timeout, a_partner_in_time_cancels_the_timeout) {
  channel<int> a, b;
  tasklet t([&] {
    const std::size_t i = sl::select(on_receive(a), after(50ms, [&] { log("timeout"); }));
    log("fired " + std::to_string(i));
    log("t got " + std::to_string(b.receive()));  // must stay blocked here past the 50 ms
  });
  schedule();
  a.send(1);
  EXPECT_THAT(log_, ElementsAre("fired 0"));
  sl::sleep_for(120ms);
  EXPECT_EQ(b.balance(), -1) << "a stale timer woke t";
  EXPECT_THAT(log_, ElementsAre("fired 0"));
  b.send(2);
  EXPECT_THAT(log_, ElementsAre("fired 0", "t got 2"));
}

// ------------------------------------------------------------------------------------------------
// Fairness: uniform among ready cases. Each of two cases is chosen with probability 1/2; over 10,000
// selects the standard deviation is 50, so 40%..60% is a 20-sigma tolerance.

TEST_F(select_fairness, two_always_ready_cases_each_win_40_to_60_percent) {
  constexpr int rounds = 10'000;
  channel<int> a, b;
  tasklet sa([&] {
    for (;;) a.send(0);
  });
  tasklet sb([&] {
    for (;;) b.send(1);
  });
  int wins[2] = {0, 0}, wrong_value = 0;
  for (int k = 0; k < rounds; ++k) {
    schedule();  // the sender whose value was taken sends again and blocks: both are ready
    ASSERT_EQ(a.balance(), 1);
    ASSERT_EQ(b.balance(), 1);
    const std::size_t i = sl::select(on_receive(a, [&](int v) { wrong_value += v != 0; }),
                                     on_receive(b, [&](int v) { wrong_value += v != 1; }));
    ++wins[i];
  }
  EXPECT_EQ(wrong_value, 0);
  EXPECT_GE(wins[0], rounds * 4 / 10);
  EXPECT_LE(wins[0], rounds * 6 / 10);
  EXPECT_GE(wins[1], rounds * 4 / 10);
  EXPECT_LE(wins[1], rounds * 6 / 10);
  sa.kill();
  sb.kill();
}

TEST_F(select_fairness, three_ready_cases_of_both_directions_each_win_about_a_third) {
  // 30,000 selects, p = 1/3: sigma = 82, so 30%..37% (9,000..11,100) is a 12-sigma tolerance.
  constexpr int rounds = 30'000;
  channel<int> a, b, c;
  tasklet sa([&] {
    for (;;) a.send(0);
  });
  tasklet sb([&] {
    for (;;) b.send(1);
  });
  tasklet rc([&] {
    for (;;) c.receive();
  });
  int wins[3] = {0, 0, 0};
  for (int k = 0; k < rounds; ++k) {
    schedule();
    ASSERT_EQ(a.balance() + b.balance() - c.balance(), 3);
    ++wins[sl::select(on_receive(a), on_receive(b), on_send(c, 2))];
  }
  for (int w : wins) {
    EXPECT_GE(w, 9'000);
    EXPECT_LE(w, 11'100);
  }
  sa.kill();
  sb.kill();
  rc.kill();
}

// ------------------------------------------------------------------------------------------------
// Errors

TEST_F(select_errors, a_channel_in_two_cases_is_invalid) {
  channel<int> a, b;
  EXPECT_THROW(sl::select(on_receive(a), on_receive(b), on_receive(a)), std::invalid_argument);
  EXPECT_THROW(sl::select(on_receive(a), on_send(a, 1)), std::invalid_argument);
  // Checked before anything happens, even with a ready case and or_else.
  tasklet s = blocked_sender(a, 4);
  schedule();
  EXPECT_THROW(sl::select(on_receive(a), on_send(a, 1), or_else()), std::invalid_argument);
  EXPECT_EQ(a.balance(), 1);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(a.receive(), 4);
  sl::run();
}

TEST_F(select_errors, a_receive_case_getting_an_exception_throws_it) {
  channel<int> a, b;
  bool fn_called = false;
  tasklet s([&] { a.send_exception<std::out_of_range>("ready exception"); });
  schedule();  // s waits to send
  EXPECT_THROW_WHAT(sl::select(on_receive(a, [&](int) { fn_called = true; })), std::out_of_range,
                    "ready exception");
  // And when the select waits first.
  tasklet s2([&] {
    schedule();
    b.send_exception<std::overflow_error>("late exception");
  });
  EXPECT_THROW_WHAT(sl::select(on_receive(a, [&](int) { fn_called = true; }),
                               on_receive(b, [&](int) { fn_called = true; })),
                    std::overflow_error, "late exception");
  EXPECT_FALSE(fn_called);
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  sl::run();
}

TEST_F(select_errors, closing_channels) {
  channel<int> a, b;
  a.close();
  b.close();
  EXPECT_THROW_WHAT(sl::select(on_receive(a), on_send(b, 1)), sl::channel_closed, closed_message);
  bool else_fired = false;
  EXPECT_EQ(sl::select(on_receive(a), or_else([&] { else_fired = true; })), 1u);
  EXPECT_TRUE(else_fired);
  stopwatch w;
  EXPECT_EQ(sl::select(on_receive(a), on_send(b, 1), after(10ms)), 2u);
  EXPECT_GE(w.elapsed(), 10ms);
  // A closing channel with a waiting sender can still be drained through select.
  b.open();
  tasklet s = blocked_sender(b, 6);
  schedule();
  b.close();
  int got = 0;
  EXPECT_EQ(sl::select(on_receive(a), on_receive(b, [&](int v) { got = v; })), 1u);
  EXPECT_EQ(got, 6);
  EXPECT_TRUE(b.closed());
  // A closing case is skipped while an open one waits.
  channel<int> open_one;
  tasklet late([&] { open_one.send(8); });
  EXPECT_EQ(sl::select(on_receive(a), on_receive(open_one, [&](int v) { got = v; })), 1u);
  EXPECT_EQ(got, 8);
  sl::run();
}

TEST_F(select_errors, block_trap) {
  channel<int> a;
  current().set_block_trap(true);
  EXPECT_THROW_WHAT(sl::select(on_receive(a)), sl::runtime_error, block_trap_message);
  EXPECT_EQ(a.balance(), 0);
  current().set_block_trap(false);
  tasklet s = blocked_sender(a, 1);
  schedule();
  current().set_block_trap(true);
  EXPECT_EQ(sl::select(on_receive(a)), 0u);  // ready: does not block
  current().set_block_trap(false);
  sl::run();
}

TEST_F(select_errors, a_throwing_function_propagates_after_the_operation) {
  channel<int> a;
  tasklet s = blocked_sender(a, 1);
  schedule();
  EXPECT_THROW_WHAT(sl::select(on_receive(a, [](int) { throw std::out_of_range("from fn"); })),
                    std::out_of_range, "from fn");
  EXPECT_EQ(a.balance(), 0);  // the value was taken
  sl::run();
  EXPECT_FALSE(s.alive());
}

TEST_F(select_errors, switch_trap) {
  channel<int> a;
  sl::switch_trap trap;
  EXPECT_THROW_WHAT(sl::select(on_receive(a), after(10ms)), sl::runtime_error, "switch_trap");
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(sl::select(on_receive(a), or_else()), 1u);  // or_else never switches
}

TEST_F(select_errors, the_last_runnable_tasklet_cannot_wait_while_main_waits) {
  // §1.6 rule 4 inside select: t fails, stays runnable, and is on no channel.
  channel<int> a, b, c;
  tasklet t([&] {
    try {
      sl::select(on_receive(b), on_send(c, 1));
    } catch (const sl::deadlock_error& e) {
      log(e.what());
      log(std::to_string(b.balance()) + " " + std::to_string(c.balance()));
    }
    a.send(5);
  });
  EXPECT_EQ(a.receive(), 5);
  sl::run();
  EXPECT_THAT(log_, ElementsAre(deadlock_message, "0 0"));
}

TEST_F(select_errors, main_alone_deadlocks) {
  channel<int> a, b;
  EXPECT_THROW_WHAT(sl::select(on_receive(a), on_send(b, 1)), sl::deadlock_error, deadlock_message);
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(select_errors, the_last_tasklet_ending_while_main_selects) {
  channel<int> a, b;
  tasklet t([&] { log("t"); });
  EXPECT_THROW(sl::select(on_receive(a), on_receive(b)), sl::deadlock_error);
  EXPECT_THAT(log_, ElementsAre("t"));
  EXPECT_EQ(a.balance(), 0);
  EXPECT_EQ(b.balance(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

}  // namespace
