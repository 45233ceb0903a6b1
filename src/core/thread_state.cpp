// thread_state.cpp — per-thread state: creation on first use, run-queue geometry, teardown.
#include "core/thread_state.hpp"

#include <stackless/config.hpp>

#include <mutex>

#include "context/fatal.hpp"
#include "core/switch.hpp"

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
constexpr std::uint64_t kIdBlock = 1024;

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

}  // namespace

std::atomic<long> g_foreign_records{0};

void sum_thread_counters(long& records, long& waits, stack_counters& stacks) noexcept {
  std::lock_guard lock(g_threads_mutex);
  records = g_retired_records.load(std::memory_order_relaxed) +
            g_foreign_records.load(std::memory_order_relaxed);
  waits = g_retired_waits.load(std::memory_order_relaxed);
  for (thread_state* t = g_threads; t != nullptr; t = t->all_next) {
    records += t->live_records.load(std::memory_order_relaxed);
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
  auto* ts = new thread_state();
  tls_owner.ts = ts;
  tls_state = ts;
  return *ts;
}

thread_state::thread_state() {
  registry.reg_next = registry.reg_prev = &registry;
  main = new tasklet_impl();
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
  std::lock_guard lock(g_threads_mutex);
  all_next = g_threads;
  if (g_threads != nullptr) g_threads->all_prev = this;
  g_threads = this;
}

thread_state::~thread_state() {
  // Kill what is left of this thread's tasklets so their destructors run (reference §5: tasklets
  // with C state die with their thread). Only possible from the thread's own stack.
  if (current == main) {
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
  // Whatever remains (handles held elsewhere) outlives the thread: cut it loose.
  for (tasklet_impl* t = registry.reg_next; t != &registry;) {
    tasklet_impl* nx = t->reg_next;
    t->owner = nullptr;
    t->reg_next = t->reg_prev = nullptr;
    t = nx;
  }
  registry.reg_next = registry.reg_prev = &registry;
  main->alive = false;
  main->next = main->prev = nullptr;
  main->owner = nullptr;
  {
    std::lock_guard lock(g_threads_mutex);
    if (all_prev != nullptr)
      all_prev->all_next = all_next;
    else
      g_threads = all_next;
    if (all_next != nullptr) all_next->all_prev = all_prev;
    g_retired_records.fetch_add(live_records.load(std::memory_order_relaxed),
                                std::memory_order_relaxed);
    g_retired_waits.fetch_add(waits.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  release(main);
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
