#include "context/fatal.hpp"

#include <unistd.h>

#include <cstdlib>

namespace stackless::detail {

fatal_message& fatal_message::operator<<(std::string_view s) noexcept {
  for (char c : s) {
    if (len_ + 1 >= sizeof buf_) break;
    buf_[len_++] = c;
  }
  return *this;
}

fatal_message& fatal_message::operator<<(std::uint64_t n) noexcept {
  char digits[24];
  std::size_t k = 0;
  do {
    digits[k++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  while (k > 0 && len_ + 1 < sizeof buf_) buf_[len_++] = digits[--k];
  return *this;
}

void fatal_message::print() noexcept {
  static constexpr char prefix[] = "stackless: ";
  [[maybe_unused]] auto r1 = ::write(2, prefix, sizeof prefix - 1);
  buf_[len_] = '\n';
  [[maybe_unused]] auto r2 = ::write(2, buf_, len_ + 1);
}

void fatal_message::die() noexcept {
  print();
  std::abort();
}

}  // namespace stackless::detail
