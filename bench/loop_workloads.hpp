// The workloads of /work/shared/peers/WORKLOADS.md (W1-W5, W7) on eddy.
//
// Shared by bench_loop (Google Benchmark, beside a raw-libuv baseline) and
// eddy-workloads (the peers' program contract), so both measure the same code.
// Each method runs one repetition on the object's loop (one loop reused for
// every repetition), checks the result and returns the seconds between t0 and
// t1, taken where WORKLOADS.md says. A result that does not check out throws
// ValidationError: the measurement is then meaningless.
#pragma once

#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eddy/executor.hpp>
#include <eddy/future.hpp>
#include <eddy/gather.hpp>
#include <eddy/loop.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

namespace eddy_bench {

/// Monotonic time in seconds (steady_clock reads CLOCK_MONOTONIC, as uv_hrtime does).
inline double now_s() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// W4's delay of timer i: 0 <= delay < 10 ms, every microsecond value used
/// N / 10000 times in a scrambled order.
inline std::chrono::microseconds delay_of(std::int64_t i) noexcept {
  return std::chrono::microseconds((i * 7919) % 10000);
}

/// A workload's result did not check out (wrong count, a cancelled timer ran...).
class ValidationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void check(bool ok, const std::string& what) {
  if (!ok) throw ValidationError(what);
}

/// One eddy::Loop and the untimed storage the workloads reuse across repetitions.
class EddyWorkloads {
 public:
  eddy::Loop& loop() noexcept { return loop_; }

  /// W1: from inside the loop, t0; call_soon(noop) n times; call_soon(sentinel);
  /// the sentinel takes t1. Op = schedule + run one no-op callback.
  double call_soon(std::int64_t n) {
    Span span;
    const std::uint64_t ran_before = loop_.stats().callbacks_run;
    loop_.call_soon([this, n, &span] {
      span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i)
        loop_.call_soon([] {});
      loop_.call_soon([this, &span] {
        span.t1 = now_s();
        loop_.stop();
      });
    });
    loop_.run_forever();
    const std::uint64_t ran = loop_.stats().callbacks_run - ran_before;
    check(
        ran == static_cast<std::uint64_t>(n) + 2,
        "call_soon: " + std::to_string(ran) + " callbacks ran, expected " + std::to_string(n + 2));
    return span.seconds();
  }

  /// W2: from inside the loop, t0; call_soon(step); step counts down and
  /// re-schedules itself until the count reaches zero, then takes t1. Op = one
  /// loop iteration.
  double chain(std::int64_t n) {
    Chain c{&loop_, n, {}};
    const std::uint64_t iterations_before = loop_.stats().iterations;
    loop_.call_soon([&c] {
      c.span.t0 = now_s();
      c.loop->call_soon([&c] { chain_step(&c); });
    });
    loop_.run_forever();
    const std::uint64_t iterations = loop_.stats().iterations - iterations_before;
    check(c.left == 0, "chain: " + std::to_string(c.left) + " steps did not run");
    // asyncio semantics: each step runs in its own iteration.
    check(iterations >= static_cast<std::uint64_t>(n),
          "chain: " + std::to_string(n) + " steps ran in only " + std::to_string(iterations) +
              " iterations");
    return c.span.seconds();
  }

  /// W3 (producers = 1) and W3b (producers = 2): from inside the loop, t0;
  /// start the producers, which call call_soon_threadsafe(cb) n times in all as
  /// fast as they can; the n-th cb takes t1. The joins are untimed.
  double threadsafe(std::int64_t n, int producers) {
    Threadsafe s{&loop_, n, 0, {}, {}};
    s.threads.reserve(static_cast<std::size_t>(producers));
    loop_.call_soon([&s, n, producers] {
      s.span.t0 = now_s();
      for (int p = 0; p < producers; ++p) {
        std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
        s.threads.emplace_back([&s, share] {
          for (std::int64_t i = 0; i < share; ++i) {
            s.loop->call_soon_threadsafe([&s] {
              if (++s.received == s.expected) {
                s.span.t1 = now_s();
                s.loop->stop();
              }
            });
          }
        });
      }
    });
    loop_.run_forever();
    for (std::thread& t : s.threads)
      t.join();
    check(s.received == n, "threadsafe: " + std::to_string(s.received) +
                               " callbacks ran, expected " + std::to_string(n));
    return s.span.seconds();
  }

