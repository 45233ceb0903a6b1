// tests/timer_test.cpp — timers (timer.hpp): sleep_for / sleep_until block only the calling
// tasklet, wake-ups in deadline order, zero and negative durations yield, an idle thread sleeps
// without busy waiting, run() does not return while a tasklet sleeps, killing a sleeper removes
// its timer; and the timed channel operations receive_for / send_for (channel.hpp), also on a
// channel kept alive only by its waiters.
//
// Timing tolerances (stated once, used everywhere): a sleep of d takes >= d and < 2 s of wall
// time; tasklets that only schedule() finish well inside a 50 ms sleep of another (microseconds);
// an idle 200 ms sleep uses < 50% of its wall time in CPU.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using namespace std::chrono_literals;
using sl::channel;
using sl::current;
using sl::main_tasklet;
using sl::schedule;
using sl::sleep_for;
using sl::sleep_until;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::copy_counts;
using stackless_testing::counted;
using stackless_testing::stopwatch;
using ::testing::ElementsAre;

using sleeping = stackless_test;
using idle = stackless_test;
using timed_ops = stackless_test;

constexpr const char* deadlock_message = "Deadlock: the last runnable tasklet cannot be blocked.";
constexpr const char* block_trap_message = "this tasklet does not like to be blocked.";
constexpr const char* closed_message = "Send/receive operation on a closed channel";

// cpu_time: user + system CPU time of the process so far.
std::chrono::microseconds cpu_time() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// yielder logs name0..name{n-1}, scheduling after each.
auto yielder(std::vector<std::string>& log, std::string name, int n) {
  return [&log, name, n] {
    for (int k = 0; k < n; ++k) {
      log.push_back(name + std::to_string(k));
      schedule();
    }
  };
}

// ------------------------------------------------------------------------------------------------
// sleep_for / sleep_until

TEST_F(sleeping, blocks_only_the_caller) {
  std::chrono::nanoseconds slept{};
  tasklet t([&] {
    log("t sleeps");
    stopwatch w;
    sleep_for(50ms);
    slept = w.elapsed();
    log("t woke");
  });
  tasklet u(yielder(log_, "u", 3));
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t sleeps", "u0", "u1", "u2", "t woke"));
  EXPECT_GE(slept, 50ms);
  EXPECT_LT(slept, 2s);
}

TEST_F(sleeping, wake_ups_follow_the_durations) {
  std::vector<std::chrono::nanoseconds> slept(3);
  const std::chrono::milliseconds durations[] = {60ms, 20ms, 40ms};
  for (int i = 0; i < 3; ++i)
    tasklet([&, i] {
      stopwatch w;
      sleep_for(durations[i]);
      slept[i] = w.elapsed();
      log(std::to_string(durations[i].count()) + " ms");
    });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("20 ms", "40 ms", "60 ms"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_GE(slept[i], durations[i]);
    EXPECT_LT(slept[i], 2s);
  }
}

TEST_F(sleeping, many_sleepers_wake_in_deadline_order) {
  // 200 distinct deadlines 1 ms apart, in random order: even when several are due at once, they
  // must wake in deadline order.
  constexpr int n = 200;
  std::vector<int> slot(n);
  std::iota(slot.begin(), slot.end(), 0);
  std::shuffle(slot.begin(), slot.end(), std::mt19937(7));
  std::chrono::steady_clock::time_point base;  // set just before the tasklets start
  std::vector<int> woke;
  int early = 0;
  for (int i = 0; i < n; ++i)
    tasklet([&, i] {
      const auto deadline = base + std::chrono::milliseconds(slot[i]);
      sleep_until(deadline);
      if (std::chrono::steady_clock::now() < deadline) ++early;
      woke.push_back(slot[i]);
    });
  // Every tasklet must reach its sleep before the first deadline: a generous 200 ms margin (the
  // 200 first switches are slow under ThreadSanitizer).
  base = std::chrono::steady_clock::now() + 200ms;
  sl::run();
  ASSERT_EQ(woke.size(), static_cast<std::size_t>(n));
  EXPECT_TRUE(std::is_sorted(woke.begin(), woke.end()));
  EXPECT_EQ(early, 0);
}

