// parker — puts an OS thread to sleep until another thread unparks it or a deadline passes.
//
// Ground floor: a futex word per thread. An unpark() that comes before park() is not lost: the
// next park() returns at once (a permit, like std::binary_semaphore). unpark() makes a system call
// only when the thread is really asleep.
//
// Spin, then sleep. Waking a sleeping thread costs from about a microsecond (when the core is
// busy anyway) to tens of microseconds (a virtual machine's idle vCPU must be woken by the
// hypervisor). So park_until first spins, watching the word. How long adapts to what spinning
// achieved: a spin that ends in an unpark doubles the budget for the next one, a spin that ends
// in sleep halves it, and when spins fail more than a third of the time, spinning stops for a
// while (the partner is slow to answer, or cannot get a core because other work keeps the cores
// busy: then spinning only takes a core from it). Ping-pong partners on idle cores keep spinning
// and never sleep.
#pragma once

#include <atomic>
#include <cstdint>

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

  // Spin budget bounds (ns). A failed spin adds 2 to a score, a successful one takes 1 off; at
  // kQuietScore, no spinning for kQuietNs, and the next spin gets the full budget again.
  static constexpr std::int64_t kMinSpinNs = 2'000;
  static constexpr std::int64_t kMaxSpinNs = 100'000;
  static constexpr int kQuietScore = 4;
  static constexpr std::int64_t kQuietNs = 10'000'000;

 private:
  enum : std::uint32_t { empty = 0, permit = 1, sleeping = 2 };
  bool spin_until(std::int64_t deadline_ns) noexcept;

  std::atomic<std::uint32_t> state_{empty};
  // Owner thread only: the spin budget, no spinning before quiet_until_ (steady ns), the score
  // of failed spins.
  std::int64_t spin_ns_ = kMaxSpinNs;
  std::int64_t quiet_until_ = 0;
  int failures_ = 0;
  parker* next_free_ = nullptr;  // in the pool of parkers given back
};

}  // namespace stackless::detail
