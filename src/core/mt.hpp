// mt — how shared structures (wait queues, wait claims) are guarded: not at all while only one
// thread uses the runtime, with spinlocks and atomic claims from the moment a second one starts.
//
// A single-threaded program pays no locked instruction per channel operation. The switch happens
// once per process, when the second runtime thread appears: it sets g_multithreaded, issues a
// heavy (membarrier) barrier, and waits until every other thread has left any unlocked region it
// is in. An unlocked region's entry needs only a compiler barrier (an asymmetric Dekker protocol,
// see threads/barrier.hpp). Under ThreadSanitizer, or where membarrier is unavailable, locking is
// on from the start.
#pragma once

#include <atomic>

#include "core/thread_state.hpp"
#include "core/wait.hpp"

namespace stackless::detail {

extern std::atomic<bool> g_multithreaded;

inline bool multithreaded() noexcept { return g_multithreaded.load(std::memory_order_relaxed); }

// unlocked_region: while the process is single-threaded, marks a section that touches shared
// structures without locks; the transition to multi-threaded waits for it to end. Nestable.
// In a multi-threaded process it does nothing.
class unlocked_region {
 public:
  explicit unlocked_region(thread_state& ts) noexcept : ts_(ts) {
    if (multithreaded()) return;
    ts_.in_unlocked.store(ts_.in_unlocked.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (!multithreaded()) [[likely]] {
      active_ = true;
      return;
    }
    exit();
  }
  ~unlocked_region() {
    if (active_) exit();
  }
  unlocked_region(const unlocked_region&) = delete;
  unlocked_region& operator=(const unlocked_region&) = delete;
  // active: the section runs unlocked (the process is single-threaded).
  bool active() const noexcept { return active_; }
  // exit ends the region early (before the thread may switch or park).
  void exit() noexcept {
    active_ = false;
    ts_.in_unlocked.store(ts_.in_unlocked.load(std::memory_order_relaxed) - 1,
                          std::memory_order_release);
  }

 private:
  thread_state& ts_;
  bool active_ = false;
};

// queue_guard: the critical section of one wait queue; leave() ends it early (before a switch).
class queue_guard {
 public:
  queue_guard(thread_state& ts, wait_queue& q) noexcept : region_(ts), q_(q) {
    locked_ = !region_.active();
    if (locked_) q_.lock.lock();
  }
  ~queue_guard() { leave(); }
  queue_guard(const queue_guard&) = delete;
  queue_guard& operator=(const queue_guard&) = delete;
  void leave() noexcept {
    if (locked_) {
      locked_ = false;
      q_.lock.unlock();
    } else if (region_.active()) {
      region_.exit();
    }
  }

 private:
  unlocked_region region_;
  wait_queue& q_;
  bool locked_ = false;
};

// try_claim: the caller becomes the one that ends ws (see wait_state::claimed). Call it inside a
// queue_guard or unlocked_region.
inline bool try_claim(wait_state& ws) noexcept {
  if (!multithreaded()) [[likely]] {
    if (ws.claimed.load(std::memory_order_relaxed)) return false;
    ws.claimed.store(true, std::memory_order_relaxed);
    return true;
  }
  return !ws.claimed.exchange(true, std::memory_order_acq_rel);
}

// enter_multithreaded turns locking on for good: called by the thread that becomes the second
// runtime thread (self), or by a thread without a scheduler (self null) that is about to touch a
// wait queue (releasing a lock, completing a future). No-op once on.
void enter_multithreaded(thread_state* self) noexcept;

}  // namespace stackless::detail
