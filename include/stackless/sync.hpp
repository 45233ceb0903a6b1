// stackless/sync.hpp — locks that work for tasklets and threads alike.
//
// The same objects serve tasklets of one thread, tasklets of many threads, and plain threads
// (a thread that calls them gets a scheduler and a main tasklet on first use). They have the C++
// standard library's shapes, so std::lock_guard, std::unique_lock and std::scoped_lock work:
//
//   ours                 std                       Python threading   stacklesslib
//   mutex                std::mutex (+ timed)      Lock               locks.Lock
//   recursive_mutex      std::recursive_timed_mutex RLock             locks.RLock
//   semaphore            std::counting_semaphore   Semaphore          locks.Semaphore
//   bounded_semaphore    —                         BoundedSemaphore   locks.BoundedSemaphore
//   condition_variable   std::condition_variable_any Condition        locks.Condition
//   barrier              std::barrier (+ abort)    Barrier            locks.Barrier
//   event                —                         Event              locks.Event
//   latch                std::latch                —                  —
//
// Blocking: called from a tasklet, only that tasklet blocks and the others of its thread run.
// When nothing else in the thread can run, the thread parks until another thread releases;
// deadlock_error if nothing ever could (a thread locking a mutex it holds, alone).
//
// Fairness: barging, like std::mutex and stacklesslib. A release wakes the first waiter, which
// then competes with newcomers; one that loses goes back to the front of the queue. This keeps
// throughput high between threads (a hand-off would put a thread wake-up, microseconds, between
// every two holders). No wake-up is ever lost: a waiter that times out takes the lock if it became
// free meanwhile, and a woken waiter that is killed before it takes the lock passes the wake-up on.
//
// Destroying an object that tasklets wait on wakes them: their call throws runtime_error("… was
// destroyed while a tasklet waited on it").
//
// Every blocking call has try_, _for and _until forms. Errors of misuse are std::system_error
// with std::errc::operation_not_permitted (or value_too_large for a bounded_semaphore), and a
// message that names the fix.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <system_error>
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#endif

#include <stackless/errors.hpp>
#include <stackless/timer.hpp>

namespace stackless {

namespace detail {
struct sync_waiters;  // a wait queue (src/sync)
sync_waiters* sync_create();
void sync_destroy(sync_waiters* w, const char* what) noexcept;
// mutex_lock_slow: contended lock of the state word (0 free, 1 locked, 2 locked with waiters).
bool mutex_lock_slow(std::atomic<int>& state, sync_waiters* w, std::int64_t deadline,
                     const char* what);
void mutex_wake(sync_waiters* w) noexcept;
const void* current_owner() noexcept;  // identity of the calling tasklet
// single_threaded_process: the process has never had a second thread (glibc's flag; it never
// turns true again, and creating a thread synchronizes with it), so plain loads and stores of a
// lock word are enough. False where the C library does not say.
inline bool single_threaded_process() noexcept {
#if __has_include(<sys/single_threaded.h>)
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}
[[noreturn]] void throw_not_permitted(const char* message);
}  // namespace detail

// mutex: a non-recursive lock. Like Python's Lock (and unlike std::mutex) any tasklet or thread
// may unlock it. Switches: lock may (when contended). Errors: unlock of an unlocked mutex →
// std::system_error(operation_not_permitted); deadlock_error when the lock can never be had (the
// only runnable tasklet locks a mutex it holds).
class mutex {
 public:
  mutex() : waiters_(detail::sync_create()) {}
  ~mutex() { detail::sync_destroy(waiters_, "mutex"); }
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  void lock() {
    if (!try_lock()) detail::mutex_lock_slow(state_, waiters_, detail::no_deadline, "mutex");
  }
  [[nodiscard]] bool try_lock() noexcept {
    if (detail::single_threaded_process()) {  // no other thread: no locked instruction needed
      if (state_.load(std::memory_order_relaxed) != 0) return false;
      state_.store(1, std::memory_order_relaxed);
      return true;
    }
    int expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire);
  }
  template <class Rep, class Per>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Per> d) {
    return try_lock() ||
           detail::mutex_lock_slow(state_, waiters_, detail::deadline_after(d), "mutex");
  }
  template <class Clock, class Dur>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<Clock, Dur> t) {
    return try_lock() ||
           detail::mutex_lock_slow(state_, waiters_, detail::deadline_at(t), "mutex");
  }
  void unlock() {
    int previous;
    if (detail::single_threaded_process()) {
      previous = state_.load(std::memory_order_relaxed);
      state_.store(0, std::memory_order_relaxed);
    } else {
      previous = state_.exchange(0, std::memory_order_release);
    }
    if (previous == 2) [[unlikely]]
      detail::mutex_wake(waiters_);
    else if (previous == 0) [[unlikely]]
      detail::throw_not_permitted("mutex::unlock: the mutex is not locked; unlock only after lock");
  }
  // locked: a snapshot, for diagnostics.
  bool locked() const noexcept { return state_.load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<int> state_{0};
  detail::sync_waiters* waiters_;
};

