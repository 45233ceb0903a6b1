// tests/channel_test.cpp — channels (reference §3): the §3.2 hand-off order table, attributes
// (§3.1), exceptions, sequences and iteration (§3.3), close/open (§3.4), killing waiters (§3.5),
// the channel callback (§3.6), value semantics, the blocking rules around channels (§1.6, §1.7,
// §2.7) and lifetime. The stress tests (a ring, fan-in with kills, destructors that run while a
// value is in transit) are in channel_stress_test.cpp, select() in select_test.cpp, timers and
// timed operations (also on orphaned channels) in timer_test.cpp.
//
// Execution orders are asserted exactly and derived in comments from the run-queue model; those
// the reference marks [verified] say so.
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using sl::channel;
using sl::current;
using sl::main_tasklet;
using sl::runcount;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;
using stackless_testing::copy_counts;
using stackless_testing::counted;
using stackless_testing::label;
using ::testing::ElementsAre;

using attributes = stackless_test;
using exceptions = stackless_test;
using iteration = stackless_test;
using closing = stackless_test;
using waiters = stackless_test;
using channel_callback = stackless_test;
using values = stackless_test;
using blocking = stackless_test;
using lifetime = stackless_test;

constexpr const char* closed_message = "Send/receive operation on a closed channel";
constexpr const char* deadlock_message = "Deadlock: the last runnable tasklet cannot be blocked.";
constexpr const char* block_trap_message = "this tasklet does not like to be blocked.";

// ------------------------------------------------------------------------------------------------
// §3.2: the verified order table. W is blocked on C; then A (acting) and O (unrelated) are created
// in that order and main calls run(). W, A and O each log one line per step.

enum class op { send, receive };

struct order_row {
  op action;
  int preference;
  bool schedule_all;
  std::vector<std::string> expected;
};

void PrintTo(const order_row& r, std::ostream* os) {
  *os << (r.action == op::send ? "send" : "receive") << " preference " << r.preference
      << " schedule_all " << r.schedule_all;
}

// The reference's table, with "A" = A's line before the operation, "A after" = A's line after it
// (its "continues & ends" / "resumes"), "W" = W's line after its blocked operation returned.
const order_row order_table[] = {
    // op by A    pref  sched_all  expected
    {op::send, -1, false, {"A", "W got 7", "O", "A after"}},  // W got → W ends → O → A resumes
    {op::send, 0, false, {"A", "A after", "O", "W got 7"}},   // A continues & ends → O → W
    {op::send, 1, false, {"A", "A after", "O", "W got 7"}},   // A continues & ends → O → W
    {op::send, -1, true, {"A", "O", "W got 7", "A after"}},   // O → W → A
    {op::send, 0, true, {"A", "O", "W got 7", "A after"}},
    {op::send, 1, true, {"A", "O", "W got 7", "A after"}},
    {op::receive, -1, false, {"A", "A got 7", "O", "W sent"}},  // A continues & ends → O → W
    {op::receive, 0, false, {"A", "A got 7", "O", "W sent"}},   // A continues & ends → O → W
    {op::receive, 1, false, {"A", "W sent", "O", "A got 7"}},   // W resumes → O → A
    {op::receive, -1, true, {"A", "O", "W sent", "A got 7"}},   // O → W → A
    {op::receive, 0, true, {"A", "O", "W sent", "A got 7"}},
    {op::receive, 1, true, {"A", "O", "W sent", "A got 7"}},
};

class hand_off_order : public stackless_test, public ::testing::WithParamInterface<order_row> {};

TEST_P(hand_off_order, matches_the_verified_table) {
  const order_row& row = GetParam();
  channel<int> ch;
  ch.set_preference(row.preference);
  ch.set_schedule_all(row.schedule_all);
  tasklet w([&] {
    if (row.action == op::send) {
      const int v = ch.receive();
      log("W got " + std::to_string(v));
    } else {
      ch.send(7);
      log("W sent");
    }
  });
  sl::run();  // W blocks, the queue empties, run() returns
  ASSERT_EQ(ch.balance(), row.action == op::send ? -1 : 1);
  ASSERT_TRUE(log_.empty());
  tasklet a([&] {
    log("A");
    if (row.action == op::send) {
      ch.send(7);
      log("A after");
    } else {
      const int v = ch.receive();
      log("A got " + std::to_string(v));
    }
  });
  tasklet o([&] { log("O"); });
  sl::run();
  EXPECT_EQ(log_, row.expected);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_FALSE(w.alive());
  EXPECT_FALSE(a.alive());
  EXPECT_FALSE(o.alive());
}

