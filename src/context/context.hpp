// context — the machine context switch (Boost.Context fcontext) and the sanitizer/Valgrind hooks.
//
// A context is a suspended execution: a stack and the registers saved on it. This layer knows
// nothing of tasklets. The one operation is jump(): save the running context into `from`, resume
// `to`, and return when somebody jumps back. Every jump tells AddressSanitizer and ThreadSanitizer
// about the stack change (Valgrind learns each stack when it is prepared), so the tools understand
// the program.
//
// jump() is inline on purpose: fcontext resumes with an indirect jump, not a return, so every
// frame between the caller and jump_fcontext costs a mispredicted return after each switch
// (about 7 ns each on the benchmark machine). Keep the switch path flat.
#pragma once

#include <cstddef>

#include <boost/context/detail/fcontext.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACKLESS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define STACKLESS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(STACKLESS_ASAN)
#define STACKLESS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(STACKLESS_TSAN)
#define STACKLESS_TSAN 1
#endif
#if defined(STACKLESS_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(STACKLESS_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace stackless::detail {

// entry_point is where a new context starts: it receives the data of the first jump() to it.
// It must never return; a context ends by its last jump with finishing=true.
using entry_point = void (*)(void* data);

// context: one execution context. For a thread's original stack it is filled by init_thread();
// for a tasklet by prepare().
struct context {
  void* handle = nullptr;           // fcontext of the suspended execution (its saved stack pointer)
  void* stack_low = nullptr;        // lowest usable address of its stack
  std::size_t stack_size = 0;       // usable bytes of its stack
  void* asan_fake_stack = nullptr;  // AddressSanitizer's fake stack while suspended
  void* tsan_fiber = nullptr;       // ThreadSanitizer's fiber
  unsigned valgrind_id = 0;         // Valgrind's stack registration
  bool owns_tsan_fiber = false;
  entry_point entry = nullptr;  // where a prepared context starts; null for a thread's stack
};

// init_thread describes the calling thread's own stack in c.
void init_thread(context& c) noexcept;
// prepare makes c start in entry on the given stack (registers it with the tools).
void prepare(context& c, void* stack_low, std::size_t stack_size, entry_point entry) noexcept;
// release undoes prepare()'s registrations. Call it when c will never run again (not from c).
void release(context& c) noexcept;
// stack_pointer returns the caller's approximate stack pointer.
void* stack_pointer() noexcept;

namespace context_impl {
// A jump carries this message: who jumped (so the resumed side can store the jumper's new
// fcontext handle), whom it jumped to, and the payload. It lives on the jumper's stack, which stays
// valid until the receiver has read it (the jumper is suspended, or finishing and freed later).
struct message {
  context* from;
  context* to;
  void* data;
};

// arrive runs first thing after a context resumes.
inline void* arrive(boost::context::detail::transfer_t t) noexcept {
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
}  // namespace context_impl

// jump suspends `from` (the running context), resumes `to` handing it `data`, and returns the
// data of whoever jumps back to `from`. With finishing=true, `from` will never be resumed: the
// tools drop its bookkeeping and the call does not return.
__attribute__((always_inline)) inline void* jump(context& from, context& to, void* data,
                                                 bool finishing = false) noexcept {
  context_impl::message m{&from, &to, data};
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
  return context_impl::arrive(boost::context::detail::jump_fcontext(to.handle, &m));
}

}  // namespace stackless::detail
