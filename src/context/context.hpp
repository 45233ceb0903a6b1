// context — the machine context switch (Boost.Context fcontext) and the sanitizer/Valgrind hooks.
//
// A context is a suspended execution: a stack and the registers saved on it. This layer knows
// nothing of tasklets. The one operation is jump(): save the running context into `from`, resume
// `to`, and return when somebody jumps back. Every jump tells AddressSanitizer, ThreadSanitizer
// and Valgrind about the stack change, so the tools understand the program.
#pragma once

#include <cstddef>

namespace stackless::detail {

// context: one execution context. For a thread's original stack it is filled by init_thread();
// for a tasklet by prepare().
struct context {
  void* handle = nullptr;       // fcontext of the suspended execution (its saved stack pointer)
  void* stack_low = nullptr;    // lowest usable address of its stack
  std::size_t stack_size = 0;   // usable bytes of its stack
  void* asan_fake_stack = nullptr;  // AddressSanitizer's fake stack while suspended
  void* tsan_fiber = nullptr;       // ThreadSanitizer's fiber
  unsigned valgrind_id = 0;         // Valgrind's stack registration
  bool owns_tsan_fiber = false;
  void (*entry)(void*) = nullptr;   // where a prepared context starts
};

// entry_point is where a new context starts: it receives the data of the first jump() to it.
// It must never return; a context ends by its last jump with finishing=true.
using entry_point = void (*)(void* data);

// init_thread describes the calling thread's own stack in c.
void init_thread(context& c) noexcept;
// prepare makes c start in entry on the given stack (registers it with the tools).
void prepare(context& c, void* stack_low, std::size_t stack_size, entry_point entry) noexcept;
// release undoes prepare()'s registrations. Call it when c will never run again (not from c).
void release(context& c) noexcept;

// jump suspends `from` (the running context), resumes `to` handing it `data`, and returns the
// data of whoever jumps back to `from`. With finishing=true, `from` will never be resumed: the
// tools drop its bookkeeping and the call does not return.
void* jump(context& from, context& to, void* data, bool finishing = false) noexcept;

// stack_pointer returns the caller's approximate stack pointer.
void* stack_pointer() noexcept;

}  // namespace stackless::detail
