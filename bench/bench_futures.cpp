// Google Benchmark for eddy's futures: WORKLOADS.md W5, paired with a
// raw-libuv minimal future (bench/uv_workloads.hpp) in this binary, so the
// ratio is measured in one run.
//
//   bench_futures [--n=N] [Google Benchmark flags]
//
// One benchmark iteration is one whole workload of N futures (canonical
// N = 1e6): create, attach one done callback, set the result, run the callback.
#include <cstdint>

#include "harness.hpp"

namespace {

void register_all() {
  eddy_bench::add_pair("futures", [](auto& w, std::int64_t n) { return w.futures(n); });
}

}  // namespace

int main(int argc, char** argv) {
  return eddy_bench::bench_main(argc, argv, 1'000'000, &register_all);
}
