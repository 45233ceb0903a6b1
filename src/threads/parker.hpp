// parker — puts an OS thread to sleep until another thread unparks it or a deadline passes.
//
// Ground floor: a futex word per thread. An unpark() that comes before park() is not lost: the
// next park() returns at once (a permit, like std::binary_semaphore). unpark() makes a system call
// only when the thread is really asleep.
//
// Spin, then sleep: park_until first spins, watching the word (threads/spin.hpp). Ping-pong
// partners on idle cores keep spinning and never sleep.
#pragma once

#include <atomic>
#include <cstdint>

#include "threads/spin.hpp"

namespace stackless::detail {

class parker {
 public:
  // park_until sleeps until unpark() or the steady_clock deadline (nanoseconds), spinning first
  // unless may_spin is false; spurious returns are possible, so callers re-check their condition.
  void park_until(std::int64_t deadline_ns, bool may_spin = true) noexcept;
  // unpark wakes the parked thread, or lets its next park_until return at once. Threads: any.
  void unpark() noexcept;

  // lease hands out a parker; give_back returns it for reuse. Parkers are never freed, so another
  // thread may unpark one after its thread ended without a lock keeping it alive: the next thread
  // to lease it sees at most one spurious return.
  static parker& lease();
  static void give_back(parker& p) noexcept;

 private:
  enum : std::uint32_t { empty = 0, permit = 1, sleeping = 2 };

  std::atomic<std::uint32_t> state_{empty};
  adaptive_spin spin_;            // owner thread only
  parker* next_free_ = nullptr;  // in the pool of parkers given back
};

}  // namespace stackless::detail
