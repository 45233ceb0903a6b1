// channel_bench.cpp — the cost of channel operations and of select, next to their peers.
//
// Every benchmark names its peer and runs beside it in the same process (STYLE.md rule 10):
//
//   BM_ping_pong/stackless             two tasklets pass an int there and back over two channels
//   BM_ping_pong/boost_fiber           the same with two fibers and fibers::unbuffered_channel
//   BM_ping_pong/boost_fiber_buffered  ... and fibers::buffered_channel of capacity 2
//   BM_fan_in/stackless                1,000 producer tasklets send 100 ints each to one consumer
//   BM_fan_in/boost_fiber              the same with 1,001 fibers and unbuffered_channel
//   BM_fan_in/boost_fiber_buffered     ... and buffered_channel of capacity 2
//   BM_select_4/stackless              a consumer selects over 4 channels; the sender rotates
//   BM_select_4/stackless_receive      the same traffic on one channel with a plain receive()
//
// One item is one round trip (ping-pong) or one message (fan-in, select), so items_per_second
// gives the time per operation uniformly. tools/bench-table turns the JSON output into the table
// of ns/op and ratios that docs/performance.md shows:
//
//   channel_bench --benchmark_repetitions=5 --benchmark_format=json | tools/bench-table
//
// The Go peer (goroutines and Go channels, GOMAXPROCS=1) cannot run in this process; it is
// benchmarks/go/channel_bench.go, which prints the same JSON shape for `tools/bench-table --go`.
// Its fan-in constants (producers, messages per producer) must match the ones here.
//
// Everything runs on one OS thread: every peer is a single-threaded scheduler here. Benchmarks
// measure; they never assert.
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <stackless/channel.hpp>
#include <stackless/config.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/select.hpp>
#include <stackless/tasklet.hpp>

