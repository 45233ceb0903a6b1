// global_lock — the lock of threading::global_lock mode (like CPython's GIL): a fair ticket lock
// whose waiters spin a while (threads/spin.hpp), then sleep in the kernel. Ground floor: knows
// nothing of tasklets.
//
// Fair: tickets are served in order, so a thread that hands the lock over and asks again queues
// behind every thread already waiting (no starvation).
#pragma once

#include <atomic>
#include <cstdint>

namespace stackless::detail {

class global_lock {
 public:
  // acquire blocks the calling OS thread until it holds the lock.
  void acquire() noexcept;
  // release lets the next ticket in.
  void release() noexcept;
  // hand_over: the holder queues behind every waiting thread, then releases, and returns when its
  // turn comes again — so the hand-over really happens even if the woken thread is slow to start.
  void hand_over() noexcept;
  // contended: another thread waits for the lock (read by the holder).
  bool contended() const noexcept {
    return next_ticket_.load(std::memory_order_relaxed) -
               serving_.load(std::memory_order_relaxed) > 1;
  }
  // handovers: how many times the lock went from one thread to a waiting other (statistics).
  std::uint64_t handovers() const noexcept { return handovers_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint32_t> next_ticket_{0};
  std::atomic<std::uint32_t> serving_{0};
  std::atomic<std::uint64_t> handovers_{0};
};

}  // namespace stackless::detail