// recursive_mutex: a lock its owner (a tasklet; each thread's main tasklet is one too) may lock
// again; it is free once unlocked as often as locked. Errors: unlock by a tasklet that does not
// own it → std::system_error(operation_not_permitted).
class recursive_mutex {
 public:
  recursive_mutex() = default;
  recursive_mutex(const recursive_mutex&) = delete;
  recursive_mutex& operator=(const recursive_mutex&) = delete;

  void lock() {
    if (owned_by_caller()) {
      ++depth_;
      return;
    }
    inner_.lock();
    take();
  }
  [[nodiscard]] bool try_lock() noexcept {
    if (owned_by_caller()) {
      ++depth_;
      return true;
    }
    if (!inner_.try_lock()) return false;
    take();
    return true;
  }
  template <class Rep, class Per>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Per> d) {
    return try_lock_until(std::chrono::steady_clock::now() + d);
  }
  template <class Clock, class Dur>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<Clock, Dur> t) {
    if (owned_by_caller()) {
      ++depth_;
      return true;
    }
    if (!inner_.try_lock_until(t)) return false;
    take();
    return true;
  }
  void unlock() {
    if (!owned_by_caller())
      detail::throw_not_permitted(
          "recursive_mutex::unlock: the calling tasklet does not own it; unlock in the tasklet "
          "that locked");
    if (--depth_ == 0) {
      owner_.store(nullptr, std::memory_order_relaxed);
      inner_.unlock();
    }
  }

 private:
  bool owned_by_caller() const noexcept {
    return owner_.load(std::memory_order_relaxed) == detail::current_owner();
  }
  void take() noexcept {
    owner_.store(detail::current_owner(), std::memory_order_relaxed);
    depth_ = 1;
  }
  mutex inner_;
  std::atomic<const void*> owner_{nullptr};
  std::size_t depth_ = 0;
};

namespace detail {
bool semaphore_acquire_slow(std::atomic<std::ptrdiff_t>& value, sync_waiters* w,
                            std::int64_t deadline);
void semaphore_release(std::atomic<std::ptrdiff_t>& value, sync_waiters* w, std::ptrdiff_t n,
                       std::ptrdiff_t bound);
}  // namespace detail

// semaphore: a counter of permits. acquire takes one (waiting while there is none), release(n)
// adds n and wakes up to n waiters. Errors: a negative initial value or release(n <= 0) →
// std::invalid_argument.
class semaphore {
 public:
  explicit semaphore(std::ptrdiff_t initial = 1) : semaphore(initial, -1) {}
  ~semaphore() { detail::sync_destroy(waiters_, "semaphore"); }
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  void acquire() {
    if (!try_acquire()) detail::semaphore_acquire_slow(value_, waiters_, detail::no_deadline);
  }
  [[nodiscard]] bool try_acquire() noexcept {
    std::ptrdiff_t v = value_.load(std::memory_order_relaxed);
    while (v > 0)
      if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
    return false;
  }
  template <class Rep, class Per>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Per> d) {
    return try_acquire() ||
           detail::semaphore_acquire_slow(value_, waiters_, detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  [[nodiscard]] bool try_acquire_until(std::chrono::time_point<Clock, Dur> t) {
    return try_acquire() ||
           detail::semaphore_acquire_slow(value_, waiters_, detail::deadline_at(t));
  }
  void release(std::ptrdiff_t n = 1) { detail::semaphore_release(value_, waiters_, n, bound_); }
  // value: the permits available now (a snapshot).
  std::ptrdiff_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 protected:
  semaphore(std::ptrdiff_t initial, std::ptrdiff_t bound)
      : value_(initial), bound_(bound), waiters_(nullptr) {
    if (initial < 0) throw std::invalid_argument("semaphore: the initial value must be >= 0");
    waiters_ = detail::sync_create();
  }

 private:
  std::atomic<std::ptrdiff_t> value_;
  std::ptrdiff_t bound_;  // -1: unbounded
  detail::sync_waiters* waiters_;
};

// bounded_semaphore: a semaphore whose value may not exceed its initial value. Errors: a release
// above it → std::system_error(value_too_large) (the release does not happen).
class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::ptrdiff_t initial = 1) : semaphore(initial, initial) {}
};

