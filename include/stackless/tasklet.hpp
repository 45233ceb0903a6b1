// stackless/tasklet.hpp — tasklets: stackful microthreads scheduled cooperatively per OS thread.
//
// A tasklet runs a callable on a stack of its own. Every OS thread that uses the runtime has a
// scheduler with a circular run queue whose head is the running tasklet ("current"), and a main
// tasklet that stands for the thread's original stack. Creating a tasklet appends it to the run
// queue of the creating thread; it runs when the thread schedules (schedule(), run(), blocking).
//
// A `tasklet` object is a handle with shared-reference semantics: copies refer to the same tasklet.
// The runtime keeps runnable and blocked tasklets alive without a handle, so
// `stackless::tasklet([] { ... });` is fine.
//
// States (reference §2.2) and what the operations do in each:
//
//   state      alive scheduled blocked paused | insert()      remove()     run()/switch_to() kill()
//   ---------- ----- --------- ------- ------ | ------------- ------------ ---------------- --------------
//   dead       no    no        0       no     | runtime_error no-op        runtime_error    no-op
//   paused     yes   no        0       yes    | append        no-op        append + switch  append + switch
//   runnable   yes   yes       0       no     | no-op         unlink       switch           switch
//   current    yes   yes       0       no     | no-op         runtime_error no-op           throws in caller
//   blocked    yes   yes       ±1      no     | runtime_error runtime_error runtime_error   unblock + switch
//
// "paused" covers: created with start=false, remove()d, schedule_remove()d, switched away from by
// switch_to(), hard-interrupted by the watchdog, and waiting inside run().
//
// Lifetime: when the last handle to a tasklet that has not started goes away, its callable is
// destroyed and the tasklet ends without running. When the last handle to a paused tasklet that
// has started goes away, nothing could ever resume it, so it is killed: tasklet_exit is planted
// and it is appended to its run queue, so its RAII destructors run the next time its thread
// schedules. No stack is ever leaked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include <stackless/errors.hpp>
#include <stackless/stack.hpp>

namespace stackless {

// tasklet_options: how a tasklet is created. Keep the member order (callers use designated
// initializers); new members go at the end.
struct tasklet_options {
  // stack_size: usable bytes of stack; 0 means config::default_stack_size. Rounded up to pages.
  std::size_t stack_size = 0;
  // stack: dedicated (own mmap'ed stack) or sliced (not implemented yet).
  stack_mode stack = stack_mode::dedicated;
  // name: shown in error messages, overflow reports and introspection.
  std::string name;
  // start: true appends the new tasklet to the run queue; false leaves it alive but paused, to be
  // started by insert(), run() or switch_to().
  bool start = true;
};

namespace detail {
struct tasklet_impl;
using entry_fn = void (*)(void*);
using destroy_fn = void (*)(void*) noexcept;
// Creation in three steps so the callable is constructed in place on the tasklet's stack.
tasklet_impl* tasklet_create(std::size_t size, std::size_t align, const tasklet_options& opts,
                             void** storage);
void tasklet_abandon(tasklet_impl* t) noexcept;
void tasklet_bind(tasklet_impl* t, entry_fn entry, destroy_fn destroy, bool start);
void tasklet_add_ref(tasklet_impl* t) noexcept;
void tasklet_release(tasklet_impl* t) noexcept;
}  // namespace detail

class tasklet {
 public:
  // tasklet() makes an empty handle; operator bool is false.
  tasklet() noexcept = default;

  // tasklet(f, opts) creates a tasklet that will call f() (its return value is discarded) on a
  // stack of its own. f is moved (or copied) onto the tasklet's stack; it and everything it
  // captured are destroyed on that stack when f returns, before the tasklet's last switch.
  // With opts.start (the default) the tasklet is appended to the calling thread's run queue.
  // Switches: never. Threads: the tasklet belongs to the calling thread.
  // Errors: std::bad_alloc when no stack can be mapped; std::invalid_argument when
  // opts.stack_size is below 8 KiB; std::length_error when f does not fit in half of the stack;
  // runtime_error for stack_mode::sliced (not implemented yet).
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, tasklet> &&
             std::is_invocable_v<std::decay_t<F>&>)
  explicit tasklet(F&& f, tasklet_options opts = {}) {
    using Fn = std::decay_t<F>;
    void* storage = nullptr;
    impl_ = detail::tasklet_create(sizeof(Fn), alignof(Fn), opts, &storage);
    try {
      ::new (storage) Fn(std::forward<F>(f));
    } catch (...) {
      detail::tasklet_abandon(impl_);
      impl_ = nullptr;
      throw;
    }
    detail::tasklet_bind(impl_, &invoke<Fn>, &destroy<Fn>, opts.start);
  }

