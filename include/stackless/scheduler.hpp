// stackless/scheduler.hpp — the per-thread scheduler: current(), schedule(), run(), hooks.
//
// Every OS thread that uses the runtime gets a scheduler lazily, with a main tasklet that stands
// for the thread's original stack. The run queue is circular and its head is the running tasklet;
// "append" puts a tasklet just before the head, so it runs last (reference §1.5).
//
// When the running tasklet leaves the run queue (blocks, schedule_remove(), switch_to()) and
// nothing else is runnable, control goes to the innermost caller of run(), or to the main tasklet
// when no run() is active; if that one is itself blocked, the operation fails with deadlock_error
// and the tasklet stays where it was (reference §1.6).
//
// When a tasklet's callable throws, the error handler (if any) is called in that tasklet; without
// one (or if it throws) the exception is delivered to the innermost run() caller, or to the main
// tasklet, and thrown from whatever call it is suspended in (reference §1.7).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>

#include <stackless/tasklet.hpp>
#include <stackless/watchdog.hpp>

namespace stackless {

// current returns the running tasklet of the calling thread (its main tasklet outside tasklets).
// Switches: never. Threads: any (creates the thread's scheduler on first use).
tasklet current();
// main_tasklet returns the calling thread's main tasklet.
tasklet main_tasklet();
// runcount returns the length of the calling thread's run queue, the running tasklet included
// (inside run() the caller of run() is not counted).
int runcount();

// schedule moves to the next runnable tasklet; the caller stays in the run queue and runs again
// after the others. Returns at once when the caller is alone.
// Switches. Errors: runtime_error "switch_trap"; an exception delivered by §1.7.
void schedule();
// schedule_remove is schedule(), but the caller leaves the run queue (becomes paused) and resumes
// only when something inserts, runs or switches to it. As the last runnable tasklet inside run(),
// it wakes the run() caller; the main tasklet alone simply continues.
// Switches. Errors: runtime_error "switch_trap"; deadlock_error.
void schedule_remove();

// run runs the run queue of the calling thread until it is empty, then returns. The caller leaves
// the run queue while inside run() (it is paused). May be called from any tasklet; an inner run()
// returns when the queue empties (reference §4.1). Tasklets sleeping in timers count as not yet
// finished: run() waits for them. run(const run_options&), with pre-emption, is in watchdog.hpp.
// Switches. Errors: an exception of another tasklet that no error handler took (§1.7).
void run();

// switch_trap: while one exists in a thread, every switch of that thread to another tasklet throws
// runtime_error("switch_trap") and leaves all states unchanged (switching to oneself, pure queue
// operations and wake-ups of other threads stay allowed). Use it to assert that a section never
// switches. Nestable. Threads: the creating thread; destroy it in the same tasklet.
class switch_trap {
 public:
  switch_trap();
  ~switch_trap();
  switch_trap(const switch_trap&) = delete;
  switch_trap& operator=(const switch_trap&) = delete;
};

// error_handler receives a tasklet's uncaught exception, in that tasklet. If it returns, the
// exception is swallowed; if it throws, its exception goes to the run() caller / main (§1.7).
using error_handler = std::function<void(tasklet, std::exception_ptr)>;
// set_error_handler installs h (empty: default behaviour) for every thread and returns the
// previous one. Threads: any.
error_handler set_error_handler(error_handler h);

// schedule_callback is called on every actual switch with (prev, next), in prev's context
// (current() is prev). It must not switch (doing so aborts the process with a message); an
// exception it throws is printed to stderr as "Error in scheduling callback" and ignored.
using schedule_callback = std::function<void(tasklet prev, tasklet next)>;
schedule_callback set_schedule_callback(schedule_callback cb);

// channel_callback is called for every channel send/receive with (acting tasklet, sending,
// will_block), in the acting tasklet. A channel operation from inside it throws runtime_error
// "Recursive channel call due to callbacks!".
using channel_callback = std::function<void(tasklet, bool sending, bool will_block)>;
channel_callback set_channel_callback(channel_callback cb);

}  // namespace stackless