TEST_F(sleeping, sleep_until_steady_clock) {
  const auto deadline = std::chrono::steady_clock::now() + 30ms;
  sleep_until(deadline);  // main alone: the thread sleeps
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
  EXPECT_LT(std::chrono::steady_clock::now() - deadline, 2s);
}

TEST_F(sleeping, sleep_until_system_clock) {
  // Converted once, at the call: the sleep lasts the remaining system-clock time, measured here
  // on the steady clock with 1 ms slack for the conversion.
  stopwatch w;
  tasklet t([&] {
    sleep_until(std::chrono::system_clock::now() + 30ms);
    log("t woke");
  });
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t woke"));
  EXPECT_GE(w.elapsed(), 29ms);
  EXPECT_LT(w.elapsed(), 2s);
}

TEST_F(sleeping, zero_and_negative_durations_yield) {
  // Like schedule(): the caller runs again after the others.
  tasklet t([&] {
    log("t");
    sleep_for(0ms);
    log("t after 0");
    sleep_for(-5ms);
    log("t after -5");
    sleep_until(std::chrono::steady_clock::now() - 1s);  // the same deadline-in-the-past path
    log("t after past steady");
    sleep_until(std::chrono::system_clock::now() - 1s);
    log("t after past system");
  });
  tasklet u(yielder(log_, "u", 4));
  stopwatch w;
  sl::run();
  EXPECT_THAT(log_, ElementsAre("t", "u0", "t after 0", "u1", "t after -5", "u2",
                                "t after past steady", "u3", "t after past system"));
  EXPECT_LT(w.elapsed(), 2s);
}

TEST_F(sleeping, zero_duration_alone_returns_at_once) {
  int switches = 0;
  sl::set_schedule_callback([&](tasklet, tasklet) { ++switches; });
  stopwatch w;
  sleep_for(0ms);
  sleep_for(-1s);
  sl::set_schedule_callback({});
  EXPECT_EQ(switches, 0);
  EXPECT_LT(w.elapsed(), 2s);
  EXPECT_TRUE(main_tasklet().is_current());
}

TEST_F(sleeping, killing_a_sleeper_removes_its_timer) {
  tasklet t([&] {
    try {
      sleep_for(10s);
      log("t woke");
    } catch (const tasklet_exit&) {
      log("t killed");
      throw;
    }
  });
  schedule();  // t starts sleeping
  EXPECT_TRUE(t.alive());
  EXPECT_FALSE(t.paused()) << "a sleeping tasklet is going to run again";
  stopwatch w;
  t.kill();
  EXPECT_THAT(log_, ElementsAre("t killed"));
  EXPECT_FALSE(t.alive());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  sl::run();  // no timer is left to wait for
  sleep_for(1ms);
  EXPECT_LT(w.elapsed(), 2s);
}

