// tasklet.cpp — tasklet records (creation, references, lifetime) and the tasklet handle's methods.
#include <stackless/config.hpp>
#include <stackless/tasklet.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <stackless/timer.hpp>

#include "context/fatal.hpp"
#include "core/mt.hpp"
#include "core/switch.hpp"

namespace stackless::detail {
namespace {

constexpr std::size_t kMinStackSize = 8 * 1024;

void destroy_record(tasklet_impl* t) noexcept {
  if (t->owner != nullptr) t->owner->unregister_tasklet(t);
  if (!t->is_main) {
    thread_state* here = state_if_any();
    if (here != nullptr && here == t->owner)
      bump(here->live_records, -1);
    else
      g_foreign_records.fetch_sub(1, std::memory_order_relaxed);
  }
  free_record(t);
}

// free_stack returns a stack that no code runs on any more.
void free_stack(tasklet_impl* t) noexcept {
  if (!t->stack) return;
  release(t->ctx);
  if (t->owner != nullptr)
    t->owner->stacks.release(t->stack, current_config().stack_cache_limit);
  else
    stack_cache::discard(t->stack);  // the owning thread is gone
  t->stack = {};
}

}  // namespace

// last_reference: nobody holds the tasklet any more (tasklet.hpp, "Lifetime").
void last_reference(tasklet_impl* t) noexcept {
  if (t->alive && !t->is_main) {
    if (!t->started) {
      // Never ran: drop the callable without running it.
      t->destroy(t->callable);
      t->callable = nullptr;
      t->alive = false;
      free_stack(t);
    } else if (t->owner != nullptr) {
      // Paused with frames on its stack: nothing could resume it, so kill it (pending).
      t->bomb = std::make_exception_ptr(tasklet_exit{});
      t->owner->append(t);
      return;
    } else {
      fatal_message m;
      m << "tasklet " << t->id << " '" << t->name
        << "' survived the end of its thread and was dropped; its stack is leaked";
      m.print();
      return;
    }
  }
  destroy_record(t);
}

namespace {

bool is_tasklet_exit(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const tasklet_exit&) {
    return true;
  } catch (...) {
    return false;
  }
}

// post_to_owner hands an operation on another thread's tasklet to that thread (reference §5:
// the caller never switches). False when that thread has ended.
bool post_to_owner(tasklet_impl& t, remote_request::kind_t kind, std::exception_ptr e = {}) {
  add_ref(&t);  // the request's reference
  if (post({kind, &t, std::move(e)})) return true;
  release(&t);
  return false;
}

}  // namespace

void release(tasklet_impl* t) noexcept {
  thread_state* owner = t->owner;
  if (owner != nullptr && owner != state_if_any()) {
    // Another thread's tasklet: only its own thread may drop the last reference (it alone knows
    // whether the runtime still holds the tasklet).
    int r = t->refs.load(std::memory_order_relaxed);
    while (r > 1)
      if (t->refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel)) return;
    if (post({remote_request::release, t, {}})) return;  // the request carries this reference
  }
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && !held_by_runtime(t))
    last_reference(t);
}

tasklet_impl* tasklet_create(std::size_t size, std::size_t align, const tasklet_options& opts,
                             void** storage) {
  thread_state& ts = state();
  if (opts.stack == stack_mode::sliced)
    throw runtime_error("stack_mode::sliced is not implemented yet; use stack_mode::dedicated");
  const config& cfg = current_config();
  const std::size_t requested = opts.stack_size != 0 ? opts.stack_size : cfg.default_stack_size;
  if (requested < kMinStackSize)
    throw std::invalid_argument("tasklet stack_size " + std::to_string(requested) +
                                " is below the minimum of " + std::to_string(kMinStackSize) +
                                " bytes");
  const std::size_t stack_size = effective_stack_size(requested);
  if (size > stack_size / 2)
    throw std::length_error("a tasklet callable of " + std::to_string(size) +
                            " bytes does not fit in half of its " + std::to_string(stack_size) +
                            "-byte stack; capture large data by pointer or raise stack_size");
  struct record_owner {  // frees the record if creation fails below
    void operator()(tasklet_impl* r) const noexcept { free_record(r); }
  };
  std::unique_ptr<tasklet_impl, record_owner> t(allocate_record(ts));
  t->stack = ts.stacks.acquire(stack_size, cfg.guarded_stack_limit);
  // The callable sits at the top of the stack; the tasklet's frames grow down from below it.
  auto top = reinterpret_cast<std::uintptr_t>(t->stack.low) + t->stack.size;
  const std::uintptr_t object = (top - size) & ~(std::uintptr_t{align} - 1);
  const std::uintptr_t frames_top = object & ~std::uintptr_t{63};
  *storage = reinterpret_cast<void*>(object);
  t->callable = *storage;
  prepare(t->ctx, t->stack.low, frames_top - reinterpret_cast<std::uintptr_t>(t->stack.low),
          &tasklet_entry);
  t->id = ts.new_id();
  t->name = opts.name;
  t->owner = &ts;
  t->thread = ts.main->thread;
  ts.register_tasklet(t.get());
  bump(ts.live_records, 1);
  return t.release();
}

