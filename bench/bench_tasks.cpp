// Google Benchmark for eddy's tasks: WORKLOADS.md W6, paired with a raw-libuv
// two-state machine stepped through call_soon (bench/uv_workloads.hpp) in
// this binary, so the ratio is measured in one run.
//
//   bench_tasks [--n=N] [Google Benchmark flags]
//
// One benchmark iteration is one whole workload of N tasks (canonical
// N = 1e5): create_task, one sleep(0), return i, results gathered in order.
// The context line reports the frame size of a trivial Task.
//
// Three more rows take eddy's task apart, each on a loop of its own:
// - BM_tasks/eddy_unwatched: eddy's tasks, each counting its own result,
//   their futures dropped: W6 without the gather (no done callbacks).
// - BM_tasks/bare: the C++ baseline's minimal coroutine (no future, no
//   registry, no cancellation; the gather is a counter), its frame from
//   eddy's block cache, its steps queued with Loop::call_soon. What eddy's
//   loop and allocator cost: the floor under any task eddy could have.
// - BM_tasks/bare+state: the same, plus a block the size of a task's state
//   (TaskShared<std::int64_t>), zeroed at creation and read at the end, with
//   nothing using it: what a task's state costs in bytes alone.
#include <coroutine>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

#include <eddy/detail/block_cache.hpp>
#include <eddy/loop.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

#include "harness.hpp"

namespace {

eddy::Task<int> trivial() {
  co_return 1;
}

/// The bare tasks' gather: counts the results and adds them up.
struct Counter {
  eddy::Loop* loop;
  std::int64_t expected;
  std::int64_t finished = 0;
  std::int64_t sum = 0;
  double t1 = 0;
  void report(std::int64_t result) {
    sum += result;
    if (++finished == expected) {
      t1 = eddy_bench::now_s();
      loop->stop();
    }
  }
};

/// A minimal lazily started coroutine (the C++ baseline's), with an optional
/// block of `side_bytes` beside it (BM_tasks/bare+state).
class BareTask {
 public:
  struct promise_type {
    Counter* counter = nullptr;
    std::int64_t result = 0;
    unsigned char* side = nullptr;
    std::size_t side_bytes = 0;

    static void* operator new(std::size_t bytes) { return eddy::detail::allocate_block(bytes); }
    static void operator delete(void* frame, std::size_t bytes) noexcept {
      eddy::detail::deallocate_block(frame, bytes);
    }
    BareTask get_return_object() noexcept {
      return BareTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct ReportAndFree {
        bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<promise_type> frame) noexcept {
          promise_type& p = frame.promise();
          std::int64_t total = p.result;
          if (p.side != nullptr) {
            total += p.side[p.side_bytes - 1];  // zero: read, as a task's end reads its state
            eddy::detail::deallocate_block(p.side, p.side_bytes);
          }
          p.counter->report(total);
          frame.destroy();
        }
        void await_resume() noexcept {}
      };
      return ReportAndFree{};
    }
    void return_value(std::int64_t v) noexcept { result = v; }
    void unhandled_exception() noexcept { std::terminate(); }
  };

  struct Resume {
    std::coroutine_handle<> frame;
    void operator()() const noexcept { frame.resume(); }
  };
  /// create_task: the first step goes through the loop.
  void start(eddy::Loop& loop, Counter& counter, std::size_t side_bytes) {
    promise_type& p = frame_.promise();
    p.counter = &counter;
    if (side_bytes != 0) {
      p.side = static_cast<unsigned char*>(eddy::detail::allocate_block(side_bytes));
      std::memset(p.side, 0, side_bytes);
      p.side_bytes = side_bytes;
    }
    loop.call_soon(Resume{frame_});
  }

 private:
  explicit BareTask(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
  std::coroutine_handle<promise_type> frame_;
};

/// asyncio.sleep(0) for a bare task: resumed from the loop's next pass.
struct BareSleep0 {
  eddy::Loop& loop;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> frame) { loop.call_soon(BareTask::Resume{frame}); }
  void await_resume() const noexcept {}
};

BareTask bare_yield_then_return(eddy::Loop& loop, std::int64_t i) {
  co_await BareSleep0{loop};
  co_return i;
}

/// W6 with bare tasks on `loop`: seconds from t0 to the last result.
double bare_tasks(eddy::Loop& loop, std::int64_t n, std::size_t side_bytes) {
  Counter counter{&loop, n};
  double t0 = 0;
  loop.call_soon([&] {
    t0 = eddy_bench::now_s();
    for (std::int64_t i = 0; i < n; ++i)
      bare_yield_then_return(loop, i).start(loop, counter, side_bytes);
  });
  loop.run_forever();
  eddy_bench::check(counter.finished == n && counter.sum == n * (n - 1) / 2,
                    "bare tasks: wrong results");
  return counter.t1 - t0;
}

/// An eddy task that counts its own result (its future dropped unwatched).
eddy::Task<void> yield_then_count(Counter& counter, std::int64_t i) {
  co_await eddy::sleep(0);
  counter.report(i);
}

/// W6 with eddy's tasks that nobody watches: create_task, one sleep(0), and
/// the coroutine reports its result to a counter (no gather, no callbacks).
double unwatched_tasks(eddy::Loop& loop, std::int64_t n) {
  Counter counter{&loop, n};
  double t0 = 0;
  loop.call_soon([&] {
    t0 = eddy_bench::now_s();
    for (std::int64_t i = 0; i < n; ++i)
      (void)loop.create_task(yield_then_count(counter, i));
  });
  loop.run_forever();
  eddy_bench::check(counter.finished == n && counter.sum == n * (n - 1) / 2,
                    "unwatched tasks: wrong results");
  return counter.t1 - t0;
}

/// Registers `name`, timing `run(loop, n)` on one loop kept for all iterations.
template <class Run>
void add_on_loop(const std::string& name, Run run) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [run](benchmark::State& state) {
                                 eddy::Loop loop;
                                 eddy_bench::run_workload_with(
                                     state, [&](std::int64_t n) { return run(loop, n); });
                               })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

void register_all() {
  eddy_bench::add_pair("tasks", [](auto& w, std::int64_t n) { return w.tasks(n); });
  add_on_loop("BM_tasks/eddy_unwatched", &unwatched_tasks);
  add_on_loop("BM_tasks/bare",
              [](eddy::Loop& loop, std::int64_t n) { return bare_tasks(loop, n, 0); });
  add_on_loop("BM_tasks/bare+state", [](eddy::Loop& loop, std::int64_t n) {
    return bare_tasks(loop, n, sizeof(eddy::detail::TaskShared<std::int64_t>));
  });
}

}  // namespace

int main(int argc, char** argv) {
  {
    eddy::Task<int> probe = trivial();  // allocates its frame, never runs
    benchmark::AddCustomContext("frame bytes of a trivial Task<int>",
                                std::to_string(eddy::detail::last_frame_size()));
  }
  benchmark::AddCustomContext("state bytes of a Task<std::int64_t>",
                              std::to_string(sizeof(eddy::detail::TaskShared<std::int64_t>)));
  return eddy_bench::bench_main(argc, argv, 100'000, &register_all);
}
