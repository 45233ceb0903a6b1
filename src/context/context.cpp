// context.cpp — fcontext switching plus the hooks that tell the tools about every switch.
#include "context/context.hpp"

#include <pthread.h>

#include <boost/context/detail/fcontext.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACKLESS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define STACKLESS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define STACKLESS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define STACKLESS_TSAN 1
#endif

#if defined(STACKLESS_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(STACKLESS_TSAN)
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define STACKLESS_VALGRIND 1
#endif

namespace stackless::detail {
namespace fc = boost::context::detail;

namespace {

// A jump carries this message: who jumped (so the resumed side can store the jumper's new
// fcontext handle), whom it jumped to, and the payload. It lives on the jumper's stack, which stays
// valid until the receiver has read it (the jumper is suspended, or finishing and freed later).
struct message {
  context* from;
  context* to;
  void* data;
};

// arrive runs first thing after a context resumes: store the jumper's handle and complete the
// sanitizer switch.
inline void* arrive(fc::transfer_t t) noexcept {
  auto* m = static_cast<message*>(t.data);
  m->from->handle = t.fctx;
#if defined(STACKLESS_ASAN)
  const void* old_low = nullptr;
  std::size_t old_size = 0;
  __sanitizer_finish_switch_fiber(m->to->asan_fake_stack, &old_low, &old_size);
  // ASan knows the thread's own stack exactly; learn it on the first switch away from it.
  if (m->from->entry == nullptr) {
    m->from->stack_low = const_cast<void*>(old_low);
    m->from->stack_size = old_size;
  }
#endif
  return m->data;
}

[[noreturn]] void trampoline(fc::transfer_t t) {
  context* self = static_cast<message*>(t.data)->to;
  void* data = arrive(t);
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
  if (c.entry != nullptr && c.stack_low != nullptr) ASAN_UNPOISON_MEMORY_REGION(c.stack_low, c.stack_size);
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

void* jump(context& from, context& to, void* data, bool finishing) noexcept {
  message m{&from, &to, data};
#if defined(STACKLESS_ASAN)
  // A finishing context passes no fake-stack slot, so ASan frees its fake stack.
  __sanitizer_start_switch_fiber(finishing ? nullptr : &from.asan_fake_stack, to.stack_low,
                                 to.stack_size);
#else
  (void)finishing;
#endif
#if defined(STACKLESS_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  fc::transfer_t t = fc::jump_fcontext(to.handle, &m);
  return arrive(t);
}

void* stack_pointer() noexcept { return __builtin_frame_address(0); }

}  // namespace stackless::detail
