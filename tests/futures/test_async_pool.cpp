// Tests for eddy::AsyncPool (eddy/async_pool.hpp): coroutine jobs submitted
// from plain threads, the size limit, back-pressure, failures, cancellation,
// shutdown. Real threads (run under TSan); waits use ConcurrentFuture's
// blocking result(), never sleeps for ordering.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <eddy/async_pool.hpp>
#include <eddy/sleep.hpp>

namespace eddy {
namespace {

Task<int> square(int x) {
  co_await sleep(0);
  co_return x* x;
}

TEST(AsyncPool, ResultsComeBackToThePlainCaller) {
  AsyncPool pool(4);
  std::vector<ConcurrentFuture<int>> futures;
  for (int i = 0; i < 20; ++i)
    futures.push_back(pool.submit(square, i));
  int sum = 0;
  for (auto& f : futures)
    sum += f.result();
  EXPECT_EQ(sum, 2470);
}

TEST(AsyncPool, MoveOnlyArgumentsAreHandedToTheJob) {
  AsyncPool pool(2);
  auto take = [](std::unique_ptr<int> p) -> Task<int> {
    co_await sleep(0);
    co_return *p * 2;
  };
  EXPECT_EQ(pool.submit(take, std::make_unique<int>(21)).result(), 42);
  std::optional<ConcurrentFuture<int>> f = pool.try_submit(take, std::make_unique<int>(4));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->result(), 8);
}

TEST(AsyncPool, AnEmptyCallableIsRefusedAndThePoolGoesOn) {
  AsyncPool pool(1);
  Task<int> (*null_fn)(int) = nullptr;
  EXPECT_THROW(pool.submit(null_fn, 1), std::invalid_argument);
  EXPECT_THROW(pool.try_submit(null_fn, 1), std::invalid_argument);
  EXPECT_EQ(pool.submit(square, 3).result(), 9);
}

TEST(AsyncPool, AtMostSizeJobsRunAtOnce) {
  std::atomic<int> running{0}, peak{0};
  {
    AsyncPool pool(3);
    auto job = [&]() -> Task<int> {
      int now = ++running;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      co_await sleep(0.001);
      --running;
      co_return 0;
    };
    std::vector<ConcurrentFuture<int>> futures;
    for (int i = 0; i < 30; ++i)
      futures.push_back(pool.submit(job));
    for (auto& f : futures)
      f.result();
  }
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 1);
}

