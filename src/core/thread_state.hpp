// thread_state — everything the runtime keeps per OS thread, in one struct.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tasklet_impl.hpp"
#include "stack/stack.hpp"
#include "threads/global_lock.hpp"
#include "threads/parker.hpp"
#include "timer/timer_heap.hpp"

namespace stackless::detail {

// remote_request: work another thread hands to a tasklet's owner (reference §5: cross-thread
// operations only make the target runnable in its own thread; they never switch to it). Each holds
// a reference on its tasklet.
struct remote_request {
  enum kind_t : unsigned char {
    wake,      // a partner in another thread completed its wait: finish it, append the tasklet
    insert,    // insert(): append if paused
    run_next,  // run(): make it the next to run
    remove,    // remove(): take it out of the run queue
    throw_in,  // kill()/throw_exception(): always pending across threads
    release,   // a handle was dropped in another thread
    adopt,     // bind_thread() moved a never-started tasklet here: register it
  } kind;
  tasklet_impl* tasklet;
  std::exception_ptr exception;
};

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
  bool in_channel_callback = false;

  // The watchdog (reference §4.2): set while a timed run() is active in this thread.
  struct watchdog_state {
    tasklet_impl* owner = nullptr;  // the outermost timed run() caller; null: no pre-emption
    std::int64_t timeout = 0;       // ticks per slice (or for the whole run); 0: no tick limit
    std::int64_t time_slice = 0;    // ns per slice (or for the whole run); 0: no time limit
    std::int64_t check_ticks = 256; // ticks between clock reads when time_slice is set
    bool soft = false;
    bool total = false;
    bool threadblock = false;
    std::int64_t ticks_left = 0;    // of the current slice (or run)
    std::int64_t deadline = 0;      // end of the current slice (or run), steady ns
    std::int64_t loaded = 0;        // what tick_budget was last loaded with
    bool soft_pending = false;      // a soft interrupt waits for the next voluntary switch
    tasklet_impl* interrupted = nullptr;  // hard-interrupted tasklet for the owner's run()
  } irq;

  timer_heap timers;        // deadlines of this thread's waiting tasklets
  unsigned timer_poll = 0;  // counts switches between clock reads while timers are pending
  parker& idle = parker::lease();  // where the thread sleeps when nothing is runnable
  std::uint64_t random_state = 0x9e3779b97f4a7c15ULL;  // select's generator (xorshift64)

  tasklet_impl* dead =
      nullptr;            // finished tasklet whose stack is freed right after its last switch
  tasklet_impl registry;  // sentinel of the list of every record of this thread

  stack_cache stacks;
  // Freed tasklet records kept for reuse (raw storage), at most config::record_cache_limit.
  std::vector<void*> record_cache;
  std::atomic<long> records_cached{0};  // record_cache.size(), for memory_stats from any thread
  bool closing = false;                  // the thread_state is being destroyed
  thread_signal_stack signal_stack;

  // Tasklet ids are handed out in blocks, so creation needs no locked instruction.
  std::uint64_t next_id = 0;
  std::uint64_t id_limit = 0;
  // Records created minus records destroyed by this thread. Only this thread writes it.
  std::atomic<long> live_records{0};
  // Waits begun minus waits ended by this thread. Only this thread writes it.
  std::atomic<long> waits{0};

  // Cross-thread work (remote_request). Other threads push under inbox_mutex and unpark `idle`.
  std::mutex inbox_mutex;
  std::vector<remote_request> inbox;
  std::vector<remote_request> inbox_spare;  // owner only: the drained batch's storage, reused
  std::atomic<bool> inbox_pending{false};
  std::thread::id thread_id;
  // in_unlocked: depth of unlocked regions (core/mt.hpp); read by the thread that turns the
  // process multi-threaded.
  std::atomic<int> in_unlocked{0};
  // parked_forever: parked with nothing runnable and no timer (counts towards deadlock detection).
  // Written under g_threads_mutex; the parked thread reads it without the mutex when it wakes.
  std::atomic<bool> parked_forever{false};
  bool parked_optional = false;  // parked in run(threadblock): would return if nobody can wake it
  std::atomic<bool> give_up{false};  // told by the last thread to park: stop waiting
  // global_lock mode: whether this thread holds the lock, and since when (steady ns).
  bool holds_gil = false;
  std::int64_t gil_since = 0;
  thread_state* all_next = nullptr;  // list of every thread_state (g_threads)
  thread_state* all_prev = nullptr;

  // Run-queue geometry (reference §1.5). append: just before head, i.e. runs last.
  void append(tasklet_impl* t) noexcept {
    if (head == nullptr) {
      t->next = t->prev = t;
      head = t;
    } else {
      t->next = head;
      t->prev = head->prev;
      head->prev->next = t;
      head->prev = t;
    }
    ++runcount;
  }
  void insert_after(tasklet_impl* pos, tasklet_impl* t) noexcept {
    t->prev = pos;
    t->next = pos->next;
    pos->next->prev = t;
    pos->next = t;
    ++runcount;
  }
  void unlink(tasklet_impl* t) noexcept {
    if (t->next == t) {
      head = nullptr;
    } else {
      if (head == t) head = t->next;
      t->prev->next = t->next;
      t->next->prev = t->prev;
    }
    t->next = t->prev = nullptr;
    --runcount;
  }

  void register_tasklet(tasklet_impl* t) noexcept;
  void unregister_tasklet(tasklet_impl* t) noexcept;
  std::uint64_t new_id() noexcept;

