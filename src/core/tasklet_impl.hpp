// tasklet_impl — the tasklet record behind a `tasklet` handle.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <thread>

#include <stackless/tasklet.hpp>

#include "context/context.hpp"
#include "core/wait.hpp"
#include "stack/stack.hpp"

namespace stackless::detail {

struct thread_state;

// relaxed_flag: a bool other threads may read while its owner changes it.
class relaxed_flag {
 public:
  relaxed_flag& operator=(bool v) noexcept {
    v_.store(v, std::memory_order_relaxed);
    return *this;
  }
  operator bool() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> v_{false};
};

// relaxed_ptr: a pointer other threads may read while its owner changes it (a tasklet's owner is
// cleared when its thread ends). Reads and writes are relaxed atomics; whoever needs the value to
// be current re-reads it under the thread registry's mutex (post()).
template <class T>
class relaxed_ptr {
 public:
  relaxed_ptr() = default;
  relaxed_ptr& operator=(T* v) noexcept {
    p_.store(v, std::memory_order_relaxed);
    return *this;
  }
  operator T*() const noexcept { return p_.load(std::memory_order_relaxed); }
  T* operator->() const noexcept { return p_.load(std::memory_order_relaxed); }

 private:
  std::atomic<T*> p_{nullptr};
};

struct tasklet_impl {
  // References: one per handle (the owning thread holds one on its main tasklet). The runtime's
  // own hold is not counted: a tasklet that is queued, blocked, running, inside run() or just
  // finished is held by the runtime (held_by_runtime()). A record is freed, or a paused tasklet
  // killed, when it has no handle and the runtime does not hold it.
  std::atomic<int> refs{1};

  // Run-queue links (circular). Both null when the tasklet is not in a run queue.
  tasklet_impl* next = nullptr;
  tasklet_impl* prev = nullptr;
  // Registry links: every record of a thread, for teardown and introspection.
  tasklet_impl* reg_next = nullptr;
  tasklet_impl* reg_prev = nullptr;

  relaxed_ptr<thread_state> owner;  // null once the owning thread has ended
  std::thread::id thread;

  context ctx;
  stack_block stack;

  // The callable, constructed in place near the top of the stack.
  void* callable = nullptr;
  entry_fn entry = nullptr;
  destroy_fn destroy = nullptr;

  std::exception_ptr bomb;    // exception to throw when this tasklet next resumes (tempval)
  wait_state* wait = nullptr;  // set while blocked
  wait_queue joiners;         // tasklets blocked in join() on this one

  std::uint64_t id = 0;
  std::string name;

  bool is_main = false;
  relaxed_flag alive;    // can run or is running; false once ended (other threads read it)
  bool started = false;  // has run at least once
  bool atomic = false;
  bool ignore_nesting = false;
  bool block_trap = false;
  bool in_run = false;  // inside run(): on its thread's watchdog stack
  bool pending_irq = false;
  bool threadblock = false;  // inside run(threadblock): park rather than return on an empty queue  // a hard interrupt fell due while it could not be taken (atomic…)

  bool in_runqueue() const noexcept { return next != nullptr; }
  bool floating() const noexcept { return next == nullptr && wait == nullptr; }
};

}  // namespace stackless::detail