INSTANTIATE_TEST_SUITE_P(reference_3_2, hand_off_order, ::testing::ValuesIn(order_table),
                         [](const ::testing::TestParamInfo<order_row>& info) {
                           const order_row& r = info.param;
                           std::string name = r.action == op::send ? "send" : "receive";
                           name += r.preference < 0 ? "_pref_minus1"
                                                    : "_pref_" + std::to_string(r.preference);
                           name += r.schedule_all ? "_schedule_all" : "";
                           return name;
                         });

// ------------------------------------------------------------------------------------------------
// §3.1 attributes

TEST_F(attributes, defaults) {
  channel<int> ch;
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(ch.preference(), -1);
  EXPECT_FALSE(ch.schedule_all());
  EXPECT_FALSE(ch.queue());
  EXPECT_FALSE(ch.closing());
  EXPECT_FALSE(ch.closed());
}

TEST_F(attributes, preference_is_clamped) {
  channel<int> ch;
  const std::pair<int, int> cases[] = {{2, 1},
                                       {-2, -1},
                                       {0, 0},
                                       {1, 1},
                                       {-1, -1},
                                       {std::numeric_limits<int>::max(), 1},
                                       {std::numeric_limits<int>::min(), -1}};
  for (auto [set, expected] : cases) {
    ch.set_preference(set);
    EXPECT_EQ(ch.preference(), expected) << "set_preference(" << set << ")";
  }
}

TEST_F(attributes, schedule_all_and_shared_handles) {
  channel<int> ch;
  channel<int> copy = ch;  // a handle: copies refer to the same channel
  ch.set_schedule_all(true);
  EXPECT_TRUE(copy.schedule_all());
  copy.set_preference(1);
  EXPECT_EQ(ch.preference(), 1);
  EXPECT_TRUE(ch == copy);
  EXPECT_FALSE(ch == channel<int>());
  ch.set_schedule_all(false);
  EXPECT_FALSE(copy.schedule_all());
}

TEST_F(attributes, balance_and_queue_with_blocked_senders) {
  channel<int> ch;
  std::vector<tasklet> senders;
  for (int i = 1; i <= 3; ++i)
    senders.emplace_back([&, i] {
      ch.send(i);
      log("s" + std::to_string(i) + " resumed");
    });
  sl::run();
  EXPECT_EQ(ch.balance(), 3);
  ASSERT_TRUE(ch.queue());
  EXPECT_TRUE(ch.queue() == senders[0]);  // FIFO: the first waiter
  for (const tasklet& s : senders) {
    EXPECT_EQ(s.blocked(), 1);
    EXPECT_TRUE(s.scheduled());
    EXPECT_FALSE(s.paused());
    EXPECT_FALSE(s.next());  // not in the run queue
    EXPECT_FALSE(s.prev());
  }
  // Receiving with preference -1 appends the sender and main continues (§3.2): no switch.
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(ch.receive(), i);
    EXPECT_EQ(ch.balance(), 3 - i);
    if (i < 3) {
      EXPECT_TRUE(ch.queue() == senders[i]);
    }
  }
  EXPECT_FALSE(ch.queue());
  EXPECT_TRUE(log_.empty());
  EXPECT_EQ(runcount(), 4);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("s1 resumed", "s2 resumed", "s3 resumed"));
}