  // random returns a pseudo-random number (xorshift64).
  std::uint64_t random() noexcept {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return random_state;
  }

  // watchdog is W of reference §1.6: the innermost run() caller, else main.
  tasklet_impl* watchdog() const noexcept { return watchdogs.empty() ? main : watchdogs.back(); }
};

// state returns the calling thread's state, creating it on first use.
extern constinit thread_local thread_state* tls_state;
thread_state& create_state();
inline thread_state& state() {
  if (tls_state != nullptr) [[likely]]
    return *tls_state;
  return create_state();
}
// state_if_any returns it or null, without creating it.
inline thread_state* state_if_any() noexcept { return tls_state; }

inline void bump(std::atomic<long>& c, long d) noexcept {
  c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

// --- references (tasklet.cpp) ---
inline void add_ref(tasklet_impl* t) noexcept { t->refs.fetch_add(1, std::memory_order_relaxed); }
// release drops a handle's reference.
void release(tasklet_impl* t) noexcept;
// held_by_runtime: queued, blocked, running, inside run(), or just finished.
inline bool held_by_runtime(const tasklet_impl* t) noexcept {
  return t->next != nullptr || t->wait != nullptr || t->in_run ||
         (t->owner != nullptr && (t->owner->current == t || t->owner->dead == t));
}
// last_reference: t has no handle and the runtime no longer holds it.
void last_reference(tasklet_impl* t) noexcept;
// unschedule_current: current leaves the run queue and becomes floating. If nobody holds a handle
// to it, it is killed pending (re-queued with tasklet_exit; see tasklet.hpp "Lifetime").
inline void unschedule_current(thread_state& ts, tasklet_impl* p) noexcept {
  ts.unlink(p);
  if (p->refs.load(std::memory_order_acquire) == 0 && !p->in_run) last_reference(p);
}

// Watchdog (watchdog.cpp).
// on_switch_watchdog restarts the slice budget at a switch (reference §1.4 step 5).
void on_switch_watchdog(thread_state& ts, tasklet_impl* prev) noexcept;
// take_soft_interrupt: a soft interrupt is pending; returns the watchdog to switch to instead of
// the tasklet that would have run (made runnable), and clears the flag.
tasklet_impl* take_soft_interrupt(thread_state& ts) noexcept;
// rearm_tick makes the next tick() look at the watchdog (a deferred interrupt may fire).
void rearm_tick(thread_state& ts) noexcept;

// Cross-thread (thread_state.cpp).
// post hands r to the owner of r.tasklet and wakes that thread; false when the owner has ended.
bool post(remote_request r);
// move_to_thread rebinds the never-started, paused tasklet t of ts to the thread `id`.
// Errors: std::invalid_argument("bad thread") when no runtime thread has that id.
void move_to_thread(thread_state& ts, tasklet_impl* t, std::thread::id id);
// drain_inbox carries out the requests other threads posted to ts.
void drain_inbox(thread_state& ts) noexcept;
inline void maybe_drain_inbox(thread_state& ts) noexcept {
  if (ts.inbox_pending.load(std::memory_order_relaxed)) [[unlikely]]
    drain_inbox(ts);
}
// Worker pools (src/async) tell the deadlock rule what their threads do: a worker waiting for a
// job cannot wake anybody; a job queued or running might.
extern std::atomic<long> g_idle_service_threads;
extern std::atomic<long> g_jobs_in_flight;
// leave_runtime ends the calling thread's use of the runtime (as if it exited): a pool worker
// whose job used tasklets or locks is not a runtime thread between jobs.
void leave_runtime() noexcept;
// park_idle: nothing is runnable and no timer is pending. Parks until another thread posts work,
// if another thread could; returns false when nothing could ever wake this thread (deadlock).
// optional: the caller is run({.threadblock = true}) with nothing else to wait for; it gives up
// (returns false) when a thread that would otherwise deadlock needs it to.
bool park_idle(thread_state& ts, bool optional) noexcept;

// global_lock mode (thread_state.cpp). g_gil_mode is fixed when the runtime is first used.
extern bool g_gil_mode;
extern global_lock g_gil;
// gil_release / gil_acquire: around parking and allow_threads; no-ops outside global_lock mode
// or when the thread does not hold the lock.
void gil_release(thread_state& ts) noexcept;
void gil_acquire(thread_state& ts) noexcept;

// Hooks (scheduler.cpp).
extern std::atomic<bool> g_has_schedule_callback;
extern std::atomic<bool> g_has_channel_callback;
void call_channel_callback(thread_state& ts, tasklet_impl* acting, bool sending, bool will_block);
void call_schedule_callback(tasklet_impl* prev, tasklet_impl* next) noexcept;
bool call_error_handler(tasklet_impl* t, std::exception_ptr& err) noexcept;

// Counters for memory_stats() that no thread_state accounts for.
extern std::atomic<long> g_foreign_records;
// sum_thread_counters adds up the records, waits and stacks of every live thread.
void sum_thread_counters(long& records, long& waits, long& cached_records,
                         stack_counters& stacks) noexcept;
// allocate_record returns a new tasklet record, from this thread's record cache when it has one;
// free_record destroys one and keeps its storage in this thread's cache if it has room. A record
// is always freed with free_record.
tasklet_impl* allocate_record(thread_state& ts);
void free_record(tasklet_impl* t) noexcept;

// Config helpers (config.cpp).
void mark_runtime_used() noexcept;
std::size_t effective_stack_size(std::size_t requested);

}  // namespace stackless::detail
