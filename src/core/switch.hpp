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

// --- ending a wait ---
// A wait ends exactly once, by whoever claims it first (wait_state::claimed): a partner
// completing one of its nodes (possibly from another thread), its deadline, or a kill/throw.

// finish_wait: t's wait has been claimed. Unlink its remaining nodes, disarm its timer, clear it.
// Owner thread only.
void finish_wait(thread_state& ts, tasklet_impl* t) noexcept;
// cancel_wait ends t's wait with `outcome` unless someone else ended it first; false then (a
// wake from another thread is on its way). Owner thread only.
bool cancel_wait(thread_state& ts, tasklet_impl* t, wait_outcome outcome) noexcept;
// claim_node: a partner ends n's wait with `outcome`. The caller holds the guard of n's queue.
// Unlinks n either way; false when the wait had already been ended by someone else.
bool claim_node(wait_node& n, wait_outcome outcome) noexcept;
// resume_claimed: after claim_node, with the guard left: make n's tasklet runnable — appended
// here, or through a wake request to its own thread.
void resume_claimed(thread_state* ts, tasklet_impl* t) noexcept;
inline void resume_claimed(thread_state& ts, tasklet_impl* t) noexcept { resume_claimed(&ts, t); }

// make_runnable puts n in the run queue if it is not there: a blocked n's wait is cancelled and
// it is appended, a floating n is appended, a queued n keeps its place. A blocked n whose wait a
// partner in another thread just completed is appended when that wake arrives.
void await_wake(thread_state& ts, tasklet_impl* n) noexcept;
inline void make_runnable(thread_state& ts, tasklet_impl* n) noexcept {
  if (n->in_runqueue()) return;
  if (n->wait != nullptr && !cancel_wait(ts, n, wait_outcome::cancelled)) {
    await_wake(ts, n);  // appended by the wake request
    return;
  }
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
  maybe_drain_inbox(ts);
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
// passes, a client ends it, or an exception is thrown into it. The caller has prepared every node
// (prepare_node), linked it into its queue (chained through group_next) and checked
// check_can_block(). deadline:
// steady_clock ns or no_deadline. Returns the outcome; throws what was thrown into the tasklet
// (its nodes are unlinked by then), or deadlock_error when nothing could ever wake it.
// prepare_node makes n a node of the current tasklet's wait ws; call it before linking n.
inline void prepare_node(thread_state& ts, wait_state& ws, wait_node& n) noexcept {
  n.tasklet = ts.current;
  n.state = &ws;
}
void arm_timer(thread_state& ts, wait_state& ws, std::int64_t deadline);
__attribute__((always_inline)) inline wait_outcome wait(thread_state& ts, wait_state& ws,
                                                        std::int64_t deadline) {
  tasklet_impl* p = ts.current;
  if (deadline != no_deadline) arm_timer(ts, ws, deadline);
  p->wait = &ws;
  bump(ts.waits, 1);
  ts.unlink(p);
  leave_and_switch(ts, p, true);
  claim(p);
  return ws.outcome;
}

// terminate ends the current tasklet (reference §1.7); err is its uncaught exception.
[[noreturn]] void terminate(thread_state& ts, tasklet_impl* p, std::exception_ptr err) noexcept;
// tasklet_entry is where every tasklet starts.
void tasklet_entry(void*);

}  // namespace stackless::detail
