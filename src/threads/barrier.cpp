#include "threads/barrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace stackless::detail {
namespace {

int membarrier(int cmd) noexcept { return static_cast<int>(::syscall(__NR_membarrier, cmd, 0, 0)); }

}  // namespace

bool heavy_barrier_available() noexcept {
  static const bool available = [] {
    const int supported = membarrier(MEMBARRIER_CMD_QUERY);
    if (supported < 0 || !(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  return available;
}

void heavy_barrier() noexcept { membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED); }

}  // namespace stackless::detail