TEST_F(sleeping, throwing_into_a_sleeper_wakes_it_at_once) {
  tasklet t([&] {
    try {
      sleep_for(10s);
    } catch (const std::underflow_error& e) {
      log(std::string("caught ") + e.what());
    }
    sleep_for(1ms);
    log("t slept again");
  });
  schedule();
  stopwatch w;
  t.raise_exception<std::underflow_error>("wake");
  sl::run();
  EXPECT_THAT(log_, ElementsAre("caught wake", "t slept again"));
  EXPECT_LT(w.elapsed(), 2s);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(sleeping, an_uncaught_exception_wakes_a_sleeping_main) {
  // §1.7: the exception is thrown from whatever main is suspended in, here sleep_for.
  tasklet t([] { throw std::overflow_error("boom"); });
  stopwatch w;
  EXPECT_THROW_WHAT(sleep_for(10s), std::overflow_error, "boom");
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  sleep_for(1ms);  // the 10 s timer is gone
  EXPECT_LT(w.elapsed(), 2s);
}

TEST_F(sleeping, switch_trap_refuses_to_sleep) {
  sl::switch_trap trap;
  EXPECT_THROW_WHAT(sleep_for(10ms), sl::runtime_error, "switch_trap");
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(sleeping, block_trap_refuses_to_sleep) {
  current().set_block_trap(true);
  EXPECT_THROW_WHAT(sleep_for(10ms), sl::runtime_error, block_trap_message);
  EXPECT_THROW_WHAT(sleep_until(std::chrono::steady_clock::now() + 10ms), sl::runtime_error,
                    block_trap_message);
  current().set_block_trap(false);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

// ------------------------------------------------------------------------------------------------
// The idle thread: no busy wait, run() waits for sleepers, sleepers are not a deadlock

TEST_F(idle, main_sleeping_alone_does_not_busy_wait) {
  const auto cpu0 = cpu_time();
  stopwatch w;
  sleep_for(200ms);
  const auto wall = w.elapsed();
  const auto cpu = cpu_time() - cpu0;
  EXPECT_GE(wall, 200ms);
  EXPECT_LT(wall, 2s);
  EXPECT_LT(cpu * 2, wall) << "CPU " << cpu.count() << " us over " << wall.count() << " ns";
}

TEST_F(idle, run_waits_for_a_sleeper_without_busy_waiting) {
  tasklet t([&] {
    sleep_for(200ms);
    log("t woke");
  });
  const auto cpu0 = cpu_time();
  stopwatch w;
  sl::run();  // run() does not return while t sleeps
  const auto wall = w.elapsed();
  const auto cpu = cpu_time() - cpu0;
  EXPECT_THAT(log_, ElementsAre("t woke"));
  EXPECT_GE(wall, 200ms);
  EXPECT_LT(wall, 2s);
  EXPECT_LT(cpu * 2, wall) << "CPU " << cpu.count() << " us over " << wall.count() << " ns";
}

TEST_F(idle, main_receiving_from_a_sleeping_sender_is_not_a_deadlock) {
  channel<int> ch;
  tasklet t([&] {
    sleep_for(20ms);
    ch.send(5);
  });
  stopwatch w;
  EXPECT_EQ(ch.receive(), 5);
  EXPECT_GE(w.elapsed(), 20ms);
  sl::run();
}

TEST_F(idle, the_sleeper_ending_leaves_main_receiving_without_a_sender) {
  channel<int> ch;
  tasklet t([&] {
    sleep_for(20ms);
    log("t end");
  });
  EXPECT_THROW_WHAT(ch.receive(), sl::deadlock_error,
                    "the main tasklet is receiving without a sender available.");
  EXPECT_THAT(log_, ElementsAre("t end"));
  EXPECT_EQ(ch.balance(), 0);
}

TEST_F(idle, timed_channel_waits_are_not_a_deadlock_either) {
  // main waits on a; t's only way forward is a timeout (receive_for, then select with after).
  channel<int> a, b;
  tasklet t([&] {
    log(b.receive_for(20ms) ? "value" : "receive_for timed out");
    log(sl::select(sl::on_receive(b), sl::after(20ms)) == 1 ? "after fired" : "value");
    a.send(1);
  });
  EXPECT_EQ(a.receive(), 1);
  EXPECT_THAT(log_, ElementsAre("receive_for timed out", "after fired"));
  sl::run();
}

TEST_F(idle, main_sleeping_while_tasklets_sleep_and_work) {
  tasklet t([&] {
    sleep_for(20ms);
    log("t woke");
  });
  tasklet u(yielder(log_, "u", 2));
  sleep_for(60ms);  // main sleeps too: t wakes first, main after
  log("main woke");
  EXPECT_THAT(log_, ElementsAre("u0", "u1", "t woke", "main woke"));
}

// ------------------------------------------------------------------------------------------------
// receive_for / send_for

TEST_F(timed_ops, receive_for_times_out_with_an_empty_optional) {
  channel<std::unique_ptr<int>> ch;
  stopwatch w;
  std::optional<std::unique_ptr<int>> got = ch.receive_for(30ms);  // main alone: no deadlock
  EXPECT_FALSE(got.has_value());
  EXPECT_GE(w.elapsed(), 30ms);
  EXPECT_LT(w.elapsed(), 2s);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_FALSE(ch.queue());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  // The timed-out receiver is gone: main alone sending now is a deadlock, not a hand-off.
  EXPECT_THROW_WHAT(ch.send(std::make_unique<int>(1)), sl::deadlock_error, deadlock_message);
}

TEST_F(timed_ops, send_for_times_out_and_leaves_the_value_untouched) {
  channel<std::unique_ptr<int>> ch;
  auto p = std::make_unique<int>(11);
  const int* address = p.get();
  stopwatch w;
  EXPECT_FALSE(ch.send_for(p, 30ms));
  EXPECT_GE(w.elapsed(), 30ms);
  EXPECT_LT(w.elapsed(), 2s);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.get(), address);
  EXPECT_EQ(*p, 11);
  EXPECT_EQ(ch.balance(), 0);

  copy_counts counts;
  channel<counted> cc;
  counted c(&counts, 3);
  EXPECT_FALSE(cc.send_for(c, 1ms));
  EXPECT_EQ(counts.copies, 0);
  EXPECT_EQ(counts.moves, 0);
  EXPECT_EQ(c.value, 3);
}

TEST_F(timed_ops, succeed_when_a_partner_comes_in_time) {
  channel<std::unique_ptr<int>> ch;
  std::optional<std::unique_ptr<int>> got;
  tasklet r([&] { got = ch.receive_for(10s); });
  schedule();  // r waits
  EXPECT_EQ(ch.balance(), -1);
  stopwatch w;
  ch.send(std::make_unique<int>(21));
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(*got);
  EXPECT_EQ(**got, 21);

  auto p = std::make_unique<int>(22);
  bool sent = false;
  tasklet s([&] { sent = ch.send_for(p, 10s); });
  schedule();  // s waits
  EXPECT_EQ(ch.balance(), 1);
  std::unique_ptr<int> q = ch.receive();
  sl::run();
  EXPECT_TRUE(sent);
  EXPECT_FALSE(p) << "moved from when the receiver took it";
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, 22);
  EXPECT_LT(w.elapsed(), 2s) << "the 10 s timers must be gone";
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(timed_ops, a_ready_partner_needs_no_time) {
  channel<int> ch;
  tasklet s([&] { ch.send(1); });
  schedule();
  EXPECT_EQ(ch.receive_for(0ms), std::optional<int>(1));
  tasklet r([&] { log("r got " + std::to_string(ch.receive())); });
  schedule();
  int v = 2;
  EXPECT_TRUE(ch.send_for(v, 0ms));
  sl::run();
  EXPECT_THAT(log_, ElementsAre("r got 2"));
  // Nobody there and no time: an immediate timeout.
  EXPECT_FALSE(ch.receive_for(0ms).has_value());
  EXPECT_FALSE(ch.send_for(v, -1ms));
  EXPECT_EQ(ch.balance(), 0);
}

TEST_F(timed_ops, a_success_leaves_no_stale_timer) {
  channel<int> a, b;
  tasklet t([&] {
    log("t got " + std::to_string(*a.receive_for(50ms)));
    log("t got " + std::to_string(b.receive()));  // must stay blocked past the 50 ms
  });
  schedule();
  a.send(1);
  sleep_for(120ms);
  EXPECT_EQ(b.balance(), -1) << "a stale timer woke t";
  b.send(2);
  EXPECT_THAT(log_, ElementsAre("t got 1", "t got 2"));
}

TEST_F(timed_ops, errors_are_those_of_send_and_receive) {
  channel<int> ch;
  tasklet s([&] { ch.send_exception<std::invalid_argument>("bad"); });
  schedule();
  EXPECT_THROW_WHAT(ch.receive_for(1s), std::invalid_argument, "bad");
  int v = 1;
  current().set_block_trap(true);
  EXPECT_THROW_WHAT(ch.receive_for(10ms), sl::runtime_error, block_trap_message);
  EXPECT_THROW_WHAT(ch.send_for(v, 10ms), sl::runtime_error, block_trap_message);
  current().set_block_trap(false);
  ch.close();
  EXPECT_THROW_WHAT(ch.receive_for(10ms), sl::channel_closed, closed_message);
  EXPECT_THROW_WHAT(ch.send_for(v, 10ms), sl::channel_closed, closed_message);
  EXPECT_EQ(ch.balance(), 0);
  sl::run();
}

TEST_F(timed_ops, killing_a_timed_waiter_unlinks_it_from_channel_and_timer) {
  channel<int> ch;
  tasklet r([&] {
    try {
      ch.receive_for(10s);
    } catch (const tasklet_exit&) {
      log("r killed");
      throw;
    }
  });
  schedule();
  EXPECT_EQ(ch.balance(), -1);
  stopwatch w;
  r.kill(/*pending=*/true);
  EXPECT_EQ(ch.balance(), 0);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("r killed"));
  EXPECT_LT(w.elapsed(), 2s);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(timed_ops, timeouts_in_a_busy_scheduler) {
  // A receiver that times out while others keep the thread busy: it is woken between their steps.
  channel<int> ch;
  std::optional<int> got = 0;
  tasklet r([&] {
    got = ch.receive_for(20ms);
    log("r timed out");
  });
  bool done = false;
  tasklet busy([&] {
    stopwatch w;
    while (!done && w.elapsed() < 2s) schedule();
  });
  tasklet watcher([&] {
    while (got.has_value()) schedule();
    done = true;
  });
  sl::run();
  EXPECT_FALSE(got.has_value());
  EXPECT_TRUE(done) << "r never timed out while other tasklets were runnable";
  EXPECT_THAT(log_, ElementsAre("r timed out"));
}

// A blocked tasklet keeps its channel alive (channel.hpp): timed waits on a channel whose last
// handle was dropped end normally (AddressSanitizer would catch a freed channel).

TEST_F(timed_ops, a_channel_held_only_by_its_blocked_receiver_still_works) {
  // The handle is dropped while r waits with a timeout: the channel keeps working and r's timed
  // receive ends normally (AddressSanitizer would catch a freed channel).
  auto owner = std::make_unique<channel<int>>();
  channel<int>* raw = owner.get();
  tasklet r([&, raw] {
    const std::optional<int> v = raw->receive_for(20ms);
    log(v ? "got a value" : "timed out");
  });
  schedule();  // r blocks
  owner.reset();
  EXPECT_EQ(r.blocked(), -1);
  sl::run();  // run() does not return while r waits for its deadline
  EXPECT_THAT(log_, ElementsAre("timed out"));
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(timed_ops, an_orphaned_channel_lives_until_its_last_waiter_leaves) {
  auto owner = std::make_unique<channel<std::unique_ptr<int>>>();
  auto* raw = owner.get();
  tasklet s1([raw] { raw->send(std::make_unique<int>(1)); });
  tasklet s2([raw] { raw->send(std::make_unique<int>(2)); });
  tasklet s3([&, raw] {
    int v = 3;
    auto p = std::make_unique<int>(v);
    log(raw->send_for(p, 20ms) ? "sent" : "s3 timed out");
  });
  schedule();  // all three wait to send
  owner.reset();
  s1.kill();
  EXPECT_EQ(s2.blocked(), 1);
  sl::run();  // s3 times out; s2 still waits
  EXPECT_THAT(log_, ElementsAre("s3 timed out"));
  EXPECT_EQ(s2.blocked(), 1);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 1u);
  s2.kill(/*pending=*/true);  // the last waiter leaves: the channel and its value go
  sl::run();
  EXPECT_FALSE(s2.alive());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

}  // namespace
