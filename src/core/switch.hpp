// switch — the one place that switches: switch_to (reference §1.4), the empty-queue rule (§1.6),
// the termination rule (§1.7), and blocking on a wait queue.
//
// The hot paths (raw_switch, switch_to, leave_and_switch when something is runnable) are inline
// so that schedule() reaches jump_fcontext through a single frame (see context.hpp on why).
#pragma once

#include <exception>

#include <stackless/errors.hpp>
#include <stackless/timer.hpp>

#include "core/thread_state.hpp"

namespace stackless::detail {

// Cold parts, out of line (switch.cpp).
[[noreturn]] void report_overflow(const tasklet_impl* t) noexcept;
[[noreturn]] void report_switch_in_callback(const tasklet_impl* t) noexcept;
void free_dead(thread_state& ts) noexcept;
[[noreturn]] void throw_switch_trap();

// check_trap throws runtime_error("switch_trap") when a switch trap is active.
inline void check_trap(const thread_state& ts) {
  if (ts.switch_trap != 0) throw_switch_trap();
}

// claim throws the exception delivered to t, if any (reference §1.3).
inline void claim(tasklet_impl* t) {
  if (t->bomb) [[unlikely]] {
    std::exception_ptr e = std::move(t->bomb);
    t->bomb = nullptr;
    std::rethrow_exception(e);
  }
}

// raw_switch: the machine-level switch from p (current) to n, which is in the run queue.
__attribute__((always_inline)) inline void raw_switch(thread_state& ts, tasklet_impl* p,
                                                      tasklet_impl* n, bool finishing) noexcept {
  if (ts.in_schedule_callback) [[unlikely]]
    report_switch_in_callback(p);
  if (g_has_schedule_callback.load(std::memory_order_relaxed)) [[unlikely]]
    call_schedule_callback(p, n);
  if (p->stack && !canary_intact(p->stack)) [[unlikely]]
    report_overflow(p);
  ts.current = n;
  ts.head = n;
  if (ts.irq.owner != nullptr) [[unlikely]]
    on_switch_watchdog(ts, p);
  jump(p->ctx, n->ctx, nullptr, finishing);
  if (ts.dead != nullptr) free_dead(ts);
}

// unblock cancels t's wait: every node leaves its queue, the timer is disarmed.
void disarm_timer(tasklet_impl* t, wait_state& ws) noexcept;
inline void unblock(tasklet_impl* t) noexcept {
  wait_state* ws = t->wait;
  if (ws == nullptr) return;
  for (wait_node* n = ws->nodes; n != nullptr; n = n->group_next)
    if (n->queue != nullptr) n->queue->unlink(*n);
  if (ws->timer.armed()) [[unlikely]]
    disarm_timer(t, *ws);
  if (ws->outcome == wait_outcome::pending) ws->outcome = wait_outcome::cancelled;
  t->wait = nullptr;
  bump(state_if_any()->waits, -1);  // counted by the thread that ends the wait
}
// make_runnable puts n in the run queue if it is not there: a blocked n is unblocked and
// appended, a floating n is appended, a queued n keeps its place.
inline void make_runnable(thread_state& ts, tasklet_impl* n) noexcept {
  if (n->in_runqueue()) return;
  if (n->wait != nullptr) unblock(n);
  ts.append(n);
}

// switch_to is the one primitive of reference §1.4: switch from current to n (n != current),
// delivering `bomb` to n. Returns when the caller is resumed; the caller then calls claim().
// Errors: runtime_error "switch_trap" (before any state changes).
__attribute__((always_inline)) inline void switch_to(thread_state& ts, tasklet_impl* n,
                                                     std::exception_ptr bomb = {}) {
  tasklet_impl* p = ts.current;
  check_trap(ts);
  if (bomb) n->bomb = std::move(bomb);
  make_runnable(ts, n);
  raw_switch(ts, p, n, false);
}

// poll_timers fires the due timers of ts (reads the clock). Called while the thread is busy
// only every 16th voluntary switch, so a busy thread pays for the clock rarely.
void poll_timers(thread_state& ts) noexcept;
inline void maybe_poll_timers(thread_state& ts) noexcept {
  if (!ts.timers.empty()) [[unlikely]]
    if ((++ts.timer_poll & 15u) == 0) poll_timers(ts);
}

// leave_and_switch: current (p) has just left the run queue (paused or blocked). Run the next
// runnable tasklet, or apply the empty-queue rule (§1.6), idling first while timers are pending.
// For a p that nothing could ever wake, its wait is cancelled, it is put back, and
// deadlock_error is thrown.
void leave_on_empty_queue(thread_state& ts, tasklet_impl* p, bool blocking);
__attribute__((always_inline)) inline void leave_and_switch(thread_state& ts, tasklet_impl* p,
                                                            bool blocking) {
  maybe_poll_timers(ts);
  if (ts.head == p) return;  // p is runnable again (re-queued to be killed, or its timer fired)
  if (ts.irq.soft_pending) [[unlikely]]
    raw_switch(ts, p, take_soft_interrupt(ts), false);
  else if (ts.head != nullptr)
    raw_switch(ts, p, ts.head, false);
  else
    leave_on_empty_queue(ts, p, blocking);
}

// check_can_block throws if the current tasklet may not block: runtime_error "this tasklet does
// not like to be blocked." (block_trap), "switch_trap".
void check_can_block(const thread_state& ts);
// wait blocks the current tasklet on ws until a partner completes one of its nodes, its deadline
// passes, a client ends it, or an exception is thrown into it. The caller has linked every node
// into its queue (chained through group_next) and checked check_can_block(). deadline:
// steady_clock ns or no_deadline. Returns the outcome; throws what was thrown into the tasklet
// (its nodes are unlinked by then), or deadlock_error when nothing could ever wake it.
void arm_timer(thread_state& ts, wait_state& ws, std::int64_t deadline);
__attribute__((always_inline)) inline wait_outcome wait(thread_state& ts, wait_state& ws,
                                                        std::int64_t deadline) {
  tasklet_impl* p = ts.current;
  for (wait_node* n = ws.nodes; n != nullptr; n = n->group_next) {
    n->tasklet = p;
    n->state = &ws;
  }
  if (deadline != no_deadline) arm_timer(ts, ws, deadline);
  p->wait = &ws;
  bump(ts.waits, 1);
  ts.unlink(p);
  leave_and_switch(ts, p, true);
  claim(p);
  return ws.outcome;
}
// wake completes n: its tasklet's whole wait ends and it is appended to its run queue.
void wake(thread_state& ts, wait_node& n) noexcept;
// end_wait ends t's wait with the given outcome and appends t (timeouts, closing).
void end_wait(thread_state& ts, tasklet_impl* t, wait_outcome outcome) noexcept;

// terminate ends the current tasklet (reference §1.7); err is its uncaught exception.
[[noreturn]] void terminate(thread_state& ts, tasklet_impl* p, std::exception_ptr err) noexcept;
// tasklet_entry is where every tasklet starts.
void tasklet_entry(void*);

}  // namespace stackless::detail
