// timer_heap — deadlines in a binary min-heap, with O(log n) removal of any entry.
//
// Ground floor: knows nothing of tasklets. An entry lives in its owner's memory (a blocked
// tasklet's wait state) and records its heap index, so cancelling is cheap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace stackless::detail {

struct timer_entry {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::int64_t deadline = 0;  // steady_clock nanoseconds
  std::uint64_t sequence = 0; // ties fire in the order they were armed
  std::size_t index = npos;   // position in the heap; npos when not armed
  void* owner = nullptr;      // what to wake

  bool armed() const noexcept { return index != npos; }
};

class timer_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  // top is the entry with the earliest deadline. Precondition: !empty().
  timer_entry& top() const noexcept { return *heap_.front(); }
  // push arms e. Errors: std::bad_alloc.
  void push(timer_entry& e);
  // remove disarms e (no-op if it is not armed).
  void remove(timer_entry& e) noexcept;

 private:
  static bool before(const timer_entry* a, const timer_entry* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->sequence < b->sequence);
  }
  void place(std::size_t i, timer_entry* e) noexcept {
    heap_[i] = e;
    e->index = i;
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;

  std::vector<timer_entry*> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace stackless::detail
