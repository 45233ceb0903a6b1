// tests/test_main.cpp — main() of every stackless test executable and the leak-checking fixture.
//
// Two layers of leak checking:
//  * stackless_test::TearDown fails the test itself (with the counts) when memory_stats() reports a
//    live tasklet, a stack in use or a wait node after the test body;
//  * a listener re-checks after every test (also tests that do not use the fixture) and makes the
//    executable exit non-zero, naming the test, if anything is left.
// Neither touches the runtime before a test body runs, so a death test's child process (run with
// the "threadsafe" style, which re-executes this binary) starts with an unused runtime and may
// call stackless::configure().
#include <cstdio>
#include <vector>

#include "test_support.hpp"

namespace stackless_testing {

void drain() noexcept {
  try {
    for (int round = 0; round < 4 && stackless::runcount() > 1; ++round) {
      std::vector<stackless::tasklet> queued;
      const stackless::tasklet self = stackless::current();
      for (stackless::tasklet t = self.next(); t && !(t == self); t = t.next()) queued.push_back(t);
      for (stackless::tasklet& t : queued) {
        try {
          t.kill(/*pending=*/true);
        } catch (...) {
        }
      }
      queued.clear();
      try {
        stackless::run();
      } catch (...) {
      }
    }
  } catch (...) {
  }
}

}  // namespace stackless_testing

void stackless_test::TearDown() {
  // Global hooks first: a callback may hold tasklet handles in its captures.
  stackless::set_error_handler({});
  stackless::set_schedule_callback({});
  stackless::set_channel_callback({});
  const stackless::memory_statistics s = stackless::memory_stats();
  if (stackless_testing::leaked(s)) {
    ADD_FAILURE() << "the test left something behind: " << stackless_testing::describe(s);
    stackless_testing::drain();
  }
  // The main tasklet's flags persist across tests; a failed test must not leak them either.
  stackless::tasklet main = stackless::main_tasklet();
  EXPECT_FALSE(main.atomic()) << "the test left the main tasklet atomic";
  EXPECT_FALSE(main.block_trap()) << "the test left the main tasklet's block_trap set";
  main.set_atomic(false);
  main.set_block_trap(false);
  main.set_ignore_nesting(false);
}

namespace {

class leak_listener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const stackless::memory_statistics s = stackless::memory_stats();
    if (!stackless_testing::leaked(s)) return;
    std::fprintf(stderr, "[  LEAKED  ] %s.%s: %s\n", info.test_suite_name(), info.name(),
                 stackless_testing::describe(s).c_str());
    leaked_ = true;
    stackless_testing::drain();
  }
  bool leaked() const { return leaked_; }

 private:
  bool leaked_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto* listener = new leak_listener;  // owned by gtest's listener list
  ::testing::UnitTest::GetInstance()->listeners().Append(listener);
  const int rc = RUN_ALL_TESTS();
  if (rc == 0 && listener->leaked()) return 1;
  return rc;
}
