// Google Benchmark for eddy's combinators (issue 5): gather, wait and
// as_completed over N = 10k, 100k and 1M children, each beside a plain C++
// baseline measured in the same iteration, so every figure is also a ratio.
//
//   bench_gather [Google Benchmark flags]
//   bench_gather --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Workloads (one loop per benchmark; the futures, and a second set of handles
// to them standing for their producers, are made untimed; the combinator
// gets its vector moved in):
//   gather_done     N finished futures; t0; gather(futures); t1 when the
//                   gather's future has its vector of N results.
//   gather_pending  N pending futures; t0; gather(futures); set_result on
//                   each; t1 when the gather's future has its results.
//   wait_pending    the same with a task doing co_await wait(futures).
//   as_completed    the same with a task taking every result with
//                   co_await next() in completion order.
// Baseline: what the combinator does, by hand, over the same kind of
// futures: one done callback per future storing its result and counting;
// the last stops the loop (and, for pending, the same set_result calls).
//
// Counters: ns_per_child (eddy), baseline_ns_per_child, ratio (eddy /
// baseline). Flat ns_per_child across N means no quadratic behaviour.
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <eddy/as_completed.hpp>
#include <eddy/future.hpp>
#include <eddy/gather.hpp>
#include <eddy/loop.hpp>
#include <eddy/task.hpp>
#include <eddy/wait.hpp>

namespace {

using Futures = std::vector<eddy::Future<std::int64_t>>;

double now_s() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

void check_sum(std::int64_t sum, std::int64_t n, const char* workload) {
  check(sum == n * (n - 1) / 2, std::string(workload) + ": checksum " + std::to_string(sum) +
                                    ", expected " + std::to_string(n * (n - 1) / 2));
}

Futures make_futures(eddy::Loop& loop, std::int64_t n, bool finished) {
  Futures futures;
  futures.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    futures.push_back(loop.create_future<std::int64_t>());
    if (finished) futures.back().set_result(i);
  }
  return futures;
}

void finish_all(Futures& futures) {
  for (std::size_t i = 0; i < futures.size(); ++i)
    futures[i].set_result(static_cast<std::int64_t>(i));
}

/// Runs the loop until `future` is done (its result stays in place).
template <class T>
void run_until_done(eddy::Loop& loop, eddy::Future<T>& future) {
  if (future.done()) return;
  future.add_done_callback([&loop] { loop.stop(); });
  loop.run_forever();
}

// ------------------------------------------------------------ eddy

double gather_done(eddy::Loop& loop, std::int64_t n) {
  Futures futures = make_futures(loop, n, true);
  Futures kept = futures;  // the futures' other owners
  double t0 = now_s();
  eddy::Future<std::vector<std::int64_t>> gathered = eddy::gather(std::move(futures));
  run_until_done(loop, gathered);
  double t1 = now_s();
  std::int64_t sum = 0;
  for (std::int64_t v : gathered.result())
    sum += v;
  check_sum(sum, n, "gather_done");
  return t1 - t0;
}

double gather_pending(eddy::Loop& loop, std::int64_t n) {
  Futures futures = make_futures(loop, n, false);
  Futures producers = futures;  // what completes them, apart from the gather's input
  double t0 = now_s();
  eddy::Future<std::vector<std::int64_t>> gathered = eddy::gather(std::move(futures));
  finish_all(producers);
  run_until_done(loop, gathered);
  double t1 = now_s();
  std::int64_t sum = 0;
  for (std::int64_t v : gathered.result())
    sum += v;
  check_sum(sum, n, "gather_pending");
  return t1 - t0;
}

eddy::Task<std::size_t> wait_all(Futures futures) {
  eddy::WaitResult<std::int64_t> result = co_await eddy::wait(std::move(futures));
  co_return result.done.size();
}

