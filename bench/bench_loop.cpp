// Google Benchmark for eddy's event loop: WORKLOADS.md W1-W4c, each paired
// with a raw-libuv baseline in this binary, so the ratio is measured in one run.
//
//   bench_loop [--n=N] [Google Benchmark flags]
//   bench_loop --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench_loop --n=10000 --benchmark_filter=call_soon      # a quick run
//
// One benchmark iteration is one whole workload of N ops (canonical N = 1e6),
// timed manually between the workload's own t0 and t1. items_per_second and
// the ns_per_op counter are per op. BM_<workload>/eddy and BM_<workload>/libuv
// pair up.
//
// The libuv baseline is bench/uv_workloads.hpp; the harness bench/harness.hpp.
#include <cstddef>
#include <cstdint>

#include "harness.hpp"

namespace {

using eddy_bench::add_pair;
using eddy_bench::EddyWorkloads;
using eddy_bench::UvWorkloads;

std::size_t bytes_per_timer(EddyWorkloads& w) {
  return w.loop().stats().bytes_per_timer;
}
std::size_t bytes_per_timer(UvWorkloads&) {
  return UvWorkloads::bytes_per_timer();
}

void register_all() {
  add_pair("call_soon", [](auto& w, std::int64_t n) { return w.call_soon(n); });
  add_pair("chain", [](auto& w, std::int64_t n) { return w.chain(n); });
  add_pair("threadsafe", [](auto& w, std::int64_t n) { return w.threadsafe(n, 1); });
  add_pair("threadsafe2", [](auto& w, std::int64_t n) { return w.threadsafe(n, 2); });
  // W4 also reports the memory one pending timer costs: eddy's own
  // (LoopStats::bytes_per_timer) against libuv's caller-owned uv_timer_t.
  add_pair(
      "timers", [](auto& w, std::int64_t n) { return w.timers(n); },
      [](auto& w, benchmark::State& state) {
        state.counters["bytes_per_timer"] = static_cast<double>(bytes_per_timer(w));
      });
  add_pair("timers_cancel", [](auto& w, std::int64_t n) { return w.timers_cancel(n); });
}

}  // namespace

int main(int argc, char** argv) {
  return eddy_bench::bench_main(argc, argv, 1'000'000, &register_all);
}
