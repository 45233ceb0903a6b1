#include "threads/parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <mutex>

#include <stackless/timer.hpp>

namespace stackless::detail {
namespace {

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value,
           const timespec* timeout) noexcept {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
}

std::mutex g_pool_mutex;
parker* g_pool = nullptr;

}  // namespace

parker& parker::lease() {
  {
    std::lock_guard lock(g_pool_mutex);
    if (parker* p = g_pool) {
      g_pool = p->next_free_;
      p->next_free_ = nullptr;
      return *p;
    }
  }
  return *new parker();  // never deleted (see the class comment)
}

void parker::give_back(parker& p) noexcept {
  std::lock_guard lock(g_pool_mutex);
  p.next_free_ = g_pool;
  g_pool = &p;
}

// spin_until watches the word for a permit for up to the spin budget (never past the deadline)
// and adapts the budget to the outcome.
bool parker::spin_until(std::int64_t deadline_ns) noexcept {
  const std::int64_t start = now_ns();
  if (start < quiet_until_) return false;
  const std::int64_t end = std::min(deadline_ns, start + spin_ns_);
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (state_.load(std::memory_order_relaxed) == permit) {
        spin_ns_ = std::min(spin_ns_ * 2, kMaxSpinNs);
        if (failures_ > 0) --failures_;
        return true;
      }
      __builtin_ia32_pause();
    }
    if (now_ns() >= end) break;
  }
  if (end == deadline_ns) return false;  // cut short by the deadline: says nothing
  spin_ns_ = std::max(spin_ns_ / 2, kMinSpinNs);
  failures_ += 2;
  if (failures_ >= kQuietScore) {
    failures_ = 0;
    quiet_until_ = now_ns() + kQuietNs;
    spin_ns_ = kMaxSpinNs;
  }
  return false;
}

void parker::park_until(std::int64_t deadline_ns, bool may_spin) noexcept {
  if (state_.exchange(empty, std::memory_order_acquire) == permit) return;
  // Taking the permit is an exchange, not a store: it must synchronize with the latest unpark, so
  // that whatever that unpark's caller published before it is visible when we re-check.
  std::uint32_t expected = empty;
  if ((may_spin && spin_until(deadline_ns)) ||
      !state_.compare_exchange_strong(expected, sleeping, std::memory_order_acquire)) {
    state_.exchange(empty, std::memory_order_acquire);
    return;
  }
  timespec ts{};
  const timespec* timeout = nullptr;
  if (deadline_ns != INT64_MAX) {
    ts.tv_sec = deadline_ns / 1'000'000'000;
    ts.tv_nsec = deadline_ns % 1'000'000'000;
    timeout = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (steady_clock on Linux).
  futex(&state_, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, sleeping, timeout);
  state_.exchange(empty, std::memory_order_acquire);
}

void parker::unpark() noexcept {
  if (state_.exchange(permit, std::memory_order_release) == sleeping)
    futex(&state_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, nullptr);
}

}  // namespace stackless::detail