TEST_F(attributes, balance_and_queue_with_blocked_receivers) {
  channel<int> ch;
  std::vector<tasklet> receivers;
  for (int i = 1; i <= 3; ++i)
    receivers.emplace_back(
        [&, i] { log("r" + std::to_string(i) + " got " + std::to_string(ch.receive())); });
  sl::run();
  EXPECT_EQ(ch.balance(), -3);
  EXPECT_TRUE(ch.queue() == receivers[0]);
  for (const tasklet& r : receivers) EXPECT_EQ(r.blocked(), -1);
  // Sending with preference -1 switches to the receiver at once; it ends and main resumes.
  for (int i = 1; i <= 3; ++i) {
    ch.send(10 * i);
    EXPECT_EQ(ch.balance(), i - 3);
    EXPECT_EQ(log_.size(), static_cast<std::size_t>(i));
  }
  EXPECT_THAT(log_, ElementsAre("r1 got 10", "r2 got 20", "r3 got 30"));
  EXPECT_FALSE(ch.queue());
}

// ------------------------------------------------------------------------------------------------
// §3.3 send_exception / send_throw / send_sequence

struct triple_error : std::exception {
  triple_error(int a, int b, int c) : args{a, b, c} {}
  const char* what() const noexcept override { return "triple"; }
  int args[3];
};

TEST_F(exceptions, send_exception_is_thrown_by_receive_with_its_type_and_message) {
  channel<int> ch;
  tasklet s([&] {
    ch.send_exception<std::out_of_range>("index 7 is out of range");
    ch.send_exception<triple_error>(1, 2, 3);
    log("sender done");
  });
  EXPECT_THROW_WHAT(ch.receive(), std::out_of_range, "index 7 is out of range");
  try {
    ch.receive();
    ADD_FAILURE() << "receive() did not throw";
  } catch (const triple_error& e) {
    EXPECT_EQ(e.args[0], 1);
    EXPECT_EQ(e.args[1], 2);
    EXPECT_EQ(e.args[2], 3);
  }
  sl::run();
  EXPECT_THAT(log_, ElementsAre("sender done"));
  EXPECT_EQ(ch.balance(), 0);
}

TEST_F(exceptions, send_throw_delivers_the_very_same_exception_object) {
  channel<std::string> ch;
  const std::exception_ptr sent = std::make_exception_ptr(std::domain_error("the original"));
  tasklet s([&] { ch.send_throw(sent); });
  std::exception_ptr got;
  try {
    ch.receive();
  } catch (const std::domain_error& e) {
    EXPECT_STREQ(e.what(), "the original");
    got = std::current_exception();
  }
  EXPECT_TRUE(got == sent) << "send_throw must not copy the exception";
  sl::run();
  EXPECT_THROW_WHAT(ch.send_throw(nullptr), std::invalid_argument, "send_throw needs an exception");
}

TEST_F(exceptions, an_exception_ptr_sent_as_a_value_is_not_thrown) {
  channel<std::exception_ptr> ch;
  const std::exception_ptr e = std::make_exception_ptr(std::logic_error("data"));
  tasklet s([&] { ch.send(e); });
  std::exception_ptr got;
  EXPECT_NO_THROW(got = ch.receive());
  EXPECT_TRUE(got == e);
  sl::run();
}

TEST_F(exceptions, send_sequence_returns_the_count) {
  channel<std::string> ch;
  std::vector<std::string> got;
  tasklet r([&] {
    for (int i = 0; i < 4; ++i) got.push_back(ch.receive());
  });
  const std::vector<const char*> words = {"a", "bb", "ccc", "dddd"};  // converted to T each
  EXPECT_EQ(ch.send_sequence(words), 4u);
  EXPECT_THAT(got, ElementsAre("a", "bb", "ccc", "dddd"));
  // An empty range sends nothing and never blocks.
  current().set_block_trap(true);
  EXPECT_EQ(ch.send_sequence(std::vector<std::string>{}), 0u);
  current().set_block_trap(false);
  sl::run();
  EXPECT_EQ(ch.balance(), 0);
}

// ------------------------------------------------------------------------------------------------
// §3.3 iteration (range-for) and its documented deviation from Stackless (close() wakes a receiver
// blocked inside iteration, stackless-dev #53).

TEST_F(iteration, ends_at_closing_with_no_sender_waiting) {
  channel<int> ch;
  ch.close();
  int bodies = 0;
  for (int v : ch) bodies += v + 1;  // main alone: must end at once, not deadlock
  EXPECT_EQ(bodies, 0);
  EXPECT_TRUE(ch.closed());
}

