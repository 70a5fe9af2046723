// Google Benchmark for eddy::Queue: a producer task hands N items (canonical
// N = 1e6) to a consumer task through a Queue, unbounded and with maxsize
// 100. Two plain C++ baselines of the same hand-off run in this binary, so
// each figure is also a ratio measured in one run:
//
// - call_soon:  a hand-written hand-off through a std::deque, the producer
//   and consumer being two state machines stepped by eddy's call_soon (what
//   a Queue does, without futures, tasks or coroutines);
// - coroutines: two minimal C++20 coroutines and a plain std::deque of
//   coroutine handles as the ready queue (no eddy at all).
//
// Each side follows the same protocol: the consumer starts first and waits
// while the queue is empty; a put wakes a waiting consumer, a get wakes a
// waiting producer; a producer waits while the queue is full.
//
//   bench_queue [--n=N] [Google Benchmark flags]
//
// After the runs, the median ns per item of each benchmark and its ratios to
// the baselines are printed.
#include <algorithm>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <eddy/loop.hpp>
#include <eddy/queue.hpp>
#include <eddy/task.hpp>

#include "harness.hpp"

namespace {

using eddy_bench::check;
using eddy_bench::now_s;

constexpr std::size_t kBound = 100;

struct Span {
  double t0 = 0, t1 = 0;
  double seconds() const { return t1 - t0; }
};

std::int64_t expected_sum(std::int64_t n) {
  return n * (n - 1) / 2;
}

// ------------------------------------------------------- eddy::Queue

/// One eddy::Loop reused for every repetition.
class QueueWorkloads {
 public:
  /// t0 in a task on the loop; a consumer task (created first) gets n items,
  /// a producer task puts 0..n-1; t1 when the consumer has the last one.
  double handoff(std::int64_t n, std::size_t maxsize) {
    Span span;
    eddy::Queue<std::int64_t> queue(maxsize);
    const std::int64_t sum = loop_.run_until_complete(run(queue, n, span));
    check(sum == expected_sum(n), "queue: checksum " + std::to_string(sum));
    check(queue.empty(), "queue: items left");
    return span.seconds();
  }

 private:
  static eddy::Task<> produce(eddy::Queue<std::int64_t>& queue, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
      co_await queue.put(i);
  }
  static eddy::Task<std::int64_t> consume(eddy::Queue<std::int64_t>& queue, std::int64_t n,
                                          Span& span) {
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i)
      sum += co_await queue.get();
    span.t1 = now_s();
    co_return sum;
  }
  eddy::Task<std::int64_t> run(eddy::Queue<std::int64_t>& queue, std::int64_t n, Span& span) {
    span.t0 = now_s();
    eddy::Future<std::int64_t> consumer = loop_.create_task(consume(queue, n, span));
    eddy::Future<void> producer = loop_.create_task(produce(queue, n));
    std::int64_t sum = co_await consumer;
    co_await producer;
    co_return sum;
  }

  eddy::Loop loop_;
};

// ------------------------------- baseline 1: std::deque + eddy's call_soon

class CallSoonWorkloads {
 public:
  double handoff(std::int64_t n, std::size_t maxsize) {
    Handoff h{&loop_, maxsize, n, {}, 0, 0, 0, false, false, {}};
    loop_.call_soon([&h] {
      h.span.t0 = now_s();
      h.loop->call_soon([&h] { h.consume(); });  // the consumer first, as above
      h.loop->call_soon([&h] { h.produce(); });
    });
    loop_.run_forever();
    check(h.sum == expected_sum(n), "call_soon: checksum " + std::to_string(h.sum));
    return h.span.seconds();
  }

 private:
  struct Handoff {
    eddy::Loop* loop;
    std::size_t maxsize;
    std::int64_t n;
    std::deque<std::int64_t> items;
    std::int64_t next = 0, received = 0, sum = 0;
    bool producer_waits = false, consumer_waits = false;
    Span span;

    void produce() {
      while (next < n) {
        if (maxsize != 0 && items.size() >= maxsize) {
          producer_waits = true;
          return;
        }
        items.push_back(next++);
        if (consumer_waits) {
          consumer_waits = false;
          loop->call_soon([this] { consume(); });
        }
      }
    }
    void consume() {
      while (received < n) {
        if (items.empty()) {
          consumer_waits = true;
          return;
        }
        sum += items.front();
        items.pop_front();
        ++received;
        if (producer_waits) {
          producer_waits = false;
          loop->call_soon([this] { produce(); });
        }
      }
      span.t1 = now_s();
      loop->stop();
    }
  };

  eddy::Loop loop_;
};

// -------------------- baseline 2: minimal coroutines on a plain ready queue

