// tests/stack_test.cpp — stacks, contexts and the lifetime of what lives on them: stack sizes and
// use, the bounded stack cache, configure(), machine state across switches, 10,000 tasklets
// switching and 100,000 live tasklets, lifetime of tasklets and their callables (reference §2.9,
// DESIGN principle 3), unwinding deep stacks on kill, and overflow reports (guard page and
// canary) checked in child processes.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cfenv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

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
using stackless_testing::nest;
using stackless_testing::tracker;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

using stack_size = stackless_test;
using stack_cache = stackless_test;
using many_tasklets = stackless_test;
using switching = stackless_test;
using tasklet_lifetime = stackless_test;
using deep_unwind = stackless_test;
using configure_DeathTest = stackless_test;
using overflow_DeathTest = stackless_test;

std::size_t page() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// ------------------------------------------------------------------------------------------------
// Stack sizes and use

[[gnu::noinline]] std::size_t used_below_a_4k_frame() {
  volatile char frame[4096];
  for (std::size_t i = 0; i < sizeof frame; i += 64) frame[i] = 1;
  const std::size_t used = current().stack_used();
  return used + frame[0] - 1;
}

TEST_F(stack_size, default_and_requested_sizes) {
  tasklet d([] {});
  EXPECT_GE(d.stack_size(), sl::current_config().default_stack_size);
  EXPECT_EQ(d.stack_size() % page(), 0u);
  tasklet big([] {}, {.stack_size = 100'000});
  EXPECT_GE(big.stack_size(), 100'000u);
  EXPECT_EQ(big.stack_size() % page(), 0u);
  sl::run();
  EXPECT_EQ(d.stack_size(), 0u) << "a dead tasklet has no stack";
  EXPECT_EQ(d.stack_used(), 0u);
}

TEST_F(stack_size, used_is_plausible) {
  std::size_t live = 0, deeper = 0, size = 0;
  tasklet t([&] {
    size = current().stack_size();
    live = current().stack_used();
    deeper = used_below_a_4k_frame();
    schedule();
  });
  schedule();  // t is suspended in schedule()
  const std::size_t suspended = t.stack_used();
  EXPECT_GT(live, 0u);
  EXPECT_LT(live, size);
  EXPECT_GE(deeper, live + 4096) << "a 4 KiB frame is counted";
  EXPECT_GT(suspended, 0u);
  EXPECT_LT(suspended, t.stack_size());
  sl::run();
}

TEST_F(stack_size, callable_must_fit_in_half_the_stack) {
  std::array<char, 64 * 1024> big{};
  EXPECT_THROW(tasklet([big] { (void)big; }, {.stack_size = 16 * 1024}), std::length_error);
  EXPECT_EQ(sl::memory_stats().live_tasklets, 0u);
  EXPECT_EQ(sl::memory_stats().stacks_in_use, 0u);
  EXPECT_EQ(runcount(), 1);
}

TEST_F(stack_size, sliced_stacks_are_not_implemented_yet) {
  EXPECT_THROW(tasklet([] {}, {.stack = sl::stack_mode::sliced}), sl::runtime_error);
  EXPECT_EQ(runcount(), 1);
}

// ------------------------------------------------------------------------------------------------
// The stack cache

TEST_F(stack_cache, stays_bounded) {
  const std::size_t limit = sl::current_config().stack_cache_limit;
  {
    std::vector<tasklet> ts;
    for (int i = 0; i < 100; ++i) ts.emplace_back([] { schedule(); });
    EXPECT_EQ(sl::memory_stats().stacks_in_use, 100u);
    EXPECT_EQ(sl::memory_stats().live_tasklets, 100u);
    sl::run();
  }
  const sl::memory_statistics s = sl::memory_stats();
  EXPECT_EQ(s.stacks_in_use, 0u);
  EXPECT_LE(s.stacks_cached, limit);
  EXPECT_GE(s.stacks_cached, 1u) << "finished stacks are kept for reuse";
  // Reuse: creating tasklets again takes cached stacks first.
  const std::size_t cached = s.stacks_cached;
  tasklet t([] {});
  EXPECT_EQ(sl::memory_stats().stacks_cached, cached - 1);
  sl::run();
}

// ------------------------------------------------------------------------------------------------
// Machine state across switches and many switches

#if defined(__x86_64__) || defined(__i386__)
// sse_rounding returns the rounding-control bits of MXCSR as a <cfenv> rounding mode.
int sse_rounding() { return static_cast<int>(_mm_getcsr() & 0x6000u) >> 3; }
#endif

double divide(double a, double b) {
  volatile double x = a, y = b;
  volatile double q = x / y;
  return q;
}

TEST_F(switching, rounding_mode_is_per_tasklet) {
  // Boost.Context's fcontext saves MXCSR and the x87 control word per context, so each tasklet
  // keeps its own rounding mode across switches and main's is untouched.
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  const double nearest = divide(1.0, 3.0);
  int a_after = -1, b_initial = -1, b_after = -1, a_sse = -1, b_sse = -1;
  double a_quotient = 0, b_quotient = 0;
  tasklet a([&] {
    std::fesetround(FE_UPWARD);
    schedule();
    a_after = std::fegetround();
#if defined(__x86_64__) || defined(__i386__)
    a_sse = sse_rounding();
#endif
    a_quotient = divide(1.0, 3.0);
  });
  tasklet b([&] {
    b_initial = std::fegetround();
    std::fesetround(FE_DOWNWARD);
    schedule();
    b_after = std::fegetround();
#if defined(__x86_64__) || defined(__i386__)
    b_sse = sse_rounding();
#endif
    b_quotient = divide(1.0, 3.0);
  });
  sl::run();
  EXPECT_EQ(std::fegetround(), FE_TONEAREST) << "main's rounding mode was changed by a tasklet";
  EXPECT_EQ(a_after, FE_UPWARD);
  EXPECT_EQ(b_initial, FE_TONEAREST);
  EXPECT_EQ(b_after, FE_DOWNWARD);
#if defined(__x86_64__) || defined(__i386__)
  EXPECT_EQ(a_sse, FE_UPWARD);
  EXPECT_EQ(b_sse, FE_DOWNWARD);
  EXPECT_EQ(sse_rounding(), FE_TONEAREST);
#endif
  EXPECT_GT(a_quotient, b_quotient);
  EXPECT_GE(a_quotient, nearest);
  EXPECT_LE(b_quotient, nearest);
  EXPECT_EQ(divide(1.0, 3.0), nearest);
}

TEST_F(switching, double_computations_survive_switches) {
  constexpr int tasklets = 4, steps = 1000;
  auto series = [](int k, bool yield) {
    double sum = 0.0, product = 1.0;
    for (int i = 1; i <= steps; ++i) {
      sum += 1.0 / (static_cast<double>(i) * i + k);
      product *= 1.0 + 1.0 / (i + k + 0.5);
      if (yield) schedule();
    }
    return sum * 1e6 + product;
  };
  double expected[tasklets], got[tasklets] = {};
  for (int k = 0; k < tasklets; ++k) expected[k] = series(k, false);
  for (int k = 0; k < tasklets; ++k) tasklet([&, k] { got[k] = series(k, true); });
  sl::run();
  for (int k = 0; k < tasklets; ++k) EXPECT_EQ(got[k], expected[k]) << "tasklet " << k;
}

TEST_F(switching, ten_thousand_tasklets_switch_a_hundred_times) {
#if STACKLESS_TEST_TSAN
  // ThreadSanitizer gives every fiber a thread slot and cannot have more than about 8,000 alive.
  constexpr long n = 4'000, steps = 100;
#else
  constexpr long n = 10'000, steps = 100;
#endif
  long counter = 0, out_of_order = 0, finished = 0;
  for (long i = 0; i < n; ++i) {
    tasklet([&, i] {
      for (long k = 0; k < steps; ++k) {
        // Round robin: in round k, tasklet i is the (k * n + i)-th step.
        if (counter != k * n + i) ++out_of_order;
        ++counter;
        schedule();
      }
      ++finished;
    });
  }
  EXPECT_EQ(runcount(), n + 1);
  sl::run();
  EXPECT_EQ(counter, n * steps);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(finished, n);
  EXPECT_EQ(runcount(), 1);
}

// ------------------------------------------------------------------------------------------------
// Many tasklets with the default settings (a guard for every stack from Linux 6.13, else guard
// pages for the first guarded_stack_limit stacks and canaries for the rest).

#if STACKLESS_TEST_ASAN
// Under AddressSanitizer every stack is 4x larger and carries shadow memory: 10,000 instead.
constexpr std::size_t many = 10'000;
#elif STACKLESS_TEST_TSAN
// ThreadSanitizer gives every fiber a thread slot and cannot have more than about 8,000 alive.
constexpr std::size_t many = 4'000;
#else
constexpr std::size_t many = 100'000;
#endif

TEST_F(many_tasklets, all_paused_at_once_then_released) {
  std::size_t started = 0, finished = 0;
  {
    std::vector<tasklet> ts;
    ts.reserve(many);
    for (std::size_t i = 0; i < many; ++i)
      ts.emplace_back([&] {
        ++started;
        schedule_remove();
        ++finished;
      });
    sl::memory_statistics s = sl::memory_stats();
    EXPECT_EQ(s.live_tasklets, many);
    EXPECT_EQ(s.stacks_in_use, many);
    // Linux 6.13+ guards every stack (guard regions); older kernels the first guarded_stack_limit.
    EXPECT_TRUE(s.guarded_stacks == s.stacks_in_use + s.stacks_cached ||
                s.guarded_stacks <= sl::current_config().guarded_stack_limit)
        << s.guarded_stacks;
    sl::run();  // every tasklet parks itself; the last one wakes main
    EXPECT_EQ(started, many);
    EXPECT_EQ(finished, 0u);
    EXPECT_EQ(runcount(), 1);
    std::size_t paused = 0;
    for (const tasklet& t : ts) paused += t.paused();
    EXPECT_EQ(paused, many);
    for (tasklet& t : ts) t.insert();
    sl::run();
    EXPECT_EQ(finished, many);
  }
  EXPECT_EQ(sl::memory_stats().live_tasklets, 0u);
}

// The record cache keeps at most config::record_cache_limit freed records per thread; they are
// reused by the next tasklets.
TEST_F(many_tasklets, record_cache_is_bounded_and_reused) {
  const std::size_t limit = sl::current_config().record_cache_limit;
  ASSERT_EQ(limit, 64u);
  {
    std::vector<tasklet> ts;
    for (std::size_t i = 0; i < 2 * limit; ++i) ts.emplace_back([] {});
    sl::run();
  }  // all 128 records are freed here
  EXPECT_EQ(sl::memory_stats().records_cached, limit);
  {
    std::vector<tasklet> ts;
    for (std::size_t i = 0; i < 10; ++i) ts.emplace_back([] {});
    EXPECT_EQ(sl::memory_stats().records_cached, limit - 10);
    sl::run();
  }
  EXPECT_EQ(sl::memory_stats().records_cached, limit);
}

TEST_F(many_tasklets, all_blocked_at_once_then_released) {
  std::size_t finished = 0;
  tasklet gate([] {}, {.start = false});
  for (std::size_t i = 0; i < many; ++i)
    tasklet([&] {
      gate.join();
      ++finished;
    });
  sl::run();  // every tasklet blocks in join(); the last one wakes main
  EXPECT_EQ(sl::memory_stats().wait_nodes, many);
  EXPECT_EQ(sl::memory_stats().live_tasklets, many + 1);
  EXPECT_EQ(finished, 0u);
  gate.insert();
  sl::run();
  EXPECT_EQ(finished, many);
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

// ------------------------------------------------------------------------------------------------
// Lifetime (§2.9; tasklet.hpp "Lifetime"; DESIGN principle 3)

TEST_F(tasklet_lifetime, dropped_paused_tasklet_is_killed_at_next_schedule) {
  int destroyed = 0;
  {
    tasklet t([&] {
      tracker guard(&destroyed);
      schedule_remove();
      log("resumed");
    });
    schedule();
    ASSERT_TRUE(t.paused());
  }
  EXPECT_EQ(destroyed, 0) << "the kill runs when its thread next schedules";
  EXPECT_EQ(sl::memory_stats().live_tasklets, 1u);
  EXPECT_EQ(runcount(), 2) << "the killed tasklet is appended to the run queue";
  schedule();
  EXPECT_EQ(destroyed, 1);
  EXPECT_TRUE(log_.empty());
  EXPECT_EQ(runcount(), 1);
  EXPECT_EQ(sl::memory_stats().live_tasklets, 0u);
}

TEST_F(tasklet_lifetime, dropped_paused_tasklet_is_killed_at_next_run) {
  int destroyed = 0;
  tasklet t([&] {
    tracker guard(&destroyed);
    nest(log_, 1, 5, [] { schedule_remove(); });
  });
  sl::run();
  ASSERT_TRUE(t.paused());
  t = tasklet();
  EXPECT_EQ(destroyed, 0);
  sl::run();
  EXPECT_EQ(destroyed, 1);
  EXPECT_THAT(log_, ElementsAre("~5", "~4", "~3", "~2", "~1"));
}

TEST_F(tasklet_lifetime, dropped_unstarted_tasklet_destroys_callable_without_running) {
  int destroyed = 0;
  bool invoked = false;
  {
    tasklet t([&invoked, tr = tracker(&destroyed)] { invoked = true; }, {.start = false});
    EXPECT_EQ(destroyed, 0);
    EXPECT_EQ(sl::memory_stats().live_tasklets, 1u);
  }
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(sl::memory_stats().live_tasklets, 0u);
  EXPECT_EQ(sl::memory_stats().stacks_in_use, 0u);
  sl::run();
  EXPECT_FALSE(invoked);
  EXPECT_EQ(destroyed, 1);
}

TEST_F(tasklet_lifetime, runtime_keeps_handleless_tasklets) {
  tasklet([this] {
    log("a");
    schedule();
    log("a end");
  });
  tasklet([this] { log("b"); });
  EXPECT_EQ(runcount(), 3);
  EXPECT_EQ(sl::memory_stats().live_tasklets, 2u);
  sl::run();
  EXPECT_THAT(log_, ElementsAre("a", "b", "a end"));
}

TEST_F(tasklet_lifetime, callable_destroyed_on_own_stack_before_last_switch) {
  struct probe {
    std::vector<std::string>* log;
    std::uint64_t* seen;
    bool live = true;
    probe(std::vector<std::string>* l, std::uint64_t* s) : log(l), seen(s) {}
    probe(probe&& o) noexcept : log(o.log), seen(o.seen), live(std::exchange(o.live, false)) {}
    ~probe() {
      if (!live) return;
      *seen = current().id();
      log->push_back("callable destroyed");
    }
  };
  std::uint64_t body_id = 0, destructor_id = 0;
  tasklet t(
      [&body_id, this, p = probe(&log_, &destructor_id)] {
        body_id = current().id();
        log("body");
        return 7;  // the return value is discarded
      },
      {.name = "t"});
  sl::set_schedule_callback([this](tasklet prev, tasklet next) {
    auto label = [](const tasklet& x) {
      return x.is_main() ? std::string("main") : std::string(x.name());
    };
    log(label(prev) + "->" + label(next));
  });
  sl::run();
  sl::set_schedule_callback({});
  EXPECT_EQ(body_id, t.id());
  EXPECT_EQ(destructor_id, t.id()) << "the captures die in the tasklet, before its last switch";
  EXPECT_THAT(log_, ElementsAre("main->t", "body", "callable destroyed", "t->main"));
}

TEST_F(tasklet_lifetime, callable_destroyed_before_last_switch_when_killed) {
  std::uint64_t destructor_id = 0;
  int destroyed = 0;
  struct probe {
    std::uint64_t* seen;
    tracker tr;
    probe(std::uint64_t* s, int* d) : seen(s), tr(d) {}
    probe(probe&&) = default;
    ~probe() {
      if (tr.live) *seen = current().id();
    }
  };
  tasklet t([p = probe(&destructor_id, &destroyed)] { schedule(); });
  schedule();
  t.kill();
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(destructor_id, t.id());
}

// ------------------------------------------------------------------------------------------------
// Unwinding deep stacks: a kill runs every destructor of a 20-frame chain exactly once, in order,
// through a frame that catches std::exception.

std::vector<std::string> unwound_20() {
  std::vector<std::string> expected;
  for (int d = 20; d >= 1; --d) expected.push_back("~" + std::to_string(d));
  expected.push_back("exit at top");
  return expected;
}

TEST_F(deep_unwind, kill_while_joining_runs_every_destructor_once) {
  tasklet p([] {}, {.start = false});
  tasklet t([&] {
    try {
      nest(log_, 1, 20, [&] { p.join(); });
    } catch (const tasklet_exit&) {
      log("exit at top");
      throw;
    }
  });
  sl::run();  // t blocks 20 frames deep
  ASSERT_EQ(t.blocked(), -1);
  EXPECT_TRUE(log_.empty());
  t.kill();
  EXPECT_THAT(log_, ElementsAreArray(unwound_20()));
  EXPECT_FALSE(t.alive());
  EXPECT_EQ(sl::memory_stats().wait_nodes, 0u);
}

TEST_F(deep_unwind, kill_while_paused_runs_every_destructor_once) {
  tasklet t([&] {
    try {
      nest(log_, 1, 20, [] { schedule_remove(); });
    } catch (const tasklet_exit&) {
      log("exit at top");
      throw;
    }
  });
  sl::run();
  ASSERT_TRUE(t.paused());
  EXPECT_TRUE(log_.empty());
  t.kill();
  EXPECT_THAT(log_, ElementsAreArray(unwound_20()));
  EXPECT_FALSE(t.alive());
}

// ------------------------------------------------------------------------------------------------
// configure() (config.hpp): only before the runtime is first used, so the fresh-process cases run
// in a child (death-test machinery, "threadsafe" style: the child re-executes this binary and
// runs only this test, so its runtime is unused when the statement starts).

TEST_F(configure_DeathTest, after_first_use_throws) {
  (void)current();
  EXPECT_THROW(sl::configure(sl::current_config()), sl::runtime_error);
  EXPECT_THROW(sl::configure({}), sl::runtime_error);
}

#define CHILD_CHECK(condition)                                                          \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      std::fprintf(stderr, "child check failed: %s (line %d)\n", #condition, __LINE__); \
      std::fflush(stderr);                                                              \
      std::_Exit(1);                                                                    \
    }                                                                                   \
  } while (0)

void configure_fresh_process() {
  CHILD_CHECK(sl::current_config().default_stack_size == 64 * 1024);
  CHILD_CHECK(sl::current_config().stack_cache_limit == 16);
  CHILD_CHECK(sl::current_config().guarded_stack_limit == 8192);
  bool invalid = false;
  try {
    sl::configure({.default_stack_size = 4096});
  } catch (const std::invalid_argument&) {
    invalid = true;
  }
  CHILD_CHECK(invalid);
  CHILD_CHECK(sl::current_config().default_stack_size == 64 * 1024);
  sl::configure({.default_stack_size = 128 * 1024, .stack_cache_limit = 2});
  CHILD_CHECK(sl::current_config().default_stack_size == 128 * 1024);
  CHILD_CHECK(sl::current_config().stack_cache_limit == 2);
  {
    std::vector<tasklet> ts;
    for (int i = 0; i < 10; ++i) ts.emplace_back([] { schedule(); });
    CHILD_CHECK(ts[0].stack_size() >= 128 * 1024);
    sl::run();
  }
  CHILD_CHECK(sl::memory_stats().stacks_cached <= 2);
  CHILD_CHECK(sl::memory_stats().stacks_in_use == 0);
  bool late = false;
  try {
    sl::configure({});
  } catch (const sl::runtime_error&) {
    late = true;
  }
  CHILD_CHECK(late);
  std::fprintf(stderr, "configured\n");
  std::fflush(stderr);
  std::_Exit(0);
}

TEST_F(configure_DeathTest, before_first_use_takes_effect) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(configure_fresh_process(), ::testing::ExitedWithCode(0), "configured");
}

// ------------------------------------------------------------------------------------------------
// Stack overflow: a guard page (the first guarded_stack_limit stacks) or the canary at the low end
// of an unguarded stack, checked at each switch-out. Both print the same report and abort.

constexpr const char* overflow_report =
    "stackless: tasklet [0-9]+ 'deep' overflowed its [0-9]+ KiB stack";

volatile bool keep_recursing = true;

[[gnu::noinline]] int recurse_forever(int depth) {
  volatile char frame[1024];
  for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<char>(depth);
  if (!keep_recursing) return frame[0];
  return recurse_forever(depth + 1) + frame[depth % sizeof frame];
}

void overflow_guarded_stack() {
  tasklet t([] { recurse_forever(0); }, {.name = "deep"});
  sl::run();
}

TEST_F(overflow_DeathTest, guard_page_names_the_tasklet) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overflow_guarded_stack(), overflow_report);
}