TEST_F(iteration, a_receiver_blocked_in_iteration_is_woken_by_close) {
  channel<int> ch;
  std::vector<int> got;
  tasklet r([&] {
    for (int v : ch) got.push_back(v);
    log("loop ended");
  });
  sl::run();  // r blocks in begin()
  EXPECT_EQ(ch.balance(), -1);
  ch.send(1);  // preference -1: r takes it at once and blocks again in operator++
  ch.send(2);
  EXPECT_THAT(got, ElementsAre(1, 2));
  EXPECT_EQ(ch.balance(), -1);
  ch.close();
  EXPECT_EQ(ch.balance(), 0) << "close() must take the iterating receiver off the channel";
  EXPECT_TRUE(ch.closed());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("loop ended"));
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(iteration, close_wakes_only_iterating_receivers) {
  channel<int> ch;
  tasklet plain([&] { log("plain got " + std::to_string(ch.receive())); });
  tasklet iterating([&] {
    for (int v : ch) log("iterating got " + std::to_string(v));
    log("iterating ended");
  });
  sl::run();
  EXPECT_EQ(ch.balance(), -2);
  ch.close();
  // close() is noexcept, so it cannot switch (a switch can deliver an exception): the iterating
  // receiver is made runnable, not run.
  EXPECT_TRUE(log_.empty());
  EXPECT_EQ(ch.balance(), -1);
  EXPECT_TRUE(ch.queue() == plain);
  EXPECT_FALSE(ch.closed());
  ch.send(5);  // a closing channel with a waiting receiver still hands over (§3.4)
  EXPECT_TRUE(ch.closed());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("plain got 5", "iterating ended"));
}

TEST_F(iteration, an_exception_sent_ends_the_loop_by_throwing) {
  channel<int> ch;
  tasklet s([&] {
    ch.send(1);
    ch.send_exception<std::range_error>("stop here");
  });
  std::vector<int> got;
  EXPECT_THROW_WHAT(for (int v : ch) got.push_back(v), std::range_error, "stop here");
  EXPECT_THAT(got, ElementsAre(1));
  sl::run();
}

// ------------------------------------------------------------------------------------------------
// §3.4 close() / open()

TEST_F(closing, three_blocked_receivers_verified_example) {
  // [verified] 3 receivers blocked, close() → closing, not closed, balance -3; 3 sends succeed
  // (closed after the last); a 4th send and any receive throw.
  channel<int> ch;
  for (int i = 0; i < 3; ++i)
    tasklet([&, i] {
      const std::string me = "r" + std::to_string(i);
      log(me + " got " + std::to_string(ch.receive()));
      try {
        ch.receive();
      } catch (const sl::channel_closed& e) {
        log(me + ": " + e.what());
      }
    });
  sl::run();
  ch.close();
  EXPECT_TRUE(ch.closing());
  EXPECT_FALSE(ch.closed());
  EXPECT_EQ(ch.balance(), -3);
  for (int i = 0; i < 3; ++i) {
    ch.send(10 + i);  // preference -1: the receiver runs at once, its second receive throws
    EXPECT_EQ(ch.closed(), i == 2) << "after send " << i;
    EXPECT_EQ(ch.balance(), i - 2);
  }
  EXPECT_THAT(log_, ElementsAre("r0 got 10", std::string("r0: ") + closed_message, "r1 got 11",
                                std::string("r1: ") + closed_message, "r2 got 12",
                                std::string("r2: ") + closed_message));
  EXPECT_THROW_WHAT(ch.send(13), sl::channel_closed, closed_message);
  EXPECT_THROW_WHAT(ch.receive(), sl::channel_closed, closed_message);
  EXPECT_THROW_WHAT(ch.send_exception<std::runtime_error>("x"), sl::channel_closed, closed_message);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_TRUE(main_tasklet().is_current());

  ch.open();
  EXPECT_FALSE(ch.closing());
  EXPECT_FALSE(ch.closed());
  tasklet s([&] { ch.send(99); });
  EXPECT_EQ(ch.receive(), 99);  // main blocks, s hands over: an open channel blocks again
  sl::run();
}

