// stackless/select.hpp — wait on several channel operations, run exactly one.
//
//   std::size_t i = stackless::select(
//       stackless::on_receive(requests, [](request r) { handle(r); }),
//       stackless::on_send(replies, reply, [] { ++sent; }),
//       stackless::after(std::chrono::milliseconds(50), [] { on_timeout(); }));
//
// select returns the index of the case that completed and calls its function (after the
// operation, outside the runtime). Cases:
//   on_receive(ch, fn)      receive a value v from ch, then fn(std::move(v)); fn may be omitted
//   on_send(ch, value, fn)  send value on ch, then fn(); fn may be omitted
//   after(duration, fn)     nothing else completed within duration: fn()
//   or_else(fn)             nothing is ready right now: fn() without blocking
// At most one after() and one or_else() per select.
//
// Semantics (Go's, with Stackless' accounting):
// - If cases are ready at once, one of them is chosen uniformly at random (each thread has its
//   own generator), so no case can starve another.
// - Otherwise the tasklet waits on every channel at once: it counts in the balance() and queue()
//   of each, and a partner on any of them completes that case and removes the tasklet from all
//   the others. A kill or a throw removes it from all of them too.
// - A hand-off to a waiting select, and a case that select completes on a waiting partner, follow
//   the channel's preference/schedule_all like any operation.
// - While waiting, the tasklet's blocked() is the direction of its first channel case; it counts
//   as one wait in memory_stats().wait_nodes.
// - A receive case whose sender sent an exception throws it from select().
// - A channel may appear in only one case of a select (std::invalid_argument otherwise).
// - On a closing channel a case that would have to wait is skipped; if every channel case is
//   closing and there is no after()/or_else(), select throws channel_closed.
// - The channel callback is not called for select.
// Switches (unless a case is ready or or_else is given). Errors: channel_closed, runtime_error
// ("this tasklet does not like to be blocked.", "switch_trap"), deadlock_error, and what a
// receive case or a function throws.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <stackless/channel.hpp>
#include <stackless/timer.hpp>

namespace stackless {

namespace detail {
enum class select_kind : unsigned char { receive, send, after, or_else };

// select_case: one case, type-erased, as select_impl sees it.
struct select_case {
  select_kind kind;
  channel_core* core = nullptr;
  channel_op op;
  std::int64_t deadline = no_deadline;  // after()
};

// select_impl completes exactly one case and returns its index.
std::size_t select_impl(select_case* cases, std::size_t n);

struct no_action {
  template <class... A>
  void operator()(A&&...) const noexcept {}
};

template <class T, class F>
struct receive_case {
  channel<T>& ch;
  F fn;
  std::optional<T> slot;
  void fill(select_case& c) {
    c.kind = select_kind::receive;
    c.core = ch.core();
    c.op.value = &slot;
  }
  void fire() { fn(std::move(*slot)); }
};

template <class T, class F>
struct send_case {
  channel<T>& ch;
  T value;
  F fn;
  void fill(select_case& c) {
    c.kind = select_kind::send;
    c.core = ch.core();
    c.op.value = &value;
    c.op.transfer = &transfer_value<T>;
  }
  void fire() { fn(); }
};

template <class F>
struct after_case {
  std::int64_t deadline;
  F fn;
  void fill(select_case& c) {
    c.kind = select_kind::after;
    c.deadline = deadline;
  }
  void fire() { fn(); }
};

template <class F>
struct else_case {
  F fn;
  void fill(select_case& c) { c.kind = select_kind::or_else; }
  void fire() { fn(); }
};
}  // namespace detail

template <class T, class F>
auto on_receive(channel<T>& ch, F&& fn) {
  return detail::receive_case<T, std::decay_t<F>>{ch, std::forward<F>(fn), std::nullopt};
}
template <class T>
auto on_receive(channel<T>& ch) {
  return on_receive(ch, detail::no_action{});
}
template <class T, class U, class F>
auto on_send(channel<T>& ch, U&& value, F&& fn) {
  return detail::send_case<T, std::decay_t<F>>{ch, T(std::forward<U>(value)), std::forward<F>(fn)};
}
template <class T, class U>
auto on_send(channel<T>& ch, U&& value) {
  return on_send(ch, std::forward<U>(value), detail::no_action{});
}
template <class Rep, class Per, class F>
auto after(std::chrono::duration<Rep, Per> d, F&& fn) {
  return detail::after_case<std::decay_t<F>>{detail::deadline_after(d), std::forward<F>(fn)};
}
template <class Rep, class Per>
auto after(std::chrono::duration<Rep, Per> d) {
  return after(d, detail::no_action{});
}
template <class F>
auto or_else(F&& fn) {
  return detail::else_case<std::decay_t<F>>{std::forward<F>(fn)};
}
inline auto or_else() { return or_else(detail::no_action{}); }

// select: see the top of this file.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "select needs at least one case");
  std::array<detail::select_case, sizeof...(Cases)> erased{};
  std::size_t i = 0;
  (cases.fill(erased[i++]), ...);
  const std::size_t fired = detail::select_impl(erased.data(), erased.size());
  i = 0;
  ((i++ == fired ? (cases.fire(), 0) : 0), ...);
  return fired;
}

}  // namespace stackless