  tasklet(const tasklet& other) noexcept : impl_(other.impl_) {
    if (impl_) detail::tasklet_add_ref(impl_);
  }
  tasklet(tasklet&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
  tasklet& operator=(tasklet other) noexcept {
    std::swap(impl_, other.impl_);
    return *this;
  }
  ~tasklet() {
    if (impl_) detail::tasklet_release(impl_);
  }

  // operator bool: true unless the handle is empty (a dead tasklet's handle is still true).
  // Every other member throws runtime_error("operation on an empty tasklet handle") on an empty
  // handle.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

  // insert appends a paused tasklet to its run queue; no-op if it is already runnable or current.
  // Switches: never. Errors: runtime_error "You cannot run a blocked tasklet",
  // "You cannot run an unbound(dead) tasklet".
  tasklet& insert();
  // remove takes a runnable tasklet out of its run queue (it becomes paused); no-op if paused or
  // dead. Switches: never. Errors: runtime_error "The current tasklet cannot be removed.",
  // "You cannot remove a blocked tasklet."
  tasklet& remove();
  // run appends the tasklet if it is paused and switches to it; the caller stays in the run queue
  // at its place, so every tasklet between the target and the caller runs before the caller
  // resumes (reference §2.4). No-op on the current tasklet.
  // Switches. Errors: as insert(); runtime_error "switch_trap" under a switch_trap; whatever an
  // uncaught exception of another tasklet delivers to this one (reference §1.7).
  void run();
  // switch_to is like run() but the caller leaves the run queue (becomes paused) and resumes only
  // when something runs, inserts or switches to it. No-op on the current tasklet.
  // Switches. Errors: as run().
  void switch_to();
  // kill throws tasklet_exit into the tasklet (throw_exception with tasklet_exit). Killing a dead
  // tasklet is a no-op; killing one that never ran ends it without running its code; killing a
  // blocked one unblocks it first; killing current() throws tasklet_exit in the caller.
  // Switches unless pending (then the tasklet is made runnable and dies when it next runs).
  void kill(bool pending = false);
  // throw_exception makes e be thrown in the tasklet where it is suspended (reference §2.6).
  // pending=false: switch to it now (a runnable target keeps its place in the queue, so the
  // tasklets after it may run before the caller resumes; a paused or blocked target is appended,
  // so the caller resumes right after it dies or yields). pending=true: it is made runnable and
  // the exception is thrown when it next runs. Target == current: thrown in the caller at once.
  // Errors: runtime_error "You cannot throw to a dead tasklet"; "switch_trap".
  void throw_exception(std::exception_ptr e, bool pending = false);
  // raise_exception<E>(args...) is throw_exception(std::make_exception_ptr(E(args...))).
  template <class E, class... A>
  void raise_exception(A&&... args) {
    throw_exception(std::make_exception_ptr(E(std::forward<A>(args)...)), false);
  }
  // join blocks the calling tasklet until this tasklet is no longer alive. Returns at once if it
  // is dead. Switches. Errors: runtime_error "a tasklet cannot join itself"; deadlock_error when
  // nothing else can run (the tasklet is paused and nobody will resume it).
  void join();

  // State predicates (reference §2.2). Switches: never. Threads: any.
  bool alive() const;      // has started or can start, and has not ended
  bool scheduled() const;  // in a run queue (current included) or blocked
  int blocked() const;  // -1 waiting to receive (channel, lock, join…), +1 waiting to send, 0 not
  bool paused() const;  // alive and not scheduled
  bool is_main() const;     // the main tasklet of its own thread
  bool is_current() const;  // the running tasklet of its own thread
  // atomic: while set, the watchdog does not pre-empt this tasklet (see atomic.hpp).
  bool atomic() const;
  bool set_atomic(bool flag);  // returns the previous value
  // ignore_nesting: kept for Stackless compatibility; a C++ tasklet has no interpreter nesting
  // level, so the flag is only stored and reported.
  bool ignore_nesting() const;
  bool set_ignore_nesting(bool flag);  // returns the previous value
  // block_trap: while set, an operation that would block this tasklet throws runtime_error
  // "this tasklet does not like to be blocked." instead.
  bool block_trap() const;
  void set_block_trap(bool flag);
  // thread_id is the OS thread the tasklet belongs to.
  std::thread::id thread_id() const;
  // bind_thread moves a paused tasklet that never started to the runtime thread `id`; call it in
  // the thread the tasklet belongs to. Binding to the owner is a no-op. Errors: runtime_error
  // "can't (re)bind a runnable tasklet", "tasklet has C state on its stack" (it started), and
  // when called from another thread; std::invalid_argument("bad thread") for an unknown thread.
  void bind_thread(std::thread::id id = std::this_thread::get_id());
  // next / prev: neighbours in the run queue (circular); empty handles when not in a run queue.
  tasklet next() const;
  tasklet prev() const;
  // id: unique in the process, never reused. name: as given in tasklet_options.
  std::uint64_t id() const;
  std::string_view name() const;
  // stack_size: usable bytes of its stack (0 once dead). stack_used: bytes in use below the top
  // of its stack (at its last switch-out; live for the current tasklet).
  std::size_t stack_size() const;
  std::size_t stack_used() const;

  friend bool operator==(const tasklet& a, const tasklet& b) noexcept { return a.impl_ == b.impl_; }

  // Internal: adopt a reference the runtime already counted.
  static tasklet adopt(detail::tasklet_impl* t) noexcept {
    tasklet h;
    h.impl_ = t;
    return h;
  }
  detail::tasklet_impl* impl() const noexcept { return impl_; }

 private:
  template <class Fn>
  static void invoke(void* p) {
    std::invoke(*static_cast<Fn*>(p));
  }
  template <class Fn>
  static void destroy(void* p) noexcept {
    static_cast<Fn*>(p)->~Fn();
  }
  detail::tasklet_impl& checked() const;

  detail::tasklet_impl* impl_ = nullptr;
};

}  // namespace stackless
