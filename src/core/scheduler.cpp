// scheduler.cpp — the free functions of scheduler.hpp, the hooks, and memory statistics.
#include <stackless/debug.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/timer.hpp>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/switch.hpp"
#include "core/watchdog.hpp"

namespace stackless {
namespace detail {

std::atomic<bool> g_has_schedule_callback{false};
std::atomic<bool> g_has_channel_callback{false};

namespace {

std::mutex g_hooks_mutex;
error_handler g_error_handler;
schedule_callback g_schedule_callback;
channel_callback g_channel_callback;

// pop_watchdogs: run() of r returns; r and every deeper run() caller leave the watchdog stack, and
// deeper callers that are not scheduled are appended (their run() returns when they next run).
void pop_watchdogs(thread_state& ts, tasklet_impl* r) noexcept {
  auto it = std::find(ts.watchdogs.begin(), ts.watchdogs.end(), r);
  if (it == ts.watchdogs.end()) return;
  for (auto deeper = it + 1; deeper != ts.watchdogs.end(); ++deeper)
    if ((*deeper)->floating()) ts.append(*deeper);
  for (auto out = it; out != ts.watchdogs.end(); ++out) (*out)->in_run = (*out)->threadblock = false;
  ts.watchdogs.erase(it, ts.watchdogs.end());
}

tasklet handle(tasklet_impl* t) noexcept {
  add_ref(t);
  return tasklet::adopt(t);
}

}  // namespace

void call_schedule_callback(tasklet_impl* prev, tasklet_impl* next) noexcept {
  schedule_callback cb;
  {
    std::lock_guard lock(g_hooks_mutex);
    cb = g_schedule_callback;
  }
  if (!cb) return;
  thread_state& ts = *state_if_any();
  ts.in_schedule_callback = true;
  try {
    cb(handle(prev), handle(next));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error in scheduling callback: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "Error in scheduling callback\n");
  }
  ts.in_schedule_callback = false;
  if (ts.current->pending_irq) rearm_tick(ts);
}

void call_channel_callback(thread_state& ts, tasklet_impl* acting, bool sending, bool will_block) {
  channel_callback cb;
  {
    std::lock_guard lock(g_hooks_mutex);
    cb = g_channel_callback;
  }
  if (!cb) return;
  ts.in_channel_callback = true;
  try {
    cb(handle(acting), sending, will_block);
  } catch (...) {
    ts.in_channel_callback = false;
    throw;
  }
  ts.in_channel_callback = false;
  if (ts.current->pending_irq) rearm_tick(ts);
}

bool call_error_handler(tasklet_impl* t, std::exception_ptr& err) noexcept {
  error_handler h;
  {
    std::lock_guard lock(g_hooks_mutex);
    h = g_error_handler;
  }
  if (!h) return false;
  try {
    h(handle(t), err);
    err = nullptr;
    return true;
  } catch (...) {
    err = std::current_exception();  // the handler's exception goes on to W (§1.7)
    return false;
  }
}

}  // namespace detail

using namespace detail;

tasklet current() { return handle(state().current); }
tasklet main_tasklet() { return handle(state().main); }
int runcount() { return state().runcount; }

void schedule() {
  thread_state& ts = state();
  maybe_poll_timers(ts);
  maybe_drain_inbox(ts);
  tasklet_impl* p = ts.current;
  if (ts.irq.soft_pending) [[unlikely]]
    detail::switch_to(ts, take_soft_interrupt(ts));
  else if (p->next != p)
    detail::switch_to(ts, p->next);
  claim(p);
}

void schedule_remove() {
  thread_state& ts = state();
  tasklet_impl* p = ts.current;
  const bool alone = p->next == p;
  if (ts.switch_trap != 0 && !(alone && ts.watchdog() == p)) check_trap(ts);
  unschedule_current(ts, p);
  leave_and_switch(ts, p, false);
  claim(p);
}

namespace {

__attribute__((always_inline)) inline tasklet run_queue(const run_options& opts) {
  thread_state& ts = state();
  maybe_drain_inbox(ts);  // work other threads handed us
  tasklet_impl* r = ts.current;
  if (r->next == r && ts.timers.empty()) {  // nothing else to run, nobody sleeping
    claim(r);
    return {};
  }
  check_trap(ts);
  // The outermost timed run() owns the interrupt; inner ones ignore their budget and flags.
  const bool owner = (opts.timeout != 0 || opts.time_slice.count() > 0) && ts.irq.owner == nullptr;
  if (owner) [[unlikely]]
    watchdog_install(ts, r, opts);
  ts.watchdogs.push_back(r);
  r->in_run = true;  // the watchdog stack holds r while it is out of the run queue
  r->threadblock = opts.threadblock;
  ts.unlink(r);
  leave_and_switch(ts, r, false);
  if (r->in_run) pop_watchdogs(ts, r);
  tasklet interrupted;
  if (owner) [[unlikely]]
    if (tasklet_impl* x = watchdog_uninstall(ts)) interrupted = tasklet::adopt(x);
  claim(r);
  return interrupted;
}

}  // namespace

void run() { run_queue(run_options{}); }
tasklet run(const run_options& opts) { return run_queue(opts); }

namespace detail {

void sleep_until_ns(std::int64_t deadline) {
  if (deadline <= now_ns()) {  // nothing to wait for: yield
    schedule();
    return;
  }
  thread_state& ts = state();
  check_can_block(ts);
  wait_state ws;  // no nodes: only the deadline ends it
  wait(ts, ws, deadline);
}

}  // namespace detail

switch_trap::switch_trap() { ++state().switch_trap; }
switch_trap::~switch_trap() {
  thread_state& ts = state();
  if (--ts.switch_trap == 0 && ts.current->pending_irq) rearm_tick(ts);
}

error_handler set_error_handler(error_handler h) {
  std::lock_guard lock(g_hooks_mutex);
  return std::exchange(g_error_handler, std::move(h));
}

schedule_callback set_schedule_callback(schedule_callback cb) {
  std::lock_guard lock(g_hooks_mutex);
  g_has_schedule_callback.store(static_cast<bool>(cb), std::memory_order_relaxed);
  return std::exchange(g_schedule_callback, std::move(cb));
}

channel_callback set_channel_callback(channel_callback cb) {
  std::lock_guard lock(g_hooks_mutex);
  g_has_channel_callback.store(static_cast<bool>(cb), std::memory_order_relaxed);
  return std::exchange(g_channel_callback, std::move(cb));
}

memory_statistics memory_stats() {
  stack_counters s = global_stack_counters();
  long records = 0, waits = 0, cached_records = 0;
  sum_thread_counters(records, waits, cached_records, s);
  auto count = [](long v) { return static_cast<std::size_t>(v < 0 ? 0 : v); };
  memory_statistics m;
  m.live_tasklets = count(records);
  m.stacks_in_use = count(s.in_use);
  m.stacks_cached = count(s.cached);
  m.guarded_stacks = count(s.guarded);
  m.stack_bytes_reserved = count(s.bytes_reserved);
  m.wait_nodes = count(waits);
  m.records_cached = count(cached_records);
  return m;
}

}  // namespace stackless
