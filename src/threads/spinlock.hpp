// spinlock — a small test-and-test-and-set lock for short critical sections (channel queues).
// Holders never switch tasklets or block while holding it.
#pragma once

#include <atomic>
#include <thread>

namespace stackless::detail {

class spinlock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins++ < 64)
          __builtin_ia32_pause();
        else
          std::this_thread::yield();
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace stackless::detail
