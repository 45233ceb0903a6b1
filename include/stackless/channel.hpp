// stackless/channel.hpp — Stackless channels: rendezvous message passing between tasklets.
//
// A channel has no buffer. send() completes when a receiver takes the value; receive() completes
// when a sender hands one over. Whoever comes first waits in the channel's FIFO queue, so all
// waiters of a channel wait in the same direction and balance() counts them: > 0 senders waiting,
// < 0 receivers waiting (reference §3).
//
// Who runs after a hand-off to a waiting partner B in the same thread (reference §3.2):
//
//   schedule_all set            B is appended; the acting tasklet A stays queued and the tasklet
//                               after A runs next (A runs last).
//   preference == -direction    the waiting side is preferred: B is put right after A and runs
//   (send with -1, the default; at once; A stays queued and runs after the others.
//    receive with +1)
//   otherwise                   B is appended; A continues.
//
// Values are moved, never copied, from sender to receiver; move-only types work. An exception sent
// with send_exception/send_throw is thrown by the receiving receive().
//
// Closing (reference §3.4): close() marks the channel closing. Operations that find a partner
// still succeed (a closing channel can be drained); those that would block throw channel_closed;
// closed() == closing() && balance() == 0. close() wakes nobody, with one exception: a receiver
// blocked inside range-for iteration is woken and its loop ends (Stackless leaves it blocked, a
// known trap, stackless-dev #53).
//
// Lifetime: channel is a shared handle. A tasklet blocked on a channel keeps it alive, so nothing
// is ever silently abandoned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <stackless/errors.hpp>
#include <stackless/tasklet.hpp>
#include <stackless/timer.hpp>

namespace stackless {

namespace detail {
struct channel_core;
channel_core* channel_create();
void channel_add_ref(channel_core* c) noexcept;
void channel_release(channel_core* c) noexcept;

// channel_op: one send or receive in flight, type-erased.
struct channel_op {
  void* value = nullptr;          // send: T* (the source); receive: std::optional<T>* (the slot)
  std::exception_ptr exception;   // send_exception/send_throw: what the receiver throws
  void (*transfer)(void* slot, void* source) = nullptr;  // moves *source into *slot
  bool iterating = false;         // a receive made by range-for iteration
};
template <class T>
void transfer_value(void* slot, void* source) {
  static_cast<std::optional<T>*>(slot)->emplace(std::move(*static_cast<T*>(source)));
}

// channel_send: false on timeout. channel_receive: false on timeout or, for an iterating
// receive, at the end of iteration. Both throw as channel<T>::send/receive document.
bool channel_send(channel_core* c, channel_op& op, std::int64_t deadline);
bool channel_receive(channel_core* c, channel_op& op, std::int64_t deadline);

int channel_balance(const channel_core* c) noexcept;
int channel_preference(const channel_core* c) noexcept;
void channel_set_preference(channel_core* c, int p) noexcept;
bool channel_schedule_all(const channel_core* c) noexcept;
void channel_set_schedule_all(channel_core* c, bool v) noexcept;
tasklet channel_queue(const channel_core* c);
void channel_close(channel_core* c) noexcept;
void channel_open(channel_core* c) noexcept;
bool channel_closing(const channel_core* c) noexcept;
}  // namespace detail

template <class T>
class channel {
  static_assert(std::is_move_constructible_v<T>, "channel<T> needs a move-constructible T");

 public:
  using value_type = T;