TEST_F(closing, two_blocked_senders_are_drained_by_iteration) {
  // [verified] iterating yields their 2 values, then stops; the senders, resumed later, get the
  // closed error on their next send.
  channel<int> ch;
  for (int i = 1; i <= 2; ++i)
    tasklet([&, i] {
      ch.send(i);
      const std::string me = "s" + std::to_string(i);
      log(me + " sent");
      try {
        ch.send(10 + i);
      } catch (const sl::channel_closed& e) {
        log(me + ": " + e.what());
      }
    });
  sl::run();
  ch.close();
  EXPECT_EQ(ch.balance(), 2);
  EXPECT_FALSE(ch.closed());
  std::vector<int> got;
  for (int v : ch) got.push_back(v);  // receiving with preference -1 appends the senders
  EXPECT_THAT(got, ElementsAre(1, 2));
  EXPECT_TRUE(ch.closed());
  EXPECT_TRUE(log_.empty());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("s1 sent", std::string("s1: ") + closed_message, "s2 sent",
                                std::string("s2: ") + closed_message));
}

// ------------------------------------------------------------------------------------------------
// §3.5 killing or throwing into waiters unlinks them at once

TEST_F(waiters, killing_blocked_senders_updates_balance_at_once) {
  // testAttr_balance: 2 → 1 → 0.
  channel<int> ch;
  auto sender = [&](int v) {
    return [&, v] {
      try {
        ch.send(v);
        log("sent " + std::to_string(v));
      } catch (const tasklet_exit&) {
        log("killed " + std::to_string(v));
        throw;
      }
    };
  };
  tasklet s1(sender(1)), s2(sender(2)), s3(sender(3));
  sl::run();
  EXPECT_EQ(ch.balance(), 3);
  s1.kill();  // blocked target: unlinked, switched to, dies; main resumes
  EXPECT_EQ(ch.balance(), 2);
  EXPECT_TRUE(ch.queue() == s2);
  EXPECT_FALSE(s1.alive());
  s2.kill(/*pending=*/true);  // unlinked now, dies when it next runs
  EXPECT_EQ(ch.balance(), 1);
  EXPECT_TRUE(ch.queue() == s3);
  EXPECT_TRUE(s2.alive());
  EXPECT_EQ(s2.blocked(), 0);
  EXPECT_EQ(ch.receive(), 3) << "a killed sender's value must never arrive";
  EXPECT_EQ(ch.balance(), 0);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("killed 1", "killed 2", "sent 3"));
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(waiters, killing_blocked_receivers_updates_balance_at_once) {
  // -2 → -1 → 0, and a later send never reaches a killed receiver.
  channel<int> ch;
  auto receiver = [&](std::string me) {
    return [&, me] {
      try {
        log(me + " got " + std::to_string(ch.receive()));
      } catch (const tasklet_exit&) {
        log(me + " killed");
        throw;
      }
    };
  };
  tasklet r1(receiver("r1")), r2(receiver("r2"));
  sl::run();
  EXPECT_EQ(ch.balance(), -2);
  r1.kill(/*pending=*/true);
  EXPECT_EQ(ch.balance(), -1);
  EXPECT_TRUE(ch.queue() == r2);
  EXPECT_TRUE(r1.alive());
  r2.kill();  // r2 is appended behind r1 and switched to; main resumes right after it dies
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_FALSE(ch.queue());
  EXPECT_THAT(log_, ElementsAre("r2 killed"));
  sl::run();
  EXPECT_THAT(log_, ElementsAre("r2 killed", "r1 killed"));
  // Nobody receives now: main alone would block, which is a deadlock, not a hand-off to a corpse.
  EXPECT_THROW_WHAT(ch.send(5), sl::deadlock_error, deadlock_message);
  tasklet r3(receiver("r3"));
  sl::run();
  ch.send(6);
  EXPECT_THAT(log_, ElementsAre("r2 killed", "r1 killed", "r3 got 6"));
}

