// waiters — the wait queue behind every lock of sync.hpp (and futures), shared with src/async.
#pragma once

#include <atomic>
#include <cstddef>

#include "core/thread_state.hpp"
#include "core/wait.hpp"

namespace stackless::detail {

struct sync_waiters {
  wait_queue queue;
  std::atomic<std::ptrdiff_t> waiting{0};  // linked waiters (see sync.cpp)
};

// wake_first ends the wait of the first waiter with `outcome`; false if there was none.
bool wake_first(thread_state& ts, sync_waiters* w, wait_outcome outcome) noexcept;
// wake_first_any: the same from any thread, also one without a scheduler.
bool wake_first_any(sync_waiters* w, wait_outcome outcome) noexcept;

}  // namespace stackless::detail
