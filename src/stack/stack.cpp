#include "stack/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace stackless::detail {
namespace {

std::atomic<std::size_t> g_guarded{0};        // PROT_NONE guard pages (two mappings each)
std::atomic<std::size_t> g_guard_regions{0};  // madvise guard regions (no mapping of their own)
// Stacks and bytes left over by caches that are gone, and by discard().
std::atomic<long> g_retired_in_use{0};
std::atomic<long> g_retired_bytes{0};

constexpr std::uint64_t kCanary = 0x5ac4'1e55'dead'beefULL;
constexpr std::size_t kCanaryWords = 4;

void unmap(const stack_block& s) noexcept {
  ::munmap(s.map_base, s.map_size);
  if (s.guard_region)
    g_guard_regions.fetch_sub(1, std::memory_order_relaxed);
  else if (s.guarded)
    g_guarded.fetch_sub(1, std::memory_order_relaxed);
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13
#endif

// map_anonymous maps `bytes` of stack memory, not charged against memory until touched.
void* map_anonymous(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

// block describes a mapping of guard + size bytes at p whose lowest `guard` bytes are the guard.
stack_block block(void* p, std::size_t guard, std::size_t size, bool guard_region) {
  stack_block s;
  s.map_base = p;
  s.map_size = guard + size;
  s.low = static_cast<char*>(p) + guard;
  s.size = size;
  s.guarded = guard != 0;
  s.guard_region = guard_region;
  return s;
}

// map_with_guard_region maps a stack whose lowest page is a guard region (Linux 6.13+): faults
// like a PROT_NONE page, but inside the stack's own mapping, so it costs no kernel mapping and
// neighbouring stacks still merge into one. Returns an empty block where the kernel cannot, or
// when the environment sets STACKLESS_NO_GUARD_REGIONS (to test the older scheme on new kernels).
stack_block map_with_guard_region(std::size_t size) {
  static std::atomic<bool> unsupported{std::getenv("STACKLESS_NO_GUARD_REGIONS") != nullptr};
  if (unsupported.load(std::memory_order_relaxed)) return {};
  const std::size_t page = page_size();
  void* p = map_anonymous(page + size);
  if (::madvise(p, page, MADV_GUARD_INSTALL) != 0) {
    unsupported.store(true, std::memory_order_relaxed);
    ::munmap(p, page + size);
    return {};
  }
  g_guard_regions.fetch_add(1, std::memory_order_relaxed);
  return block(p, page, size, true);
}

// map_stack maps a stack with a guard region where the kernel has them; else with a PROT_NONE
// guard page while the process-wide limit allows one, else with a canary.
stack_block map_stack(std::size_t size, std::size_t guarded_limit) {
  // A guarded_stack_limit of 0 asks for no guard at all (canaries only).
  if (guarded_limit != 0)
    if (stack_block s = map_with_guard_region(size)) return s;
  // Claim a guard slot if the process-wide limit allows one.
  bool guarded = false;
  std::size_t g = g_guarded.load(std::memory_order_relaxed);
  while (g < guarded_limit) {
    if (g_guarded.compare_exchange_weak(g, g + 1, std::memory_order_relaxed)) {
      guarded = true;
      break;
    }
  }
  const std::size_t guard = guarded ? page_size() : 0;
  void* p = nullptr;
  try {
    p = map_anonymous(guard + size);
  } catch (const std::bad_alloc&) {
    if (guarded) g_guarded.fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
  if (guarded && ::mprotect(p, guard, PROT_NONE) != 0) {
    ::munmap(p, guard + size);
    g_guarded.fetch_sub(1, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  stack_block s = block(p, guard, size, false);
  if (!guarded) write_canary(s);
  return s;
}

}  // namespace

std::size_t page_size() noexcept {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

stack_cache::~stack_cache() {
  for (const stack_block& s : free_) {
    bump(bytes_, -static_cast<long>(s.map_size));
    unmap(s);
  }
  // Stacks still in use outlive their thread (their tasklets survived it): keep counting them.
  g_retired_in_use.fetch_add(in_use_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  g_retired_bytes.fetch_add(bytes_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

stack_counters stack_cache::counters() const noexcept {
  stack_counters c;
  c.in_use = in_use_.load(std::memory_order_relaxed);
  c.cached = cached_.load(std::memory_order_relaxed);
  c.bytes_reserved = bytes_.load(std::memory_order_relaxed);
  return c;
}

void stack_cache::discard(stack_block s) noexcept {
  g_retired_in_use.fetch_sub(1, std::memory_order_relaxed);
  g_retired_bytes.fetch_sub(static_cast<long>(s.map_size), std::memory_order_relaxed);
  unmap(s);
}

stack_block stack_cache::acquire(std::size_t size, std::size_t guarded_limit) {
  const std::size_t page = page_size();
  size = (size + page - 1) / page * page;
  for (std::size_t i = free_.size(); i-- > 0;) {
    if (free_[i].size == size) {
      stack_block s = free_[i];
      free_[i] = free_.back();
      free_.pop_back();
      bump(cached_, -1);
      bump(in_use_, 1);
      return s;
    }
  }
  stack_block s = map_stack(size, guarded_limit);
  bump(bytes_, static_cast<long>(s.map_size));
  bump(in_use_, 1);
  return s;
}

void stack_cache::release(stack_block s, std::size_t limit) noexcept {
  bump(in_use_, -1);
  if (free_.size() < limit) {
    try {
      if (free_.capacity() < limit) free_.reserve(limit);
      if (!s.guarded) write_canary(s);
      free_.push_back(s);
      bump(cached_, 1);
      return;
    } catch (const std::bad_alloc&) {
      // Fall through: unmap instead of caching.
    }
  }
  bump(bytes_, -static_cast<long>(s.map_size));
  unmap(s);
}

// The canary words are raw stack memory that live frames may cover (that is what it detects), so
// AddressSanitizer must not check these accesses against frame redzones.
__attribute__((no_sanitize("address"))) void write_canary(const stack_block& s) noexcept {
  auto* w = static_cast<std::uint64_t*>(s.low);
  for (std::size_t i = 0; i < kCanaryWords; ++i) w[i] = kCanary;
}

__attribute__((no_sanitize("address"))) bool canary_intact(const stack_block& s) noexcept {
  if (s.guarded) return true;
  const auto* w = static_cast<const std::uint64_t*>(s.low);
  for (std::size_t i = 0; i < kCanaryWords; ++i)
    if (w[i] != kCanary) return false;
  return true;
}

stack_counters global_stack_counters() noexcept {
  stack_counters c;
  c.in_use = g_retired_in_use.load(std::memory_order_relaxed);
  c.bytes_reserved = g_retired_bytes.load(std::memory_order_relaxed);
  c.guarded = static_cast<long>(g_guarded.load(std::memory_order_relaxed) +
                                g_guard_regions.load(std::memory_order_relaxed));
  return c;
}

}  // namespace stackless::detail
