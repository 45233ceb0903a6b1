// tests/channel_stress_test.cpp — channels under load (reference §3): a ring of 1,000 tasklets,
// 100 producers and 10 consumers over one channel (also with random kills of blocked tasklets), and
// destructors that run channel operations while a value is in transit. Split from
// channel_test.cpp to keep files short.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

namespace sl = stackless;
using sl::channel;
using sl::current;
using sl::runcount;
using sl::schedule;
using sl::tasklet;
using sl::tasklet_exit;

using stress = stackless_test;

#if STACKLESS_TEST_ASAN || STACKLESS_TEST_TSAN
constexpr int ring_laps = 100;     // sanitizers: 100,000 hops instead of 1,000,000
constexpr int per_producer = 200;  // sanitizers: 20,000 messages instead of 100,000
#else
constexpr int ring_laps = 1'000;
constexpr int per_producer = 1'000;
#endif

struct token {
  std::string text;
  long hops = 0;
  std::unique_ptr<int> tag;
};

TEST_F(stress, ring_of_1000_tasklets_passes_a_token_1000_times) {
  // The token goes round the ring ring_laps times (every tasklet passes it ring_laps times).
  constexpr int n = 1'000;
  std::vector<channel<token>> links(n);
  channel<token> done;
  for (int i = 0; i < n; ++i)
    tasklet([&, i] {
      for (int lap = 0; lap < ring_laps; ++lap) {
        token t = links[i].receive();
        ++t.hops;
        if (i == n - 1 && lap == ring_laps - 1)
          done.send(std::move(t));
        else
          links[(i + 1) % n].send(std::move(t));
      }
    });
  const std::string text = std::string(200, '*') + " the ring token";
  token t{text, 0, std::make_unique<int>(4242)};
  const int* tag = t.tag.get();
  links[0].send(std::move(t));
  token back = done.receive();
  EXPECT_EQ(back.hops, static_cast<long>(n) * ring_laps);
  EXPECT_EQ(back.text, text);
  ASSERT_TRUE(back.tag);
  EXPECT_EQ(back.tag.get(), tag);
  EXPECT_EQ(*back.tag, 4242);
  sl::run();
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(sl::memory_stats().live_tasklets, 0u);
}

// fan_in runs 100 producers and 10 consumers over one channel; with kills > 0 a killer tasklet
// kills that many randomly chosen *blocked* producers and consumers (at most 5 consumers). A
// sender whose send() returned counts as sent; everything sent must be received exactly once and
// nothing else.
void fan_in(int kills) {
  constexpr int producers = 100, consumers = 10;
  constexpr int total = producers * per_producer;
  channel<int> ch;
  std::vector<int> sent(total, 0), received(total, 0), attempted_by_killed;
  std::vector<int> attempting(producers, -1);
  std::vector<tasklet> all;
  long long sent_sum = 0, received_sum = 0;
  for (int p = 0; p < producers; ++p)
    all.emplace_back([&, p] {
      for (int s = 0; s < per_producer; ++s) {
        const int v = p * per_producer + s;
        attempting[p] = v;
        try {
          ch.send(v);
        } catch (const tasklet_exit&) {
          attempted_by_killed.push_back(v);
          throw;
        }
        ++sent[v];
        sent_sum += v;
      }
    });
  int consumer_misorders = 0;
  for (int c = 0; c < consumers; ++c)
    all.emplace_back([&] {
      std::vector<int> last(producers, -1);  // per producer, messages arrive in order
      for (int v : ch) {
        ++received[v];
        received_sum += v;
        if (v <= last[v / per_producer]) ++consumer_misorders;
        last[v / per_producer] = v;
        schedule();  // some work: the producers pile up blocked in send()
      }
    });
  int killed = 0, killed_consumers = 0;
  if (kills > 0)
    tasklet([&] {
      std::mt19937 rng(20240611);
      std::uniform_int_distribution<int> pick(0, producers + consumers - 1);
      for (long step = 0; killed < kills && step < 1'000'000; ++step) {
        schedule();
        const int i = pick(rng);
        if (i >= producers && killed_consumers == 5) continue;
        if (all[i].blocked() == 0) continue;  // only blocked tasklets
        all[i].kill(/*pending=*/(step & 1) != 0);
        ++killed;
        if (i >= producers) ++killed_consumers;
      }
    });
  sl::run();  // ends when the producers are done and the consumers wait
  EXPECT_EQ(killed, kills);
  EXPECT_EQ(ch.balance(), -(consumers - killed_consumers));
  ch.close();  // wakes the iterating consumers
  sl::run();
  EXPECT_EQ(ch.balance(), 0);
  int duplicates = 0, lost = 0, phantom = 0;
  for (int v = 0; v < total; ++v) {
    if (received[v] > 1) ++duplicates;
    if (sent[v] == 1 && received[v] == 0) ++lost;
    if (sent[v] == 0 && received[v] != 0) ++phantom;
  }
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(phantom, 0) << "a killed sender's message must not arrive";
  EXPECT_EQ(sent_sum, received_sum);
  EXPECT_EQ(consumer_misorders, 0);
  EXPECT_LE(attempted_by_killed.size(), static_cast<std::size_t>(kills));
  for (int v : attempted_by_killed) EXPECT_EQ(received[v], 0) << "value " << v;
  if (kills == 0) {
    EXPECT_EQ(received_sum, static_cast<long long>(total) * (total - 1) / 2);
  }
  for (const tasklet& t : all) EXPECT_FALSE(t.alive());
}

