// watchdog.cpp — a watchdog catching a runaway tasklet.
//
// Three "scripts" run as tasklets. Each calls tick() in its loops: the point where the watchdog
// may stop it. main runs them with run({.timeout = ...}): a tasklet that goes that many ticks
// without switching is taken out of the run queue and returned by run(). main puts a slow script
// back (insert) a couple of times, and kills one that keeps running away; its destructors run.
// Everything is counted in ticks, not time, so the output is always the same.
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include <stackless/stackless.hpp>

namespace sl = stackless;

constexpr std::uint64_t kBudget = 10'000;  // ticks a tasklet may run between two switches
constexpr int kStrikes = 3;                // pre-emptions of one tasklet before it is killed

// parser is well behaved: three jobs of 1,000 steps, and a schedule() after each.
void parser() {
  for (int job = 1; job <= 3; ++job) {
    for (int step = 0; step < 1'000; ++step) sl::tick();
    std::printf("parser: job %d done\n", job);
    sl::schedule();
  }
}

// indexer is slow but finite: 25,000 steps without a switch. The watchdog stops it twice.
void indexer() {
  long items = 0;
  for (int step = 0; step < 25'000; ++step) {
    sl::tick();
    ++items;
  }
  std::printf("indexer: indexed %ld items\n", items);
}

struct cleanup {
  ~cleanup() { std::puts("runaway: destructors ran"); }
};

// runaway never ends and never yields: only the watchdog can stop it.
void runaway() {
  cleanup c;
  std::puts("runaway: starting an endless loop");
  for (;;) sl::tick();
}

int main() {
  sl::tasklet(parser, {.name = "parser"});
  sl::tasklet(indexer, {.name = "indexer"});
  sl::tasklet(runaway, {.name = "runaway"});

  std::map<std::string, int> strikes;
  for (;;) {
    sl::tasklet culprit = sl::run({.timeout = kBudget});
    if (!culprit) break;  // the run queue is empty: everything finished
    const std::string name(culprit.name());
    if (++strikes[name] < kStrikes) {
      std::printf("watchdog: %s ran %llu ticks without a switch (strike %d), putting it back\n",
                  name.c_str(), static_cast<unsigned long long>(kBudget), strikes[name]);
      culprit.insert();
    } else {
      std::printf("watchdog: %s ran away %d times, killing it\n", name.c_str(), kStrikes);
      culprit.kill();  // tasklet_exit is thrown at its tick(): its stack unwinds
    }
  }
  std::puts("watchdog: all tasklets finished");
}
