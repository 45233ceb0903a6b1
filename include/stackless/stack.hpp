// stackless/stack.hpp — how a tasklet's stack is provided.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace stackless {

// stack_mode selects the kind of stack a tasklet runs on.
//   dedicated: an mmap'ed stack of its own, taken from a bounded per-thread cache. It carries a
//              guard page (overflow is caught at once, by name): every stack from Linux 6.13 on,
//              else the first config::guarded_stack_limit stacks of the process; the others carry
//              a canary checked at each switch-out.
//   sliced:    reserved for stack slicing (a shared per-thread stack whose live part is copied out
//              on switch-out). Not implemented yet: creating a sliced tasklet throws runtime_error.
enum class stack_mode { dedicated, sliced };

namespace detail {
// spill_needed: fewer than config::spill_threshold bytes remain below the caller's stack pointer
// on the stack it runs on (its tasklet's, a spill segment, or the thread's own).
bool spill_needed();
// run_on_segment runs body(arg) on a fresh stack segment from the thread's stack cache and
// returns the segment afterwards; an exception of body is rethrown here.
void run_on_segment(void (*body)(void*), void* arg);
}  // namespace detail

// spill runs f and returns what it returns. If fewer than config::spill_threshold bytes of stack
// remain, f runs on a fresh segment (config::default_stack_size, at least 4 * spill_threshold,
// from the thread's stack cache) that is given back when f returns; otherwise it is a direct call
// (one comparison and a call).
// This is Stackless's stack spilling: a recursive function that calls spill() at every level can
// recurse as deep as memory allows, even in a tasklet with a small stack:
//
//   int depth(int n) { return n == 0 ? 0 : 1 + stackless::spill([&] { return depth(n - 1); }); }
//
// f may do anything a tasklet may do on its own stack: switch, block, throw (the exception
// leaves spill() as it left f), be killed. Errors: std::bad_alloc when no segment can be mapped.
// Switches: only if f does. Threads: any (a thread without tasklets spills from its own stack).
template <class F>
decltype(auto) spill(F&& f) {
  using R = std::invoke_result_t<F>;
  if (!detail::spill_needed()) return std::invoke(std::forward<F>(f));
  using Fn = std::remove_reference_t<F>;
  if constexpr (std::is_void_v<R>) {
    detail::run_on_segment([](void* p) { std::invoke(std::forward<F>(*static_cast<Fn*>(p))); },
                           std::addressof(f));
  } else if constexpr (std::is_reference_v<R>) {
    struct call {
      Fn* f;
      std::remove_reference_t<R>* result;
    } c{std::addressof(f), nullptr};
    detail::run_on_segment(
        [](void* p) {
          auto* c = static_cast<call*>(p);
          c->result = std::addressof(std::invoke(std::forward<F>(*c->f)));
        },
        &c);
    return static_cast<R>(*c.result);
  } else {
    struct call {
      Fn* f;
      alignas(R) unsigned char result[sizeof(R)];
    } c{std::addressof(f), {}};
    detail::run_on_segment(
        [](void* p) {
          auto* c = static_cast<call*>(p);
          ::new (static_cast<void*>(c->result)) R(std::invoke(std::forward<F>(*c->f)));
        },
        &c);
    R* r = std::launder(reinterpret_cast<R*>(c.result));
    struct destroy {
      R* r;
      ~destroy() { r->~R(); }
    } d{r};
    return R(std::move(*r));
  }
}

}  // namespace stackless
