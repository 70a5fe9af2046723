// Google Benchmark for eddy's tasks: WORKLOADS.md W6, paired with a raw-libuv
// two-state machine stepped through call_soon (bench/uv_workloads.hpp) in
// this binary, so the ratio is measured in one run.
//
//   bench_tasks [--n=N] [Google Benchmark flags]
//
// One benchmark iteration is one whole workload of N tasks (canonical
// N = 1e5): create_task, one sleep(0), return i, results gathered in order.
// The context line reports the frame size of a trivial Task.
#include <cstdint>
#include <string>

#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

#include "harness.hpp"

namespace {

eddy::Task<int> trivial() {
  co_return 1;
}

void register_all() {
  eddy_bench::add_pair("tasks", [](auto& w, std::int64_t n) { return w.tasks(n); });
}

}  // namespace

int main(int argc, char** argv) {
  {
    eddy::Task<int> probe = trivial();  // allocates its frame, never runs
    benchmark::AddCustomContext("frame bytes of a trivial Task<int>",
                                std::to_string(eddy::detail::last_frame_size()));
  }
  return eddy_bench::bench_main(argc, argv, 100'000, &register_all);
}