namespace {

// Stack size of every Boost.Fiber fiber: the default stack size of a tasklet
// (stackless::config::default_stack_size), so both sides touch alike stacks.
constexpr std::size_t peer_stack_size = 64 * 1024;

// Fan-in shape: fan_in_producers producers send fan_in_messages messages each to one consumer.
constexpr int fan_in_producers = 1000;
constexpr int fan_in_messages = 100;

// Stacks each thread keeps for reuse during the benchmarks (config::stack_cache_limit, default
// 16). Boost.Fiber's pooled_fixedsize_stack keeps every stack it ever handed out; raising the
// stackless cache to hold all of the fan-in's 1,001 stacks makes both sides reuse their stacks
// alike (see main()). With the default, each fan-in iteration maps and unmaps ~985 stacks.
constexpr std::size_t stack_cache_limit = 1024;

// boost_unbuffered / boost_buffered: Boost.Fiber's two channel kinds, default-constructible.
// buffered_channel needs a power of two of at least 2 as capacity; 2 is the smallest.
using boost_unbuffered = boost::fibers::unbuffered_channel<int>;
struct boost_buffered : boost::fibers::buffered_channel<int> {
  boost_buffered() : boost::fibers::buffered_channel<int>(2) {}
};

// ---------------------------------------------------------------------------------------------
// BM_ping_pong: one item is one round trip: `ping` carries an int to the echo, `pong` brings it
// back. The timed loop runs in the driver; the echo ends at the sentinel -1. The caller of
// run()/join() (the main tasklet or fiber) waits meanwhile and is not part of the ping-pong.

void bm_ping_pong_stackless(benchmark::State& state) {
  stackless::channel<int> ping;
  stackless::channel<int> pong;
  // The echo is created first so that it is already waiting when the driver first sends.
  stackless::tasklet echo([&] {
    for (int v = ping.receive(); v >= 0; v = ping.receive()) pong.send(v);
  });
  stackless::tasklet driver([&] {
    int v = 0;
    for (auto _ : state) {
      ping.send(v);
      v = pong.receive();
      benchmark::DoNotOptimize(v);
    }
    ping.send(-1);
  });
  stackless::run();
  state.SetItemsProcessed(state.iterations());
}

template <class Channel>
void bm_ping_pong_boost_fiber(benchmark::State& state) {
  Channel ping;
  Channel pong;
  boost::fibers::fiber echo([&] {
    int v = 0;
    while (ping.pop(v) == boost::fibers::channel_op_status::success && v >= 0) pong.push(v);
  });
  boost::fibers::fiber driver([&] {
    int v = 0;
    for (auto _ : state) {
      ping.push(v);
      pong.pop(v);
      benchmark::DoNotOptimize(v);
    }
    ping.push(-1);
  });
  driver.join();
  echo.join();
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// BM_fan_in: one item is one message. Every iteration creates one consumer and fan_in_producers
// producers (consumer first, so it waits before the first send), each producer sends
// fan_in_messages ints on the one channel, and the iteration ends when all have finished; the
// creation and end of the 1,001 execution contexts is part of the time (about 1% of it).

void bm_fan_in_stackless(benchmark::State& state) {
  std::int64_t sum = 0;
  for (auto _ : state) {
    stackless::channel<int> ch;
    stackless::tasklet([&] {
      for (int i = 0; i < fan_in_producers * fan_in_messages; ++i) sum += ch.receive();
    });
    for (int p = 0; p < fan_in_producers; ++p) {
      stackless::tasklet([&] {
        for (int i = 0; i < fan_in_messages; ++i) ch.send(i);
      });
    }
    stackless::run();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * fan_in_producers * fan_in_messages);
}

// Fibers are launched with launch::post (the default): created ready, run when main joins. The
// stack pool is made once outside the loop, so after the first iteration every fiber reuses a
// pooled stack.
template <class Channel>
void bm_fan_in_boost_fiber(benchmark::State& state) {
  boost::fibers::pooled_fixedsize_stack pool(peer_stack_size);
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(fan_in_producers + 1);
  std::int64_t sum = 0;
  for (auto _ : state) {
    Channel ch;
    fibers.emplace_back(std::allocator_arg, pool, [&] {
      int v = 0;
      for (int i = 0; i < fan_in_producers * fan_in_messages; ++i) {
        ch.pop(v);
        sum += v;
      }
    });
    for (int p = 0; p < fan_in_producers; ++p) {
      fibers.emplace_back(std::allocator_arg, pool, [&] {
        for (int i = 0; i < fan_in_messages; ++i) ch.push(i);
      });
    }
    for (auto& f : fibers) f.join();
    fibers.clear();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * fan_in_producers * fan_in_messages);
}

// ---------------------------------------------------------------------------------------------
// BM_select_4: one item is one message. The timed loop runs in the sender, which sends its
// n-th message on channel n % 4 (the ready channel rotates); the consumer, created first, takes
// each with a select over all 4 channels (stackless) or with receive() on the one channel the
// baseline sends on (stackless_receive). In both, the consumer is waiting whenever a send comes,
// so every message is a hand-off to a waiting partner and every select blocks on 4 channels.

void bm_select_4_stackless(benchmark::State& state) {
  std::array<stackless::channel<int>, 4> chans;
  stackless::tasklet consumer([&] {
    int v = 0;
    auto take = [&](int x) { v = x; };
    do {
      stackless::select(
          stackless::on_receive(chans[0], take), stackless::on_receive(chans[1], take),
          stackless::on_receive(chans[2], take), stackless::on_receive(chans[3], take));
      benchmark::DoNotOptimize(v);
    } while (v >= 0);
  });
  stackless::tasklet sender([&] {
    std::size_t n = 0;
    for (auto _ : state) {
      chans[n % 4].send(1);
      ++n;
    }
    chans[n % 4].send(-1);
  });
  stackless::run();
  state.SetItemsProcessed(state.iterations());
}

void bm_select_4_stackless_receive(benchmark::State& state) {
  stackless::channel<int> ch;
  stackless::tasklet consumer([&] {
    int v = 0;
    do {
      v = ch.receive();
      benchmark::DoNotOptimize(v);
    } while (v >= 0);
  });
  stackless::tasklet sender([&] {
    for (auto _ : state) ch.send(1);
    ch.send(-1);
  });
  stackless::run();
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(bm_ping_pong_stackless)->Name("BM_ping_pong/stackless");
BENCHMARK(bm_ping_pong_boost_fiber<boost_unbuffered>)->Name("BM_ping_pong/boost_fiber");
BENCHMARK(bm_ping_pong_boost_fiber<boost_buffered>)->Name("BM_ping_pong/boost_fiber_buffered");
BENCHMARK(bm_fan_in_stackless)->Name("BM_fan_in/stackless");
BENCHMARK(bm_fan_in_boost_fiber<boost_unbuffered>)->Name("BM_fan_in/boost_fiber");
BENCHMARK(bm_fan_in_boost_fiber<boost_buffered>)->Name("BM_fan_in/boost_fiber_buffered");
BENCHMARK(bm_select_4_stackless)->Name("BM_select_4/stackless");
BENCHMARK(bm_select_4_stackless_receive)->Name("BM_select_4/stackless_receive");

// main is BENCHMARK_MAIN() with the stack cache raised first (stack_cache_limit above): the
// runtime must be configured before its first use.
int main(int argc, char** argv) {
  stackless::configure({.stack_cache_limit = stack_cache_limit});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
