// spill_test — stackless::spill: direct calls while stack remains, fresh segments when it runs low,
// a million levels of recursion in a 16 KiB tasklet, results of every kind, exceptions, switching
// and blocking on a segment, kill and thread exit during a spilled call.
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace sl = stackless;

namespace {

using spill_call = stackless_test;

constexpr std::size_t kSmallStack = 16 * 1024;  // below spill_threshold (16 KiB) plus frames
// Under the sanitizers frames are several times larger: fewer levels keep the memory bounded.
constexpr int kDeep = (STACKLESS_TEST_ASAN || STACKLESS_TEST_TSAN) ? 100'000 : 1'000'000;

// depth recurses n levels, spilling at every level; returns n.
int depth(int n) {
  if (n == 0) return 0;
  return 1 + sl::spill([n] { return depth(n - 1); });
}

// stacks_in_use: stacks owned by tasklets and spill segments right now.
std::size_t stacks_in_use() { return sl::memory_stats().stacks_in_use; }

}  // namespace

TEST_F(spill_call, is_a_direct_call_while_enough_stack_remains) {
  // The main tasklet runs on the thread's own stack (megabytes): no segment is taken.
  const std::size_t before = stacks_in_use();
  std::size_t during = 0;
  const int r = sl::spill([&] {
    during = stacks_in_use();
    return 42;
  });
  EXPECT_EQ(r, 42);
  EXPECT_EQ(during, before);
}

TEST_F(spill_call, runs_on_a_fresh_segment_when_the_stack_runs_low) {
  // A 16 KiB tasklet always has less than the 16 KiB threshold left: its spill takes a segment.
  std::vector<std::size_t> seen;
  sl::tasklet t(
      [&] {
        seen.push_back(stacks_in_use());
        sl::spill([&] { seen.push_back(stacks_in_use()); });
        seen.push_back(stacks_in_use());
      },
      {.stack_size = kSmallStack});
  sl::run();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1], seen[0] + 1);  // the segment
  EXPECT_EQ(seen[2], seen[0]);      // given back
}

TEST_F(spill_call, recurses_a_million_levels_in_a_16_KiB_tasklet) {
  int result = -1;
  sl::tasklet t([&] { result = depth(kDeep); }, {.stack_size = kSmallStack});
  sl::run();
  EXPECT_EQ(result, kDeep);
  EXPECT_EQ(sl::memory_stats().stacks_in_use, 0u);
}

TEST_F(spill_call, returns_references_move_only_values_and_void) {
  sl::tasklet t(
      [] {
        int x = 1;
        int& r = sl::spill([&]() -> int& { return x; });
        EXPECT_EQ(&r, &x);
        std::unique_ptr<std::string> p =
            sl::spill([] { return std::make_unique<std::string>("moved"); });
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(*p, "moved");
        int calls = 0;
        sl::spill([&] { ++calls; });
        EXPECT_EQ(calls, 1);
      },
      {.stack_size = kSmallStack});
  sl::run();
}

TEST_F(spill_call, destroys_a_returned_value_exactly_once) {
  int destroyed = 0;
  sl::tasklet t(
      [&] {
        auto v = sl::spill([&] { return stackless_testing::tracker(&destroyed); });
        EXPECT_EQ(destroyed, 0);
      },
      {.stack_size = kSmallStack});
  sl::run();
  EXPECT_EQ(destroyed, 1);
}

TEST_F(spill_call, passes_exceptions_through_and_unwinds_both_stacks) {
  std::vector<std::string> log;
  struct note {
    std::vector<std::string>& log;
    const char* what;
    ~note() { log.push_back(what); }
  };
  sl::tasklet t(
      [&] {
        try {
          note outer{log, "~outer"};
          sl::spill([&] {
            note inner{log, "~inner"};
            throw std::runtime_error("from the segment");
          });
        } catch (const std::runtime_error& e) {
          log.push_back(std::string("caught ") + e.what());
        }
      },
      {.stack_size = kSmallStack});
  sl::run();
  EXPECT_THAT(log, ::testing::ElementsAre("~inner", "~outer", "caught from the segment"));
}

TEST_F(spill_call, may_switch_and_block_on_the_segment) {
  sl::channel<int> ch;
  std::vector<std::string> log;
  sl::tasklet receiver(
      [&] {
        const int v = sl::spill([&] {
          log.push_back("receiving");
          return ch.receive();
        });
        log.push_back("got " + std::to_string(v));
      },
      {.stack_size = kSmallStack});
  sl::tasklet sender([&] {
    log.push_back("sending");
    ch.send(7);
    log.push_back("sent");
  });
  sl::run();
  EXPECT_THAT(log, ::testing::ElementsAre("receiving", "sending", "got 7", "sent"));
}

TEST_F(spill_call, nested_segments_while_blocked_and_resumed_in_order) {
  // Two tasklets each deep in spilled recursion, both blocked at the bottom, resumed in turn.
  sl::channel<int> ch;
  std::vector<int> results;
  auto body = [&] {
    struct local {
      static int down(sl::channel<int>& c, int n) {
        if (n == 0) return c.receive();
        return sl::spill([&] { return down(c, n - 1); }) + 1;
      }
    };
    results.push_back(local::down(ch, 2'000));
  };
  sl::tasklet a(body, {.stack_size = kSmallStack});
  sl::tasklet b(body, {.stack_size = kSmallStack});
  sl::run();
  EXPECT_EQ(ch.balance(), -2);
  ch.send(1);
  ch.send(2);
  EXPECT_THAT(results, ::testing::ElementsAre(2'001, 2'002));
}

TEST_F(spill_call, kill_while_blocked_on_a_segment_unwinds_and_returns_the_segment) {
  sl::channel<int> ch;
  std::vector<std::string> log;
  sl::tasklet t(
      [&] {
        stackless_testing::nest(log, 0, 2, [&] { sl::spill([&] { ch.receive(); }); });
      },
      {.stack_size = kSmallStack});
  sl::run();
  EXPECT_EQ(stacks_in_use(), 2u);  // the tasklet's stack and the segment
  t.kill();
  EXPECT_FALSE(t.alive());
  EXPECT_THAT(log, ::testing::ElementsAre("~2", "~1", "~0"));
  EXPECT_EQ(stacks_in_use(), 0u);
}

TEST_F(spill_call, thread_exit_kills_a_tasklet_blocked_on_a_segment) {
  std::vector<std::string> log;
  std::thread([&] {
    sl::channel<int> never;
    sl::tasklet t(
        [&] {
          struct note {
            std::vector<std::string>& log;
            ~note() { log.push_back("unwound"); }
          } n{log};
          sl::spill([&] { never.receive(); });
        },
        {.stack_size = kSmallStack});
    sl::run();
  }).join();
  EXPECT_THAT(log, ::testing::ElementsAre("unwound"));
}

TEST_F(spill_call, a_thread_without_tasklets_can_spill) {
  int r = 0;
  std::thread([&] { r = sl::spill([] { return 5; }); }).join();
  EXPECT_EQ(r, 5);
}
