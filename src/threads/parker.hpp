// parker — puts an OS thread to sleep until another thread unparks it or a deadline passes.
//
// Ground floor: a futex word per thread. An unpark() that comes before park() is not lost: the
// next park() returns at once (a permit, like std::binary_semaphore).
#pragma once

#include <atomic>
#include <cstdint>

namespace stackless::detail {

class parker {
 public:
  // park_until sleeps until unpark() or the steady_clock deadline (nanoseconds); spurious
  // returns are possible, so callers re-check their condition.
  void park_until(std::int64_t deadline_ns) noexcept;
  // unpark wakes the parked thread, or lets its next park_until return at once. Threads: any.
  void unpark() noexcept;

 private:
  std::atomic<std::uint32_t> permit_{0};
};

}  // namespace stackless::detail
