// stack — mmap'ed tasklet stacks: guard pages, canaries, and a bounded per-thread cache.
//
// Ground floor: knows nothing of tasklets. A guard page costs two kernel memory mappings and Linux
// allows about 65,000 per process (vm.max_map_count), so only a bounded number of stacks
// (config::guarded_stack_limit, process-wide) get one; the others carry a canary at their low end
// that the core checks at each switch-out.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace stackless::detail {

struct stack_block {
  void* map_base = nullptr;  // start of the mapping (the guard page, if any)
  std::size_t map_size = 0;  // bytes mapped
  void* low = nullptr;       // lowest usable address
  std::size_t size = 0;      // usable bytes
  bool guarded = false;
  bool guard_region = false;  // the guard is a madvise guard region, not a PROT_NONE mapping
  explicit operator bool() const noexcept { return low != nullptr; }
};

// stack_counters: a snapshot of stack memory.
struct stack_counters {
  long in_use = 0, cached = 0, guarded = 0, bytes_reserved = 0;
};

// page_size returns the system page size.
std::size_t page_size() noexcept;

// stack_cache: the free stacks of one thread, at most `limit` of them.
class stack_cache {
 public:
  stack_cache() = default;
  stack_cache(const stack_cache&) = delete;
  stack_cache& operator=(const stack_cache&) = delete;
  ~stack_cache();

  // acquire returns a stack with at least `size` usable bytes (rounded up to pages), from the cache
  // when one of that size is there. Errors: std::bad_alloc when mmap fails.
  stack_block acquire(std::size_t size, std::size_t guarded_limit);
  // release puts s back into the cache, or unmaps it when the cache is full.
  void release(stack_block s, std::size_t limit) noexcept;
  std::size_t size() const noexcept { return free_.size(); }
  // counters: this cache's stacks (in use, cached, bytes). Threads: any (relaxed reads).
  stack_counters counters() const noexcept;
  // discard unmaps a stack whose cache (thread) is gone.
  static void discard(stack_block s) noexcept;

 private:
  // Only the owning thread writes these (load + store, no locked instruction); any thread reads.
  static void bump(std::atomic<long>& c, long d) noexcept {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  std::vector<stack_block> free_;
  std::atomic<long> in_use_{0};
  std::atomic<long> cached_{0};
  std::atomic<long> bytes_{0};
};

// The canary: a pattern at the low end of an unguarded stack.
void write_canary(const stack_block& s) noexcept;
bool canary_intact(const stack_block& s) noexcept;

// global_stack_counters: what no live cache accounts for (stacks of ended threads, discarded
// stacks) plus the process-wide number of guarded stacks. Add each live cache's counters().
stack_counters global_stack_counters() noexcept;

// Overflow reporting. The core installs `identify`: given a faulting address, it returns true and
// prints the report if the address is in the guard page of the running tasklet's stack (it then
// aborts). install_overflow_handler installs the SIGSEGV/SIGBUS handler once per process; each
// thread that runs tasklets needs an alternate signal stack (thread_signal_stack).
using overflow_identify = bool (*)(const void* fault_address) noexcept;
void install_overflow_handler(overflow_identify identify);

// thread_signal_stack: RAII alternate signal stack for the calling thread (kept if the thread
// already has one).
class thread_signal_stack {
 public:
  thread_signal_stack();
  ~thread_signal_stack();
  thread_signal_stack(const thread_signal_stack&) = delete;
  thread_signal_stack& operator=(const thread_signal_stack&) = delete;

 private:
  void* memory_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace stackless::detail