  /// W4: from inside the loop, t0; call_later(delay_of(i), cb) for i in 0..n-1;
  /// the n-th cb takes t1. The table of delays is built untimed.
  double timers(std::int64_t n) {
    prepare_delays(n);
    Counted s{&loop_, n, 0, {}};
    loop_.call_soon([this, &s] {
      s.span.t0 = now_s();
      for (std::chrono::microseconds d : delays_) {
        loop_.call_later(d, [&s] {
          if (++s.fired == s.expected) {
            s.span.t1 = now_s();
            s.loop->stop();
          }
        });
      }
    });
    loop_.run_forever();
    check(s.fired == n,
          "timers: " + std::to_string(s.fired) + " timers fired, expected " + std::to_string(n));
    check(loop_.stats().timers == 0, "timers: timers are still scheduled after the last fired");
    return s.span.seconds();
  }

  /// W4c: from inside the loop, t0; create n timers as W4 keeping their
  /// handles; cancel all n in creation order; call_soon(sentinel); the sentinel
  /// takes t1. No timer may fire. The handle storage is reserved untimed.
  double timers_cancel(std::int64_t n) {
    prepare_delays(n);
    handles_.clear();
    handles_.reserve(static_cast<std::size_t>(n));
    Counted s{&loop_, n, 0, {}};
    std::int64_t cancelled = 0;
    loop_.call_soon([this, &s, &cancelled] {
      s.span.t0 = now_s();
      for (std::chrono::microseconds d : delays_) {
        handles_.push_back(loop_.call_later(d, [&s] { ++s.fired; }));
      }
      for (eddy::TimerHandle& h : handles_)
        cancelled += h.cancel() ? 1 : 0;
      loop_.call_soon([&s] {
        s.span.t1 = now_s();
        s.loop->stop();
      });
    });
    loop_.run_forever();
    handles_.clear();  // untimed
    check(cancelled == n, "timers_cancel: cancel() returned true " + std::to_string(cancelled) +
                              " times, expected " + std::to_string(n));
    check(s.fired == 0, "timers_cancel: " + std::to_string(s.fired) + " cancelled timers fired");
    check(loop_.stats().timers == 0, "timers_cancel: timers are still scheduled after cancel");
    return s.span.seconds();
  }