// overflow_to: fully written frames down to `stop_below`, then a switch-out from there.
[[gnu::noinline]] int overflow_to(std::uintptr_t stop_below, int depth) {
  volatile char frame[512];
  for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<char>(depth);
  if (reinterpret_cast<std::uintptr_t>(&frame[0]) > stop_below)
    return overflow_to(stop_below, depth + 1) + frame[1];
  schedule();  // switch-out: the canary is checked here
  return frame[0];
}

void overflow_unguarded_stack() {
  sl::configure({.guarded_stack_limit = 0});
  tasklet t(
      [] {
        // The stack's low end, from its size and use (it is page aligned).
        volatile char anchor = 0;
        const auto here = reinterpret_cast<std::uintptr_t>(&anchor);
        const std::uintptr_t low = (here - (current().stack_size() - current().stack_used())) &
                                   ~(std::uintptr_t{page()} - 1);
        // Keep the overflow inside writable memory: map a landing zone right below the stack, page by
        // page, leaving alone pages that are mapped already (typically another tasklet's stack).
        constexpr std::uintptr_t landing = 64 * 1024;
        for (std::uintptr_t a = low - page(); a >= low - landing; a -= page())
          ::mmap(reinterpret_cast<void*>(a), page(), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        overflow_to(low - 2048, 0);
      },
      {.name = "deep"});
  tasklet other([] {});
  sl::run();
}

TEST_F(overflow_DeathTest, canary_names_the_tasklet_of_an_unguarded_stack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(overflow_unguarded_stack(), overflow_report);
}

}  // namespace
