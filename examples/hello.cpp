// hello.cpp — tasklets taking turns with schedule(), a kill that runs the victim's destructors,
// and an exception thrown in a tasklet that surfaces in main.
#include <cstdio>
#include <stdexcept>

#include <stackless/stackless.hpp>

namespace sl = stackless;

struct cleanup {
  ~cleanup() { std::puts("worker: destructors ran"); }
};

int main() {
  // Each schedule() moves on to the next tasklet in the run queue; run() returns once it is empty.
  for (const char* word : {"ping", "pong"}) {
    sl::tasklet([word] {
      for (int i = 1; i <= 3; ++i) {
        std::printf("%s %d\n", word, i);
        sl::schedule();
      }
    });
  }
  sl::run();

  // kill() throws tasklet_exit at the worker's schedule(): its stack unwinds, its RAII runs.
  sl::tasklet worker([] {
    cleanup c;
    for (int step = 1;; ++step) {
      std::printf("worker: step %d\n", step);
      sl::schedule();
    }
  });
  sl::schedule();  // main lets the worker take two steps
  sl::schedule();
  worker.kill();
  std::printf("main: worker alive? %s\n", worker.alive() ? "yes" : "no");

  // An exception no tasklet catches is rethrown in main, from the run() that was running it.
  sl::tasklet([] { throw std::runtime_error("disk full"); }, {.name = "saver"});
  try {
    sl::run();
  } catch (const std::exception& e) {
    std::printf("main: caught \"%s\"\n", e.what());
  }
}
