// memory_bench.cpp — what a tasklet costs in memory and in creation time, next to Boost.Fiber
// fibers and Go goroutines (issue 8). Not a Google Benchmark loop: every configuration runs in a
// fresh child process of its own (this executable, re-executed with --child), so that the resident
// memory of one configuration never pollutes another and so that each may call
// stackless::configure() differently. The parent prints markdown tables.
//
// How to run (release build; Go rows only when a Go binary is given):
//
//   cmake --build build/release --target bench_memory      # builds the Go peer when go is found
//
//   # or by hand:
//   go build -o /tmp/memory_bench_go benchmarks/go/memory_bench.go
//   build/release/benchmarks/memory_bench --go=/tmp/memory_bench_go
//   build/release/benchmarks/memory_bench --go=/tmp/memory_bench_go --large   # adds N=1,000,000
//
// Flags:
//   --n=A,B,...          tasklets blocked at once, one set of rows per value (default 100000)
//   --large              adds N=1,000,000: about 8 GiB resident per configuration and 3-5 minutes
//                        with 3 repetitions on 2 vCPUs (mostly page faults and munmap in the kernel)
//   --create_run_n=N     tasklets created, run to their end and freed, one at a time (200000)
//   --repetitions=R      child processes per configuration; the tables show medians (3)
//   --go=PATH            the binary built from benchmarks/go/memory_bench.go: adds the Go rows
//   --filter=TEXT        run only the configurations whose name contains TEXT
//
// Table 1, blocked: N tasklets, each blocked in a receive on one shared unbuffered channel.
//   RSS/tasklet  the increase of VmRSS (/proc/self/status) from just before the first creation
//                to the moment all N are blocked, divided by N. It counts stacks, records and
//                everything the runtime allocated for them; it does not count page tables, shown
//                apart (VmPTE), nor untouched address space (VmSize, shown apart too).
//   create ns    from the first creation until all N are blocked (creation and the first run up
//                to the receive), divided by N.
//   maps         lines of /proc/self/maps at that moment (Linux allows vm.max_map_count).
//   released     every blocked tasklet is then released (stackless: one send each; Boost.Fiber
//                and Go: close the channel) and the count of those that ran to their end is
//                reported; benchmarks measure and never assert.
// Table 2, create+run: one tasklet at a time is created, run to its end and freed (as
//   BM_create_run in tasklet_bench.cpp), with the stack cache on (the default limit, 16) and off
//   (stack_cache_limit = 0, so every tasklet maps and unmaps its stack).
//
// The peers (STYLE.md rule 10): Boost.Fiber fibers (round-robin scheduler, blocked in
// unbuffered_channel<int>::pop) on 64 KiB stacks from fixedsize_stack (malloc), the ratio base;
// pooled_fixedsize_stack (boost::pool, as tasklet_bench uses); and protected_fixedsize_stack
// (mmap with a guard page, like a guarded stackless stack). Go goroutines with GOMAXPROCS=1,
// blocked in a receive from an unbuffered channel, measured the same way by
// benchmarks/go/memory_bench.go, which prints the same result line.
//
// stack_mode::sliced rows show "n/a (not implemented)" while creating a sliced tasklet throws;
// they fill in by themselves once sliced stacks exist.
#include <fcntl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/fiber/all.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <stackless/channel.hpp>
#include <stackless/config.hpp>
#include <stackless/debug.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/stack.hpp>
#include <stackless/tasklet.hpp>

namespace {

// Stack size of every fiber, and of the default stackless tasklet (config::default_stack_size).
constexpr std::size_t stack_size = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Child side: measure one configuration and print one result line.

// memory: the process's memory as /proc/self/status reports it, in KiB.
struct memory {
  long rss_kib = 0;   // VmRSS: resident memory
  long pte_kib = 0;   // VmPTE: page tables
  long size_kib = 0;  // VmSize: address space
};

// read_memory reads VmRSS, VmPTE and VmSize of this process.
memory read_memory() {
  memory m;
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return m;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long v = 0;
    if (std::sscanf(line, "VmRSS: %ld", &v) == 1) m.rss_kib = v;
    if (std::sscanf(line, "VmPTE: %ld", &v) == 1) m.pte_kib = v;
    if (std::sscanf(line, "VmSize: %ld", &v) == 1) m.size_kib = v;
  }
  std::fclose(f);
  return m;
}