TEST_F(waiters, throwing_into_a_blocked_sender_unlinks_it) {
  channel<int> ch;
  tasklet s([&] {
    try {
      ch.send(1);
      log("sent");
    } catch (const std::length_error& e) {
      log(std::string("caught ") + e.what());
    }
  });
  tasklet r([&] { log("r got " + std::to_string(ch.receive())); }, {.start = false});
  sl::run();
  EXPECT_EQ(ch.balance(), 1);
  s.raise_exception<std::length_error>("go away");  // blocked: appended, switched to, ends
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_THAT(log_, ElementsAre("caught go away"));
  r.insert();
  sl::run();  // r blocks: the value 1 was not sent
  EXPECT_EQ(ch.balance(), -1);
  ch.send(2);
  EXPECT_THAT(log_, ElementsAre("caught go away", "r got 2"));
}

// ------------------------------------------------------------------------------------------------
// §3.6 the channel callback

TEST_F(channel_callback, verified_sequence) {
  // "t = tasklet(ch.send)(5); main: ch.receive(); tasklet(ch.receive)(); run(); main: ch.send(6)"
  // gives (main,0,1), (t,1,0), (t2,0,1), (main,1,0) [verified].
  channel<int> ch;
  std::vector<std::string> calls;
  int not_current = 0;
  EXPECT_FALSE(sl::set_channel_callback([&](tasklet t, bool sending, bool will_block) {
    calls.push_back("(" + label(t) + "," + std::to_string(sending) + "," +
                    std::to_string(will_block) + ")");
    if (!(t == current())) ++not_current;
  }));
  tasklet t([&] { ch.send(5); }, {.name = "t"});
  EXPECT_EQ(ch.receive(), 5);
  int got = 0;
  tasklet t2([&] { got = ch.receive(); }, {.name = "t2"});
  sl::run();
  ch.send(6);
  EXPECT_EQ(got, 6);
  EXPECT_THAT(calls, ElementsAre("(main,0,1)", "(t,1,0)", "(t2,0,1)", "(main,1,0)"));
  EXPECT_EQ(not_current, 0) << "current() must be the acting tasklet during the callback";
  EXPECT_TRUE(sl::set_channel_callback({})) << "set_channel_callback returns the previous one";
  EXPECT_FALSE(sl::set_channel_callback({}));
}

TEST_F(channel_callback, sends_of_exceptions_are_reported_as_sends) {
  channel<int> ch;
  std::vector<std::string> calls;
  sl::set_channel_callback([&](tasklet t, bool sending, bool will_block) {
    calls.push_back(label(t) + (sending ? " send" : " receive") + (will_block ? " blocks" : ""));
  });
  tasklet s([&] { ch.send_exception<std::runtime_error>("e"); }, {.name = "s"});
  EXPECT_THROW(ch.receive(), std::runtime_error);
  sl::run();
  sl::set_channel_callback({});
  EXPECT_THAT(calls, ElementsAre("main receive blocks", "s send"));
}

TEST_F(channel_callback, a_channel_operation_inside_the_callback_throws) {
  channel<int> ch, other;
  std::vector<std::string> inner;
  sl::set_channel_callback([&](tasklet, bool, bool) {
    try {
      other.send(1);
      inner.push_back("no error");
    } catch (const sl::runtime_error& e) {
      inner.push_back(e.what());
    }
  });
  tasklet s([&] { ch.send(3); });
  EXPECT_EQ(ch.receive(), 3);  // the outer operation still completes
  sl::run();
  sl::set_channel_callback({});
  EXPECT_THAT(inner, ElementsAre("Recursive channel call due to callbacks!",
                                 "Recursive channel call due to callbacks!"));
  EXPECT_EQ(other.balance(), 0);
}

// ------------------------------------------------------------------------------------------------
// Values: move-only types, no copies, exceptions with type and message

struct payload {
  std::string text;
  int n;
};

TEST_F(values, move_only_unique_ptr) {
  channel<std::unique_ptr<payload>> ch;
  auto original = std::make_unique<payload>(payload{"hello", 42});
  const payload* address = original.get();
  tasklet s([&] { ch.send(std::move(original)); });
  std::unique_ptr<payload> got = ch.receive();
  ASSERT_TRUE(got);
  EXPECT_EQ(got.get(), address);
  EXPECT_EQ(got->text, "hello");
  EXPECT_EQ(got->n, 42);
  EXPECT_FALSE(original);
  sl::run();
}

