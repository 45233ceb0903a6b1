// stackless/watchdog.hpp — pre-emption: run(run_options) with a budget, tick() points, atomic.
//
// C++ has no bytecode loop to count, so pre-emption happens at tick points: user code calls
// tick() in long loops (an embedded interpreter would call it per instruction batch). Without a
// timed run() active in the thread, tick() is a thread-local decrement and a branch.
//
// run(opts) with opts.timeout (ticks) or opts.time_slice (wall clock) > 0 makes the calling
// tasklet R the thread's *interrupt watchdog*, unless an outer run() already is one (the
// outermost timed run() owns the interrupt; inner ones ignore their budget and flags). The budget
// is per slice — it restarts at every switch — or, with totaltimeout, for the whole call.
//
// When the running tasklet X exhausts the budget at a tick point (reference §4.2):
//   hard (default)  X is taken out of the run queue (paused, alive) and R's run() returns X. The
//                   caller decides: X.insert() to continue it later, or X.kill().
//                   Deferred while X is atomic, while a switch_trap is active, or inside a
//                   schedule/channel callback; it fires at the first tick point after that ends.
//   soft            X is not stopped. The next time X switches voluntarily (schedule(),
//                   schedule_remove(), blocking, ending), control goes to R instead and R's run()
//                   returns an empty handle; the tasklet that would have run stays queued. A
//                   preferred channel hand-off passes the pending interrupt on to the partner.
//
// State of R's run() call:      returns
//   run queue empties            empty handle
//   hard interrupt of X          X
//   soft interrupt               empty handle
//   uncaught exception           (throws it)
#pragma once

#include <chrono>
#include <cstdint>

#include <stackless/tasklet.hpp>

namespace stackless {

// run_options: how run() schedules. Keep the member order (callers use designated initializers);
// new members go at the end.
struct run_options {
  // timeout: ticks a tasklet may run between switches before it is interrupted; 0 = no limit.
  std::uint64_t timeout = 0;
  // threadblock: when the queue empties, park the thread until another thread makes one of its
  // tasklets runnable, instead of returning (takes effect with threads; see the threads guide).
  bool threadblock = false;
  // soft: interrupt at the tasklet's next voluntary switch instead of at the tick point.
  bool soft = false;
  // ignore_nesting: kept for Stackless compatibility; a C++ tasklet has no interpreter nesting
  // level, so there is nothing to ignore and the flag has no effect.
  bool ignore_nesting = false;
  // totaltimeout: the budget (ticks and time) counts for the whole run() call, not per slice.
  bool totaltimeout = false;
  // time_slice: wall-clock time a tasklet may run between switches (e.g. 2 ms); 0 = no limit.
  // Checked at tick points, with a clock read only every time_check_ticks ticks.
  std::chrono::nanoseconds time_slice{0};
  // time_check_ticks: how many ticks pass between clock reads when time_slice is set.
  std::uint32_t time_check_ticks = 256;
};

// run(opts) is run() with the watchdog (see the top of this file). Returns the hard-interrupted
// tasklet, or an empty handle. Switches. Errors: as run().
tasklet run(const run_options& opts);

namespace detail {
// The calling thread's remaining ticks before the watchdog must look. Huge when no timed run()
// is active.
extern constinit thread_local std::int64_t tick_budget;
void tick_slow(std::uint32_t n);
}  // namespace detail

// tick marks a pre-emption point and counts n ticks towards the watchdog's budget. Cheap: a
// thread-local decrement and a branch unless a budget is exhausted.
// Switches: may (a hard interrupt, or a deferred one that falls due). Errors: none of its own.
inline void tick(std::uint32_t n = 1) {
  if ((detail::tick_budget -= n) <= 0) [[unlikely]]
    detail::tick_slow(n);
}

}  // namespace stackless
