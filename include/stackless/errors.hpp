// stackless/errors.hpp — the exceptions the runtime throws.
//
// Messages reuse Stackless Python's texts where Stackless has one, so people who know Stackless
// recognise them (reference §2–§5). Misuse throws; expected outcomes (timeouts) are returned.
#pragma once

#include <stdexcept>
#include <string>

namespace stackless {

// tasklet_exit is thrown into a tasklet by tasklet::kill(). It deliberately does not derive from
// std::exception, so `catch (const std::exception&)` cannot swallow a kill. A tasklet that lets it
// escape ends silently. Code may catch it (`catch (const tasklet_exit&)`) to clean up, and should
// rethrow it; a tasklet that catches it and keeps running is not dead.
struct tasklet_exit {};

// runtime_error is the base of the runtime's own errors: state misuse ("You cannot run a blocked
// tasklet"), switch_trap, deadlock.
class runtime_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// deadlock_error is thrown when the last runnable tasklet would block and nothing could ever wake
// it: "Deadlock: the last runnable tasklet cannot be blocked." It is also what a run()-caller or
// main tasklet gets when it waits on something that the ending of the last other tasklet leaves
// without a partner ("the main tasklet is receiving without a sender available.").
class deadlock_error : public runtime_error {
 public:
  deadlock_error() : runtime_error("Deadlock: the last runnable tasklet cannot be blocked.") {}
  explicit deadlock_error(const std::string& what) : runtime_error(what) {}
};

// channel_closed is thrown by a channel operation that would block on a closing channel.
class channel_closed : public std::logic_error {
 public:
  channel_closed() : std::logic_error("Send/receive operation on a closed channel") {}
};

}  // namespace stackless