namespace detail {
// cv_wait: enqueue, call unlock(lock), wait, call relock(lock) (also when the wait throws).
// Returns true if notified, false on timeout.
bool cv_wait(sync_waiters* w, void* lock, void (*unlock)(void*), void (*relock)(void*),
             std::int64_t deadline);
void cv_notify(sync_waiters* w, bool all) noexcept;
}  // namespace detail

// condition_variable: wait until notified, with any lock of this header held through a
// std::unique_lock (or any BasicLockable wrapper with owns_lock()). The lock is released while
// waiting and held again when wait returns or throws. Spurious wake-ups do not happen, but use the
// predicate forms anyway. Errors: waiting without holding the lock →
// std::system_error(operation_not_permitted).
class condition_variable {
 public:
  condition_variable() : waiters_(detail::sync_create()) {}
  ~condition_variable() { detail::sync_destroy(waiters_, "condition_variable"); }
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  void notify_one() noexcept { detail::cv_notify(waiters_, false); }
  void notify_all() noexcept { detail::cv_notify(waiters_, true); }

  template <class Lock>
  void wait(Lock& lock) {
    wait_ns(lock, detail::no_deadline);
  }
  template <class Lock, class Pred>
  void wait(Lock& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  template <class Lock, class Rep, class Per>
  std::cv_status wait_for(Lock& lock, std::chrono::duration<Rep, Per> d) {
    return wait_ns(lock, detail::deadline_after(d));
  }
  template <class Lock, class Rep, class Per, class Pred>
  bool wait_for(Lock& lock, std::chrono::duration<Rep, Per> d, Pred pred) {
    return wait_until_ns(lock, detail::deadline_after(d), std::move(pred));
  }
  template <class Lock, class Clock, class Dur>
  std::cv_status wait_until(Lock& lock, std::chrono::time_point<Clock, Dur> t) {
    return wait_ns(lock, detail::deadline_at(t));
  }
  template <class Lock, class Clock, class Dur, class Pred>
  bool wait_until(Lock& lock, std::chrono::time_point<Clock, Dur> t, Pred pred) {
    return wait_until_ns(lock, detail::deadline_at(t), std::move(pred));
  }

 private:
  template <class Lock>
  std::cv_status wait_ns(Lock& lock, std::int64_t deadline) {
    if (!lock.owns_lock())
      detail::throw_not_permitted(
          "condition_variable::wait: the lock is not held; lock it before waiting");
    const bool notified = detail::cv_wait(
        waiters_, &lock, [](void* l) { static_cast<Lock*>(l)->unlock(); },
        [](void* l) { static_cast<Lock*>(l)->lock(); }, deadline);
    return notified ? std::cv_status::no_timeout : std::cv_status::timeout;
  }
  template <class Lock, class Pred>
  bool wait_until_ns(Lock& lock, std::int64_t deadline, Pred pred) {
    while (!pred())
      if (wait_ns(lock, deadline) == std::cv_status::timeout) return pred();
    return true;
  }
  detail::sync_waiters* waiters_;
};

// barrier_broken: thrown by barrier waits when the barrier is broken (abort(), reset() while
// waiting, a timeout, or a completion function that threw).
class barrier_broken : public runtime_error {
 public:
  barrier_broken() : runtime_error("barrier_broken: the barrier was broken; reset() it to reuse") {}
};

namespace detail {
struct barrier_state;
}

// barrier: `parties` tasklets meet; the last to arrive runs the completion function (if any),
// then all continue and the barrier is ready for the next round. arrive_and_wait returns the
// arrival index, 0 for the first to arrive up to parties-1 for the last (Python's Barrier.wait).
// abort() breaks it: every waiter, and every later arrival until reset(), throws barrier_broken.
// reset() breaks the current round (its waiters throw) and makes the barrier usable again.
// A completion function that throws breaks the barrier; its exception reaches the last arriver.
// A timeout (arrive_and_wait_for/until) breaks the barrier too and throws barrier_broken, and so
// does destroying the barrier while tasklets wait on it.
// Errors: parties < 1 → std::invalid_argument.
class barrier {
 public:
  explicit barrier(std::ptrdiff_t parties, std::function<void()> completion = {});
  ~barrier();
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;

