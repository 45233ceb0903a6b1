// switch.cpp — the cold parts of switching: the empty-queue rule (§1.6), termination (§1.7),
// blocking, and the fatal reports.
#include "core/switch.hpp"

#include <stackless/config.hpp>

#include <stackless/timer.hpp>

#include "context/fatal.hpp"

namespace stackless::detail {

void report_overflow(const tasklet_impl* t) noexcept {
  fatal_message m;
  m << "tasklet " << t->id << " '" << t->name << "' overflowed its " << (t->stack.size / 1024)
    << " KiB stack";
  m.die();
}

void report_switch_in_callback(const tasklet_impl* t) noexcept {
  fatal_message m;
  m << "the schedule callback switched tasklets (tasklet " << t->id << " '" << t->name
    << "'); a schedule callback must not switch";
  m.die();
}

void throw_switch_trap() { throw runtime_error("switch_trap"); }

// free_dead runs right after a switch away from a tasklet that finished: only memory is
// released here; no user code runs.
void free_dead(thread_state& ts) noexcept {
  tasklet_impl* d = ts.dead;
  ts.dead = nullptr;
  release(d->ctx);
  ts.stacks.release(d->stack, current_config().stack_cache_limit);
  d->stack = {};
  if (d->refs.load(std::memory_order_acquire) == 0) last_reference(d);
}

namespace {

// fire_due fires every timer whose deadline is at or before now: the waiting tasklets time out
// and are appended in deadline order.
void fire_due(thread_state& ts, std::int64_t now) noexcept {
  while (!ts.timers.empty() && ts.timers.top().deadline <= now) {
    timer_entry& e = ts.timers.top();
    ts.timers.remove(e);
    end_wait(ts, static_cast<tasklet_impl*>(e.owner), wait_outcome::timed_out);
  }
}

// idle: nothing is runnable but timers are pending. Sleep until the earliest deadline (no busy
// wait) and fire what is due, until something is runnable or no timer is left.
void idle(thread_state& ts) noexcept {
  while (ts.head == nullptr && !ts.timers.empty()) {
    fire_due(ts, now_ns());
    if (ts.head == nullptr && !ts.timers.empty()) ts.idle.park_until(ts.timers.top().deadline);
  }
}

}  // namespace

void poll_timers(thread_state& ts) noexcept { fire_due(ts, now_ns()); }

void leave_on_empty_queue(thread_state& ts, tasklet_impl* p, bool blocking) {
  if (!ts.timers.empty()) {  // sleeping tasklets will become runnable: wait for them
    idle(ts);
    if (ts.head == p) return;  // p's own deadline passed
    if (ts.head != nullptr) {
      raw_switch(ts, p, ts.head, false);
      return;
    }
  }
  tasklet_impl* w = ts.watchdog();
  if (w == p && !blocking) {  // e.g. main alone calls schedule_remove(): a no-op
    ts.append(p);
    return;
  }
  if (w != p && w->floating()) {
    ts.append(w);
    raw_switch(ts, p, w, false);
    return;
  }
  // Nothing could ever wake p: put it back as it was and fail.
  make_runnable(ts, p);
  throw deadlock_error();
}

void check_can_block(const thread_state& ts) {
  if (ts.current->block_trap) throw runtime_error("this tasklet does not like to be blocked.");
  check_trap(ts);
}

void arm_timer(thread_state& ts, wait_state& ws, std::int64_t deadline) {
  ws.timer.deadline = deadline;
  ws.timer.owner = ts.current;
  try {
    ts.timers.push(ws.timer);
  } catch (...) {
    for (wait_node* n = ws.nodes; n != nullptr; n = n->group_next)
      if (n->queue != nullptr) n->queue->unlink(*n);
    throw;
  }
}

void wake(thread_state& ts, wait_node& n) noexcept {
  n.state->fired = &n;
  end_wait(ts, n.tasklet, wait_outcome::completed);
}

void end_wait(thread_state& ts, tasklet_impl* t, wait_outcome outcome) noexcept {
  t->wait->outcome = outcome;
  unblock(t);
  ts.append(t);
}

void disarm_timer(tasklet_impl* t, wait_state& ws) noexcept {
  if (t->owner != nullptr) t->owner->timers.remove(ws.timer);
}

void terminate(thread_state& ts, tasklet_impl* p, std::exception_ptr err) noexcept {
  p->alive = false;
  while (!p->joiners.empty()) wake(ts, *p->joiners.head);
  ts.unlink(p);
  tasklet_impl* w = ts.watchdog();
  tasklet_impl* n = nullptr;
  if (err) {
    // No handler took the exception: deliver it to W wherever W waits (§1.7).
    n = w;
    n->bomb = std::move(err);
  } else if (ts.irq.soft_pending) {
    n = take_soft_interrupt(ts);  // a soft interrupt takes effect as the tasklet ends
  } else {
    if (ts.head == nullptr) idle(ts);  // sleeping tasklets will become runnable
    if (ts.head != nullptr) {
      n = ts.head;  // the tasklet that followed p
    } else {
      n = w;
      if (w->wait != nullptr) {
        const wait_state& ws = *w->wait;
        if (ws.nodes != nullptr && ws.nodes->kind == wait_kind::channel)
          w->bomb = std::make_exception_ptr(deadlock_error(
              ws.direction() < 0 ? "the main tasklet is receiving without a sender available."
                                 : "the main tasklet is sending without a receiver available."));
        else
          w->bomb = std::make_exception_ptr(deadlock_error());
      }
    }
  }
  make_runnable(ts, n);
  ts.dead = p;  // its stack and record are released by free_dead after the switch
  raw_switch(ts, p, n, true);
  __builtin_trap();  // a finished tasklet is never resumed
}

void tasklet_entry(void*) {
  thread_state& ts = *state_if_any();
  if (ts.dead != nullptr) free_dead(ts);
  tasklet_impl* p = ts.current;
  p->started = true;
  std::exception_ptr err;
  try {
    claim(p);  // killed or thrown into before it ever ran
    p->entry(p->callable);
  } catch (const tasklet_exit&) {
  } catch (...) {
    err = std::current_exception();
  }
  // Destroy the callable and its captures here, on the tasklet's own stack, before the last
  // switch: nothing may run between that switch and the claim of the value in transit.
  p->destroy(p->callable);
  p->callable = nullptr;
  if (err) call_error_handler(p, err);
  terminate(ts, p, std::move(err));
}

}  // namespace stackless::detail