// count_maps returns the number of memory mappings of this process (lines of /proc/self/maps).
long count_maps() {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long lines = 0;
  char buf[1 << 16];
  for (ssize_t k; (k = ::read(fd, buf, sizeof buf)) > 0;) lines += std::count(buf, buf + k, '\n');
  ::close(fd);
  return lines;
}

// report: what one child measured. Printed as one line
//   RESULT created=.. blocked=.. finished=.. rss_kib=.. pte_kib=.. vm_kib=.. maps=.. ns=.. error=..
// (the line benchmarks/go/memory_bench.go prints too); error is the rest of the line.
struct report {
  long created = 0;   // tasklets created (N unless creation failed)
  long blocked = 0;   // of them, blocked when measured (create_run: run to completion)
  long finished = 0;  // of them, run to their end after the release
  memory before, after;
  long maps = 0;
  double ns = 0;  // nanoseconds per created tasklet
  std::string error;

  void print() const {
    std::printf(
        "RESULT created=%ld blocked=%ld finished=%ld rss_kib=%ld pte_kib=%ld vm_kib=%ld maps=%ld "
        "ns=%.1f error=%s\n",
        created, blocked, finished, after.rss_kib - before.rss_kib, after.pte_kib - before.pte_kib,
        after.size_kib - before.size_kib, maps, ns, error.c_str());
    std::fflush(stdout);
  }
};

// describe turns the exception in flight into text, for report::error.
std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::bad_alloc&) {
    return "std::bad_alloc";
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

using clock_type = std::chrono::steady_clock;

double ns_per(clock_type::time_point t0, clock_type::time_point t1, long n) {
  return n > 0 ? std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n) : 0.0;
}

// blocked_stackless: n tasklets with `opts`, each blocked in ch.receive().
report blocked_stackless(long n, const stackless::tasklet_options& opts) {
  report r;
  stackless::channel<int> ch;
  long finished = 0;
  (void)stackless::current();  // the runtime's per-thread state exists before the baseline
  auto body = [&ch, &finished] {
    ch.receive();
    ++finished;
  };
  r.before = read_memory();
  const auto t0 = clock_type::now();
  try {
    for (; r.created < n; ++r.created) (void)stackless::tasklet(body, opts);  // handle dropped
  } catch (...) {
    r.error = "creating tasklet " + std::to_string(r.created + 1) + ": " +
              describe(std::current_exception());
  }
  try {
    stackless::run();  // every created tasklet runs to its receive() and blocks
  } catch (...) {
    r.error += (r.error.empty() ? "" : "; ") + std::string("run(): ") +
               describe(std::current_exception());
  }
  const auto t1 = clock_type::now();
  r.after = read_memory();
  r.maps = count_maps();
  r.blocked = -ch.balance();
  r.ns = ns_per(t0, t1, r.created);
  try {
    for (long i = r.blocked; i > 0; --i) ch.send(0);
    stackless::run();
  } catch (...) {
    r.error += (r.error.empty() ? "" : "; ") + std::string("release: ") +
               describe(std::current_exception());
  }
  r.finished = finished;
  const auto live = stackless::memory_stats().live_tasklets;
  if (live != 0) r.error += (r.error.empty() ? "" : "; ") + std::to_string(live) + " still live";
  return r;
}

// blocked_boost_fiber: n fibers on stacks from `alloc`, each blocked in ch.pop().
template <class StackAllocator>
report blocked_boost_fiber(long n, StackAllocator alloc) {
  report r;
  boost::fibers::unbuffered_channel<int> ch;
  long started = 0, finished = 0;
  (void)boost::this_fiber::get_id();  // the main fiber's context and scheduler exist
  r.before = read_memory();
  const auto t0 = clock_type::now();
  try {
    for (; r.created < n; ++r.created) {
      boost::fibers::fiber(std::allocator_arg, alloc, [&ch, &started, &finished] {
        ++started;
        int v;
        ch.pop(v);
        ++finished;
      }).detach();
    }
  } catch (...) {
    r.error = "creating fiber " + std::to_string(r.created + 1) + ": " +
              describe(std::current_exception());
  }
  // Round robin: one yield lets every new fiber run to its pop(); loop to be sure.
  while (started < r.created) boost::this_fiber::yield();
  const auto t1 = clock_type::now();
  r.after = read_memory();
  r.maps = count_maps();
  r.blocked = started - finished;
  r.ns = ns_per(t0, t1, r.created);
  ch.close();  // wakes every waiting pop() with channel_op_status::closed
  for (int spins = 0; finished < r.created && spins < 1000; ++spins) boost::this_fiber::yield();
  r.finished = finished;
  return r;
}

