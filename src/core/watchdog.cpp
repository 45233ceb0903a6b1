// watchdog.cpp — pre-emption at tick points (reference §4.1–§4.2).
//
// tick() decrements the thread-local tick_budget; only when it reaches zero does tick_slow() look
// at the watchdog. tick_budget is loaded with the ticks left in the slice, or with
// check_ticks when a wall-clock time_slice must be compared with the clock now and then.
#include <stackless/timer.hpp>
#include <stackless/watchdog.hpp>

#include <algorithm>
#include <chrono>

#include <stackless/config.hpp>

#include "core/switch.hpp"
#include "core/watchdog.hpp"

namespace stackless::detail {

namespace {
constexpr std::int64_t kIdleBudget = std::int64_t{1} << 62;
}

constinit thread_local std::int64_t tick_budget = kIdleBudget;

namespace {

// gil_check_ticks: in global_lock mode, how often tick() looks whether to hand the lock over.
std::int64_t gil_check_ticks() noexcept {
  return current_config().switch_interval.count() == 0 ? 1 : 64;
}

// idle_budget: what tick_budget holds when no timed run() is active.
std::int64_t idle_budget() noexcept { return g_gil_mode ? gil_check_ticks() : kIdleBudget; }

void load_budget(thread_state& ts) noexcept {
  auto& w = ts.irq;
  std::int64_t chunk = w.timeout > 0 ? std::max<std::int64_t>(w.ticks_left, 1) : kIdleBudget;
  if (w.time_slice > 0) chunk = std::min(chunk, w.check_ticks);
  if (g_gil_mode) chunk = std::min(chunk, gil_check_ticks());
  w.loaded = chunk;
  tick_budget = chunk;
}

// maybe_hand_over: global_lock mode. At a tick point, once the thread has held the lock for its
// switch interval and another thread waits, let that thread run — unless the current tasklet is
// atomic (or a switch_trap or callback is active): then the lock stays, which is what makes
// atomic a critical section against every thread.
void maybe_hand_over(thread_state& ts) noexcept {
  if (!ts.holds_gil || !g_gil.contended()) return;
  const tasklet_impl* x = ts.current;
  if (x->atomic || ts.switch_trap != 0 || ts.in_schedule_callback || ts.in_channel_callback)
    return;
  const std::int64_t interval =
      std::chrono::duration_cast<std::chrono::nanoseconds>(current_config().switch_interval)
          .count();
  if (interval > 0 && now_ns() - ts.gil_since < interval) return;
  g_gil.hand_over();  // behind every thread that was waiting: fair
  ts.gil_since = now_ns();
}

// restart_slice: a new slice (or, with totaltimeout, nothing: the budget is for the whole run).
void restart_slice(thread_state& ts) noexcept {
  auto& w = ts.irq;
  w.ticks_left = w.timeout;
  if (w.time_slice > 0) w.deadline = now_ns() + w.time_slice;
  load_budget(ts);
}

bool can_interrupt(const thread_state& ts, const tasklet_impl* x) noexcept {
  return !x->atomic && ts.switch_trap == 0 && !ts.in_schedule_callback &&
         !ts.in_channel_callback;
}

}  // namespace

void watchdog_install(thread_state& ts, tasklet_impl* owner, const run_options& o) noexcept {
  auto& w = ts.irq;
  w.owner = owner;
  w.timeout = static_cast<std::int64_t>(std::min<std::uint64_t>(o.timeout, kIdleBudget));
  w.time_slice = o.time_slice.count() > 0 ? o.time_slice.count() : 0;
  w.check_ticks = std::max<std::int64_t>(o.time_check_ticks, 1);
  w.soft = o.soft;
  w.total = o.totaltimeout;
  w.threadblock = o.threadblock;
  w.soft_pending = false;
  w.interrupted = nullptr;
  restart_slice(ts);
}

void init_tick_budget() noexcept { tick_budget = idle_budget(); }

tasklet_impl* watchdog_uninstall(thread_state& ts) noexcept {
  auto& w = ts.irq;
  tasklet_impl* interrupted = w.interrupted;
  w = thread_state::watchdog_state{};
  tick_budget = idle_budget();
  return interrupted;
}

void on_switch_watchdog(thread_state& ts, tasklet_impl* prev) noexcept {
  prev->pending_irq = false;  // it switched: a deferred interrupt has nothing left to stop
  if (!ts.irq.total) restart_slice(ts);
}

void rearm_tick(thread_state& ts) noexcept {
  if (ts.irq.owner != nullptr) tick_budget = 0;
}

tasklet_impl* take_soft_interrupt(thread_state& ts) noexcept {
  ts.irq.soft_pending = false;
  tasklet_impl* r = ts.irq.owner;
  // The watchdog takes the place of the tasklet N that would have run: right before N, so N runs
  // first when the watchdog calls run() again (Stackless' slp_schedule_soft_irq).
  if (r->floating() && ts.current->in_runqueue())
    ts.insert_after(ts.current, r);
  else
    make_runnable(ts, r);
  return r;
}

void tick_slow(std::uint32_t) {
  thread_state* tsp = state_if_any();
  if (tsp == nullptr) {
    tick_budget = kIdleBudget;
    return;
  }
  if (g_gil_mode) maybe_hand_over(*tsp);
  if (tsp->irq.owner == nullptr) {
    tick_budget = idle_budget();
    return;
  }
  thread_state& ts = *tsp;
  auto& w = ts.irq;
  tasklet_impl* x = ts.current;
  w.ticks_left -= w.loaded - tick_budget;
  bool due = x->pending_irq || (w.timeout > 0 && w.ticks_left <= 0);
  if (!due && w.time_slice > 0) due = now_ns() >= w.deadline;
  if (!due || x == w.owner) {
    load_budget(ts);
    return;
  }
  if (w.soft) {
    // Soft: never stop x here; its next voluntary switch goes to the watchdog instead.
    w.soft_pending = true;
    restart_slice(ts);
    return;
  }
  if (!can_interrupt(ts, x)) {
    x->pending_irq = true;  // fires at the first tick point after the section ends
    restart_slice(ts);
    return;
  }
  // Hard: x leaves the run queue (paused, alive) and the watchdog's run() returns it.
  x->pending_irq = false;
  add_ref(x);  // the handle run() will return
  if (w.interrupted != nullptr) release(w.interrupted);
  w.interrupted = x;
  ts.unlink(x);
  tasklet_impl* r = w.owner;
  make_runnable(ts, r);
  raw_switch(ts, x, r, false);
  claim(x);  // resumed by insert()/run(), or killed
}

}  // namespace stackless::detail