  std::ptrdiff_t arrive_and_wait() { return arrive_ns(detail::no_deadline); }
  template <class Rep, class Per>
  std::ptrdiff_t arrive_and_wait_for(std::chrono::duration<Rep, Per> d) {
    return arrive_ns(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  std::ptrdiff_t arrive_and_wait_until(std::chrono::time_point<Clock, Dur> t) {
    return arrive_ns(detail::deadline_at(t));
  }
  void abort();
  void reset();
  bool broken() const;
  std::ptrdiff_t parties() const noexcept { return parties_; }
  std::ptrdiff_t n_waiting() const;

 private:
  std::ptrdiff_t arrive_ns(std::int64_t deadline);
  std::ptrdiff_t parties_;
  std::shared_ptr<detail::barrier_state> state_;  // waiters keep it alive
};

namespace detail {
bool event_wait(std::atomic<bool>& flag, sync_waiters* w, std::int64_t deadline);
void event_set(std::atomic<bool>& flag, sync_waiters* w) noexcept;
}  // namespace detail

// event: a flag tasklets can wait for. set() wakes every waiter; wait returns true once the flag
// is (or was, at the moment the waiter was woken) set — a set() then clear() before the waiter
// runs still counts (CPython's fix of issue 13502; stacklesslib returned false).
class event {
 public:
  event() : waiters_(detail::sync_create()) {}
  ~event() { detail::sync_destroy(waiters_, "event"); }
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  void set() noexcept { detail::event_set(flag_, waiters_); }
  void clear() noexcept { flag_.store(false, std::memory_order_release); }
  bool is_set() const noexcept { return flag_.load(std::memory_order_acquire); }
  bool wait() { return is_set() || detail::event_wait(flag_, waiters_, detail::no_deadline); }
  template <class Rep, class Per>
  bool wait_for(std::chrono::duration<Rep, Per> d) {
    return is_set() || detail::event_wait(flag_, waiters_, detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  bool wait_until(std::chrono::time_point<Clock, Dur> t) {
    return is_set() || detail::event_wait(flag_, waiters_, detail::deadline_at(t));
  }

 private:
  std::atomic<bool> flag_{false};
  detail::sync_waiters* waiters_;
};

// latch: a single-use countdown, like std::latch, blocking only the calling tasklet.
// Errors: a negative expected count, or counting below zero → std::invalid_argument.
class latch {
 public:
  explicit latch(std::ptrdiff_t expected) : count_(expected) {
    if (expected < 0) throw std::invalid_argument("latch: the expected count must be >= 0");
  }
  latch(const latch&) = delete;
  latch& operator=(const latch&) = delete;

  void count_down(std::ptrdiff_t n = 1) {
    std::ptrdiff_t v = count_.load(std::memory_order_relaxed);
    do {
      if (n < 0 || v - n < 0)
        throw std::invalid_argument("latch::count_down: would count below zero");
    } while (!count_.compare_exchange_weak(v, v - n, std::memory_order_acq_rel));
    if (v - n == 0) done_.set();
  }
  bool try_wait() const noexcept { return count_.load(std::memory_order_acquire) == 0; }
  void wait() {
    if (!try_wait()) done_.wait();
  }
  template <class Rep, class Per>
  bool wait_for(std::chrono::duration<Rep, Per> d) {
    return try_wait() || done_.wait_for(d);
  }
  template <class Clock, class Dur>
  bool wait_until(std::chrono::time_point<Clock, Dur> t) {
    return try_wait() || done_.wait_until(t);
  }
  void arrive_and_wait(std::ptrdiff_t n = 1) {
    count_down(n);
    wait();
  }

 private:
  std::atomic<std::ptrdiff_t> count_;
  event done_;
};

}  // namespace stackless
