// stackless/atomic.hpp — the atomic guard: no involuntary switch while it lives.
#pragma once

#include <stackless/scheduler.hpp>

namespace stackless {

// atomic sets the current tasklet's atomic flag for its lifetime and restores the previous value
// on exit, so nesting is safe. While a tasklet is atomic the watchdog does not pre-empt it (a due
// interrupt fires at the first tick point after the section ends). Voluntary switches (schedule,
// blocking, run, kill) still switch. The destructor never switches.
// Threads: the creating thread; destroy it in the same tasklet.
class atomic {
 public:
  atomic() : tasklet_(current()), previous_(tasklet_.set_atomic(true)) {}
  ~atomic() { tasklet_.set_atomic(previous_); }
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

 private:
  tasklet tasklet_;
  bool previous_;
};

}  // namespace stackless
