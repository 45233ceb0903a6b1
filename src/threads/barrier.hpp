// barrier — the heavy side of an asymmetric memory barrier (Linux membarrier).
//
// A fast path that only needs a compiler barrier, paired with a rare slow path that calls
// heavy_barrier(), is ordered as if both had full fences: heavy_barrier() makes every running
// thread of the process execute a full memory barrier.
#pragma once

namespace stackless::detail {

// heavy_barrier_available registers the process for expedited membarrier once; false when the
// kernel refuses (then callers must not rely on the asymmetric scheme).
bool heavy_barrier_available() noexcept;
// heavy_barrier issues the barrier. Precondition: heavy_barrier_available().
void heavy_barrier() noexcept;

}  // namespace stackless::detail