TEST_F(values, a_value_is_moved_never_copied) {
  // Both directions: the receiver waits first, then the sender waits first.
  for (bool receiver_waits : {true, false}) {
    SCOPED_TRACE(receiver_waits ? "receiver waits" : "sender waits");
    copy_counts counts;
    channel<counted> ch;
    int got = 0;
    tasklet r([&] { got = ch.receive().value; });
    tasklet s([&] { ch.send(counted(&counts, 17)); });
    if (!receiver_waits) {
      r.remove();
      sl::run();  // s blocks
      r.insert();
    }
    sl::run();
    EXPECT_EQ(got, 17);
    EXPECT_EQ(counts.copies, 0);
    EXPECT_GE(counts.moves, 1);
  }
}

TEST_F(values, iteration_does_not_copy) {
  copy_counts counts;
  channel<counted> ch;
  int sum = 0;
  tasklet r([&] {
    for (counted& c : ch) sum += c.value;
  });
  for (int i = 1; i <= 3; ++i) ch.send(counted(&counts, i));
  ch.close();
  sl::run();
  EXPECT_EQ(sum, 6);
  EXPECT_EQ(counts.copies, 0);
}

struct coded_error : std::runtime_error {
  coded_error(const std::string& what, int c) : std::runtime_error(what), code(c) {}
  int code;
};

TEST_F(values, exceptions_keep_type_and_message) {
  channel<std::unique_ptr<int>> ch;
  tasklet s([&] { ch.send_exception<coded_error>("disk full", 28); });
  try {
    ch.receive();
    ADD_FAILURE() << "receive() did not throw";
  } catch (const coded_error& e) {
    EXPECT_STREQ(e.what(), "disk full");
    EXPECT_EQ(e.code, 28);
  }
  sl::run();
}

// ------------------------------------------------------------------------------------------------
// Blocking rules: block_trap (§2.7), deadlock (§1.6 rule 4), the last tasklet leaving main blocked
// (§1.7)

TEST_F(blocking, block_trap_refuses_to_block_but_allows_a_hand_off) {
  channel<int> ch;
  current().set_block_trap(true);
  EXPECT_THROW_WHAT(ch.receive(), sl::runtime_error, block_trap_message);
  EXPECT_THROW_WHAT(ch.send(1), sl::runtime_error, block_trap_message);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_TRUE(main_tasklet().is_current());
  tasklet s([&] { ch.send(2); });
  schedule();  // s blocks sending
  EXPECT_EQ(ch.receive(), 2) << "a receive that finds a sender does not block";
  current().set_block_trap(false);

  tasklet t([&] {
    current().set_block_trap(true);
    try {
      ch.send(3);
    } catch (const sl::runtime_error& e) {
      log(e.what());
    }
    current().set_block_trap(false);
  });
  sl::run();
  EXPECT_THAT(log_, ElementsAre(block_trap_message));
  EXPECT_EQ(ch.balance(), 0);
}

