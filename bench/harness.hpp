// The Google Benchmark harness shared by bench/bench_*.cpp: each workload is
// registered twice, BM_<name>/eddy and BM_<name>/libuv, next to each other,
// and timed by the workload itself between its own t0 and t1.
//
//   bench_X [--n=N] [Google Benchmark flags]
//   bench_X --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include <benchmark/benchmark.h>

#include "loop_workloads.hpp"
#include "uv_workloads.hpp"

namespace eddy_bench {

inline std::int64_t g_n = 1'000'000;  // ops per workload run (--n=N)

/// Runs `run(n)` once per iteration, timed by the workload itself, and
/// reports ns_per_op. False if the workload threw (the benchmark is then
/// marked as failed).
template <class Run>
bool run_workload_with(benchmark::State& state, const Run& run) {
  double total_s = 0;
  try {
    for (auto _ : state) {
      double s = run(g_n);
      state.SetIterationTime(s);
      total_s += s;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return false;
  }
  const auto ops = static_cast<double>(state.iterations()) * static_cast<double>(g_n);
  state.SetItemsProcessed(static_cast<std::int64_t>(ops));
  state.counters["ns_per_op"] = total_s * 1e9 / ops;
  return true;
}

/// Runs `run(workloads, n)` once per iteration on one Workloads object (one
/// loop for the whole benchmark), timed by the workload itself; then
/// `report(workloads, state)` may add counters.
template <class Workloads, class Run, class Report>
void run_workload(benchmark::State& state, const Run& run, const Report& report) {
  Workloads w;
  if (run_workload_with(state, [&](std::int64_t n) { return run(w, n); })) report(w, state);
}

/// Registers BM_<name>/eddy and BM_<name>/libuv, next to each other.
template <class Run, class Report>
void add_pair(const std::string& name, Run run, Report report) {
  benchmark::RegisterBenchmark(
      ("BM_" + name + "/eddy").c_str(),
      [run, report](benchmark::State& state) { run_workload<EddyWorkloads>(state, run, report); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(
      ("BM_" + name + "/libuv").c_str(),
      [run, report](benchmark::State& state) { run_workload<UvWorkloads>(state, run, report); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}
template <class Run>
void add_pair(const std::string& name, Run run) {
  add_pair(name, run, [](auto&, benchmark::State&) {});
}

/// main() of a benchmark binary: parses --n=N (default `default_n`), lets
/// `register_all` register the pairs, runs them (shown by `display` if given,
/// else by Google Benchmark's default reporter).
inline int bench_main(int argc, char** argv, std::int64_t default_n, void (*register_all)(),
                      benchmark::BenchmarkReporter* display = nullptr) {
  g_n = default_n;

  // Our own flag first (Google Benchmark rejects flags it does not know).
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--n=", 4) == 0) {
      char* end = nullptr;
      long long n = std::strtoll(argv[i] + 4, &end, 10);
      if (end == argv[i] + 4 || *end != '\0' || n < 2) {
        std::fprintf(stderr, "--n wants an integer >= 2, got '%s'\n", argv[i] + 4);
        return 2;
      }
      g_n = n;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::AddCustomContext("ops_per_iteration (--n)", std::to_string(g_n));
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (display != nullptr) {
    benchmark::RunSpecifiedBenchmarks(display);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace eddy_bench
