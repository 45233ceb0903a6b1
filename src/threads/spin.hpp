// spin — spin, then sleep: how long a waiter should watch for its condition before it sleeps.
//
// Waking a sleeping thread costs from about a microsecond (when the core is busy anyway) to tens of
// microseconds (a virtual machine's idle vCPU must be woken by the hypervisor). A waiter that spins
// a little first catches most hand-offs between threads on idle cores without that cost. How long
// adapts to what spinning achieved: a spin that sees its condition doubles the budget for the next
// one, a spin that ends in sleep halves it, and when spins fail more than a third of the time,
// spinning stops for a while (the partner is slow, or cannot get a core because other work keeps
// the cores busy: then spinning only takes a core from it). Ground floor: one instance per waiting
// thread, used by that thread only.
#pragma once

#include <algorithm>
#include <cstdint>

#include <stackless/timer.hpp>

namespace stackless::detail {

class adaptive_spin {
 public:
  // Budget bounds (ns). A failed spin adds 2 to a score, a successful one takes 1 off; at
  // kQuietScore, no spinning for kQuietNs, and the next spin gets the full budget again.
  static constexpr std::int64_t kMinSpinNs = 2'000;
  static constexpr std::int64_t kMaxSpinNs = 100'000;
  static constexpr int kQuietScore = 4;
  static constexpr std::int64_t kQuietNs = 10'000'000;

  // spin watches done() for up to the budget (never past deadline_ns, steady ns) and returns
  // whether it became true.
  template <class Done>
  bool spin(Done done, std::int64_t deadline_ns) noexcept {
    const std::int64_t start = now_ns();
    if (start < quiet_until_) return false;
    const std::int64_t end = std::min(deadline_ns, start + budget_ns_);
    for (;;) {
      for (int i = 0; i < 32; ++i) {
        if (done()) {
          budget_ns_ = std::min(budget_ns_ * 2, kMaxSpinNs);
          if (score_ > 0) --score_;
          return true;
        }
        __builtin_ia32_pause();
      }
      if (now_ns() >= end) break;
    }
    if (end == deadline_ns) return false;  // cut short by the deadline: says nothing
    budget_ns_ = std::max(budget_ns_ / 2, kMinSpinNs);
    score_ += 2;
    if (score_ >= kQuietScore) {
      score_ = 0;
      quiet_until_ = now_ns() + kQuietNs;
      budget_ns_ = kMaxSpinNs;
    }
    return false;
  }

 private:
  std::int64_t budget_ns_ = kMaxSpinNs;
  std::int64_t quiet_until_ = 0;  // no spinning before this (steady ns)
  int score_ = 0;                 // of failed spins
};

}  // namespace stackless::detail
