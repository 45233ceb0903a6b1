// watchdog — install/uninstall of the interrupt watchdog by run(run_options).
#pragma once

#include <stackless/watchdog.hpp>

#include "core/thread_state.hpp"

namespace stackless::detail {

// watchdog_install makes owner the thread's interrupt watchdog with o's budget and flags.
void watchdog_install(thread_state& ts, tasklet_impl* owner, const run_options& o) noexcept;
// init_tick_budget sets the calling thread's tick budget for when no timed run() is active.
void init_tick_budget() noexcept;
// watchdog_uninstall ends it and returns the hard-interrupted tasklet (a counted reference), if
// any.
tasklet_impl* watchdog_uninstall(thread_state& ts) noexcept;

}  // namespace stackless::detail
