// switch.cpp — the one place that switches: switch_to (§1.4), the empty-queue rule (§1.6), the
// termination rule (§1.7), and blocking on a wait queue.
#include <stackless/config.hpp>
#include <stackless/errors.hpp>

#include "context/fatal.hpp"
#include "core/thread_state.hpp"

namespace stackless::detail {
namespace {

[[noreturn]] void report_overflow(const tasklet_impl* t) noexcept {
  fatal_message m;
  m << "tasklet " << t->id << " '" << t->name << "' overflowed its " << (t->stack.size / 1024)
    << " KiB stack";
  m.die();
}

// free_dead runs right after every switch: the tasklet that just finished left its stack and the
// run queue's reference behind. Only memory is released here; no user code runs.
void free_dead(thread_state& ts) noexcept {
  tasklet_impl* d = ts.dead;
  if (d == nullptr) return;
  ts.dead = nullptr;
  release(d->ctx);
  ts.stacks.release(d->stack, current_config().stack_cache_limit);
  d->stack = {};
  release(d);
}

// raw_switch: the machine-level switch from p (current) to n, which is in the run queue.
void raw_switch(thread_state& ts, tasklet_impl* p, tasklet_impl* n, bool finishing) noexcept {
  if (ts.in_schedule_callback) {
    fatal_message m;
    m << "the schedule callback switched tasklets (tasklet " << p->id << " '" << p->name
      << "'); a schedule callback must not switch";
    m.die();
  }
  if (g_has_schedule_callback.load(std::memory_order_relaxed)) call_schedule_callback(p, n);
  if (p->stack && !canary_intact(p->stack)) report_overflow(p);
  ts.current = n;
  ts.head = n;
  jump(p->ctx, n->ctx, nullptr, finishing);
  free_dead(ts);
}

}  // namespace

void check_trap(const thread_state& ts) {
  if (ts.switch_trap != 0) throw runtime_error("switch_trap");
}

void claim(tasklet_impl* t) {
  if (t->bomb) {
    std::exception_ptr e = std::move(t->bomb);
    t->bomb = nullptr;
    std::rethrow_exception(e);
  }
}

void switch_to(thread_state& ts, tasklet_impl* n, std::exception_ptr bomb) {
  tasklet_impl* p = ts.current;
  check_trap(ts);
  if (bomb) n->bomb = std::move(bomb);
  if (n->wait != nullptr) {
    unblock(n);
    ts.append(n);  // the runtime's reference moves from the wait queue to the run queue
  } else if (!n->in_runqueue()) {
    schedule_floating(ts, n);
  }
  raw_switch(ts, p, n, false);
}

void leave_and_switch(thread_state& ts, tasklet_impl* p, bool blocking) {
  if (ts.head == p) return;  // p was re-queued while leaving (killed: its last handle was gone)
  if (ts.head != nullptr) {
    raw_switch(ts, p, ts.head, false);
    return;
  }
  // The run queue is empty (§1.6).
  tasklet_impl* w = ts.watchdog();
  if (w != p && w->floating()) {
    schedule_floating(ts, w);
    raw_switch(ts, p, w, false);
    return;
  }
  if (w == p && !blocking) {  // e.g. main alone calls schedule_remove(): a no-op
    schedule_floating(ts, p);
    return;
  }
  // Nothing could ever wake p: put it back as it was and fail.
  if (p->wait != nullptr) {
    unblock(p);
    ts.append(p);  // the wait queue's reference moves back to the run queue
  } else {
    schedule_floating(ts, p);
  }
  throw deadlock_error();
}

void block(thread_state& ts, wait_queue& q, wait_node& n) {
  tasklet_impl* p = ts.current;
  if (p->block_trap) throw runtime_error("this tasklet does not like to be blocked.");
  check_trap(ts);
  n.tasklet = p;
  q.push_back(n);
  p->wait = &n;
  g_wait_nodes.fetch_add(1, std::memory_order_relaxed);
  ts.unlink(p);  // the runtime's reference moves from the run queue to the wait queue
  leave_and_switch(ts, p, true);
  claim(p);
}

void wake(thread_state& ts, wait_node& n) noexcept {
  tasklet_impl* t = n.tasklet;
  unblock(t);
  ts.append(t);
}

void unblock(tasklet_impl* t) noexcept {
  wait_node* n = t->wait;
  if (n == nullptr) return;
  if (n->queue != nullptr) n->queue->unlink(*n);
  t->wait = nullptr;
  g_wait_nodes.fetch_sub(1, std::memory_order_relaxed);
}

void terminate(thread_state& ts, tasklet_impl* p, std::exception_ptr err) noexcept {
  p->alive = false;
  while (!p->joiners.empty()) wake(ts, *p->joiners.head);
  ts.unlink(p);  // its reference is dropped by free_dead after the switch
  tasklet_impl* w = ts.watchdog();
  tasklet_impl* n = nullptr;
  if (err) {
    // No handler took the exception: deliver it to W wherever W waits (§1.7).
    n = w;
    n->bomb = std::move(err);
  } else if (ts.head != nullptr) {
    n = ts.head;  // the tasklet that followed p
  } else {
    n = w;
    if (w->wait != nullptr) {
      const wait_node& wn = *w->wait;
      if (wn.kind == wait_kind::channel)
        w->bomb = std::make_exception_ptr(deadlock_error(
            wn.direction < 0 ? "the main tasklet is receiving without a sender available."
                             : "the main tasklet is sending without a receiver available."));
      else
        w->bomb = std::make_exception_ptr(deadlock_error());
    }
  }
  if (n->wait != nullptr) {
    unblock(n);
    ts.append(n);
  } else if (!n->in_runqueue()) {
    schedule_floating(ts, n);
  }
  ts.dead = p;
  raw_switch(ts, p, n, true);
  __builtin_trap();  // a finished tasklet is never resumed
}

void tasklet_entry(void*) {
  thread_state& ts = *state_if_any();
  free_dead(ts);
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
