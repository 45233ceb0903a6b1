// tests/thread_support.hpp — what the multi-threaded suites share: polling with a hang guard, a
// one-shot gate of std:: primitives, a std::thread that fails the test instead of terminating, and
// the call_async probes.
//
// Every time limit here is a guard against a hang, never an expected duration.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace stackless_testing {

// kHangGuard: how long eventually() polls and gate::wait() waits before they give up.
inline constexpr std::chrono::seconds kHangGuard{60};

// eventually polls pred (yielding the CPU) until it holds; false if the hang guard expires. It
// does not switch tasklets: pred must become true through another thread.
template <class Pred>
bool eventually(Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + kHangGuard;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// gate: a one-shot signal made of std:: primitives, so a thread or job that waits on it stays a
// plain thread (it never becomes a runtime thread). wait() gives up after kHangGuard and then
// returns false, so a failing test cannot hang the process.
class gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kHangGuard, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// os_thread: a std::thread joined at the latest when the test body ends — inside allow_threads,
// so that in global_lock mode the joining thread does not keep the lock from it (a no-op in free
// mode). An uncaught exception fails the test instead of terminating the process.
class os_thread {
 public:
  template <class F>
  explicit os_thread(F f)
      : thread_([f = std::move(f)]() mutable {
          try {
            f();
          } catch (const std::exception& e) {
            ADD_FAILURE() << "a thread ended with an exception: " << e.what();
          } catch (const stackless::tasklet_exit&) {
            ADD_FAILURE() << "a thread's main tasklet ended with tasklet_exit";
          } catch (...) {
            ADD_FAILURE() << "a thread ended with an unknown exception";
          }
        }) {}
  ~os_thread() { join(); }
  os_thread(const os_thread&) = delete;
  os_thread& operator=(const os_thread&) = delete;
  std::thread::id id() const noexcept { return thread_.get_id(); }
  void join() {
    if (!thread_.joinable()) return;
    stackless::allow_threads unlocked;
    thread_.join();
  }

 private:
  std::thread thread_;
};

// result_probe: a move-only call_async result that counts destructions of its live instance
// (moves hand the liveness on), on whichever thread they happen.
struct result_probe {
  std::atomic<int>* destroyed;
  int value;
  bool live = true;
  result_probe(std::atomic<int>* d, int v) : destroyed(d), value(v) {}
  result_probe(result_probe&& o) noexcept
      : destroyed(o.destroyed), value(o.value), live(std::exchange(o.live, false)) {}
  result_probe(const result_probe&) = delete;
  result_probe& operator=(const result_probe&) = delete;
  ~result_probe() {
    if (live) destroyed->fetch_add(1);
  }
};

// custom_error: an exception type of the caller's own, with a payload besides its message.
struct custom_error : std::runtime_error {
  int code;
  custom_error(const std::string& what, int c) : std::runtime_error(what), code(c) {}
};

// expect_all_workers_serve: every worker of the pool is alive and takes jobs — pool.size() jobs
// each wait until all of them have started, which only happens if each runs on its own worker.
inline void expect_all_workers_serve(stackless::thread_pool& p) {
  const int n = static_cast<int>(p.size());
  std::atomic<int> arrived{0};
  std::vector<stackless::future<bool>> fs;
  for (int i = 0; i < n; ++i)
    fs.push_back(p.submit([&arrived, n] {
      arrived.fetch_add(1);
      return eventually([&] { return arrived.load() == n; });
    }));
  for (auto& f : fs) EXPECT_TRUE(f.get()) << "a worker of the pool was lost";
}

}  // namespace stackless_testing