// create_run_stackless: n times, one tasklet created, run to its end and freed.
report create_run_stackless(long n) {
  report r;
  (void)stackless::current();
  r.before = read_memory();
  const auto t0 = clock_type::now();
  try {
    for (; r.created < n; ++r.created) {
      stackless::tasklet t([] {});
      stackless::run();
    }
  } catch (...) {
    r.error = describe(std::current_exception());
  }
  const auto t1 = clock_type::now();
  r.after = read_memory();
  r.maps = count_maps();
  r.blocked = r.finished = r.created;
  r.ns = ns_per(t0, t1, r.created);
  return r;
}

// create_run_boost_fiber: n times, one fiber created, run to its end and joined; the allocator
// is made once (a pool keeps its stacks).
template <class StackAllocator>
report create_run_boost_fiber(long n, StackAllocator alloc) {
  report r;
  (void)boost::this_fiber::get_id();
  r.before = read_memory();
  const auto t0 = clock_type::now();
  try {
    for (; r.created < n; ++r.created) boost::fibers::fiber(std::allocator_arg, alloc, [] {}).join();
  } catch (...) {
    r.error = describe(std::current_exception());
  }
  const auto t1 = clock_type::now();
  r.after = read_memory();
  r.maps = count_maps();
  r.blocked = r.finished = r.created;
  r.ns = ns_per(t0, t1, r.created);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The configurations.

enum class kind { blocked, create_run };

// configuration: one row of a table. `run` executes in the child (nullptr: the Go peer, run by
// exec'ing the --go binary with `go_mode`).
struct configuration {
  const char* name;         // --child=name; also what --filter matches
  const char* description;  // the table's first column
  kind what;
  std::function<report(long n)> run;
  const char* go_mode = nullptr;
};

stackless::tasklet_options dedicated(std::size_t size) {
  stackless::tasklet_options o;
  o.stack_size = size;
  return o;
}

stackless::tasklet_options sliced() {
  stackless::tasklet_options o;
  o.stack = stackless::stack_mode::sliced;
  return o;
}

// configure: stackless::configure() with the default configuration changed by `change`.
void configure(const std::function<void(stackless::config&)>& change) {
  stackless::config c;
  change(c);
  stackless::configure(c);
}

const std::vector<configuration>& configurations() {
  using boost::fibers::fixedsize_stack;
  using boost::fibers::pooled_fixedsize_stack;
  using boost::fibers::protected_fixedsize_stack;
  static const std::vector<configuration> all = {
      // Blocked.
      {"blocked_stackless", "stackless dedicated 64 KiB (defaults)", kind::blocked,
       [](long n) { return blocked_stackless(n, dedicated(0)); }},
      {"blocked_stackless_16k", "stackless dedicated 16 KiB", kind::blocked,
       [](long n) { return blocked_stackless(n, dedicated(16 * 1024)); }},
      {"blocked_stackless_unguarded", "stackless dedicated 64 KiB, guarded_stack_limit=0",
       kind::blocked,
       [](long n) {
         configure([](stackless::config& c) { c.guarded_stack_limit = 0; });
         return blocked_stackless(n, dedicated(0));
       }},
      {"blocked_stackless_all_guarded",
       "stackless dedicated 64 KiB, guarded_stack_limit=10,000,000", kind::blocked,
       [](long n) {
         configure([](stackless::config& c) { c.guarded_stack_limit = 10'000'000; });
         return blocked_stackless(n, dedicated(0));
       }},
      {"blocked_stackless_sliced", "stackless sliced", kind::blocked,
       [](long n) { return blocked_stackless(n, sliced()); }},
      {"blocked_boost_fiber", "boost_fiber fixedsize_stack 64 KiB", kind::blocked,
       [](long n) { return blocked_boost_fiber(n, fixedsize_stack(stack_size)); }},
      {"blocked_boost_fiber_pooled", "boost_fiber pooled_fixedsize_stack 64 KiB", kind::blocked,
       [](long n) { return blocked_boost_fiber(n, pooled_fixedsize_stack(stack_size)); }},
      {"blocked_boost_fiber_protected", "boost_fiber protected_fixedsize_stack 64 KiB",
       kind::blocked,
       [](long n) { return blocked_boost_fiber(n, protected_fixedsize_stack(stack_size)); }},
      {"blocked_go", "go goroutines (GOMAXPROCS=1)", kind::blocked, nullptr, "blocked"},
      // Create + run + free.
      {"create_run_stackless", "stackless, stack_cache_limit=16 (default)", kind::create_run,
       [](long n) { return create_run_stackless(n); }},
      {"create_run_stackless_nocache", "stackless, stack_cache_limit=0", kind::create_run,
       [](long n) {
         configure([](stackless::config& c) { c.stack_cache_limit = 0; });
         return create_run_stackless(n);
       }},
      {"create_run_stackless_nocache_unguarded",
       "stackless, stack_cache_limit=0, guarded_stack_limit=0", kind::create_run,
       [](long n) {
         configure([](stackless::config& c) {
           c.stack_cache_limit = 0;
           c.guarded_stack_limit = 0;
         });
         return create_run_stackless(n);
       }},
      {"create_run_boost_fiber", "boost_fiber fixedsize_stack (malloc/free)", kind::create_run,
       [](long n) { return create_run_boost_fiber(n, fixedsize_stack(stack_size)); }},
      {"create_run_boost_fiber_pooled", "boost_fiber pooled_fixedsize_stack", kind::create_run,
       [](long n) { return create_run_boost_fiber(n, pooled_fixedsize_stack(stack_size)); }},
      {"create_run_boost_fiber_protected", "boost_fiber protected_fixedsize_stack (mmap/munmap)",
       kind::create_run,
       [](long n) { return create_run_boost_fiber(n, protected_fixedsize_stack(stack_size)); }},
      {"create_run_go", "go goroutine + sync.WaitGroup", kind::create_run, nullptr, "create_run"},
  };
  return all;
}

// The ratio bases of each table, indexed by kind.
constexpr std::string_view boost_base[] = {"blocked_boost_fiber", "create_run_boost_fiber"};
constexpr std::string_view go_base[] = {"blocked_go", "create_run_go"};

int child_main(std::string_view name, long n) {
  for (const configuration& c : configurations()) {
    if (c.name != name || !c.run) continue;
    try {
      c.run(n).print();
    } catch (...) {
      report r;
      r.error = describe(std::current_exception());
      r.print();
    }
    return 0;
  }
  std::fprintf(stderr, "memory_bench: no configuration named '%.*s'\n", int(name.size()),
               name.data());
  return 2;
}

// ---------------------------------------------------------------------------------------------
// Parent side: spawn the children, collect their lines, print the tables.

// outcome: one child's report as the parent parsed it.
struct outcome {
  bool ok = false;  // a RESULT line came back
  long created = 0, blocked = 0, finished = 0, rss_kib = 0, pte_kib = 0, vm_kib = 0, maps = 0;
  double ns = 0;
  std::string error;
};

// spawn runs argv with its stdout in a pipe, and parses the RESULT line it prints.
outcome spawn(const std::vector<std::string>& argv) {
  outcome o;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    o.error = "pipe: " + std::string(std::strerror(errno));
    return o;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    o.error = "fork: " + std::string(std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return o;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "memory_bench: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t k; (k = ::read(fds[0], buf, sizeof buf)) > 0 || (k < 0 && errno == EINTR);)
    if (k > 0) out.append(buf, std::size_t(k));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  const auto at = out.find("RESULT ");
  if (at != std::string::npos) {
    std::string line = out.substr(at + 7, out.find('\n', at) - at - 7);
    const auto err = line.find("error=");
    if (err != std::string::npos) {
      o.error = line.substr(err + 6);
      line.resize(err);
    }
    std::istringstream in(line);
    std::map<std::string, double> kv;
    for (std::string field; in >> field;) {
      const auto eq = field.find('=');
      if (eq != std::string::npos) kv[field.substr(0, eq)] = std::atof(field.c_str() + eq + 1);
    }
    o.ok = true;
    o.created = long(kv["created"]);
    o.blocked = long(kv["blocked"]);
    o.finished = long(kv["finished"]);
    o.rss_kib = long(kv["rss_kib"]);
    o.pte_kib = long(kv["pte_kib"]);
    o.vm_kib = long(kv["vm_kib"]);
    o.maps = long(kv["maps"]);
    o.ns = kv["ns"];
  }
  std::string how;
  if (WIFSIGNALED(status)) {
    how = "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
          strsignal(WTERMSIG(status)) + ")";
    if (WTERMSIG(status) == SIGKILL) how += ", the OOM killer?";
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    how = "exit status " + std::to_string(WEXITSTATUS(status));
  }
  if (!how.empty()) o.error += (o.error.empty() ? "" : "; ") + how;
  if (!o.ok && o.error.empty()) o.error = "no result line";
  return o;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// row: the repetitions of one configuration at one N.
struct row {
  const configuration* config;
  long n;
  std::vector<outcome> runs;
  bool skipped = false;  // Go without --go

  // usable: the runs that came back with at least one tasklet.
  std::vector<const outcome*> usable() const {
    std::vector<const outcome*> u;
    for (const outcome& o : runs)
      if (o.ok && o.created > 0) u.push_back(&o);
    return u;
  }
  double med(const std::function<double(const outcome&)>& f) const {
    std::vector<double> v;
    for (const outcome* o : usable()) v.push_back(f(*o));
    return median(v);
  }
  // kib_per: median RSS increase per blocked (or created) tasklet.
  double kib_per() const {
    return med([](const outcome& o) { return double(o.rss_kib) / double(o.blocked); });
  }
  double ns() const {
    return med([](const outcome& o) { return o.ns; });
  }
};

std::string fmt(double v, int digits = 3) {
  if (std::isnan(v)) return "—";
  char buf[64];
  if (v >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  if (v < 10000) return buf;
  std::string s;  // with thousands separators
  const std::size_t len = std::strlen(buf);
  for (std::size_t i = 0; i < len; ++i) {
    if (i > 0 && (len - i) % 3 == 0) s += ',';
    s += buf[i];
  }
  return s;
}

std::string fmt_count(long v) { return fmt(double(v)); }

std::string fmt_ratio(double a, double b) {
  if (std::isnan(a) || std::isnan(b) || b <= 0) return "—";
  char buf[32];
  const double r = a / b;
  std::snprintf(buf, sizeof buf, r < 10 ? "%.2f×" : "%.1f×", r);
  return buf;
}

const row* find_row(const std::vector<row>& rows, std::string_view name, long n) {
  for (const row& r : rows)
    if (r.config->name == name && r.n == n) return &r;
  return nullptr;
}

// base_value: what of the base row names[k] at n, or NaN when it did not run.
double base_value(const std::vector<row>& rows, const std::string_view* names, kind k, long n,
                  double (row::*what)() const) {
  const row* b = find_row(rows, names[int(k)], n);
  return b != nullptr && !b->usable().empty() ? (b->*what)() : NAN;
}

// status: how the row's configuration fared ("" when every run went well); what went wrong in
// each run is added to the notes under the table.
std::string status(const row& r, std::vector<std::string>& notes) {
  if (r.skipped) return "not run (no --go)";
  for (const outcome& o : r.runs)
    if ((!o.ok || o.created == 0) && o.error.find("not implemented") != std::string::npos)
      return "n/a (not implemented)";
  std::string refs;
  for (std::size_t k = 0; k < r.runs.size(); ++k) {
    const outcome& o = r.runs[k];
    if (o.ok && o.created > 0 && o.error.empty() && o.created == r.n) continue;
    notes.push_back(std::string(r.config->name) + " N=" + fmt_count(r.n) + ", run " +
                    std::to_string(k + 1) + " of " + std::to_string(r.runs.size()) + ": " +
                    (o.ok && o.created > 0 ? "" : "failed: ") + o.error);
    refs += (refs.empty() ? "note " : ", ") + std::to_string(notes.size());
  }
  if (r.usable().empty()) return "failed (" + refs + ")";
  return refs;
}

// blocked_counts: the blocked count of every usable run, "a / b / c" when they differ.
std::string blocked_counts(const row& r) {
  std::string all, first;
  bool differ = false;
  for (const outcome* o : r.usable()) {
    const std::string c = fmt_count(o->blocked);
    if (first.empty()) first = c;
    differ |= c != first;
    all += (all.empty() ? "" : " / ") + c;
  }
  return differ ? all : first;
}

void print_blocked(const std::vector<row>& rows, const std::vector<long>& ns) {
  std::printf(
      "\n### Blocked tasklets: memory and creation time\n\n"
      "| implementation | N | blocked | RSS KiB / tasklet | RSS total MiB | page tables KiB / "
      "tasklet | address space KiB / tasklet | maps | create+block ns / tasklet | RSS / "
      "boost_fiber | RSS / go | ns / boost_fiber | ns / go | released |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  std::vector<std::string> notes;
  for (long n : ns) {
    const double boost_kib = base_value(rows, boost_base, kind::blocked, n, &row::kib_per);
    const double go_kib = base_value(rows, go_base, kind::blocked, n, &row::kib_per);
    const double boost_ns = base_value(rows, boost_base, kind::blocked, n, &row::ns);
    const double go_ns = base_value(rows, go_base, kind::blocked, n, &row::ns);
    for (const row& r : rows) {
      if (r.n != n || r.config->what != kind::blocked) continue;
      const std::string st = status(r, notes);
      if (r.usable().empty()) {
        std::printf("| %s | %s | %s | | | | | | | | | | | |\n", r.config->description,
                    fmt_count(n).c_str(), st.c_str());
        continue;
      }
      const outcome& o = *r.usable().front();
      const double kib = r.kib_per();
      const double ns_per = r.ns();
      const double rss_mib = r.med([](const outcome& x) { return double(x.rss_kib) / 1024; });
      const double pte = r.med([](const outcome& x) { return double(x.pte_kib) / x.blocked; });
      const double vm = r.med([](const outcome& x) { return double(x.vm_kib) / x.blocked; });
      std::string blocked = blocked_counts(r);
      if (!st.empty()) blocked += " (" + st + ")";
      const std::string released = o.finished == o.blocked
                                       ? "all " + fmt_count(o.finished)
                                       : fmt_count(o.finished) + " of " + fmt_count(o.blocked);
      std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                  r.config->description, fmt_count(n).c_str(), blocked.c_str(), fmt(kib).c_str(),
                  fmt(rss_mib).c_str(), fmt(pte, 2).c_str(), fmt(vm).c_str(),
                  fmt_count(o.maps).c_str(), fmt(ns_per).c_str(), fmt_ratio(kib, boost_kib).c_str(),
                  fmt_ratio(kib, go_kib).c_str(), fmt_ratio(ns_per, boost_ns).c_str(),
                  fmt_ratio(ns_per, go_ns).c_str(), released.c_str());
    }
  }
  for (std::size_t i = 0; i < notes.size(); ++i)
    std::printf("\n%zu. %s\n", i + 1, notes[i].c_str());
}

void print_create_run(const std::vector<row>& rows, long n) {
  std::printf(
      "\n### Create, run to the end, free: one at a time\n\n"
      "| implementation | N | ns / tasklet | ns / boost_fiber | ns / go | RSS after, KiB | maps "
      "after |\n|---|---:|---:|---:|---:|---:|---:|\n");
  std::vector<std::string> notes;
  const double boost_ns = base_value(rows, boost_base, kind::create_run, n, &row::ns);
  const double go_ns = base_value(rows, go_base, kind::create_run, n, &row::ns);
  for (const row& r : rows) {
    if (r.n != n || r.config->what != kind::create_run) continue;
    const std::string st = status(r, notes);
    if (r.usable().empty()) {
      std::printf("| %s | %s | %s | | | | |\n", r.config->description, fmt_count(n).c_str(),
                  st.c_str());
      continue;
    }
    const double ns_per = r.ns();
    std::string ns_text = fmt(ns_per);
    if (!st.empty()) ns_text += " (" + st + ")";
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", r.config->description,
                fmt_count(n).c_str(), ns_text.c_str(), fmt_ratio(ns_per, boost_ns).c_str(),
                fmt_ratio(ns_per, go_ns).c_str(),
                fmt(r.med([](const outcome& x) { return double(x.rss_kib); })).c_str(),
                fmt_count(r.usable().front()->maps).c_str());
  }
  for (std::size_t i = 0; i < notes.size(); ++i)
    std::printf("\n%zu. %s\n", i + 1, notes[i].c_str());
}

std::string read_text(const char* path) {
  std::string s;
  if (std::FILE* f = std::fopen(path, "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f) != nullptr) s += buf;
    std::fclose(f);
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void print_context(int repetitions) {
  utsname u{};
  ::uname(&u);
  const double mem_gib =
      double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024 * 1024);
  std::printf(
      "memory_bench: Linux %s, %ld CPUs, %.1f GiB RAM, vm.max_map_count=%s, "
      "vm.overcommit_memory=%s, transparent_hugepage=%s, page size %ld; every row is the median "
      "of %d child process(es), one configuration per process.\n",
      u.release, ::sysconf(_SC_NPROCESSORS_ONLN), mem_gib,
      read_text("/proc/sys/vm/max_map_count").c_str(),
      read_text("/proc/sys/vm/overcommit_memory").c_str(),
      read_text("/sys/kernel/mm/transparent_hugepage/enabled").c_str(), ::sysconf(_SC_PAGESIZE),
      repetitions);
}

std::vector<long> parse_list(std::string_view s) {
  std::vector<long> v;
  while (!s.empty()) {
    const auto comma = s.find(',');
    v.push_back(std::atol(std::string(s.substr(0, comma)).c_str()));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  std::erase_if(v, [](long x) { return x <= 0; });
  return v;
}

int usage() {
  std::fprintf(stderr,
               "usage: memory_bench [--n=100000] [--large] [--create_run_n=200000] "
               "[--repetitions=3] [--go=PATH] [--filter=TEXT]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> ns = {100'000};
  long create_run_n = 200'000;
  int repetitions = 3;
  bool large = false;
  std::string go, filter, child;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=')
        return a.substr(flag.size() + 1);
      return std::nullopt;
    };
    if (auto v = value("--n")) {
      ns = parse_list(*v);
    } else if (a == "--large") {
      large = true;
    } else if (auto v = value("--create_run_n")) {
      create_run_n = std::atol(std::string(*v).c_str());
    } else if (auto v = value("--repetitions")) {
      repetitions = std::max(1, std::atoi(std::string(*v).c_str()));
    } else if (auto v = value("--go")) {
      go = *v;
    } else if (auto v = value("--filter")) {
      filter = *v;
    } else if (auto v = value("--child")) {
      child = *v;
    } else {
      return usage();
    }
  }
  if (!child.empty()) return child_main(child, ns.empty() ? 0 : ns.front());
  if (large && std::find(ns.begin(), ns.end(), 1'000'000) == ns.end()) ns.push_back(1'000'000);

  const std::string self = "/proc/self/exe";  // the children run this very executable
  print_context(repetitions);
  std::vector<row> rows;
  auto measure = [&](const configuration& c, long n) {
    row r{&c, n, {}};
    if (!filter.empty() && std::string_view(c.name).find(filter) == std::string_view::npos) return;
    if (!c.run && go.empty()) {
      r.skipped = true;
      rows.push_back(std::move(r));
      return;
    }
    for (int k = 0; k < repetitions; ++k) {
      std::vector<std::string> args;
      if (c.run)
        args = {self, "--child=" + std::string(c.name), "--n=" + std::to_string(n)};
      else
        args = {go, "-mode=" + std::string(c.go_mode), "-n=" + std::to_string(n)};
      std::fprintf(stderr, "memory_bench: %s N=%ld (%d/%d)\n", c.name, n, k + 1, repetitions);
      r.runs.push_back(spawn(args));
      const outcome& o = r.runs.back();
      // A configuration that cannot run at all (not implemented, crashed) is not repeated; one
      // that stopped short is, since where it stops may vary.
      if (!o.ok || o.created == 0) break;
    }
    rows.push_back(std::move(r));
  };
  for (long n : ns)
    for (const configuration& c : configurations())
      if (c.what == kind::blocked) measure(c, n);
  if (create_run_n > 0)
    for (const configuration& c : configurations())
      if (c.what == kind::create_run) measure(c, create_run_n);

  print_blocked(rows, ns);
  if (create_run_n > 0) print_create_run(rows, create_run_n);
  std::printf(
      "\nRatios are of medians taken in separate processes (one per configuration); below 1× "
      "means less memory or less time than the peer. Peers: boost_fiber = fixedsize_stack rows.\n");
  return 0;
}
