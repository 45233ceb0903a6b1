// tests/test_support.hpp — what every stackless test shares: the leak-checking fixture, a log of
// events, exact-message exception checks and sanitizer detection.
//
// Use TEST_F with `stackless_test` (or an alias of it) everywhere. Its TearDown fails the test when
// memory_stats() reports a live tasklet, a stack in use or a wait node after the test body, prints
// the counts, and then cleans up (pending-kills every queued tasklet and runs the queue) so the next
// test starts from an empty runtime. It also resets the error handler, the schedule callback and
// the main tasklet's flags, which are global state.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stackless/stackless.hpp>

// STACKLESS_TEST_ASAN / STACKLESS_TEST_TSAN: 1 when built with that sanitizer.
#if defined(__SANITIZE_ADDRESS__)
#define STACKLESS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACKLESS_TEST_ASAN 1
#endif
#endif
#ifndef STACKLESS_TEST_ASAN
#define STACKLESS_TEST_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define STACKLESS_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STACKLESS_TEST_TSAN 1
#endif
#endif
#ifndef STACKLESS_TEST_TSAN
#define STACKLESS_TEST_TSAN 0
#endif

namespace stackless_testing {

// leaked: true when the runtime still holds a tasklet, a stack in use or a wait node.
inline bool leaked(const stackless::memory_statistics& s) {
  return s.live_tasklets != 0 || s.stacks_in_use != 0 || s.wait_nodes != 0;
}

// describe prints the counts a leak report needs.
inline std::string describe(const stackless::memory_statistics& s) {
  return "live_tasklets=" + std::to_string(s.live_tasklets) +
         " stacks_in_use=" + std::to_string(s.stacks_in_use) +
         " wait_nodes=" + std::to_string(s.wait_nodes) +
         " stacks_cached=" + std::to_string(s.stacks_cached);
}

// drain kills (pending) every tasklet still in the run queue and runs the queue, so that a failed
// test does not leave work behind for the next one. Never throws.
void drain() noexcept;

// label names a tasklet in logs: "main" for a main tasklet, else its name (or "#<id>").
inline std::string label(const stackless::tasklet& t) {
  if (t.is_main()) return "main";
  if (!t.name().empty()) return std::string(t.name());
  return "#" + std::to_string(t.id());
}

// nest builds a chain of frames depth..max, each holding an RAII object that logs "~<depth>" when
// it is destroyed; the frame at max/2 catches std::exception (which must not stop a kill). The
// innermost frame calls block(). A frame that returns normally logs "returned <depth>".
inline void nest(std::vector<std::string>& log, int depth, int max,
                 const std::function<void()>& block) {
  struct frame_guard {
    std::vector<std::string>& log;
    int depth;
    ~frame_guard() { log.push_back("~" + std::to_string(depth)); }
  } guard{log, depth};
  if (depth == max) {
    block();
  } else if (depth == max / 2) {
    try {
      nest(log, depth + 1, max, block);
    } catch (const std::exception&) {
      log.push_back("swallowed");
    }
  } else {
    nest(log, depth + 1, max, block);
  }
  log.push_back("returned " + std::to_string(depth));
}

// tracker counts destructions of the "live" instance of a captured object: moves hand the
// liveness on, so exactly one destruction is counted however often the object was moved.
struct tracker {
  int* destroyed;
  bool live = true;
  explicit tracker(int* d) : destroyed(d) {}
  tracker(tracker&& o) noexcept : destroyed(o.destroyed), live(std::exchange(o.live, false)) {}
  tracker(const tracker&) = delete;  // move-only, so "exactly once" means what it says
  tracker& operator=(const tracker&) = delete;
  ~tracker() {
    if (live) ++*destroyed;
  }
};

// copy_counts / counted: a value type that counts its copies and moves, to show that a channel
// moves a value from sender to receiver and never copies it.
struct copy_counts {
  int copies = 0;
  int moves = 0;
};
struct counted {
  copy_counts* counts;
  int value;
  counted(copy_counts* c, int v) : counts(c), value(v) {}
  counted(const counted& o) : counts(o.counts), value(o.value) { ++counts->copies; }
  counted(counted&& o) noexcept : counts(o.counts), value(o.value) { ++counts->moves; }
  counted& operator=(const counted& o) {
    counts = o.counts;
    value = o.value;
    ++counts->copies;
    return *this;
  }
  counted& operator=(counted&& o) noexcept {
    counts = o.counts;
    value = o.value;
    ++counts->moves;
    return *this;
  }
};

// stopwatch measures steady-clock time since its construction.
class stopwatch {
 public:
  std::chrono::nanoseconds elapsed() const { return std::chrono::steady_clock::now() - start_; }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// expect_waited: a timed wait that timed out took at least `requested` and less than 2 s (a
// generous upper tolerance: the machine may be busy).
inline void expect_waited(const stopwatch& sw, std::chrono::nanoseconds requested) {
  const auto took = sw.elapsed();
  EXPECT_GE(took, requested);
  EXPECT_LT(took, std::chrono::seconds(2));
}

}  // namespace stackless_testing

// stackless_test: the base fixture of every test (see the file comment).
class stackless_test : public ::testing::Test {
 protected:
  void TearDown() override;

  // log appends one event to log_; tasklets of a test write their execution order here.
  void log(std::string event) { log_.push_back(std::move(event)); }

  std::vector<std::string> log_;
};

// EXPECT_THROW_WHAT(statement, type, message): statement throws exactly `type` (or a subclass)
// whose what() equals message.
#define EXPECT_THROW_WHAT(statement, exception_type, message)                              \
  do {                                                                                     \
    bool stackless_caught_ = false;                                                        \
    try {                                                                                  \
      statement;                                                                           \
    } catch (const exception_type& stackless_e_) {                                         \
      stackless_caught_ = true;                                                            \
      EXPECT_STREQ(stackless_e_.what(), message) << "thrown by: " #statement;              \
    } catch (...) {                                                                        \
      stackless_caught_ = true;                                                            \
      ADD_FAILURE() << #statement " threw an exception that is not " #exception_type;      \
    }                                                                                      \
    if (!stackless_caught_) ADD_FAILURE() << #statement " did not throw " #exception_type; \
  } while (0)
