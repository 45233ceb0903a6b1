// fatal — the one path for unrecoverable faults: format into a stack buffer, write(2), abort().
// Neither allocates nor locks, so it works in a signal handler and with a corrupt heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace stackless::detail {

class fatal_message {
 public:
  fatal_message& operator<<(std::string_view s) noexcept;
  fatal_message& operator<<(std::uint64_t n) noexcept;
  // die writes "stackless: <message>\n" to stderr and aborts.
  [[noreturn]] void die() noexcept;
  // print writes the message to stderr and returns (for reports that are not fatal).
  void print() noexcept;

 private:
  char buf_[512];
  std::size_t len_ = 0;
};

}  // namespace stackless::detail
