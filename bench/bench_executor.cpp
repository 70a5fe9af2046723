// Google Benchmark for eddy's executors: WORKLOADS.md W7, eddy's
// run_in_executor on a ThreadPoolExecutor(4) paired with raw libuv's
// uv_queue_work on its own pool of 4 threads (bench/uv_workloads.hpp), in this
// binary, so the ratio is measured in one run.
//
//   bench_executor [--n=N] [Google Benchmark flags]
//
// One benchmark iteration is one whole workload of N round trips (canonical
// N = 1e5): loop -> pool -> loop, trivial(i) = i + 1, results summed on the
// loop thread.
#include <cstdint>
#include <cstdlib>

#include "harness.hpp"

namespace {

void register_all() {
  eddy_bench::add_pair("executor", [](auto& w, std::int64_t n) { return w.executor(n); });
}

}  // namespace

int main(int argc, char** argv) {
  // libuv's pool reads this when it starts (on the first uv_queue_work).
  setenv("UV_THREADPOOL_SIZE", "4", 1);
  return eddy_bench::bench_main(argc, argv, 100'000, &register_all);
}
