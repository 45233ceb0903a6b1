// stackless/call_async.hpp — blocking work on a worker pool, with only the calling tasklet waiting.
//
//   std::string text = stackless::call_async([&] { return read_file(path); });  // blocks this
//                                                                              // tasklet only
//   stackless::future<int> f = stackless::async([] { return crunch(); });     // never blocks
//   ... other work ...
//   int n = f.get();
//
// call_async(f) runs f on the default thread_pool and waits for it the way every stackless wait
// does: the calling tasklet blocks, the other tasklets of its thread keep running, and when none
// can, the thread parks (in global_lock mode it releases the lock meanwhile). From a plain thread
// it simply waits. The result (move-only types too) or the exception (type and message intact)
// comes back. If the waiting tasklet is killed, the job still finishes on its worker and its
// result is destroyed there; nothing leaks and the worker is not lost.
//
// Pool workers are plain threads: they never use the runtime (no scheduler, no global lock), so a
// job should not use tasklets or channels of the caller's thread — pass data in and out.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <stackless/errors.hpp>
#include <stackless/sync.hpp>
#include <stackless/timer.hpp>

namespace stackless {

// cancelled_error: thrown by future::get() of a job that was cancelled before it started.
class cancelled_error : public runtime_error {
 public:
  cancelled_error() : runtime_error("cancelled_error: the job was cancelled before it started") {}
};

namespace detail {
class parker;  // src/threads/parker.hpp
}  // namespace detail

namespace detail {

// future_core: the state shared by a future and its job. phase: pending → running → finished,
// or pending → cancelled. The done flag and waiters follow event's protocol.
struct future_core {
  enum : int { pending, running, finished, cancelled };
  std::atomic<int> phase{pending};
  std::atomic<bool> done{false};
  std::exception_ptr error;
  sync_waiters* waiters = sync_create();
  virtual ~future_core() { sync_destroy(waiters, "future"); }
  // start: the worker takes the job; false if it was cancelled first.
  bool start() noexcept {
    int expected = pending;
    return phase.compare_exchange_strong(expected, running, std::memory_order_acq_rel);
  }
  void complete() noexcept {
    phase.store(finished, std::memory_order_release);
    event_set(done, waiters);
  }
  bool cancel() noexcept {
    int expected = pending;
    if (!phase.compare_exchange_strong(expected, cancelled, std::memory_order_acq_rel))
      return false;
    event_set(done, waiters);
    return true;
  }
  bool wait_until(std::int64_t deadline) {
    return done.load(std::memory_order_acquire) || event_wait(done, waiters, deadline);
  }
};

template <class T>
struct future_state : future_core {
  std::optional<T> value;
};
template <>
struct future_state<void> : future_core {};

// job: a type-erased, move-only unit of work for the pool.
using job = std::function<void()>;

}  // namespace detail

// future<T>: the result of a job submitted to a thread_pool (or of async()). Usable from
// tasklets (only the tasklet waits) and from plain threads. A future is a shared handle; get()
// moves the value out, so call it once.
template <class T>
class future {
 public:
  future() = default;

