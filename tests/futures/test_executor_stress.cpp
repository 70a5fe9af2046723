// Stress tests of the executors: 8 threads hand 100k jobs to one
// ThreadPoolExecutor, and to one LoopThread's loop (run_in_executor); every
// result is accounted for exactly once; shutting down under load loses
// nothing and never hangs. Meant to run under ThreadSanitizer and
// AddressSanitizer too. No sleeps: threads meet on gates and futures.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <eddy/executor.hpp>
#include <eddy/loop_thread.hpp>

#include "thread_test.hpp"

namespace eddy {
namespace {

using testing::Gate;

constexpr int kThreads = 8;
constexpr int kJobs = 100'000;
constexpr int kPerThread = kJobs / kThreads;

TEST(ExecutorStress, EightThreadsSubmit100kJobsAndEveryResultArrivesOnce) {
  ThreadPoolExecutor executor(4);
  std::atomic<std::int64_t> callback_sum{0};
  std::atomic<int> callbacks{0};
  std::vector<std::int64_t> result_sums(kThreads, 0);
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      std::vector<ConcurrentFuture<std::int64_t>> futures;
      futures.reserve(kPerThread);
      for (int k = 0; k < kPerThread; ++k) {
        const std::int64_t i = static_cast<std::int64_t>(t) * kPerThread + k;
        futures.push_back(executor.submit([](std::int64_t x) { return x + 1; }, i));
        futures.back().add_done_callback([&](ConcurrentFuture<std::int64_t>& f) {
          callback_sum += f.result();
          ++callbacks;
        });
      }
      for (auto& f : futures)
        result_sums[static_cast<std::size_t>(t)] += f.result();
    });
  }
  for (auto& t : submitters)
    t.join();
  executor.shutdown(/*wait=*/true);  // every done callback has run on a worker
  const std::int64_t expected = std::int64_t{kJobs} * (kJobs + 1) / 2;
  std::int64_t total = 0;
  for (std::int64_t s : result_sums)
    total += s;
  EXPECT_EQ(total, expected);
  EXPECT_EQ(callbacks, kJobs);
  EXPECT_EQ(callback_sum, expected);
}

TEST(ExecutorStress, ShutdownUnderLoadLosesNothingAndNeverHangs) {
  ThreadPoolExecutor executor(4);
  std::atomic<int> ran{0};
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  auto enough = Gate::make();  // opened once a good part of the load is queued
  std::vector<std::vector<ConcurrentFuture<int>>> futures(kThreads);
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        try {
          futures[static_cast<std::size_t>(t)].push_back(executor.submit([&ran] { return ++ran; }));
          if (++accepted == kJobs / 4) enough->open();
        } catch (const ExecutorShutdownError&) {
          ++refused;
        }
      }
    });
  }
  enough->wait();
  executor.shutdown(/*wait=*/true, /*cancel_futures=*/true);
  for (auto& t : submitters)
    t.join();
  int finished = 0, cancelled = 0;
  for (auto& per_thread : futures) {
    for (auto& f : per_thread) {
      ASSERT_TRUE(f.done());  // nothing left pending
      if (f.cancelled()) {
        ++cancelled;
      } else {
        f.result();
        ++finished;
      }
    }
  }
  EXPECT_EQ(accepted + refused, kJobs);
  EXPECT_EQ(finished + cancelled, accepted);
  EXPECT_EQ(finished, ran);  // a job ran exactly when its future finished
  EXPECT_GE(accepted, kJobs / 4);
}

// Every job handed to the LoopThread carries one Ticket; whatever happens to
// the job, the ticket is resolved exactly once: the result arrived, the future
// was cancelled, or the callback holding it was destroyed unrun.
struct Tally {
  std::atomic<int> created{0};
  std::atomic<int> results{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> dropped{0};
  std::atomic<std::int64_t> sum{0};
  int resolved() const { return results + cancelled + dropped; }
};

class Ticket {
 public:
  explicit Ticket(Tally* tally) : tally_(tally) { ++tally_->created; }
  Ticket(Ticket&& other) noexcept : tally_(std::exchange(other.tally_, nullptr)) {}
  Ticket& operator=(Ticket&&) = delete;
  ~Ticket() {
    if (tally_ != nullptr) ++tally_->dropped;
  }
  void resolve(Future<std::int64_t>& f) {
    if (f.cancelled()) {
      ++tally_->cancelled;
    } else {
      tally_->sum += f.result();
      ++tally_->results;
    }
    tally_ = nullptr;
  }

 private:
  Tally* tally_;
};

// On the loop thread: start job `i`, its ticket travelling with it.
void start_job(Loop& loop, std::int64_t i, Ticket ticket, const std::shared_ptr<Gate>& last,
               Tally* tally) {
  Future<std::int64_t> f = loop.run_in_executor([](std::int64_t x) { return x + 1; }, i);
  f.add_done_callback(
      [ticket = std::move(ticket), last, tally](Future<std::int64_t>& done) mutable {
        ticket.resolve(done);
        if (tally->resolved() == kJobs) last->open();
      });
}

TEST(LoopThreadStress, EightThreadsFeed100kExecutorJobsAndEveryResultArrivesOnce) {
  Tally tally;
  auto all_done = Gate::make();
  {
    LoopThread lt;
    std::vector<std::thread> producers;
    for (int t = 0; t < kThreads; ++t) {
      producers.emplace_back([&, t] {
        for (int k = 0; k < kPerThread; ++k) {
          const std::int64_t i = static_cast<std::int64_t>(t) * kPerThread + k;
          lt.call_soon_threadsafe(
              [&lt, i, ticket = Ticket(&tally), all_done, tally = &tally]() mutable {
                start_job(lt.loop(), i, std::move(ticket), all_done, tally);
              });
        }
      });
    }
    for (auto& t : producers)
      t.join();
    all_done->wait();
  }
  EXPECT_EQ(tally.created, kJobs);
  EXPECT_EQ(tally.results, kJobs);
  EXPECT_EQ(tally.cancelled + tally.dropped, 0);
  EXPECT_EQ(tally.sum, std::int64_t{kJobs} * (kJobs + 1) / 2);
}

TEST(LoopThreadStress, DestroyingItUnderLoadLosesNothingAndNeverHangs) {
  Tally tally;
  auto never = Gate::make();
  auto enough = Gate::make();
  std::atomic<int> posted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> producers;
  {
    LoopThread lt;
    for (int t = 0; t < kThreads; ++t) {
      producers.emplace_back([&, t] {
        for (int k = 0; k < kPerThread; ++k) {
          const std::int64_t i = static_cast<std::int64_t>(t) * kPerThread + k;
          try {
            lt.call_soon_threadsafe(
                [&lt, i, ticket = Ticket(&tally), never, tally = &tally]() mutable {
                  start_job(lt.loop(), i, std::move(ticket), never, tally);
                });
            if (++posted == kJobs / 4) enough->open();
          } catch (const LoopClosedError&) {
            ++refused;  // (its ticket was dropped with the callable)
          }
        }
      });
    }
    enough->wait();
    lt.shutdown();  // while producers still post and jobs are in flight
    for (auto& t : producers)
      t.join();
  }
  EXPECT_EQ(posted + refused, kJobs);
  EXPECT_EQ(tally.created, kJobs);
  EXPECT_EQ(tally.resolved(), kJobs);  // each exactly once (a ticket resolves once)
  EXPECT_GE(posted, kJobs / 4);
}

}  // namespace
}  // namespace eddy
