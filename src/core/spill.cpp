// spill.cpp — stack spilling: running a function on a fresh stack segment (stackless::spill).
//
// The segment is a stack from the thread's cache with a context of its own. The running tasklet
// jumps to it and back; in between it stays the same tasklet — it may switch away and be resumed
// (on the segment) like on its own stack — so while the segment is in use it stands in for the
// tasklet's stack: its bounds (for the sanitizers and for nested spills), its ThreadSanitizer
// fiber, and its stack_block (canary checks and guard-page reports).
#include <stackless/config.hpp>
#include <stackless/stack.hpp>

#include <algorithm>
#include <exception>

#include "context/context.hpp"
#include "core/thread_state.hpp"

namespace stackless::detail {
namespace {

struct spill_call {
  void (*body)(void*);
  void* arg;
  std::exception_ptr error;
  context* back;    // where the tasklet was when it spilled
  context segment;  // the segment's context
};

[[noreturn]] void segment_entry(void* data) {
  auto* call = static_cast<spill_call*>(data);
  try {
    call->body(call->arg);
  } catch (...) {  // tasklet_exit included: it goes on unwinding on the original stack
    call->error = std::current_exception();
  }
  jump(call->segment, *call->back, nullptr, true);
  __builtin_unreachable();
}

}  // namespace

bool spill_needed() {
  const context& c = state().current->ctx;
  const auto sp = reinterpret_cast<std::uintptr_t>(stack_pointer());
  const auto low = reinterpret_cast<std::uintptr_t>(c.stack_low);
  // Under the sanitizers frames are larger, and stacks are (effective_stack_size): so is the
  // threshold.
  return sp < low + effective_stack_size(current_config().spill_threshold);
}

void run_on_segment(void (*body)(void*), void* arg) {
  thread_state& ts = state();
  tasklet_impl* t = ts.current;
  const config& cfg = current_config();
  // At least four thresholds, so that a segment holds real work before it spills again.
  const std::size_t size = std::max(cfg.default_stack_size, 4 * cfg.spill_threshold);
  stack_block segment = ts.stacks.acquire(effective_stack_size(size), cfg.guarded_stack_limit);
  spill_call call{body, arg, nullptr, nullptr, {}};
  context back;
  back.stack_low = t->ctx.stack_low;
  back.stack_size = t->ctx.stack_size;
  back.tsan_fiber = t->ctx.tsan_fiber;
  back.entry = t->ctx.entry;
  call.back = &back;
  prepare(call.segment, segment.low, segment.size, &segment_entry);
  // The segment stands in for the tasklet's stack until f returns.
  stack_block own = t->stack;
  t->stack = segment;
  t->ctx.stack_low = segment.low;
  t->ctx.stack_size = segment.size;
  t->ctx.tsan_fiber = call.segment.tsan_fiber;
  jump(back, call.segment, &call);
  // f has returned (or thrown) and the segment has jumped back for the last time. We may be
  // resumed in another run of the scheduler, but always in this thread and as tasklet t.
  t->stack = own;
  t->ctx.stack_low = back.stack_low;
  t->ctx.stack_size = back.stack_size;
  t->ctx.tsan_fiber = back.tsan_fiber;
  release(call.segment);
  ts.stacks.release(segment, cfg.stack_cache_limit);
  if (call.error) std::rethrow_exception(call.error);
}

}  // namespace stackless::detail
