#include "timer/timer_heap.hpp"

namespace stackless::detail {

void timer_heap::push(timer_entry& e) {
  heap_.push_back(&e);
  e.sequence = next_sequence_++;
  e.index = heap_.size() - 1;
  sift_up(e.index);
}

void timer_heap::remove(timer_entry& e) noexcept {
  if (!e.armed()) return;
  const std::size_t i = e.index;
  timer_entry* last = heap_.back();
  heap_.pop_back();
  e.index = timer_entry::npos;
  if (last == &e) return;
  place(i, last);
  sift_up(i);
  sift_down(last->index);
}

void timer_heap::sift_up(std::size_t i) noexcept {
  timer_entry* e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(e, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void timer_heap::sift_down(std::size_t i) noexcept {
  timer_entry* e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], e)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, e);
}

}  // namespace stackless::detail
