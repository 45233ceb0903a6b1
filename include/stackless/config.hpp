// stackless/config.hpp — the runtime's configuration, in one documented struct.
#pragma once

#include <chrono>
#include <cstddef>

namespace stackless {

// threading selects the threading model (see docs/guide.md, "Threads").
//   free:        every OS thread has its own scheduler and runs truly in parallel (default).
//                atomic stops involuntary switches among the tasklets of its own thread only.
//   global_lock: like CPython's GIL: a thread holds the lock from its first use of the runtime and
//                only the holder runs tasklet code. At a tick point, once it has held the lock for
//                config::switch_interval and another thread waits, it hands the lock over (fairly:
//                the waiters are served in order) — unless the current tasklet is atomic, which
//                makes atomic a critical section against every tasklet of every thread. Parking,
//                sleeping and allow_threads release the lock.
enum class threading { free, global_lock };

// config holds every tunable of the runtime. Every member has a safe, small default. Use
// designated initializers: configure({.default_stack_size = 256 * 1024}).
struct config {
  // default_stack_size: usable bytes of a dedicated stack when tasklet_options::stack_size is 0.
  // Rounded up to whole pages. Only the pages a tasklet touches cost memory. Under
  // AddressSanitizer the runtime multiplies stack sizes by 4 (its frames are larger).
  std::size_t default_stack_size = 64 * 1024;
  // stack_cache_limit: free stacks each thread keeps for reuse. 0 disables the cache.
  std::size_t stack_cache_limit = 16;
  // record_cache_limit: freed tasklet records (a few hundred bytes each) each thread keeps for
  // reuse. 0 disables the cache.
  std::size_t record_cache_limit = 64;
  // threads: the threading model.
  threading threads = threading::free;
  // switch_interval: in global_lock mode, how long a thread may hold the lock while another
  // thread waits before it hands it over at a tick point. 0: at every tick point.
  std::chrono::microseconds switch_interval{5000};
  // spill_threshold: spill(f) runs f on a fresh segment (of default_stack_size bytes, at least
  // 4 * spill_threshold) when fewer bytes than this remain on the stack it is called on.
  std::size_t spill_threshold = 16 * 1024;
  // guarded_stack_limit: on kernels before Linux 6.13, how many stacks of the process may carry a
  // guard page at once. Such a guard page costs two kernel memory mappings and Linux allows about
  // 65,000 per process (vm.max_map_count); stacks beyond the limit rely on a canary at their low
  // end, checked at each switch-out. From Linux 6.13 (MADV_GUARD_INSTALL) every stack gets a guard
  // region that costs no mapping, and the limit does not apply. 0: no guards at all (canaries).
  std::size_t guarded_stack_limit = 8192;
  // worker_threads: threads of the default thread_pool (call_async, async); 0 = the hardware's
  // count (at least 2).
  std::size_t worker_threads = 0;
};

// configure sets the runtime's configuration. Call it before the runtime is first used (before
// the first tasklet, scheduler call or current()).
// Switches: never. Threads: any, once.
// Errors: runtime_error if the runtime is already in use; std::invalid_argument for a value that
// cannot work (a default stack smaller than 8 KiB).
void configure(const config& c);

// current_config returns the configuration in force.
const config& current_config() noexcept;

// allow_threads releases the global lock (threading::global_lock) for its lifetime, so that other
// threads run while this one makes a blocking call that is not the runtime's own (a blocking
// read, std::thread::join, a long computation that touches no tasklet state):
//
//   { stackless::allow_threads unlocked; worker.join(); }
//
// Do not use the runtime (tasklets, channels, …) inside it. A no-op in free mode and in a thread
// that holds no lock. Switches: never (but the destructor may wait for the lock).
class allow_threads {
 public:
  allow_threads() noexcept;
  ~allow_threads();
  allow_threads(const allow_threads&) = delete;
  allow_threads& operator=(const allow_threads&) = delete;

 private:
  bool released_ = false;
};

}  // namespace stackless
