#include "threads/global_lock.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdint>

#include "threads/spin.hpp"

namespace stackless::detail {
namespace {

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t value) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, value, nullptr,
            nullptr, 0);
}
void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX,
            nullptr, nullptr, 0);
}

// wait_for_ticket spins a while (adaptively, per thread: threads/spin.hpp), then sleeps until
// serving reaches ticket.
void wait_for_ticket(std::atomic<std::uint32_t>& serving, std::uint32_t ticket) noexcept {
  thread_local adaptive_spin spin;
  if (spin.spin([&] { return serving.load(std::memory_order_acquire) == ticket; }, INT64_MAX))
    return;
  for (std::uint32_t now; (now = serving.load(std::memory_order_acquire)) != ticket;)
    futex_wait(&serving, now);
}

}  // namespace

void global_lock::hand_over() noexcept {
  const std::uint32_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  release();
  wait_for_ticket(serving_, ticket);
}

void global_lock::acquire() noexcept {
  wait_for_ticket(serving_, next_ticket_.fetch_add(1, std::memory_order_relaxed));
}

void global_lock::release() noexcept {
  // A waiter takes its ticket before it sleeps, so contended() sees every sleeper; one that
  // arrives after this check finds serving_ changed and does not sleep. (After hand_over's own
  // ticket, contended() counts it too: a harmless extra wake.)
  const bool waiters = contended();
  serving_.fetch_add(1, std::memory_order_release);
  if (waiters) {
    handovers_.fetch_add(1, std::memory_order_relaxed);
    futex_wake_all(&serving_);
  }
}

}  // namespace stackless::detail