  // valid: refers to a job.
  bool valid() const noexcept { return state_ != nullptr; }
  // ready: the job has finished (or was cancelled); get() will not wait.
  bool ready() const noexcept { return state_->done.load(std::memory_order_acquire); }
  // wait blocks until ready. Switches (when not ready).
  void wait() const { state_->wait_until(detail::no_deadline); }
  template <class Rep, class Per>
  bool wait_for(std::chrono::duration<Rep, Per> d) const {
    return state_->wait_until(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  bool wait_until(std::chrono::time_point<Clock, Dur> t) const {
    return state_->wait_until(detail::deadline_at(t));
  }
  // get waits, then returns the value or rethrows the job's exception; cancelled_error if the job
  // was cancelled. Errors: std::logic_error on an empty future or a second get() of a value.
  T get() {
    if (!state_) throw std::logic_error("future::get on an empty future");
    wait();
    if (state_->phase.load(std::memory_order_acquire) == detail::future_core::cancelled)
      throw cancelled_error();
    if (state_->error) std::rethrow_exception(state_->error);
    if constexpr (!std::is_void_v<T>) {
      if (!state_->value) throw std::logic_error("future::get called twice");
      T v = std::move(*state_->value);
      state_->value.reset();
      return v;
    }
  }
  // cancel: true only if the job had not started; it then never runs and get() throws
  // cancelled_error. A running or finished job is not affected (false).
  bool cancel() noexcept { return state_ && state_->cancel(); }

  // Internal.
  explicit future(std::shared_ptr<detail::future_state<T>> s) : state_(std::move(s)) {}
  const std::shared_ptr<detail::future_state<T>>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<detail::future_state<T>> state_;
};

// thread_pool: a fixed number of worker threads taking jobs from a FIFO queue, optionally
// bounded (submit then waits — only the submitting tasklet — while the queue is full).
// shutdown() lets the queued jobs finish, then joins the workers; cancel_pending() cancels the
// jobs that have not started (their futures throw cancelled_error). The destructor shuts down.
// Errors: submit after shutdown → runtime_error.
class thread_pool {
 public:
  // threads: 0 means std::thread::hardware_concurrency() (at least 2). queue_limit: 0 = none.
  explicit thread_pool(std::size_t threads = 0, std::size_t queue_limit = 0);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  // submit queues f (moved in) and returns its future. Switches: only while a bounded queue is
  // full.
  template <class F>
  auto submit(F&& f) -> future<std::invoke_result_t<std::decay_t<F>&>> {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    auto state = std::make_shared<detail::future_state<R>>();
    enqueue(
        [state, fn = std::decay_t<F>(std::forward<F>(f))]() mutable {
          if (!state->start()) return;  // cancelled before it started
          try {
            if constexpr (std::is_void_v<R>)
              fn();
            else
              state->value.emplace(fn());
          } catch (...) {
            state->error = std::current_exception();
          }
          state->complete();
        },
        state);
    return future<R>(std::move(state));
  }
  // shutdown finishes the queued jobs and joins the workers. Idempotent. Switches: never (it
  // blocks the calling thread: in global_lock mode it releases the lock meanwhile).
  void shutdown();
  // cancel_pending cancels every job that has not started and returns how many.
  std::size_t cancel_pending();
  std::size_t size() const noexcept { return workers_.size(); }
  // pending: jobs queued and not started (a snapshot).
  std::size_t pending() const;

 private:
  void enqueue(detail::job j, std::shared_ptr<detail::future_core> state);
  void work();

  mutable std::mutex mutex_;
  std::vector<detail::parker*> idle_;  // parked workers, under mutex_; the last to park first
  detail::parker* spinner_ = nullptr;  // the one idle worker that spins before it sleeps
  std::deque<std::pair<detail::job, std::shared_ptr<detail::future_core>>> queue_;
  std::optional<semaphore> slots_;  // bounded queue: free places
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  bool joined_ = false;
};

// default_pool: the pool call_async and async use, created on first use with
// config::worker_threads threads (0: the hardware's count). Lives until the process ends.
thread_pool& default_pool();

// async runs f on the default pool and returns its future at once. Switches: never (unless the
// queue is bounded and full).
template <class F>
auto async(F&& f) {
  return default_pool().submit(std::forward<F>(f));
}

// call_async runs f on the default pool and returns its result (or rethrows its exception);
// only the calling tasklet waits. Switches. Errors: what f throws; tasklet_exit if killed while
// waiting (f still completes on its worker).
template <class F>
auto call_async(F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  return default_pool().submit(std::forward<F>(f)).get();
}

// wait_all blocks until every future is ready. wait_any blocks until one is and returns its
// index (the lowest ready one). Switches.
template <class... T>
void wait_all(const future<T>&... fs) {
  (fs.wait(), ...);
}
template <class T>
void wait_all(const std::vector<future<T>>& fs) {
  for (const auto& f : fs) f.wait();
}
namespace detail {
std::size_t wait_any_of(const std::vector<future_core*>& cores, std::int64_t deadline);
}
template <class T>
std::size_t wait_any(const std::vector<future<T>>& fs) {
  std::vector<detail::future_core*> cores;
  cores.reserve(fs.size());
  for (const auto& f : fs) cores.push_back(f.state().get());
  return detail::wait_any_of(cores, detail::no_deadline);
}
template <class... T>
std::size_t wait_any(const future<T>&... fs) {
  return detail::wait_any_of({fs.state().get()...}, detail::no_deadline);
}

// as_completed returns the indices of fs in the order they become ready (blocking as needed).
template <class T>
std::vector<std::size_t> as_completed(const std::vector<future<T>>& fs) {
  std::vector<detail::future_core*> cores;
  for (const auto& f : fs) cores.push_back(f.state().get());
  std::vector<std::size_t> order;
  std::vector<detail::future_core*> left = cores;
  while (order.size() < fs.size()) {
    const std::size_t i = detail::wait_any_of(left, detail::no_deadline);
    for (std::size_t k = 0; k < cores.size(); ++k)
      if (cores[k] == left[i]) order.push_back(k);
    left[i] = nullptr;
  }
  return order;
}

}  // namespace stackless
