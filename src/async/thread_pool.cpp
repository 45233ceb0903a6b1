// thread_pool.cpp — the worker pool behind call_async, and waiting for any of several futures.
#include <stackless/call_async.hpp>
#include <stackless/config.hpp>

#include <algorithm>

#include "core/mt.hpp"
#include "core/switch.hpp"
#include "sync/waiters.hpp"
#include "threads/parker.hpp"

namespace stackless {

namespace {
thread_local const thread_pool* tls_worker_of = nullptr;
}

thread_pool::thread_pool(std::size_t threads, std::size_t queue_limit) {
  if (threads == 0) threads = std::max<std::size_t>(2, std::thread::hardware_concurrency());
  if (queue_limit != 0) slots_.emplace(static_cast<std::ptrdiff_t>(queue_limit));
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

thread_pool::~thread_pool() { shutdown(); }

void thread_pool::enqueue(detail::job j, std::shared_ptr<detail::future_core> state) {
  if (slots_) slots_->acquire();  // a full bounded queue: only this tasklet waits
  detail::parker* wake = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (slots_) slots_->release();
      throw runtime_error("thread_pool::submit after shutdown(); submit before shutting down");
    }
    queue_.emplace_back(std::move(j), std::move(state));
    detail::g_jobs_in_flight.fetch_add(1, std::memory_order_acq_rel);
    if (spinner_ != nullptr) {  // awake already: the cheapest to hand the job to
      wake = spinner_;
      std::erase(idle_, wake);
      spinner_ = nullptr;
    } else if (!idle_.empty()) {
      wake = idle_.back();
      idle_.pop_back();
    }
  }
  if (wake != nullptr) wake->unpark();  // parkers outlive their users: safe after the unlock
}

// An idle worker waits in a parker, like a runtime thread with nothing to run. One of them (the
// spinner) spins a while before it sleeps (see threads/parker.hpp), so a caller that submits again
// soon after its last result does not pay for waking a sleeping core; a new job goes to it first.
void thread_pool::work() {
  tls_worker_of = this;
  detail::parker& me = detail::parker::lease();
  struct give_back {
    detail::parker& p;
    ~give_back() { detail::parker::give_back(p); }
  } returned{me};
  for (;;) {
    std::pair<detail::job, std::shared_ptr<detail::future_core>> item;
    {
      std::unique_lock lock(mutex_);
      while (queue_.empty() && !stopping_) {
        idle_.push_back(&me);
        // One idle worker at a time spins: more would only take cores from the busy ones.
        const bool spin = spinner_ == nullptr;
        if (spin) spinner_ = &me;
        detail::g_idle_service_threads.fetch_add(1, std::memory_order_acq_rel);
        lock.unlock();
        me.park_until(INT64_MAX, spin);
        lock.lock();
        detail::g_idle_service_threads.fetch_sub(1, std::memory_order_acq_rel);
        // Taken off the list by whoever unparked us; still on it after a spurious return.
        std::erase(idle_, &me);
        if (spinner_ == &me) spinner_ = nullptr;
      }
      if (queue_.empty()) return;  // stopping, and every queued job is done
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (slots_) slots_->release();
    item.first();  // runs the job (unless cancelled), stores the result, wakes the waiters
    item = {};     // the job's captures die here, on the worker
    detail::leave_runtime();  // a job that used tasklets or locks made this a runtime thread
    detail::g_jobs_in_flight.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void thread_pool::shutdown() {
  if (tls_worker_of == this)
    throw runtime_error("thread_pool::shutdown called by one of its own jobs; call it from outside");
  {
    std::lock_guard lock(mutex_);
    if (joined_) return;
    stopping_ = true;
    for (detail::parker* p : idle_) p->unpark();
    idle_.clear();
    spinner_ = nullptr;
  }
  {
    allow_threads unlocked;  // global_lock mode: let other threads run while we join
    for (std::thread& t : workers_)
      if (t.joinable()) t.join();
  }
  std::lock_guard lock(mutex_);
  joined_ = true;
}

std::size_t thread_pool::cancel_pending() {
  std::deque<std::pair<detail::job, std::shared_ptr<detail::future_core>>> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(queue_);
  }
  std::size_t n = 0;
  for (auto& item : taken) {
    if (slots_) slots_->release();
    if (item.second->cancel()) ++n;
    detail::g_jobs_in_flight.fetch_sub(1, std::memory_order_acq_rel);
  }
  return n;
}

std::size_t thread_pool::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

thread_pool& default_pool() {
  static thread_pool pool(current_config().worker_threads);
  return pool;
}

namespace detail {

std::size_t wait_any_of(const std::vector<future_core*>& cores, std::int64_t deadline) {
  for (std::size_t i = 0; i < cores.size(); ++i)
    if (cores[i] != nullptr && cores[i]->done.load(std::memory_order_acquire)) return i;
  thread_state& ts = state();
  check_can_block(ts);
  // One wait on every future's queue at once, like select: the first to finish claims it.
  std::vector<wait_node> nodes(cores.size());
  wait_state ws;
  wait_node** link = &ws.nodes;
  std::size_t linked = 0;
  auto unlink_all = [&] {
    for (std::size_t k = 0; k < linked; ++k) {
      if (cores[k] == nullptr) continue;
      queue_guard g(ts, cores[k]->waiters->queue);
      if (nodes[k].queue != nullptr) nodes[k].queue->unlink(nodes[k]);
      cores[k]->waiters->waiting.fetch_sub(1, std::memory_order_seq_cst);
    }
  };
  for (std::size_t i = 0; i < cores.size(); ++i, linked = i) {
    if (cores[i] == nullptr) continue;
    sync_waiters* w = cores[i]->waiters;
    queue_guard g(ts, w->queue);
    w->waiting.fetch_add(1, std::memory_order_seq_cst);
    if (cores[i]->done.load(std::memory_order_seq_cst)) {
      w->waiting.fetch_sub(1, std::memory_order_seq_cst);
      g.leave();
      unlink_all();
      return i;
    }
    prepare_node(ts, ws, nodes[i]);
    w->queue.push_back(nodes[i]);
    *link = &nodes[i];
    link = &nodes[i].group_next;
  }
  linked = cores.size();
  wait_outcome outcome;
  try {
    outcome = wait(ts, ws, deadline);
  } catch (...) {
    for (std::size_t k = 0; k < cores.size(); ++k)  // unlinked by the kill; uncount ourselves
      if (cores[k] != nullptr && &nodes[k] != ws.fired)
        cores[k]->waiters->waiting.fetch_sub(1, std::memory_order_seq_cst);
    throw;
  }
  std::size_t fired = cores.size();
  for (std::size_t k = 0; k < cores.size(); ++k) {
    if (cores[k] == nullptr) continue;
    if (&nodes[k] == ws.fired)
      fired = k;  // its waker uncounted it
    else
      cores[k]->waiters->waiting.fetch_sub(1, std::memory_order_seq_cst);
  }
  (void)outcome;
  return fired;
}

}  // namespace detail
}  // namespace stackless