  /// W5: from inside the loop, t0; per future: create_future, one done
  /// callback, set_result(i); then call_soon(sentinel), which takes t1. Each
  /// callback adds f.result() to a checksum (must be n(n-1)/2). Op = one
  /// future's whole life; done callbacks go through the ready queue.
  double futures(std::int64_t n) {
    Span span;
    std::int64_t checksum = 0;
    loop_.call_soon([this, n, &span, &checksum] {
      span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i) {
        eddy::Future<std::int64_t> f = loop_.create_future<std::int64_t>();
        f.add_done_callback(
            [&checksum](eddy::Future<std::int64_t>& done) { checksum += done.result(); });
        f.set_result(i);
      }
      loop_.call_soon([this, &span] {
        span.t1 = now_s();
        loop_.stop();
      });
    });
    loop_.run_forever();
    check(checksum == n * (n - 1) / 2, "futures: checksum " + std::to_string(checksum) +
                                           ", expected " + std::to_string(n * (n - 1) / 2));
    return span.seconds();
  }

  /// W6: from inside the loop, t0; create n tasks of `t(i)` (one sleep(0),
  /// then return i), each through create_task; gather their results (range
  /// gather: a vector in order); t1 when the gather completes. Op = one
  /// task's whole life.
  double tasks(std::int64_t n) {
    Span span;
    std::vector<std::int64_t> results;
    loop_.call_soon([this, n, &span, &results] {
      span.t0 = now_s();
      std::vector<eddy::Future<std::int64_t>> futures;
      futures.reserve(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i)
        futures.push_back(loop_.create_task(yield_then_return(i)));
      eddy::gather(std::move(futures))
          .add_done_callback([this, &span, &results](eddy::Future<std::vector<std::int64_t>>& all) {
            results = std::move(all.result());
            span.t1 = now_s();
            loop_.stop();
          });
    });
    loop_.run_forever();
    std::int64_t sum = 0;
    for (std::int64_t v : results)
      sum += v;
    check(
        static_cast<std::int64_t>(results.size()) == n && sum == n * (n - 1) / 2,
        "tasks: checksum " + std::to_string(sum) + ", expected " + std::to_string(n * (n - 1) / 2));
    return span.seconds();
  }

  /// W7: a pool of 4 workers is created and warmed untimed (all four threads
  /// started, one round trip through the loop made). From inside the loop,
  /// t0; run_in_executor(pool, trivial, i) for i in 0..n-1, trivial(i) = i + 1;
  /// each future's done callback (on the loop thread) adds the result to a
  /// checksum, the n-th takes t1. Op = one round trip loop -> pool -> loop.
  double executor(std::int64_t n) {
    warm_pool();
    RoundTrips s{&loop_, n, 0, 0, {}};
    loop_.call_soon([this, &s] {
      s.span.t0 = now_s();
      for (std::int64_t i = 0; i < s.expected; ++i) {
        eddy::Future<std::int64_t> f = loop_.run_in_executor(*pool_, &trivial, i);
        f.add_done_callback([p = &s](eddy::Future<std::int64_t>& done) {
          p->checksum += done.result();
          if (++p->arrived == p->expected) {
            p->span.t1 = now_s();
            p->loop->stop();
          }
        });
      }
    });
    loop_.run_forever();
    check(s.arrived == n, "executor: " + std::to_string(s.arrived) + " results arrived, expected " +
                              std::to_string(n));
    check(s.checksum == n * (n + 1) / 2, "executor: checksum " + std::to_string(s.checksum) +
                                             ", expected " + std::to_string(n * (n + 1) / 2));
    return s.span.seconds();
  }

 private:
  static eddy::Task<std::int64_t> yield_then_return(std::int64_t i) {
    co_await eddy::sleep(0);
    co_return i;
  }

  struct Span {
    double t0 = 0, t1 = 0;
    double seconds() const {
      check(t1 > t0, "the workload did not record t1 after t0");
      return t1 - t0;
    }
  };
  struct Chain {
    eddy::Loop* loop;
    std::int64_t left;
    Span span;
  };
  struct Threadsafe {
    eddy::Loop* loop;
    std::int64_t expected;
    std::int64_t received;  // loop thread only
    Span span;
    std::vector<std::thread> threads;
  };
  struct Counted {
    eddy::Loop* loop;
    std::int64_t expected;
    std::int64_t fired;
    Span span;
  };
  struct RoundTrips {
    eddy::Loop* loop;
    std::int64_t expected;
    std::int64_t arrived;  // loop thread only
    std::int64_t checksum;
    Span span;
  };

  static std::int64_t trivial(std::int64_t i) noexcept { return i + 1; }

  // Untimed: the four workers started (each job waits until all four run),
  // then one round trip through the loop (its executor state made).
  void warm_pool() {
    if (pool_) return;
    pool_ = std::make_unique<eddy::ThreadPoolExecutor>(4, "eddy-w7");
    std::latch all_running(4);
    std::vector<eddy::ConcurrentFuture<void>> started;
    for (int i = 0; i < 4; ++i)
      started.push_back(pool_->submit([&all_running] { all_running.arrive_and_wait(); }));
    for (auto& f : started)
      f.result();
    loop_.run_until_complete(loop_.run_in_executor(*pool_, &trivial, 0));
  }

  static void chain_step(Chain* c) {
    if (--c->left != 0) {
      c->loop->call_soon([c] { chain_step(c); });
    } else {
      c->span.t1 = now_s();
      c->loop->stop();
    }
  }

  void prepare_delays(std::int64_t n) {
    if (static_cast<std::int64_t>(delays_.size()) == n) return;
    delays_.clear();
    delays_.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i)
      delays_.push_back(delay_of(i));
  }

  eddy::Loop loop_;
  std::vector<std::chrono::microseconds> delays_;   // W4, W4c: untimed table
  std::vector<eddy::TimerHandle> handles_;          // W4c: reserved untimed
  std::unique_ptr<eddy::ThreadPoolExecutor> pool_;  // W7: made and warmed untimed (joined first)
};

}  // namespace eddy_bench
