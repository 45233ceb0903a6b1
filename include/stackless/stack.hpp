// stackless/stack.hpp — how a tasklet's stack is provided.
#pragma once

namespace stackless {

// stack_mode selects the kind of stack a tasklet runs on.
//   dedicated: an mmap'ed stack of its own, taken from a bounded per-thread cache. The first
//              config::guarded_stack_limit stacks of a process carry a guard page (overflow is
//              caught at once, by name); every stack carries a canary checked at each switch-out.
//   sliced:    reserved for stack slicing (a shared per-thread stack whose live part is copied out
//              on switch-out). Not implemented yet: creating a sliced tasklet throws runtime_error.
enum class stack_mode { dedicated, sliced };

}  // namespace stackless