  // channel() makes a new, open channel with preference -1 and schedule_all false.
  channel() : core_(detail::channel_create()) {}
  channel(const channel& o) noexcept : core_(o.core_) { detail::channel_add_ref(core_); }
  channel(channel&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  channel& operator=(channel o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~channel() {
    if (core_ != nullptr) detail::channel_release(core_);
  }

  // send hands value to a receiver, waiting in the channel's queue until one comes.
  // Switches (see the hand-off table above). Errors: channel_closed when it would block on a
  // closing channel; runtime_error "this tasklet does not like to be blocked." (block_trap),
  // "switch_trap", "Recursive channel call due to callbacks!"; deadlock_error when nothing else
  // could ever run; tasklet_exit or anything thrown into the tasklet while it waits (the value is
  // then not sent).
  void send(T value) {
    detail::channel_op op;
    op.value = &value;
    op.transfer = &detail::transfer_value<T>;
    detail::channel_send(core_, op, detail::no_deadline);
  }

  // receive takes a value from a sender, waiting until one comes. If the sender sent an
  // exception, receive throws it. Switches. Errors: as send.
  T receive() {
    std::optional<T> slot;
    detail::channel_op op;
    op.value = &slot;
    detail::channel_receive(core_, op, detail::no_deadline);
    return std::move(*slot);
  }

  // send_exception<E>(args...) sends E(args...): the receiver's receive() throws it.
  template <class E, class... A>
  void send_exception(A&&... args) {
    send_throw(std::make_exception_ptr(E(std::forward<A>(args)...)));
  }
  // send_throw sends e: the receiver's receive() rethrows this very exception object.
  void send_throw(std::exception_ptr e) {
    if (!e) throw std::invalid_argument("send_throw needs an exception");
    detail::channel_op op;
    op.exception = std::move(e);
    detail::channel_send(core_, op, detail::no_deadline);
  }
  // send_sequence sends every element of r in order (each may block) and returns how many were
  // sent. It sends no terminator.
  template <class Range>
  std::size_t send_sequence(Range&& r) {
    std::size_t n = 0;
    for (auto&& v : r) {
      send(T(std::forward<decltype(v)>(v)));
      ++n;
    }
    return n;
  }

  // receive_for is receive() that gives up after d: an empty optional on timeout.
  template <class Rep, class Per>
  std::optional<T> receive_for(std::chrono::duration<Rep, Per> d) {
    return receive_by(detail::deadline_after(d));
  }
  // receive_until is receive() that gives up at t (any clock).
  template <class Clock, class Dur>
  std::optional<T> receive_until(std::chrono::time_point<Clock, Dur> t) {
    return receive_by(detail::deadline_at(t));
  }
  // try_receive takes a value only if a sender is waiting; never blocks.
  std::optional<T> try_receive() { return receive_by(detail::now_ns()); }

  // send_for is send() that gives up after d: false on timeout, and then value is untouched (it
  // is moved from only when a receiver takes it).
  template <class Rep, class Per>
  bool send_for(T& value, std::chrono::duration<Rep, Per> d) {
    return send_by(value, detail::deadline_after(d));
  }
  // send_until is send() that gives up at t (any clock); value is untouched on timeout.
  template <class Clock, class Dur>
  bool send_until(T& value, std::chrono::time_point<Clock, Dur> t) {
    return send_by(value, detail::deadline_at(t));
  }
  // try_send hands value over only if a receiver is waiting; never blocks (value untouched
  // otherwise).
  bool try_send(T& value) { return send_by(value, detail::now_ns()); }

  // balance: waiting senders (> 0) or minus waiting receivers (< 0). Switches: never.
  int balance() const noexcept { return detail::channel_balance(core_); }
  // preference: -1 (default) prefers the receiver, +1 the sender, 0 neither; see the table above.
  int preference() const noexcept { return detail::channel_preference(core_); }
  // set_preference clamps p to -1..1.
  void set_preference(int p) noexcept { detail::channel_set_preference(core_, p); }
  // schedule_all: a hand-off appends the partner and moves on to the next tasklet (overrides
  // preference).
  bool schedule_all() const noexcept { return detail::channel_schedule_all(core_); }
  void set_schedule_all(bool v) noexcept { detail::channel_set_schedule_all(core_, v); }
  // queue: the first waiting tasklet (empty handle if none). A blocked tasklet's next()/prev()
  // are empty (they are run-queue neighbours); balance() gives the count of waiters.
  tasklet queue() const { return detail::channel_queue(core_); }
  // close / open: see "Closing" above.
  void close() noexcept { detail::channel_close(core_); }
  void open() noexcept { detail::channel_open(core_); }
  bool closing() const noexcept { return detail::channel_closing(core_); }
  bool closed() const noexcept { return closing() && balance() == 0; }

  // Range-for: `for (T v : ch)` receives until the channel is closing with no sender waiting.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;

    iterator() = default;
    T& operator*() { return *value_; }
    T* operator->() { return &*value_; }
    iterator& operator++() {
      next();
      return *this;
    }
    void operator++(int) { next(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.channel_.has_value();
    }

   private:
    friend class channel;
    explicit iterator(const channel& c) : channel_(c) { next(); }
    void next() {
      value_.reset();
      detail::channel_op op;
      op.value = &value_;
      op.iterating = true;
      if (!detail::channel_receive(channel_->core_, op, detail::no_deadline)) channel_.reset();
    }
    std::optional<channel> channel_;  // keeps the channel alive while the loop runs
    std::optional<T> value_;
  };
  // begin receives the first value (it may block).
  iterator begin() { return iterator(*this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  friend bool operator==(const channel& a, const channel& b) noexcept { return a.core_ == b.core_; }

  // Internal: the type-erased channel.
  detail::channel_core* core() const noexcept { return core_; }

 private:
  std::optional<T> receive_by(std::int64_t deadline) {
    std::optional<T> slot;
    detail::channel_op op;
    op.value = &slot;
    detail::channel_receive(core_, op, deadline);
    return slot;
  }
  bool send_by(T& value, std::int64_t deadline) {
    detail::channel_op op;
    op.value = &value;
    op.transfer = &detail::transfer_value<T>;
    return detail::channel_send(core_, op, deadline);
  }

  detail::channel_core* core_;
};

}  // namespace stackless
