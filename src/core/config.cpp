// config.cpp — the process-wide configuration.
#include <stackless/config.hpp>
#include <stackless/errors.hpp>

#include <atomic>
#include <stdexcept>
#include <string>

#include "core/thread_state.hpp"

namespace stackless {
namespace {

config g_config;
std::atomic<bool> g_used{false};

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kSanitizerStackFactor = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kSanitizerStackFactor = 4;
#else
constexpr std::size_t kSanitizerStackFactor = 1;
#endif
#else
constexpr std::size_t kSanitizerStackFactor = 1;
#endif

}  // namespace

void configure(const config& c) {
  if (c.default_stack_size < 8 * 1024)
    throw std::invalid_argument("config::default_stack_size " +
                                std::to_string(c.default_stack_size) +
                                " is below the minimum of 8192 bytes");
  if (g_used.load(std::memory_order_acquire))
    throw runtime_error(
        "configure() must be called before the runtime is first used (before the first tasklet, "
        "scheduler call or current())");
  g_config = c;
}

const config& current_config() noexcept { return g_config; }

allow_threads::allow_threads() noexcept {
  detail::thread_state* ts = detail::state_if_any();
  if (ts != nullptr && ts->holds_gil) {
    detail::gil_release(*ts);
    released_ = true;
  }
}

allow_threads::~allow_threads() {
  if (released_) detail::gil_acquire(*detail::state_if_any());
}

namespace detail {

void mark_runtime_used() noexcept { g_used.store(true, std::memory_order_release); }

std::size_t effective_stack_size(std::size_t requested) {
  return requested * kSanitizerStackFactor;
}

}  // namespace detail
}  // namespace stackless
