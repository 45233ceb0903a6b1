// sync.cpp — mutex, semaphore, condition_variable, event and barrier on the core's wait queues.
//
// Each object keeps its waiters in a wait queue (guarded like a channel's: no lock while one
// thread uses the runtime, a spinlock after that) and a count of waiters that the release side
// reads without the guard: waiters increment it before they look at the state, releasers change
// the state before they read it, both with sequentially consistent operations, so a release
// either sees a waiter or the waiter sees the release.
#include <stackless/sync.hpp>

#include <mutex>
#include <string>

#include "core/mt.hpp"
#include "core/switch.hpp"
#include "sync/waiters.hpp"

namespace stackless::detail {

namespace {

[[noreturn]] void throw_destroyed(const char* what) {
  throw runtime_error(std::string(what) + " was destroyed while a tasklet waited on it");
}

}  // namespace

// wake_first ends the wait of the first waiter with `outcome`; false if there was none.
bool wake_first(thread_state& ts, sync_waiters* w, wait_outcome outcome) noexcept {
  for (;;) {
    queue_guard g(ts, w->queue);
    wait_node* n = w->queue.head;
    if (n == nullptr) return false;
    tasklet_impl* t = n->tasklet;
    if (!claim_node(*n, outcome)) continue;  // its wait ended otherwise (timeout, kill)
    w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    g.leave();
    resume_claimed(ts, t);
    return true;
  }
}

// wake_first_any: wake_first from any thread, also one without a scheduler (a pool worker, a
// plain thread that only releases): it never becomes a runtime thread for that.
bool wake_first_any(sync_waiters* w, wait_outcome outcome) noexcept {
  if (thread_state* ts = state_if_any()) return wake_first(*ts, w, outcome);
  enter_multithreaded(nullptr);  // from now on every runtime thread locks the queues
  for (;;) {
    w->queue.lock.lock();
    wait_node* n = w->queue.head;
    if (n == nullptr) {
      w->queue.lock.unlock();
      return false;
    }
    tasklet_impl* t = n->tasklet;
    const bool claimed = claim_node(*n, outcome);
    if (claimed) w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    w->queue.lock.unlock();
    if (claimed) {
      resume_claimed(nullptr, t);
      return true;
    }
  }
}

namespace {

// block_here: the caller holds g and has counted itself in w->waiting. Links the current tasklet
// (at the front when it lost a race after a wake-up), leaves g and waits. A waiter that is woken
// and then killed before it could use the wake-up passes it on, so none is lost.
wait_outcome block_here(thread_state& ts, queue_guard& g, sync_waiters* w, std::int64_t deadline,
                        bool front) {
  try {
    check_can_block(ts);
  } catch (...) {
    w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    throw;
  }
  wait_node n;
  wait_state ws;
  ws.nodes = &n;
  prepare_node(ts, ws, n);
  if (front)
    w->queue.push_front(n);
  else
    w->queue.push_back(n);
  g.leave();
  wait_outcome outcome;
  try {
    outcome = wait(ts, ws, deadline);
  } catch (...) {
    if (ws.outcome == wait_outcome::completed)
      wake_first(ts, w, wait_outcome::completed);  // pass the wake-up on
    else
      w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    throw;
  }
  if (outcome == wait_outcome::timed_out) w->waiting.fetch_sub(1, std::memory_order_seq_cst);
  return outcome;
}

bool past(std::int64_t deadline) noexcept {
  return deadline != no_deadline && deadline <= now_ns();
}

// take_or_block: one round of the waiting protocol every lock shares. Under the queue's guard the
// caller counts itself in w->waiting (so a release cannot miss it) and tries `take`; if that fails
// and the deadline has not passed, it blocks (at the front of the queue after a wake-up it lost).
enum class round { taken, expired, woken, timed_out, closed };
template <class Take>
round take_or_block(thread_state& ts, sync_waiters* w, std::int64_t deadline, bool front,
                    Take take) {
  queue_guard g(ts, w->queue);
  w->waiting.fetch_add(1, std::memory_order_seq_cst);
  if (take()) {
    w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    return round::taken;
  }
  if (past(deadline)) {
    w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    return round::expired;
  }
  switch (block_here(ts, g, w, deadline, front)) {
    case wait_outcome::closed:
      return round::closed;
    case wait_outcome::timed_out:
      return round::timed_out;
    default:
      return round::woken;
  }
}

}  // namespace

sync_waiters* sync_create() { return new sync_waiters(); }

void sync_destroy(sync_waiters* w, const char* what) noexcept {
  (void)what;
  if (w->waiting.load(std::memory_order_seq_cst) != 0) {
    while (wake_first_any(w, wait_outcome::closed)) {
    }
  }
  delete w;
}

const void* current_owner() noexcept { return state().current; }

void throw_not_permitted(const char* message) {
  throw std::system_error(std::make_error_code(std::errc::operation_not_permitted), message);
}

// --- mutex: state 0 free, 1 locked, 2 locked and maybe waited for ---

namespace {

// spin_for_mutex: while other threads use the runtime the holder may be running on another core
// and about to unlock. If this thread has nothing else to run, watch the word for a while and
// take it if it comes free (as `desired`), without marking it contended meanwhile: an unlock that
// sees no waiter mark wakes nobody, so the holder keeps going at full speed while we spin. Also
// after each wake-up: a woken waiter that marked the word at once would make the holder pay for a
// wake-up at nearly every unlock. (A woken waiter takes the word as 2, "maybe waited for", since
// others may still wait behind it — as glibc's mutex does.)
bool spin_for_mutex(const thread_state& ts, std::atomic<int>& state_word, int desired) noexcept {
  if (!multithreaded() || ts.runcount > 1) return false;  // better run what is runnable here
  // Looks grow further apart (exponential back-off), so the spinner does not keep pulling the
  // word's cache line away from the holder. 2,047 pauses in all: about 20 µs on a current x86
  // core, less than waking a sleeping thread costs on a virtual machine.
  for (int delay = 1; delay <= 1024; delay *= 2) {
    int expected = 0;
    if (state_word.load(std::memory_order_relaxed) == 0 &&
        state_word.compare_exchange_weak(expected, desired, std::memory_order_acquire))
      return true;
    for (int i = 0; i < delay; ++i) __builtin_ia32_pause();
  }
  return false;
}

}  // namespace

bool mutex_lock_slow(std::atomic<int>& state_word, sync_waiters* w, std::int64_t deadline,
                     const char* what) {
  thread_state& ts = state();
  const auto take = [&] { return state_word.exchange(2, std::memory_order_acquire) == 0; };
  for (bool front = false;; front = true) {
    if (spin_for_mutex(ts, state_word, front ? 2 : 1)) return true;
    switch (take_or_block(ts, w, deadline, front, take)) {
      case round::taken:
        return true;
      case round::expired:
        return false;
      case round::closed:
        throw_destroyed(what);
      case round::timed_out:  // one more try: a release that raced the timeout still wins
        return take();
      case round::woken:
        break;  // compete again
    }
  }
}

void mutex_wake(sync_waiters* w) noexcept {
  if (w->waiting.load(std::memory_order_seq_cst) == 0) return;
  wake_first_any(w, wait_outcome::completed);
}

// --- semaphore ---

namespace {
bool take_permit(std::atomic<std::ptrdiff_t>& value) noexcept {
  std::ptrdiff_t v = value.load(std::memory_order_relaxed);
  while (v > 0)
    if (value.compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
  return false;
}
}  // namespace

bool semaphore_acquire_slow(std::atomic<std::ptrdiff_t>& value, sync_waiters* w,
                            std::int64_t deadline) {
  thread_state& ts = state();
  const auto take = [&] { return take_permit(value); };
  for (bool front = false;; front = true) {
    switch (take_or_block(ts, w, deadline, front, take)) {
      case round::taken:
        return true;
      case round::expired:
        return false;
      case round::closed:
        throw_destroyed("semaphore");
      case round::timed_out:  // one more try, as for the mutex
        return take();
      case round::woken:
        break;
    }
  }
}

void semaphore_release(std::atomic<std::ptrdiff_t>& value, sync_waiters* w, std::ptrdiff_t n,
                       std::ptrdiff_t bound) {
  if (n <= 0) throw std::invalid_argument("semaphore::release: n must be > 0");
  if (bound >= 0) {
    std::ptrdiff_t v = value.load(std::memory_order_relaxed);
    do {
      if (v + n > bound)
        throw std::system_error(std::make_error_code(std::errc::value_too_large),
                                "bounded_semaphore::release: released more often than acquired; "
                                "release only what you acquired");
    } while (!value.compare_exchange_weak(v, v + n, std::memory_order_seq_cst));
  } else {
    value.fetch_add(n, std::memory_order_seq_cst);
  }
  if (w->waiting.load(std::memory_order_seq_cst) == 0) return;
  for (std::ptrdiff_t i = 0; i < n; ++i)
    if (!wake_first_any(w, wait_outcome::completed)) break;
}

// --- condition_variable ---

bool cv_wait(sync_waiters* w, void* lock, void (*unlock)(void*), void (*relock)(void*),
             std::int64_t deadline) {
  thread_state& ts = state();
  check_can_block(ts);
  wait_node n;
  wait_state ws;
  ws.nodes = &n;
  prepare_node(ts, ws, n);
  {
    queue_guard g(ts, w->queue);
    w->waiting.fetch_add(1, std::memory_order_seq_cst);
    w->queue.push_back(n);  // linked before the lock is released: no notify can be missed
  }
  wait_outcome outcome;
  try {
    unlock(lock);
    outcome = wait(ts, ws, deadline);
  } catch (...) {
    // Unlinked by now (kill) or never waited (unlock threw): leave, pass a notify on, relock.
    if (ws.outcome == wait_outcome::completed) {
      wake_first(ts, w, wait_outcome::completed);
    } else if (ws.outcome == wait_outcome::pending) {
      queue_guard g(ts, w->queue);
      if (n.queue != nullptr) n.queue->unlink(n);
      w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    } else {
      w->waiting.fetch_sub(1, std::memory_order_seq_cst);
    }
    relock(lock);
    throw;
  }
  if (outcome == wait_outcome::timed_out) w->waiting.fetch_sub(1, std::memory_order_seq_cst);
  relock(lock);
  if (outcome == wait_outcome::closed) throw_destroyed("condition_variable");
  return outcome == wait_outcome::completed;
}

void cv_notify(sync_waiters* w, bool all) noexcept {
  if (w->waiting.load(std::memory_order_seq_cst) == 0) return;
  while (wake_first_any(w, wait_outcome::completed) && all) {
  }
}

// --- event ---

bool event_wait(std::atomic<bool>& flag, sync_waiters* w, std::int64_t deadline) {
  thread_state& ts = state();
  switch (take_or_block(ts, w, deadline, false,
                        [&] { return flag.load(std::memory_order_seq_cst); })) {
    case round::taken:
    case round::woken:  // it was set when we were woken, even if cleared since
      return true;
    case round::expired:
      return false;
    case round::closed:
      throw_destroyed("event");
    case round::timed_out:
      return flag.load(std::memory_order_acquire);
  }
  return false;
}

void event_set(std::atomic<bool>& flag, sync_waiters* w) noexcept {
  flag.store(true, std::memory_order_seq_cst);
  if (w->waiting.load(std::memory_order_seq_cst) == 0) return;
  while (wake_first_any(w, wait_outcome::completed)) {
  }
}

// --- barrier: CPython's Barrier (Lib/threading.py), on our mutex and condition_variable ---

struct barrier_state {
  enum : int { filling = 0, draining = 1, resetting = -1, broken = -2 };
  mutex m;
  condition_variable cv;
  std::function<void()> completion;
  std::ptrdiff_t count = 0;
  int phase = filling;