namespace plain {

/// A ready queue of coroutines, run in FIFO order.
struct Scheduler {
  std::deque<std::coroutine_handle<>> ready;
  void run() {
    while (!ready.empty()) {
      std::coroutine_handle<> next = ready.front();
      ready.pop_front();
      next.resume();
    }
  }
};

/// A coroutine that starts suspended and is owned by this object.
struct Process {
  struct promise_type {
    Process get_return_object() noexcept {
      return Process{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  explicit Process(std::coroutine_handle<promise_type> h) noexcept : handle(h) {}
  Process(Process&& other) noexcept : handle(std::exchange(other.handle, {})) {}
  Process& operator=(Process&&) = delete;
  ~Process() {
    if (handle) handle.destroy();
  }
  std::coroutine_handle<promise_type> handle;
};

/// One producer, one consumer: at most one of each waits.
struct Channel {
  Scheduler* scheduler;
  std::size_t maxsize;
  std::deque<std::int64_t> items;
  std::coroutine_handle<> getter, putter;

  struct Put {
    Channel* c;
    std::int64_t item;
    bool await_ready() const noexcept { return c->maxsize == 0 || c->items.size() < c->maxsize; }
    void await_suspend(std::coroutine_handle<> h) noexcept { c->putter = h; }
    void await_resume() {
      c->items.push_back(item);
      if (c->getter) c->scheduler->ready.push_back(std::exchange(c->getter, {}));
    }
  };
  struct Get {
    Channel* c;
    bool await_ready() const noexcept { return !c->items.empty(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { c->getter = h; }
    std::int64_t await_resume() {
      std::int64_t item = c->items.front();
      c->items.pop_front();
      if (c->putter) c->scheduler->ready.push_back(std::exchange(c->putter, {}));
      return item;
    }
  };
  Put put(std::int64_t item) { return Put{this, item}; }
  Get get() { return Get{this}; }
};

Process produce(Channel& channel, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    co_await channel.put(i);
}
Process consume(Channel& channel, std::int64_t n, std::int64_t& sum, Span& span) {
  for (std::int64_t i = 0; i < n; ++i)
    sum += co_await channel.get();
  span.t1 = now_s();
}

}  // namespace plain

class CoroutineWorkloads {
 public:
  double handoff(std::int64_t n, std::size_t maxsize) {
    Span span;
    plain::Scheduler scheduler;
    plain::Channel channel{&scheduler, maxsize, {}, {}, {}};
    std::int64_t sum = 0;
    span.t0 = now_s();
    plain::Process consumer = plain::consume(channel, n, sum, span);
    plain::Process producer = plain::produce(channel, n);
    scheduler.ready.push_back(consumer.handle);
    scheduler.ready.push_back(producer.handle);
    scheduler.run();
    check(sum == expected_sum(n), "coroutines: checksum " + std::to_string(sum));
    return span.seconds();
  }
};

// ------------------------------------------------------------- registry

template <class Workloads>
void add(const std::string& name, std::size_t maxsize) {
  benchmark::RegisterBenchmark(
      name.c_str(),
      [maxsize](benchmark::State& state) {
        eddy_bench::run_workload<Workloads>(
            state, [maxsize](Workloads& w, std::int64_t n) { return w.handoff(n, maxsize); },
            [](Workloads&, benchmark::State&) {});
      })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

const char* const kLabels[] = {"unbounded", "maxsize100"};

void register_all() {
  for (const char* label : kLabels) {
    const std::size_t maxsize = std::string(label) == "unbounded" ? 0 : kBound;
    const std::string base = std::string("BM_queue_handoff/") + label;
    add<QueueWorkloads>(base + "/eddy_queue", maxsize);
    add<CallSoonWorkloads>(base + "/baseline_call_soon", maxsize);
    add<CoroutineWorkloads>(base + "/baseline_coroutines", maxsize);
  }
}

/// The console reporter, which also keeps each reported run's ns per item
/// (repetitions, not aggregates) to print eddy's ratios at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) != 0 ? OO_Defaults : OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      auto counter = run.counters.find("ns_per_op");
      if (counter != run.counters.end()) {
        ns_per_item_[run.run_name.function_name].push_back(counter->second.value);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void print_ratios() const {
    std::printf("\nns per item (median of the repetitions) and eddy's ratios:\n");
    for (const char* label : kLabels) {
      const std::string base = std::string("BM_queue_handoff/") + label;
      const double eddy = median_of(base + "/eddy_queue");
      const double call_soon = median_of(base + "/baseline_call_soon");
      const double coroutines = median_of(base + "/baseline_coroutines");
      if (eddy == 0 || call_soon == 0 || coroutines == 0) continue;  // filtered out
      std::printf(
          "  %-10s eddy::Queue %6.1f ns | deque+call_soon %6.1f ns (eddy x%.2f) | "
          "plain coroutines %6.1f ns (eddy x%.2f)\n",
          label, eddy, call_soon, eddy / call_soon, coroutines, eddy / coroutines);
    }
  }

 private:
  double median_of(const std::string& name) const {
    auto it = ns_per_item_.find(name);
    if (it == ns_per_item_.end() || it->second.empty()) return 0;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 != 0 ? v[m] : (v[m - 1] + v[m]) / 2;
  }

  std::map<std::string, std::vector<double>> ns_per_item_;  // by benchmark name
};

}  // namespace

int main(int argc, char** argv) {
  RatioReporter reporter;
  const int status = eddy_bench::bench_main(argc, argv, 1'000'000, &register_all, &reporter);
  if (status == 0) reporter.print_ratios();
  return status;
}