TEST(AsyncPool, JobsStartInSubmissionOrder) {
  std::vector<int> order;  // touched on the pool's loop thread only
  {
    AsyncPool pool(1);
    auto job = [&](int i) -> Task<int> {
      order.push_back(i);
      co_await sleep(0);
      co_return i;
    };
    std::vector<ConcurrentFuture<int>> futures;
    for (int i = 0; i < 10; ++i)
      futures.push_back(pool.submit(job, i));
    for (auto& f : futures)
      f.result();
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(AsyncPool, TrySubmitRefusesWhileTheBacklogIsFullAndSubmitWaits) {
  AsyncPool pool(1, 1);
  ConcurrentFuture<void> release;
  ConcurrentFuture<void> first_started;
  auto blocker = [&]() -> Task<int> {
    first_started.set_result();
    co_await release;
    co_return 1;
  };
  ConcurrentFuture<int> first = pool.submit(blocker);
  first_started.result();                                 // running: the backlog is empty
  ConcurrentFuture<int> second = pool.submit(square, 2);  // waits for the slot: backlog full
  EXPECT_FALSE(pool.try_submit(square, 3).has_value());
  std::atomic<bool> third_submitted{false};
  std::thread submitter([&] {
    ConcurrentFuture<int> third = pool.submit(square, 3);  // blocks until room
    third_submitted = true;
    EXPECT_EQ(third.result(), 9);
  });
  EXPECT_FALSE(third_submitted.load());
  release.set_result();
  EXPECT_EQ(first.result(), 1);
  EXPECT_EQ(second.result(), 4);
  submitter.join();
  EXPECT_TRUE(third_submitted.load());
}

TEST(AsyncPool, AFailingJobDoesNotStopThePool) {
  AsyncPool pool(2);
  auto fails = []() -> Task<int> {
    co_await sleep(0);
    throw std::runtime_error("job failed");
  };
  ConcurrentFuture<int> bad = pool.submit(fails);
  EXPECT_THROW(bad.result(), std::runtime_error);
  EXPECT_EQ(pool.submit(square, 5).result(), 25);
}

TEST(AsyncPool, CancellingAJobThatWaitsForASlotMeansItNeverRuns) {
  std::atomic<bool> ran{false};
  AsyncPool pool(1);
  ConcurrentFuture<void> release;
  ConcurrentFuture<void> started;
  auto blocker = [&]() -> Task<int> {
    started.set_result();
    co_await release;
    co_return 1;
  };
  auto marker = [&]() -> Task<int> {
    ran = true;
    co_return 2;
  };
  ConcurrentFuture<int> first = pool.submit(blocker);
  started.result();
  ConcurrentFuture<int> second = pool.submit(marker);
  EXPECT_TRUE(second.cancel());
  release.set_result();
  EXPECT_EQ(first.result(), 1);
  EXPECT_EQ(pool.submit(square, 3).result(), 9);  // the slot was not lost
  EXPECT_FALSE(ran.load());
  EXPECT_THROW(second.result(), CancelledError);
}

TEST(AsyncPool, ShutdownWithWaitDrainsEverySubmittedJob) {
  AsyncPool pool(2);
  std::vector<ConcurrentFuture<int>> futures;
  for (int i = 0; i < 10; ++i)
    futures.push_back(pool.submit(square, i));
  pool.shutdown(true);
  EXPECT_EQ(pool.pending(), 0u);
  for (auto& f : futures)
    EXPECT_TRUE(f.done());
  EXPECT_EQ(futures[9].result(), 81);
}

TEST(AsyncPool, ShutdownWithoutWaitCancelsTheJobs) {
  AsyncPool pool(1);
  ConcurrentFuture<void> started;
  auto forever = [&]() -> Task<int> {
    started.set_result();
    co_await sleep(3600.0);
    co_return 1;
  };
  ConcurrentFuture<int> running = pool.submit(forever);
  ConcurrentFuture<int> waiting = pool.submit(square, 2);
  started.result();
  pool.shutdown(false);
  EXPECT_THROW(running.result(), CancelledError);
  EXPECT_THROW(waiting.result(), CancelledError);
}

// A job submitted as shutdown(false) begins may reach the loop after the
// cancel pass: it is cancelled all the same, so shutdown(false) never waits
// for a job to end on its own (here, never). The race is narrow: the rounds
// make it likely to be hit.
TEST(AsyncPool, ShutdownWithoutWaitCancelsAJobSubmittedAtTheSameMoment) {
  auto forever = []() -> Task<int> {
    co_await sleep(3600.0);
    co_return 1;
  };
  for (int round = 0; round < 200; ++round) {
    AsyncPool pool(4);
    std::atomic<bool> go{false};
    std::vector<ConcurrentFuture<int>> submitted;
    std::thread submitter([&] {
      while (!go.load()) {
      }
      try {
        for (;;)
          submitted.push_back(pool.submit(forever));
      } catch (const ExecutorShutdownError&) {
      }
    });
    go.store(true);
    for (int spin = 0; spin < 1000 * (round % 40); ++spin)
      std::atomic_signal_fence(std::memory_order_seq_cst);  // a pause of varying length
    pool.shutdown(false);
    submitter.join();
    for (ConcurrentFuture<int>& f : submitted)
      EXPECT_THROW(f.result(), CancelledError);
  }
}

TEST(AsyncPool, ShutdownFromInsideAJobThrowsRuntimeErrorAndThePoolGoesOn) {
  // The pool's thread cannot wait for its own jobs: it used to deadlock.
  AsyncPool pool(2);
  auto job = [&pool]() -> Task<std::string> {
    for (bool wait : {true, false}) {
      try {
        pool.shutdown(wait);
        co_return "shutdown returned";
      } catch (const RuntimeError& e) {
        if (!wait) co_return e.what();
      }
    }
    co_return "unreachable";
  };
  EXPECT_EQ(pool.submit(job).result(10.0),
            "eddy::AsyncPool::shutdown: called from the pool's own thread (a job), which would "
            "wait for itself");
  auto square = [](int i) -> Task<int> { co_return i* i; };
  EXPECT_EQ(pool.submit(square, 6).result(10.0), 36);  // still taking jobs
  pool.shutdown();
}

// A copy of fn or of an argument that throws: submit throws it and counts
// nothing, so pending() stays 0 and shutdown() does not wait for a job that
// never was (whatever order the compiler makes the copies in).
TEST(AsyncPool, AnArgumentWhoseCopyThrowsLeavesNoJobCounted) {
  struct CopyFails {
    CopyFails() = default;
    CopyFails(const CopyFails&) { throw std::runtime_error("copy failed"); }
  };
  AsyncPool pool(1);
  const CopyFails arg;
  auto job = [](int, CopyFails, int) -> Task<int> { co_return 1; };
  EXPECT_THROW(pool.submit(job, 1, arg, 2), std::runtime_error);
  EXPECT_THROW(pool.try_submit(job, 1, arg, 2), std::runtime_error);
  EXPECT_EQ(pool.pending(), 0u);
  auto square = [](int i) -> Task<int> { co_return i* i; };
  EXPECT_EQ(pool.submit(square, 3).result(10.0), 9);
  pool.shutdown();  // returns: nothing is left counted
}

// From one of the pool's own jobs, submit with the backlog full would block
// the pool's thread, which is the one that makes room: it throws instead.
TEST(AsyncPool, SubmitFromAJobWithTheBacklogFullThrowsRuntimeError) {
  AsyncPool pool(1, 1);
  auto square = [](int i) -> Task<int> { co_return i* i; };
  std::optional<ConcurrentFuture<int>> queued;
  auto job = [&]() -> Task<std::string> {
    queued = pool.submit(square, 2);  // room: it waits for this job's slot
    std::string outcome;
    try {
      (void)pool.submit(square, 3);
      outcome = "submitted";
    } catch (const RuntimeError& e) {
      outcome = e.what();
    }
    EXPECT_FALSE(pool.try_submit(square, 4).has_value());
    co_return outcome;
  };
  EXPECT_EQ(pool.submit(job).result(10.0),
            "eddy::AsyncPool::submit: the backlog is full and the caller is one of the pool's own "
            "jobs, which would wait for itself; use try_submit there");
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->result(10.0), 4);
}

TEST(AsyncPool, SubmitAfterShutdownThrowsExecutorShutdownError) {
  AsyncPool pool(1);
  pool.shutdown();
  EXPECT_THROW(pool.submit(square, 1), ExecutorShutdownError);
  EXPECT_THROW(pool.try_submit(square, 1), ExecutorShutdownError);
}

TEST(AsyncPool, SizeZeroIsRejected) {
  EXPECT_THROW(AsyncPool(0), std::invalid_argument);
}

TEST(AsyncPool, EightThreadsSubmittingAHundredThousandJobsGetEveryResultOnce) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 12'500;
  std::atomic<long> sum{0};
  std::atomic<long> results{0};
  {
    AsyncPool pool(10, 1000);
    auto plus_one = [](int x) -> Task<int> { co_return x + 1; };
    std::vector<std::thread> submitters;
    for (int t = 0; t < kThreads; ++t) {
      submitters.emplace_back([&, t] {
        std::vector<ConcurrentFuture<int>> futures;
        futures.reserve(kPerThread);
        for (int i = 0; i < kPerThread; ++i)
          futures.push_back(pool.submit(plus_one, t * kPerThread + i));
        for (auto& f : futures) {
          sum += f.result();
          ++results;
        }
      });
    }
    for (auto& s : submitters)
      s.join();
    EXPECT_EQ(pool.pending(), 0u);
  }
  const long n = long{kThreads} * kPerThread;
  EXPECT_EQ(results.load(), n);
  EXPECT_EQ(sum.load(), n * (n + 1) / 2);
}

}  // namespace
}  // namespace eddy