double wait_pending(eddy::Loop& loop, std::int64_t n) {
  Futures futures = make_futures(loop, n, false);
  Futures producers = futures;
  double t0 = now_s();
  // wait starts in the task's first step; the results come right after it.
  eddy::Future<std::size_t> waiting = loop.create_task(wait_all(std::move(futures)));
  loop.call_soon([&producers] { finish_all(producers); });
  run_until_done(loop, waiting);
  double t1 = now_s();
  check(waiting.result() == static_cast<std::size_t>(n), "wait_pending: not all done");
  std::int64_t sum = 0;
  for (auto& f : producers)
    sum += f.result();
  check_sum(sum, n, "wait_pending");
  return t1 - t0;
}

eddy::Task<std::int64_t> take_all(Futures futures) {
  std::int64_t sum = 0;
  for (eddy::Task<std::int64_t> next : eddy::as_completed(std::move(futures)))
    sum += co_await next;
  co_return sum;
}

double as_completed_pending(eddy::Loop& loop, std::int64_t n) {
  Futures futures = make_futures(loop, n, false);
  Futures producers = futures;
  double t0 = now_s();
  eddy::Future<std::int64_t> taking = loop.create_task(take_all(std::move(futures)));
  loop.call_soon([&producers] { finish_all(producers); });
  run_until_done(loop, taking);
  double t1 = now_s();
  check_sum(taking.result(), n, "as_completed");
  return t1 - t0;
}

// ------------------------------------------------------------ baseline

/// A hand-written gather: one done callback per future stores its result
/// and counts; the last stops the loop.
double counter_baseline(eddy::Loop& loop, std::int64_t n, bool finished) {
  Futures futures = make_futures(loop, n, finished);
  Futures producers = futures;  // as in the workloads: same memory, same owners
  struct Counter {
    eddy::Loop* loop;
    std::vector<std::int64_t> results;
    std::size_t done = 0;
  } counter{&loop, {}, 0};
  double t0 = now_s();
  counter.results.resize(futures.size());
  for (std::size_t i = 0; i < futures.size(); ++i) {
    futures[i].add_done_callback([&counter, i](eddy::Future<std::int64_t>& f) {
      counter.results[i] = f.result();
      if (++counter.done == counter.results.size()) counter.loop->stop();
    });
  }
  if (!finished) finish_all(producers);
  loop.run_forever();
  double t1 = now_s();
  std::int64_t sum = 0;
  for (std::int64_t v : counter.results)
    sum += v;
  check_sum(sum, n, "baseline");
  return t1 - t0;
}

// ------------------------------------------------------------ registration

using Workload = double (*)(eddy::Loop&, std::int64_t);

/// One iteration runs the workload and then its baseline on fresh futures;
/// the iteration's time is the workload's.
void run(benchmark::State& state, Workload workload, bool finished) {
  const std::int64_t n = state.range(0);
  eddy::Loop loop;
  double eddy_s = 0;
  double baseline_s = 0;
  try {
    for (auto _ : state) {
      double s = workload(loop, n);
      state.SetIterationTime(s);
      eddy_s += s;
      baseline_s += counter_baseline(loop, n, finished);
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  loop.close();
  const double children = static_cast<double>(state.iterations()) * static_cast<double>(n);
  state.SetItemsProcessed(static_cast<std::int64_t>(children));
  state.counters["ns_per_child"] = eddy_s * 1e9 / children;
  state.counters["baseline_ns_per_child"] = baseline_s * 1e9 / children;
  state.counters["ratio"] = eddy_s / baseline_s;
}

void register_all() {
  struct Entry {
    const char* name;
    Workload workload;
    bool finished;
  };
  const Entry entries[] = {
      {"BM_gather_done", &gather_done, true},
      {"BM_gather_pending", &gather_pending, false},
      {"BM_wait_pending", &wait_pending, false},
      {"BM_as_completed_pending", &as_completed_pending, false},
  };
  for (const Entry& e : entries) {
    benchmark::RegisterBenchmark(
        e.name, [e](benchmark::State& state) { run(state, e.workload, e.finished); })
        ->Arg(10'000)
        ->Arg(100'000)
        ->Arg(1'000'000)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
