// overflow.cpp — the SIGSEGV/SIGBUS handler that names a tasklet whose stack overflowed into its
// guard page. Runs on an alternate signal stack; never allocates. Faults that are not ours go to
// the handler that was installed before (or the default action) unchanged.
#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "stack/stack.hpp"

namespace stackless::detail {
namespace {

std::atomic<overflow_identify> g_identify{nullptr};
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

void pass_on(int sig, siginfo_t* info, void* uctx, const struct sigaction& previous) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) {
      previous.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and the process
  // dies of the original signal, as if we had never been installed.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  overflow_identify identify = g_identify.load(std::memory_order_acquire);
  if (identify != nullptr && identify(info->si_addr)) return;  // identify aborts when it is ours
  pass_on(sig, info, uctx, sig == SIGSEGV ? g_previous_segv : g_previous_bus);
}

}  // namespace

void install_overflow_handler(overflow_identify identify) {
  static std::once_flag once;
  std::call_once(once, [identify] {
    g_identify.store(identify, std::memory_order_release);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous_segv);
    ::sigaction(SIGBUS, &sa, &g_previous_bus);
  });
}

thread_signal_stack::thread_signal_stack() {
  stack_t current;
  if (::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
  size_ = 64 * 1024;
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;  // no alternate stack: an overflow then dies of a plain SIGSEGV
  stack_t ss;
  ss.ss_sp = p;
  ss.ss_size = size_;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, nullptr) != 0) {
    ::munmap(p, size_);
    return;
  }
  memory_ = p;
}

thread_signal_stack::~thread_signal_stack() {
  if (memory_ == nullptr) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  ::munmap(memory_, size_);
}

}  // namespace stackless::detail
