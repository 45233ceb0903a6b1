// context.cpp — fcontext switching plus the hooks that tell the tools about every switch.
#include "context/context.hpp"

#include <pthread.h>

#if defined(STACKLESS_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define STACKLESS_VALGRIND 1
#endif

namespace stackless::detail {
namespace fc = boost::context::detail;

namespace {

[[noreturn]] void trampoline(fc::transfer_t t) {
  context* self = static_cast<context_impl::message*>(t.data)->to;
  void* data = context_impl::arrive(t);
  self->entry(data);
  __builtin_trap();  // an entry point must end with a finishing jump
}

}  // namespace

void init_thread(context& c) noexcept {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    c.stack_low = addr;
    c.stack_size = size;
  }
#if defined(STACKLESS_TSAN)
  c.tsan_fiber = __tsan_get_current_fiber();
  c.owns_tsan_fiber = false;
#endif
}

void prepare(context& c, void* stack_low, std::size_t stack_size, entry_point entry) noexcept {
  c.stack_low = stack_low;
  c.stack_size = stack_size;
  c.entry = entry;
  c.handle = fc::make_fcontext(static_cast<char*>(stack_low) + stack_size, stack_size, &trampoline);
  c.asan_fake_stack = nullptr;
#if defined(STACKLESS_TSAN)
  c.tsan_fiber = __tsan_create_fiber(0);
  c.owns_tsan_fiber = true;
#endif
#if defined(STACKLESS_VALGRIND)
  c.valgrind_id = VALGRIND_STACK_REGISTER(stack_low, static_cast<char*>(stack_low) + stack_size);
#endif
}

void release(context& c) noexcept {
#if defined(STACKLESS_ASAN)
  // The frames that were live at the context's last switch never returned: clear their redzones
  // so the next user of this stack memory starts clean.
  if (c.entry != nullptr && c.stack_low != nullptr)
    ASAN_UNPOISON_MEMORY_REGION(c.stack_low, c.stack_size);
#endif
#if defined(STACKLESS_TSAN)
  if (c.owns_tsan_fiber && c.tsan_fiber != nullptr) __tsan_destroy_fiber(c.tsan_fiber);
  c.tsan_fiber = nullptr;
  c.owns_tsan_fiber = false;
#endif
#if defined(STACKLESS_VALGRIND)
  if (c.valgrind_id != 0) VALGRIND_STACK_DEREGISTER(c.valgrind_id);
  c.valgrind_id = 0;
#endif
  c.handle = nullptr;
}

void* stack_pointer() noexcept { return __builtin_frame_address(0); }

}  // namespace stackless::detail