TEST_F(stress, hundred_producers_ten_consumers_deliver_every_message_once) { fan_in(0); }

TEST_F(stress, killing_random_blocked_tasklets_loses_no_sent_message) { fan_in(35); }

// hooked: a value whose moved-from shell runs *hook when it is destroyed (once). The sender's
// shell dies in send() right after the hand-off, while the value sits in the receiver's slot and
// the receiver has not run yet (preference 0/+1, schedule_all); the receiver's shell dies inside
// receive() after the value was moved out.
struct hooked {
  int value;
  std::function<void()>* hook;
  hooked(int v, std::function<void()>* h) : value(v), hook(h) {}
  hooked(hooked&& o) noexcept : value(std::exchange(o.value, -1)), hook(o.hook) {}
  hooked& operator=(hooked&&) = delete;
  ~hooked() {
    if (value == -1 && hook != nullptr && *hook) std::exchange(*hook, nullptr)();
  }
};

TEST_F(stress, destructors_running_during_a_hand_off_never_change_the_value) {
  // Stackless once lost values when a destructor ran channel operations while a value was in
  // transit. Here the destructor kills a waiter of the same channel, spawns tasklets that send and
  // receive on the same channel, and sends on another channel to a waiting receiver.
  for (bool receiver_waits : {true, false})
    for (int pref : {-1, 0, 1})
      for (bool all : {false, true}) {
        SCOPED_TRACE(std::string(receiver_waits ? "receiver waits" : "sender waits") +
                     ", preference " + std::to_string(pref) + (all ? ", schedule_all" : ""));
        log_.clear();
        channel<hooked> ch;
        channel<int> other, side;
        ch.set_preference(pref);
        ch.set_schedule_all(all);
        std::function<void()> hook;
        tasklet victim([&] { side.receive(); });
        tasklet o([&] { log("O got " + std::to_string(other.receive())); });
        sl::run();  // victim and o block
        // In transit: the hook runs in s after the hand-off, before r returned from receive().
        bool in_transit = false;
        tasklet s;
        hook = [&] {
          log("hook");
          in_transit =
              current() == s && std::find(log_.begin(), log_.end(), "R got 42") == log_.end();
          victim.kill();
          tasklet([&] { ch.send(hooked(99, nullptr)); });
          tasklet([&] { log("Y got " + std::to_string(ch.receive().value)); });
          other.send(7);
        };
        tasklet r([&] { log("R got " + std::to_string(ch.receive().value)); });
        s = tasklet([&] { ch.send(hooked(42, &hook)); });
        if (!receiver_waits) {
          r.remove();
          sl::run();  // s blocks first
          r.insert();
        }
        sl::run();
        EXPECT_EQ(std::count(log_.begin(), log_.end(), "hook"), 1);
        EXPECT_EQ(std::count(log_.begin(), log_.end(), "R got 42"), 1);
        EXPECT_EQ(std::count(log_.begin(), log_.end(), "Y got 99"), 1);
        EXPECT_EQ(std::count(log_.begin(), log_.end(), "O got 7"), 1);
        EXPECT_EQ(log_.size(), 4u);
        // From the §3.2 orders: the hook runs in s with the value in transit when s goes on after
        // the hand-off before r runs: r waited and s continues (preference 0/+1), or s waited and
        // is run first (preference +1, or schedule_all: r switches to its next, which is s).
        // Otherwise r runs first and the hook runs in r's receive() after the value was moved out.
        const bool expect_in_transit = receiver_waits ? (pref != -1 && !all) : (pref == 1 || all);
        EXPECT_EQ(in_transit, expect_in_transit);
        EXPECT_FALSE(victim.alive());
        EXPECT_EQ(ch.balance(), 0);
        EXPECT_EQ(runcount(), 1);
      }
}

}  // namespace
