// thread_state — everything the runtime keeps per OS thread, in one struct.
#pragma once

#include <cstddef>
#include <exception>
#include <vector>

#include "core/tasklet_impl.hpp"
#include "stack/stack.hpp"

namespace stackless::detail {

struct thread_state {
  thread_state();
  ~thread_state();
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;

  tasklet_impl* main = nullptr;
  tasklet_impl* current = nullptr;
  // head: the run-queue position. Equal to current while current is in the run queue; when current
  // leaves it, head is the tasklet that followed it (the next to run). Null when the queue is empty.
  tasklet_impl* head = nullptr;
  int runcount = 0;

  std::vector<tasklet_impl*> watchdogs;  // callers of run(), innermost last
  int switch_trap = 0;
  bool in_schedule_callback = false;

  tasklet_impl* dead = nullptr;  // finished tasklet whose stack is freed right after its last switch
  tasklet_impl registry;         // sentinel of the list of every record of this thread

  stack_cache stacks;
  thread_signal_stack signal_stack;

  // Run-queue geometry (reference §1.5). append: just before head, i.e. runs last.
  void append(tasklet_impl* t) noexcept;
  void insert_after(tasklet_impl* pos, tasklet_impl* t) noexcept;
  void unlink(tasklet_impl* t) noexcept;

  void register_tasklet(tasklet_impl* t) noexcept;
  void unregister_tasklet(tasklet_impl* t) noexcept;

  // watchdog is W of reference §1.6: the innermost run() caller, else main.
  tasklet_impl* watchdog() const noexcept { return watchdogs.empty() ? main : watchdogs.back(); }
};

// state returns the calling thread's state, creating it on first use.
thread_state& state();
// state_if_any returns it or null, without creating it.
thread_state* state_if_any() noexcept;

// --- the switching core (switch.cpp) ---

// switch_to is the one primitive of reference §1.4: switch from current to n (n != current),
// delivering `bomb` to n. A blocked n is unblocked and appended; a floating n is appended; a
// queued n keeps its place. Returns when the caller is resumed; the caller then calls claim().
// Errors: runtime_error "switch_trap" (before any state changes).
void switch_to(thread_state& ts, tasklet_impl* n, std::exception_ptr bomb = {});
// leave_and_switch: current has just left the run queue (paused or blocked). Run the next runnable
// tasklet, or apply the empty-queue rule (§1.6). For a blocked current that would deadlock, the
// wait is cancelled, current is put back and deadlock_error is thrown.
void leave_and_switch(thread_state& ts, tasklet_impl* p, bool blocking);
// claim throws the exception delivered to t, if any (reference §1.3).
void claim(tasklet_impl* t);
// terminate ends the current tasklet (reference §1.7); err is its uncaught exception.
[[noreturn]] void terminate(thread_state& ts, tasklet_impl* p, std::exception_ptr err) noexcept;
// tasklet_entry is where every tasklet starts.
void tasklet_entry(void*);
// check_trap throws runtime_error("switch_trap") when a trap is active.
void check_trap(const thread_state& ts);

// --- waiting (switch.cpp) ---
// block parks the current tasklet in q until wake() or a kill. Errors: runtime_error
// "this tasklet does not like to be blocked." (block_trap), "switch_trap", deadlock_error, and
// whatever is thrown into it while it waits.
void block(thread_state& ts, wait_queue& q, wait_node& n);
// wake unlinks n and appends its tasklet to its run queue.
void wake(thread_state& ts, wait_node& n) noexcept;
// unblock cancels t's wait (kill/throw of a blocked tasklet); t stays scheduled but not queued.
void unblock(tasklet_impl* t) noexcept;

// --- references (tasklet.cpp) ---
void add_ref(tasklet_impl* t) noexcept;
void release(tasklet_impl* t) noexcept;
// schedule_floating appends a floating tasklet, taking the runtime's reference.
void schedule_floating(thread_state& ts, tasklet_impl* t) noexcept;
// unschedule_current: current leaves the run queue and becomes floating (drops the runtime's
// reference; if that was the last one, the tasklet is killed pending, see tasklet.hpp).
void unschedule_current(thread_state& ts, tasklet_impl* p) noexcept;

// Hooks (scheduler.cpp).
void call_schedule_callback(tasklet_impl* prev, tasklet_impl* next) noexcept;
extern std::atomic<bool> g_has_schedule_callback;
bool call_error_handler(tasklet_impl* t, std::exception_ptr& err) noexcept;

// Counters for memory_stats().
extern std::atomic<std::size_t> g_live_tasklets;
extern std::atomic<std::size_t> g_wait_nodes;

// Config helpers (config.cpp).
void mark_runtime_used() noexcept;
std::size_t effective_stack_size(std::size_t requested);

}  // namespace stackless::detail
