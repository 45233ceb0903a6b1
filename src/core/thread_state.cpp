// thread_state.cpp — per-thread state: creation on first use, run-queue geometry, teardown.
#include "core/thread_state.hpp"

#include <stackless/config.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <mutex>

#include "context/fatal.hpp"
#include <stackless/timer.hpp>

#include "core/mt.hpp"
#include "core/switch.hpp"
#include "core/watchdog.hpp"
#include "threads/barrier.hpp"

namespace stackless::detail {

constinit thread_local thread_state* tls_state = nullptr;

namespace {

// Every live thread_state, for statistics (and later cross-thread work).
std::mutex g_threads_mutex;
thread_state* g_threads = nullptr;
// Records counted by threads that have ended.
std::atomic<long> g_retired_records{0};
std::atomic<long> g_retired_waits{0};
std::atomic<std::uint64_t> g_next_id_block{1};
// Runtime threads alive, and how many of them are parked with nothing to do (under the mutex).
std::size_t g_runtime_threads = 0;
std::size_t g_parked_forever = 0;
long os_threads() noexcept;
// OS threads that existed besides the main thread when the library was loaded: they never use the
// runtime, so they are not counted as possible wakers. ThreadSanitizer starts its helper thread
// only with the first thread the program creates, so under TSan one more is assumed.
const long g_baseline_other_threads = std::max(os_threads() - 1, 0L) +
#if defined(STACKLESS_TSAN)
                                      1;
#else
                                      0;
#endif
constexpr std::uint64_t kIdBlock = 1024;
constexpr std::int64_t kRecheckNs = 50'000'000;  // 50 ms

// Reports an overflow into the guard page of the running tasklet (called from the signal handler).
bool identify_overflow(const void* address) noexcept {
  thread_state* ts = tls_state;
  if (ts == nullptr || ts->current == nullptr) return false;
  const tasklet_impl* t = ts->current;
  if (!t->stack || !t->stack.guarded) return false;
  const char* a = static_cast<const char*>(address);
  const char* low = static_cast<const char*>(t->stack.low);
  // The guard page, and a little below it for frames that jumped over it.
  if (a >= low || a < low - 16 * page_size()) return false;
  fatal_message m;
  m << "tasklet " << t->id << " '" << t->name << "' overflowed its " << (t->stack.size / 1024)
    << " KiB stack";
  m.die();
}

struct thread_state_owner {
  thread_state* ts = nullptr;
  ~thread_state_owner() {
    if (ts != nullptr) {
      delete ts;
      tls_state = nullptr;
    }
  }
};
thread_local thread_state_owner tls_owner;

// os_threads counts the threads of the process.
long os_threads() noexcept {
  struct stat st;
  if (::stat("/proc/self/task", &st) != 0) return -1;
  return static_cast<long>(st.st_nlink) - 2;
}

constexpr bool kAlwaysLocked =
#if defined(STACKLESS_TSAN)
    true;  // ThreadSanitizer cannot see the asymmetric barrier: lock from the start
#else
    false;
#endif

}  // namespace

std::atomic<bool> g_multithreaded{kAlwaysLocked};
std::atomic<long> g_idle_service_threads{0};
std::atomic<long> g_jobs_in_flight{0};

void leave_runtime() noexcept {
  if (tls_owner.ts == nullptr) return;
  delete tls_owner.ts;
  tls_owner.ts = nullptr;
  tls_state = nullptr;
}
bool g_gil_mode = false;
global_lock g_gil;

void gil_release(thread_state& ts) noexcept {
  if (!ts.holds_gil) return;
  ts.holds_gil = false;
  g_gil.release();
}

void gil_acquire(thread_state& ts) noexcept {
  if (!g_gil_mode || ts.holds_gil) return;
  g_gil.acquire();
  ts.holds_gil = true;
  ts.gil_since = now_ns();
}
std::atomic<long> g_foreign_records{0};

void enter_multithreaded(thread_state* self) noexcept {
  static std::mutex once;
  std::lock_guard serial(once);
  if (g_multithreaded.load(std::memory_order_seq_cst)) return;
  g_multithreaded.store(true, std::memory_order_seq_cst);
  if (heavy_barrier_available()) heavy_barrier();
  // Wait until no other thread is inside an unlocked region (they are short and never block).
  std::lock_guard lock(g_threads_mutex);
  for (thread_state* t = g_threads; t != nullptr; t = t->all_next) {
    if (t == self) continue;
    while (t->in_unlocked.load(std::memory_order_acquire) != 0) __builtin_ia32_pause();
  }
}

bool post(remote_request r) {
  tasklet_impl* t = r.tasklet;
  parker* wake = nullptr;
  {
    std::lock_guard lock(g_threads_mutex);
    thread_state* owner = t->owner;
    if (owner == nullptr) return false;
    {
      std::lock_guard inbox_lock(owner->inbox_mutex);
      owner->inbox.push_back(std::move(r));
    }
    owner->inbox_pending.store(true, std::memory_order_release);
    if (owner->parked_forever.load(std::memory_order_relaxed)) {
      owner->parked_forever.store(false, std::memory_order_relaxed);
      --g_parked_forever;
    }
    wake = &owner->idle;
  }
  // Outside the mutex, or the woken thread would block on it right away. Parkers outlive their
  // threads (parker::lease), so the owner may even have ended by now.
  wake->unpark();
  return true;
}

void drain_inbox(thread_state& ts) noexcept {
  // Swapping with the spare keeps both vectors' capacity: posting allocates nothing.
  std::vector<remote_request> batch = std::move(ts.inbox_spare);
  {
    std::lock_guard lock(ts.inbox_mutex);
    batch.swap(ts.inbox);
    ts.inbox_pending.store(false, std::memory_order_relaxed);
  }
  for (remote_request& r : batch) {
    tasklet_impl* t = r.tasklet;
    switch (r.kind) {
      case remote_request::wake:  // a partner in another thread claimed its wait
        if (t->wait == nullptr) break;
        finish_wait(ts, t);
        ts.append(t);
        break;
      case remote_request::insert:
        if (t->alive && t->floating()) ts.append(t);
        break;
      case remote_request::run_next:  // right after current, or as current of a parked thread
        if (t->alive && t->wait == nullptr && t != ts.current) {
          if (t->in_runqueue()) ts.unlink(t);
          if (ts.current->in_runqueue()) {
            ts.insert_after(ts.current, t);
          } else {  // the thread was parked: t runs first
            ts.append(t);
            ts.head = t;
          }
        }
        break;
      case remote_request::remove:
        if (t->in_runqueue() && t != ts.current) ts.unlink(t);
        break;
      case remote_request::throw_in:  // always pending across threads (reference §5)
        if (t->alive) {
          t->bomb = std::move(r.exception);
          if (t->in_runqueue()) break;
          // A partner may have completed its wait already: then that wake (in this batch or
          // the next) appends it, and it throws when it resumes.
          if (t->wait != nullptr && !cancel_wait(ts, t, wait_outcome::cancelled)) break;
          ts.append(t);
        }
        break;
      case remote_request::release:
        break;  // the reference the request carried is dropped below
      case remote_request::adopt:
        ts.register_tasklet(t);
        bump(ts.live_records, 1);
        break;
    }
    release(t);
  }
  batch.clear();
  ts.inbox_spare = std::move(batch);
}

void move_to_thread(thread_state& ts, tasklet_impl* t, std::thread::id id) {
  std::lock_guard lock(g_threads_mutex);
  thread_state* target = g_threads;
  while (target != nullptr && target->thread_id != id) target = target->all_next;
  if (target == nullptr) throw std::invalid_argument("bad thread");
  {
    std::lock_guard inbox_lock(target->inbox_mutex);
    target->inbox.reserve(target->inbox.size() + 1);  // the only step that can fail
    ts.unregister_tasklet(t);
    bump(ts.live_records, -1);
    t->owner = target;
    t->thread = id;
    add_ref(t);  // the request's reference
    target->inbox.push_back({remote_request::adopt, t, {}});
  }
  target->inbox_pending.store(true, std::memory_order_release);
  target->idle.unpark();
}

bool park_idle(thread_state& ts, bool optional) noexcept {
  {
    std::lock_guard lock(g_threads_mutex);
    if (ts.inbox_pending.load(std::memory_order_acquire)) return true;
    if (ts.give_up.load(std::memory_order_relaxed)) {  // another thread needs us to stop waiting
      ts.give_up.store(false, std::memory_order_relaxed);
      return false;
    }
    // Someone could post to us: another runtime thread that is not parked for good, or an OS
    // thread that is not a runtime thread yet (it may become one). Idle pool workers wait for
    // jobs, not to post to us; jobs in flight might. Counting OS threads takes a system call, so
    // it is done only when nothing else can wake us.
    const auto others = [] {
      return os_threads() - static_cast<long>(g_runtime_threads) - g_baseline_other_threads -
             g_idle_service_threads.load(std::memory_order_acquire);
    };
    if (g_runtime_threads - g_parked_forever <= 1 &&
        g_jobs_in_flight.load(std::memory_order_acquire) == 0 && others() <= 0) {
      // We would be the last to park. A thread parked in run({.threadblock = true}) only waits
      // because we might wake it; if one is, tell it to give up (its run() returns and it may
      // serve us) and park instead of failing.
      thread_state* optional_parker = nullptr;
      for (thread_state* t = g_threads; t != nullptr; t = t->all_next)
        if (t != &ts && t->parked_forever.load(std::memory_order_relaxed) && t->parked_optional)
          optional_parker = t;
      if (optional_parker == nullptr || optional) return false;
      optional_parker->give_up.store(true, std::memory_order_relaxed);
      optional_parker->parked_forever.store(false, std::memory_order_release);
      --g_parked_forever;
      optional_parker->idle.unpark();
    }
    ts.parked_forever.store(true, std::memory_order_relaxed);
    ts.parked_optional = optional;
    ++g_parked_forever;
  }
  // Posts and thread exits unpark us; the timeout only makes us look again at who could still
  // wake us (a thread that has just ended may still be counted by the kernel for a moment).
  gil_release(ts);
  ts.idle.park_until(now_ns() + kRecheckNs);
  gil_acquire(ts);
  // The usual wake-up: a post took us off the parked count already (and published that before
  // its unpark), so the mutex is not needed.
  if (!ts.parked_forever.load(std::memory_order_acquire) &&
      !ts.give_up.load(std::memory_order_relaxed)) {
    return true;
  }
  std::lock_guard lock(g_threads_mutex);
  if (ts.parked_forever.load(std::memory_order_relaxed)) {
    ts.parked_forever.store(false, std::memory_order_relaxed);
    --g_parked_forever;
  }
  ts.parked_optional = false;
  if (ts.give_up.load(std::memory_order_relaxed)) {
    ts.give_up.store(false, std::memory_order_relaxed);
    return false;
  }
  return true;
}

tasklet_impl* allocate_record(thread_state& ts) {
  void* storage;
  if (!ts.record_cache.empty()) {
    storage = ts.record_cache.back();
    ts.record_cache.pop_back();
    ts.records_cached.store(static_cast<long>(ts.record_cache.size()), std::memory_order_relaxed);
  } else {
    storage = ::operator new(sizeof(tasklet_impl));
  }
  return ::new (storage) tasklet_impl();
}

void free_record(tasklet_impl* t) noexcept {
  t->~tasklet_impl();
  thread_state* here = state_if_any();
  if (here != nullptr && !here->closing &&
      here->record_cache.size() < current_config().record_cache_limit) {
    try {
      here->record_cache.push_back(t);
      here->records_cached.store(static_cast<long>(here->record_cache.size()),
                                 std::memory_order_relaxed);
      return;
    } catch (const std::bad_alloc&) {
      // Fall through: free it.
    }
  }
  ::operator delete(static_cast<void*>(t));
}

void sum_thread_counters(long& records, long& waits, long& cached_records,
                         stack_counters& stacks) noexcept {
  std::lock_guard lock(g_threads_mutex);
  records = g_retired_records.load(std::memory_order_relaxed) +
            g_foreign_records.load(std::memory_order_relaxed);
  waits = g_retired_waits.load(std::memory_order_relaxed);
  for (thread_state* t = g_threads; t != nullptr; t = t->all_next) {
    records += t->live_records.load(std::memory_order_relaxed);
    cached_records += t->records_cached.load(std::memory_order_relaxed);
    waits += t->waits.load(std::memory_order_relaxed);
    const stack_counters c = t->stacks.counters();
    stacks.in_use += c.in_use;
    stacks.cached += c.cached;
    stacks.bytes_reserved += c.bytes_reserved;
  }
}

std::uint64_t thread_state::new_id() noexcept {
  if (next_id == id_limit) {
    next_id = g_next_id_block.fetch_add(kIdBlock, std::memory_order_relaxed);
    id_limit = next_id + kIdBlock;
  }
  return next_id++;
}

thread_state& create_state() {
  mark_runtime_used();
  install_overflow_handler(&identify_overflow);
  static const bool once = [] {
    g_gil_mode = current_config().threads == threading::global_lock;
    if (!heavy_barrier_available()) g_multithreaded.store(true);
    return true;
  }();
  (void)once;
  // In global_lock mode a thread holds the lock from its first use of the runtime.
  if (g_gil_mode) g_gil.acquire();
  auto* ts = new thread_state();
  if (g_gil_mode) {
    ts->holds_gil = true;
    ts->gil_since = now_ns();
  }
  tls_owner.ts = ts;
  tls_state = ts;
  init_tick_budget();
  return *ts;
}

thread_state::thread_state() {
  registry.reg_next = registry.reg_prev = &registry;
  main = allocate_record(*this);
  main->is_main = true;
  main->alive = true;
  main->started = true;
  main->owner = this;
  main->thread = std::this_thread::get_id();
  main->name = "main";
  static std::atomic<std::uint64_t> main_ids{0};
  // Main tasklets count down from the top of the id space so they never collide with tasklets.
  main->id = ~std::uint64_t{0} - main_ids.fetch_add(1, std::memory_order_relaxed);
  init_thread(main->ctx);
  register_tasklet(main);
  current = main;
  append(main);
  thread_id = main->thread;
  bool second = false;
  {
    std::lock_guard lock(g_threads_mutex);
    all_next = g_threads;
    if (g_threads != nullptr) g_threads->all_prev = this;
    g_threads = this;
    ++g_runtime_threads;
    second = g_runtime_threads >= 2 && !g_multithreaded.load() && !g_gil_mode;
  }
  if (second) enter_multithreaded(this);
}

thread_state::~thread_state() {
  // Kill what is left of this thread's tasklets so their destructors run (reference §5: tasklets
  // with C state die with their thread). Only possible from the thread's own stack.
  if (current == main) {
    // Take every other tasklet out of the run queue first: killing one switches to it, and the
    // others must not get to run their own code on the way.
    while (main->next != main) unlink(main->next);
    std::size_t alive = 0;
    for (tasklet_impl* t = registry.reg_next; t != &registry; t = t->reg_next)
      alive += (!t->is_main && t->alive) ? 1 : 0;
    // A tasklet that catches tasklet_exit and goes on is killed again, up to 10 times each.
    for (std::size_t attempts = 10 * alive; attempts > 0; --attempts) {
      tasklet_impl* victim = nullptr;
      for (tasklet_impl* t = registry.reg_next; t != &registry; t = t->reg_next) {
        if (!t->is_main && t->alive) {
          victim = t;
          break;
        }
      }
      if (victim == nullptr) break;
      add_ref(victim);
      try {
        tasklet::adopt(victim).kill();
      } catch (...) {
        // An exception of a dying tasklet has nowhere to go any more.
      }
    }
  }
  drain_inbox(*this);  // drops the references of requests that came too late
  main->alive = false;
  main->next = main->prev = nullptr;
  {
    std::lock_guard lock(g_threads_mutex);
    // Whatever remains (handles held elsewhere) outlives the thread: cut it loose. Other threads
    // read owner under this mutex (post), so they see either a live thread or none.
    for (tasklet_impl* t = registry.reg_next; t != &registry;) {
      tasklet_impl* nx = t->reg_next;
      t->owner = nullptr;
      t->reg_next = t->reg_prev = nullptr;
      t = nx;
    }
    registry.reg_next = registry.reg_prev = &registry;
    --g_runtime_threads;
    if (parked_forever.load(std::memory_order_relaxed)) --g_parked_forever;
    // Threads parked for good may now be the last ones: let them look again (deadlock, or the
    // end of a run(threadblock)).
    for (thread_state* t = g_threads; t != nullptr; t = t->all_next)
      if (t->parked_forever.load(std::memory_order_relaxed)) t->idle.unpark();
    if (all_prev != nullptr)
      all_prev->all_next = all_next;
    else
      g_threads = all_next;
    if (all_next != nullptr) all_next->all_prev = all_prev;
    g_retired_records.fetch_add(live_records.load(std::memory_order_relaxed),
                                std::memory_order_relaxed);
    g_retired_waits.fetch_add(waits.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  // Requests posted after the drain above but before the owners were cleared: their references
  // must still be dropped (nothing can be posted to this thread any more).
  drain_inbox(*this);
  release(main);
  gil_release(*this);
  parker::give_back(idle);
  closing = true;  // records freed from now on are not cached here
  for (void* r : record_cache) ::operator delete(r);
  record_cache.clear();
  records_cached.store(0, std::memory_order_relaxed);
}

void thread_state::register_tasklet(tasklet_impl* t) noexcept {
  t->reg_prev = registry.reg_prev;
  t->reg_next = &registry;
  registry.reg_prev->reg_next = t;
  registry.reg_prev = t;
}

void thread_state::unregister_tasklet(tasklet_impl* t) noexcept {
  if (t->reg_next == nullptr) return;
  t->reg_prev->reg_next = t->reg_next;
  t->reg_next->reg_prev = t->reg_prev;
  t->reg_next = t->reg_prev = nullptr;
}

}  // namespace stackless::detail
