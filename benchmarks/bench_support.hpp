// bench_support.hpp — what the multi-threaded benchmarks share: a busy third core, pinning a
// thread to a CPU, and running a body with or without the busy core.
//
// Waking a thread whose core has gone idle is slow on a virtual machine (the hypervisor must wake
// the halted vCPU), so the cross-thread benchmarks come in two variants: idle (threads pinned to
// different CPUs, every wake-up crosses to an idle core) and busy (unpinned, with busy_core
// spinning so that no core goes idle).
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>

namespace bench {

// busy_core keeps a core busy for its lifetime: a std::thread spinning on a flag, using neither
// the runtime nor any peer.
class busy_core {
 public:
  busy_core()
      : spinner_([this] {
          while (!stop_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
        }) {}
  ~busy_core() {
    stop_.store(true, std::memory_order_relaxed);
    spinner_.join();
  }
  busy_core(const busy_core&) = delete;
  busy_core& operator=(const busy_core&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread spinner_;
};

// pinned pins the calling thread to one CPU for its lifetime and then restores its previous
// affinity. The idle variants pin the two threads to different CPUs, so that every wake-up
// crosses to a core that has gone idle (unpinned, the kernel sometimes puts both threads on one
// core and a wake-up becomes a cheap same-core switch, which makes runs bimodal). A no-op with
// fewer than two CPUs or when Pin is false.
template <bool Pin>
class pinned {
 public:
  explicit pinned([[maybe_unused]] int cpu) {
    if constexpr (Pin) {
      if (std::thread::hardware_concurrency() < 2) return;
      if (pthread_getaffinity_np(pthread_self(), sizeof previous_, &previous_) != 0) return;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      set_ = pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
    }
  }
  ~pinned() {
    if (set_) pthread_setaffinity_np(pthread_self(), sizeof previous_, &previous_);
  }
  pinned(const pinned&) = delete;
  pinned& operator=(const pinned&) = delete;

 private:
  cpu_set_t previous_{};
  bool set_ = false;
};

// with_load runs body with (Busy) or without a busy third core.
template <bool Busy, class F>
void with_load(F&& body) {
  if constexpr (Busy) {
    busy_core busy;
    body();
  } else {
    body();
  }
}

}  // namespace bench
