// A consumer of stackless: creates a tasklet that yields once and runs it to completion.
#include <cstdio>

#include <stackless/stackless.hpp>

int main() {
  int steps = 0;
  stackless::tasklet t([&steps] {
    ++steps;
    stackless::schedule();
    ++steps;
  });
  const bool alive_before = t.alive();
  stackless::run();
  std::printf("consumer: %d steps, alive before run: %s, after: %s\n", steps,
              alive_before ? "yes" : "no", t.alive() ? "yes" : "no");
}