void tasklet_abandon(tasklet_impl* t) noexcept {
  free_stack(t);
  destroy_record(t);
}

void tasklet_bind(tasklet_impl* t, entry_fn entry, destroy_fn destroy, bool start) {
  t->entry = entry;
  t->destroy = destroy;
  t->alive = true;
  if (start) t->owner->append(t);
}

void tasklet_add_ref(tasklet_impl* t) noexcept { add_ref(t); }
void tasklet_release(tasklet_impl* t) noexcept { release(t); }

}  // namespace stackless::detail

namespace stackless {
using namespace detail;

detail::tasklet_impl& tasklet::checked() const {
  if (impl_ == nullptr) throw runtime_error("operation on an empty tasklet handle");
  return *impl_;
}

tasklet& tasklet::insert() {
  tasklet_impl& t = checked();
  thread_state& ts = state();
  if (t.owner != &ts) {  // another thread's: appended there, that thread woken
    if (!post_to_owner(t, remote_request::insert)) throw runtime_error("tasklet has no thread");
    return *this;
  }
  if (t.wait != nullptr) throw runtime_error("You cannot run a blocked tasklet");
  if (t.in_runqueue()) return *this;
  if (!t.alive) throw runtime_error("You cannot run an unbound(dead) tasklet");
  ts.append(&t);
  return *this;
}

tasklet& tasklet::remove() {
  tasklet_impl& t = checked();
  thread_state& ts = state();
  if (t.owner != &ts) {  // another thread's (or its thread is gone: a no-op)
    post_to_owner(t, remote_request::remove);
    return *this;
  }
  if (t.wait != nullptr) throw runtime_error("You cannot remove a blocked tasklet.");
  if (ts.current == &t) throw runtime_error("The current tasklet cannot be removed.");
  if (!t.in_runqueue()) return *this;
  ts.unlink(&t);  // the caller's handle keeps it alive
  return *this;
}

void tasklet::run() {
  tasklet_impl& t = checked();
  thread_state& ts = state();
  if (t.owner != &ts) {  // another thread's: it runs next there; the caller continues
    if (!post_to_owner(t, remote_request::run_next)) throw runtime_error("tasklet has no thread");
    return;
  }
  if (t.wait != nullptr) throw runtime_error("You cannot run a blocked tasklet");
  if (!t.alive) throw runtime_error("You cannot run an unbound(dead) tasklet");
  tasklet_impl* p = ts.current;
  if (&t != p) detail::switch_to(ts, &t);
  claim(p);
}

void tasklet::switch_to() {
  tasklet_impl& t = checked();
  if (t.wait != nullptr) throw runtime_error("You cannot run a blocked tasklet");
  if (!t.alive) throw runtime_error("You cannot run an unbound(dead) tasklet");
  thread_state& ts = state();
  tasklet_impl* p = ts.current;
  if (&t == p) {
    claim(p);
    return;
  }
  if (t.owner != &ts) throw runtime_error("can't switch to a different thread.");
  check_trap(ts);
  if (!t.in_runqueue()) ts.append(&t);
  unschedule_current(ts, p);  // the caller becomes paused
  if (ts.head == p) {
    claim(p);  // p's last handle was gone: it was re-queued to be killed
    return;
  }
  detail::switch_to(ts, &t);
  claim(p);
}

void tasklet::kill(bool pending) {
  throw_exception(std::make_exception_ptr(tasklet_exit{}), pending);
}

void tasklet::throw_exception(std::exception_ptr e, bool pending) {
  if (!e) throw std::invalid_argument("throw_exception needs an exception");
  tasklet_impl& t = checked();
  thread_state& ts = state();
  tasklet_impl* p = ts.current;
  if (&t == p) std::rethrow_exception(e);
  if (t.owner != &ts && t.owner != nullptr) {
    // Another thread's tasklet: always pending (reference §5); its thread is woken.
    if (post_to_owner(t, remote_request::throw_in, e)) return;
  }
  if (!t.alive || t.owner == nullptr) {
    if (is_tasklet_exit(e)) return;  // killing a dead tasklet is a no-op
    throw runtime_error(t.owner ? "You cannot throw to a dead tasklet" : "tasklet has no thread");
  }
  if (pending) {
    t.bomb = std::move(e);
    make_runnable(ts, &t);
    return;
  }
  detail::switch_to(ts, &t, std::move(e));
  claim(p);
}

void tasklet::join() {
  tasklet_impl& t = checked();
  thread_state& ts = state();
  if (&t == ts.current) throw runtime_error("a tasklet cannot join itself");
  wait_node n;
  wait_state ws;
  {
    queue_guard g(ts, t.joiners);  // t may belong to another thread
    if (!t.alive || t.owner == nullptr) return;
    check_can_block(ts);
    ws.nodes = &n;
    prepare_node(ts, ws, n);
    t.joiners.push_back(n);
  }
  wait(ts, ws, no_deadline);
}

bool tasklet::alive() const { return checked().alive && checked().owner != nullptr; }
bool tasklet::scheduled() const { return checked().in_runqueue() || checked().wait != nullptr; }
int tasklet::blocked() const {
  const wait_state* w = checked().wait;
  return w == nullptr ? 0 : w->direction();
}
bool tasklet::paused() const { return alive() && !scheduled(); }
bool tasklet::is_main() const { return checked().is_main; }
bool tasklet::is_current() const {
  const tasklet_impl& t = checked();
  return t.owner != nullptr && t.owner->current == &t;
}
bool tasklet::atomic() const { return checked().atomic; }
bool tasklet::set_atomic(bool flag) {
  tasklet_impl& t = checked();
  const bool previous = std::exchange(t.atomic, flag);
  // Leaving atomic: an interrupt deferred meanwhile fires at the next tick point (never here).
  if (!flag && t.pending_irq && t.owner != nullptr && t.owner->current == &t) rearm_tick(*t.owner);
  return previous;
}
bool tasklet::ignore_nesting() const { return checked().ignore_nesting; }
bool tasklet::set_ignore_nesting(bool flag) {
  return std::exchange(checked().ignore_nesting, flag);
}
bool tasklet::block_trap() const { return checked().block_trap; }
void tasklet::set_block_trap(bool flag) { checked().block_trap = flag; }
std::thread::id tasklet::thread_id() const { return checked().thread; }

void tasklet::bind_thread(std::thread::id id) {
  tasklet_impl& t = checked();
  if (id == t.thread) return;
  if (t.in_runqueue()) throw runtime_error("can't (re)bind a runnable tasklet");
  if (t.started) throw runtime_error("tasklet has C state on its stack");
  if (!t.alive) throw runtime_error("You cannot run an unbound(dead) tasklet");
  thread_state& ts = state();
  if (t.owner != &ts)
    throw runtime_error("bind_thread must be called in the thread the tasklet belongs to");
  move_to_thread(ts, &t, id);
}

tasklet tasklet::next() const {
  tasklet_impl* n = checked().next;
  if (n == nullptr) return {};
  add_ref(n);
  return adopt(n);
}

tasklet tasklet::prev() const {
  tasklet_impl* n = checked().prev;
  if (n == nullptr) return {};
  add_ref(n);
  return adopt(n);
}

std::uint64_t tasklet::id() const { return checked().id; }
std::string_view tasklet::name() const { return checked().name; }

std::size_t tasklet::stack_size() const {
  const tasklet_impl& t = checked();
  return t.is_main ? t.ctx.stack_size : t.stack.size;
}

std::size_t tasklet::stack_used() const {
  const tasklet_impl& t = checked();
  if (!t.alive || t.owner == nullptr) return 0;
  const char* top = t.is_main ? static_cast<const char*>(t.ctx.stack_low) + t.ctx.stack_size
                              : static_cast<const char*>(t.stack.low) + t.stack.size;
  const char* sp = nullptr;
  if (t.owner->current == &t)
    sp = static_cast<const char*>(stack_pointer());
  else if (t.started)
    sp = static_cast<const char*>(t.ctx.handle);
  else
    return 0;
  return sp != nullptr && sp < top ? static_cast<std::size_t>(top - sp) : 0;
}

}  // namespace stackless