TEST_F(blocking, main_alone_deadlocks) {
  channel<int> ch;
  EXPECT_THROW_WHAT(ch.receive(), sl::deadlock_error, deadlock_message);
  EXPECT_THROW_WHAT(ch.send(1), sl::deadlock_error, deadlock_message);
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_TRUE(main_tasklet().is_current());
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(blocking, last_tasklet_ending_while_main_receives) {
  channel<int> ch;
  tasklet t([&] {
    log("t");
    schedule();
    log("t end");
  });
  EXPECT_THROW_WHAT(ch.receive(), sl::deadlock_error,
                    "the main tasklet is receiving without a sender available.");
  EXPECT_THAT(log_, ElementsAre("t", "t end"));
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(blocking, last_tasklet_ending_while_main_sends) {
  channel<int> ch;
  tasklet t([&] { log("t"); });
  EXPECT_THROW_WHAT(ch.send(1), sl::deadlock_error,
                    "the main tasklet is sending without a receiver available.");
  EXPECT_THAT(log_, ElementsAre("t"));
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(blocking, last_runnable_tasklet_cannot_block_while_main_waits) {
  // main waits on a; t, the last runnable, tries to receive on b: §1.6 rule 4 fails t's operation
  // and leaves t runnable, so t can still serve main.
  channel<int> a, b;
  tasklet t([&] {
    try {
      b.receive();
    } catch (const sl::deadlock_error& e) {
      log(e.what());
      log(current().scheduled() ? "t still scheduled" : "t not scheduled");
    }
    a.send(8);
    log("t end");
  });
  EXPECT_EQ(a.receive(), 8);  // preference -1: main runs before t continues
  EXPECT_EQ(b.balance(), 0);
  sl::run();
  EXPECT_THAT(log_, ElementsAre(deadlock_message, "t still scheduled", "t end"));
}

TEST_F(blocking, an_uncaught_exception_of_a_tasklet_unblocks_main) {
  // §1.7: the exception goes to main, which is unblocked from the channel and throws it.
  channel<int> ch;
  tasklet t([] { throw std::domain_error("boom"); });
  EXPECT_THROW_WHAT(ch.receive(), std::domain_error, "boom");
  EXPECT_EQ(ch.balance(), 0);
  EXPECT_EQ(main_tasklet().blocked(), 0);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
  tasklet s([&] { ch.send(3); });
  EXPECT_EQ(ch.receive(), 3);
  sl::run();
}

TEST_F(blocking, switch_trap_refuses_blocking_and_switching_hand_offs) {
  // §4.6: a send/receive that would block or do a preferred hand-off throws and changes nothing;
  // a hand-off that only appends the partner is allowed.
  channel<int> ch;
  tasklet r([&] { log("r got " + std::to_string(ch.receive())); });
  schedule();  // r waits
  {
    sl::switch_trap trap;
    EXPECT_THROW_WHAT(ch.send(1), sl::runtime_error, "switch_trap");  // would run r at once
    EXPECT_EQ(ch.balance(), -1);
    EXPECT_TRUE(ch.queue() == r);
    ch.set_schedule_all(true);
    EXPECT_THROW_WHAT(ch.send(1), sl::runtime_error, "switch_trap");  // would switch to r
    EXPECT_EQ(ch.balance(), -1);
    ch.set_schedule_all(false);
    ch.set_preference(0);
    ch.send(2);  // appends r; main continues
    EXPECT_EQ(ch.balance(), 0);
    EXPECT_THROW_WHAT(ch.receive(), sl::runtime_error, "switch_trap");  // would block
    EXPECT_EQ(ch.balance(), 0);
  }
  EXPECT_TRUE(log_.empty());
  sl::run();
  EXPECT_THAT(log_, ElementsAre("r got 2"));
}

// ------------------------------------------------------------------------------------------------
// Lifetime: a blocked tasklet keeps its channel alive, nothing is abandoned

TEST_F(lifetime, a_channel_held_only_by_its_blocked_receiver) {
  auto owner = std::make_unique<channel<int>>();
  channel<int>* raw = owner.get();
  struct unwound {
    std::vector<std::string>& log;
    ~unwound() { log.push_back("r unwound"); }
  };
  tasklet r([&, raw] {
    unwound guard{log_};
    try {
      raw->receive();  // receive() does not touch the handle after it blocked
    } catch (const tasklet_exit&) {
      log("r killed");
      throw;
    }
  });
  sl::run();
  owner.reset();  // the last user handle goes; the blocked receiver keeps the channel
  EXPECT_EQ(r.blocked(), -1);
  EXPECT_TRUE(r.scheduled());
  EXPECT_TRUE(r.alive());
  EXPECT_FALSE(r.paused()) << "the waiter must not be abandoned (Stackless parks it, §2.9)";
  EXPECT_EQ(sl::memory_stats().wait_nodes, 1u);
  r.kill();  // still reachable through the channel: unlinked, unwound
  EXPECT_THAT(log_, ElementsAre("r killed", "r unwound"));
  EXPECT_FALSE(r.alive());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

}  // namespace
