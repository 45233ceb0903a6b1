// stackless/timer.hpp — sleeping: sleep_for / sleep_until block only the calling tasklet.
//
// Every thread keeps a heap of deadlines. Due deadlines are checked every 16th voluntary switch
// while tasklets are runnable; when no tasklet of the thread is runnable but a deadline is
// pending, the thread sleeps until it (no busy wait). run() does not return while tasklets of
// its thread sleep: a sleeping tasklet is going to be runnable, so the queue is not yet empty.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace stackless {

namespace detail {
// Deadlines are std::chrono::steady_clock nanoseconds; no_deadline means "wait forever".
inline constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
template <class Rep, class Per>
std::int64_t deadline_after(std::chrono::duration<Rep, Per> d) noexcept {
  const std::int64_t now = now_ns();
  if (d <= d.zero()) return now;
  // Beyond about 285 years, wait forever (and never overflow the nanosecond count).
  if (std::chrono::duration<double>(d).count() > 9e9) return no_deadline;
  return now + std::chrono::ceil<std::chrono::nanoseconds>(d).count();
}
template <class Clock, class Dur>
std::int64_t deadline_at(std::chrono::time_point<Clock, Dur> t) noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  } else {
    return deadline_after(t - Clock::now());
  }
}
// sleep_until_ns blocks the current tasklet until the deadline.
void sleep_until_ns(std::int64_t deadline);
}  // namespace detail

// sleep_for blocks the calling tasklet for at least d; other tasklets of the thread run meanwhile.
// A zero or negative d yields like schedule() (the caller runs again after the others).
// Switches. Errors: runtime_error "this tasklet does not like to be blocked." (block_trap),
// "switch_trap"; tasklet_exit or any exception thrown into it while it sleeps.
template <class Rep, class Per>
void sleep_for(std::chrono::duration<Rep, Per> d) {
  detail::sleep_until_ns(detail::deadline_after(d));
}

// sleep_until blocks the calling tasklet until t (any clock; non-steady clocks are converted
// once, at the call). Switches. Errors: as sleep_for.
template <class Clock, class Dur>
void sleep_until(std::chrono::time_point<Clock, Dur> t) {
  detail::sleep_until_ns(detail::deadline_at(t));
}

}  // namespace stackless
