// switch.cpp — the cold parts of switching: the empty-queue rule (§1.6), termination (§1.7),
// blocking, and the fatal reports.
#include "core/switch.hpp"

#include "core/mt.hpp"

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
    auto* t = static_cast<tasklet_impl*>(e.owner);
    if (cancel_wait(ts, t, wait_outcome::timed_out)) ts.append(t);
  }
}

// wait_for_runnable: nothing is runnable. Take work posted by other threads, fire and sleep until
// due timers, and — when park_forever — park until another thread posts work. Returns whether a
// tasklet became runnable; false when that cannot happen (no timer, and no thread that could post,
// or !park_forever).
enum class park_mode { never, optional, mandatory };
bool wait_for_runnable(thread_state& ts, park_mode park) noexcept {
  for (;;) {
    maybe_drain_inbox(ts);
    if (ts.head != nullptr) return true;
    if (!ts.timers.empty()) {
      fire_due(ts, now_ns());
      if (ts.head == nullptr && !ts.timers.empty() && !ts.inbox_pending.load()) {
        gil_release(ts);
        ts.idle.park_until(ts.timers.top().deadline);
        gil_acquire(ts);
      }
      continue;
    }
    if (park == park_mode::never || !park_idle(ts, park == park_mode::optional)) return false;
  }
}

}  // namespace

void poll_timers(thread_state& ts) noexcept { fire_due(ts, now_ns()); }

void leave_on_empty_queue(thread_state& ts, tasklet_impl* p, bool blocking) {
  // §1.6, with timers and threads: the queue is empty.
  tasklet_impl* w = ts.watchdog();
  // First what this thread can do by itself: posted work, due timers. With threadblock, wait
  // for other threads too before giving up on the queue.
  if (wait_for_runnable(ts, w->threadblock && w->floating() ? park_mode::optional
                                                              : park_mode::never)) {
    if (ts.head != p) raw_switch(ts, p, ts.head, false);
    return;  // (or p itself became runnable: its deadline passed, a wake)
  }
  if (w == p && !blocking) {  // e.g. main alone calls schedule_remove(): a no-op
    ts.append(p);
    return;
  }
  if (w != p && w->floating()) {  // the run() caller (or main) resumes
    ts.append(w);
    raw_switch(ts, p, w, false);
    return;
  }
  // W is blocked: only another thread could make something runnable here.
  if (wait_for_runnable(ts, park_mode::mandatory)) {
    if (ts.head != p) raw_switch(ts, p, ts.head, false);
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
    for (wait_node* n = ws.nodes; n != nullptr; n = n->group_next) {
      queue_guard g(ts, *n->home);
      if (n->queue != nullptr) n->queue->unlink(*n);
    }
    throw;
  }
}

void finish_wait(thread_state& ts, tasklet_impl* t) noexcept {
  wait_state* ws = t->wait;
  for (wait_node* n = ws->nodes; n != nullptr; n = n->group_next) {
    if (n == ws->fired) continue;  // the partner that claimed it unlinked it
    queue_guard g(ts, *n->home);
    if (n->queue != nullptr) n->queue->unlink(*n);
  }
  if (ws->timer.armed()) ts.timers.remove(ws->timer);
  t->wait = nullptr;
  bump(ts.waits, -1);
}

bool cancel_wait(thread_state& ts, tasklet_impl* t, wait_outcome outcome) noexcept {
  wait_state* ws = t->wait;
  {
    unlocked_region region(ts);
    if (!try_claim(*ws)) return false;
  }
  ws->outcome = outcome;
  finish_wait(ts, t);
  return true;
}

bool claim_node(wait_node& n, wait_outcome outcome) noexcept {
  n.queue->unlink(n);
  wait_state* ws = n.state;
  if (!try_claim(*ws)) return false;
  ws->fired = &n;
  ws->outcome = outcome;
  return true;
}

void await_wake(thread_state& ts, tasklet_impl* n) noexcept {
  // The partner posts the wake right after claiming: a few instructions away.
  while (n->wait != nullptr) {
    drain_inbox(ts);
    if (n->wait != nullptr) __builtin_ia32_pause();
  }
}

void resume_claimed(thread_state* ts, tasklet_impl* t) noexcept {
  if (ts != nullptr && t->owner == ts) {
    finish_wait(*ts, t);
    ts->append(t);
    return;
  }
  add_ref(t);  // the request's reference
  post({remote_request::wake, t, {}});
}

void terminate(thread_state& ts, tasklet_impl* p, std::exception_ptr err) noexcept {
  // Wake the joiners (they may belong to other threads). alive changes under the joiners' guard,
  // so a join() that comes later sees it.
  {
    queue_guard g(ts, p->joiners);
    p->alive = false;
  }
  for (;;) {
    queue_guard g(ts, p->joiners);
    wait_node* n = p->joiners.head;
    if (n == nullptr) break;
    tasklet_impl* joiner = n->tasklet;
    const bool claimed = claim_node(*n, wait_outcome::completed);
    g.leave();
    if (claimed) resume_claimed(ts, joiner);
  }
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
    // The tasklet that followed p; or one that a timer or another thread makes runnable; or W.
    if (ts.head != nullptr ||
        wait_for_runnable(ts, w->threadblock && w->floating() ? park_mode::optional
                                                               : park_mode::never) ||
        (!w->floating() && wait_for_runnable(ts, park_mode::mandatory))) {
      n = ts.head;
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
