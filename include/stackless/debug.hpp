// stackless/debug.hpp — statistics about what the runtime holds.
#pragma once

#include <cstddef>

namespace stackless {

// memory_statistics: a snapshot of the runtime's memory, summed over all threads.
struct memory_statistics {
  std::size_t live_tasklets = 0;         // tasklet records in existence (main tasklets not counted)
  std::size_t stacks_in_use = 0;         // stacks owned by tasklets
  std::size_t stacks_cached = 0;         // free stacks kept for reuse in the per-thread caches
  std::size_t guarded_stacks = 0;        // stacks (in use or cached) that carry a guard page
  std::size_t stack_bytes_reserved = 0;  // address space of all stacks, in use and cached
  std::size_t wait_nodes = 0;            // tasklets blocked in a wait queue
  std::size_t records_cached = 0;        // freed tasklet records kept for reuse (per-thread caches)
};

// memory_stats returns the current statistics. Switches: never. Threads: any.
memory_statistics memory_stats();

}  // namespace stackless
