#include "threads/parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <mutex>


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

void parker::park_until(std::int64_t deadline_ns, bool may_spin) noexcept {
  if (state_.exchange(empty, std::memory_order_acquire) == permit) return;
  // Taking the permit is an exchange, not a store: it must synchronize with the latest unpark, so
  // that whatever that unpark's caller published before it is visible when we re-check.
  std::uint32_t expected = empty;
  if ((may_spin &&
       spin_.spin([this] { return state_.load(std::memory_order_relaxed) == permit; },
                  deadline_ns)) ||
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