  void break_barrier() {
    phase = broken;
    cv.notify_all();
  }
};

}  // namespace stackless::detail

namespace stackless {

barrier::barrier(std::ptrdiff_t parties, std::function<void()> completion)
    : parties_(parties), state_(nullptr) {
  if (parties < 1) throw std::invalid_argument("barrier: parties must be >= 1");
  state_ = std::make_shared<detail::barrier_state>();
  state_->completion = std::move(completion);
}

barrier::~barrier() {
  std::lock_guard lock(state_->m);
  if (state_->count > 0) state_->break_barrier();  // waiters throw barrier_broken
}

std::ptrdiff_t barrier::arrive_ns(std::int64_t deadline) {
  using st = detail::barrier_state;
  const std::shared_ptr<st> keep = state_;  // the barrier may be destroyed while we wait
  st& s = *keep;
  std::unique_lock lock(s.m);
  // Wait for the previous round to drain or reset.
  while (s.phase == st::draining || s.phase == st::resetting) s.cv.wait(lock);
  if (s.phase < 0) throw barrier_broken();
  const std::ptrdiff_t index = s.count++;
  struct leave_round {  // the last one out re-arms the barrier
    st& s;
    ~leave_round() {
      if (--s.count == 0 && (s.phase == st::resetting || s.phase == st::draining)) {
        s.phase = st::filling;
        s.cv.notify_all();
      }
    }
  } leave{s};
  if (index + 1 == parties_) {
    try {
      if (s.completion) s.completion();
    } catch (...) {
      s.break_barrier();
      throw;
    }
    s.phase = st::draining;
    s.cv.notify_all();
    return index;
  }
  const auto ready = [&] { return s.phase != st::filling; };
  const bool in_time =
      deadline == detail::no_deadline
          ? (s.cv.wait(lock, ready), true)
          : s.cv.wait_until(lock,
                            std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline)),
                            ready);
  if (!in_time) {
    s.break_barrier();
    throw barrier_broken();
  }
  if (s.phase < 0) throw barrier_broken();
  return index;
}

void barrier::abort() {
  std::lock_guard lock(state_->m);
  state_->break_barrier();
}

void barrier::reset() {
  using st = detail::barrier_state;
  std::lock_guard lock(state_->m);
  st& s = *state_;
  if (s.count > 0) {
    if (s.phase == st::filling || s.phase == st::broken) s.phase = st::resetting;
  } else {
    s.phase = st::filling;
  }
  s.cv.notify_all();
}

bool barrier::broken() const {
  std::lock_guard lock(state_->m);
  return state_->phase == detail::barrier_state::broken;
}

std::ptrdiff_t barrier::n_waiting() const {
  std::lock_guard lock(state_->m);
  return state_->phase == detail::barrier_state::filling ? state_->count : 0;
}

}  // namespace stackless
