#include "threads/parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

namespace stackless::detail {
namespace {

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value,
           const timespec* timeout) noexcept {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
}

}  // namespace

void parker::park_until(std::int64_t deadline_ns) noexcept {
  if (permit_.exchange(0, std::memory_order_acquire) == 1) return;
  timespec ts{};
  const timespec* timeout = nullptr;
  if (deadline_ns != INT64_MAX) {
    ts.tv_sec = deadline_ns / 1'000'000'000;
    ts.tv_nsec = deadline_ns % 1'000'000'000;
    timeout = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (steady_clock on Linux).
  futex(&permit_, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, timeout);
  permit_.store(0, std::memory_order_relaxed);
}

void parker::unpark() noexcept {
  if (permit_.exchange(1, std::memory_order_release) == 0)
    futex(&permit_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, nullptr);
}

}  // namespace stackless::detail
