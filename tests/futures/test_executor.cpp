// ThreadPoolExecutor, Loop::run_in_executor, set_default_executor,
// shutdown_default_executor and to_thread: the rules of
// concurrent.futures.ThreadPoolExecutor and asyncio's executor API, and eddy's
// additions (stop_token cancellation, loop close with work in flight).
//
// Jobs wait on Gates, never on sleeps; the only clock-dependent test runs on a
// VirtualClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <eddy/executor.hpp>

#include "host_loop.hpp"
#include "loop_test.hpp"
#include "thread_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using testing::Gate;
using testing::HostLoop;
using testing::HostWatchdog;
using testing::LoopTest;
using testing::RealLoopTest;
using testing::this_thread_name;
using testing::what_of;

/// A job that says it started, then waits for its gate.
struct Blocker {
  std::shared_ptr<Gate> started = Gate::make();
  std::shared_ptr<Gate> release = Gate::make();
  auto job(int value = 0) const {
    return [started = started, release = release, value] {
      started->open();
      release->wait();
      return value;
    };
  }
};

/// Atomic counters for Counted-like checks across threads.
struct AtomicCounted {
  static inline std::atomic<int> alive{0};
  AtomicCounted() { ++alive; }
  AtomicCounted(const AtomicCounted&) { ++alive; }
  AtomicCounted(AtomicCounted&&) noexcept { ++alive; }
  AtomicCounted& operator=(const AtomicCounted&) = default;
  ~AtomicCounted() { --alive; }
};

// ============================================================ ThreadPoolExecutor

TEST(ThreadPoolExecutor, SubmitReturnsTheResultOfFn) {
  ThreadPoolExecutor executor(2);
  ConcurrentFuture<int> f = executor.submit([](int a, int b) { return a * b; }, 6, 7);
  EXPECT_EQ(f.result(), 42);
}

TEST(ThreadPoolExecutor, VoidFunctionsCompleteTheirFuture) {
  ThreadPoolExecutor executor(1);
  std::atomic<bool> ran{false};
  ConcurrentFuture<void> f = executor.submit([&ran] { ran = true; });
  f.result();
  EXPECT_TRUE(ran);
}

TEST(ThreadPoolExecutor, MoveOnlyArgumentsAndResultsAreMovedThrough) {
  ThreadPoolExecutor executor(1);
  auto f = executor.submit([](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); },
                           std::make_unique<int>(41));
  std::unique_ptr<int> result = std::move(f.result());
  EXPECT_EQ(*result, 42);
}

TEST(ThreadPoolExecutor, ArgumentsAreStoredByValue) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto first = executor.submit(blocker.job());
  std::string text = "before";
  auto f = executor.submit([](const std::string& s) { return s; }, text);
  text = "after";
  blocker.release->open();
  EXPECT_EQ(f.result(), "before");
  first.result();
}

TEST(ThreadPoolExecutor, ReferenceWrappersPassReferences) {
  ThreadPoolExecutor executor(1);
  int target = 0;
  executor.submit([](int& t) { t = 5; }, std::ref(target)).result();
  EXPECT_EQ(target, 5);
}

TEST(ThreadPoolExecutor, AnExceptionThrownByFnArrivesInTheFuture) {
  ThreadPoolExecutor executor(1);
  auto f = executor.submit([]() -> int { throw std::runtime_error("the job failed"); });
  EXPECT_EQ(what_of(f.exception()), "the job failed");
  EXPECT_THROW(f.result(), std::runtime_error);
  // The worker survives its job's exception.
  EXPECT_EQ(executor.submit([] { return 1; }).result(), 1);
}

TEST(ThreadPoolExecutor, SubmitAfterShutdownThrowsExecutorShutdownErrorAndDropsTheJob) {
  ThreadPoolExecutor executor(1);
  executor.shutdown();
  AtomicCounted::alive = 0;
  bool ran = false;
  EXPECT_THROW(executor.submit([&ran, c = AtomicCounted()] { ran = true; }), ExecutorShutdownError);
  EXPECT_FALSE(ran);
  EXPECT_EQ(AtomicCounted::alive, 0);  // fn and its captures were destroyed
  try {
    executor.submit([] {});
  } catch (const RuntimeError& e) {  // a RuntimeError, as in concurrent.futures
    EXPECT_NE(std::string(e.what()).find("after shutdown"), std::string::npos) << e.what();
  }
}

TEST(ThreadPoolExecutor, MaxWorkersMustBePositive) {
  EXPECT_THROW(ThreadPoolExecutor(0), std::invalid_argument);
  EXPECT_THROW(ThreadPoolExecutor(-3), std::invalid_argument);
}

TEST(ThreadPoolExecutor, DefaultSizeIsAsynciosMinOf32AndCoresPlus4) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(ThreadPoolExecutor::default_max_workers(), static_cast<int>(std::min(32u, cores + 4)));
  ThreadPoolExecutor executor;
  EXPECT_EQ(executor.max_workers(), ThreadPoolExecutor::default_max_workers());
}

TEST(ThreadPoolExecutor, WorkerThreadsAreNamedAfterThePrefix) {
  {
    ThreadPoolExecutor executor(1);
    EXPECT_EQ(executor.submit(this_thread_name).result(), "eddy-pool-0");
  }
  {
    ThreadPoolExecutor executor(1, "io");
    EXPECT_EQ(executor.submit(this_thread_name).result(), "io-0");
  }
  {
    ThreadPoolExecutor executor(1, "a-very-long-thread-name");
    EXPECT_EQ(executor.submit(this_thread_name).result(), "a-very-long-thr");  // Linux: 15
  }
}

TEST(ThreadPoolExecutor, ThreadsStartOnDemandUpToMaxWorkers) {
  ThreadPoolExecutor executor(2);
  EXPECT_EQ(detail::ExecutorAccess::threads(executor), 0u);
  Blocker a, b, c;
  auto fa = executor.submit(a.job(1));
  auto fb = executor.submit(b.job(2));
  a.started->wait();
  b.started->wait();
  auto fc = executor.submit(c.job(3));
  EXPECT_EQ(detail::ExecutorAccess::threads(executor), 2u);
  EXPECT_EQ(detail::ExecutorAccess::load(executor), std::make_pair(std::size_t{2}, std::size_t{1}));
  EXPECT_FALSE(c.started->is_open());
  a.release->open();
  b.release->open();
  c.release->open();
  EXPECT_EQ(fa.result() + fb.result() + fc.result(), 6);
  EXPECT_EQ(detail::ExecutorAccess::threads(executor), 2u);
}

TEST(ThreadPoolExecutor, JobsStartInSubmissionOrder) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto first = executor.submit(blocker.job());
  std::vector<int> order;  // written by the single worker only
  std::vector<ConcurrentFuture<void>> futures;
  for (int i = 0; i < 50; ++i)
    futures.push_back(executor.submit([&order, i] { order.push_back(i); }));
  blocker.release->open();
  for (auto& f : futures)
    f.result();
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i)
    expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, expected);
  first.result();
}

TEST(ThreadPoolExecutor, AJobCancelledBeforeItStartsNeverRuns) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto first = executor.submit(blocker.job());
  std::atomic<bool> ran{false};
  auto second = executor.submit([&ran] { ran = true; });
  EXPECT_TRUE(second.cancel());
  EXPECT_TRUE(second.cancelled());
  blocker.release->open();
  first.result();
  executor.shutdown(/*wait=*/true);  // the cancelled job has been taken off the queue by now
  EXPECT_FALSE(ran);
  EXPECT_THROW(second.result(), CancelledError);
}

TEST(ThreadPoolExecutor, ARunningJobWithoutAStopTokenCannotBeCancelled) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto f = executor.submit(blocker.job(7));
  blocker.started->wait();
  EXPECT_TRUE(f.running());
  EXPECT_FALSE(f.cancel());
  blocker.release->open();
  EXPECT_EQ(f.result(), 7);
}

TEST(ThreadPoolExecutor, CancellingARunningJobThatTakesAStopTokenRequestsStop) {
  ThreadPoolExecutor executor(1);
  auto started = Gate::make();
  auto never = Gate::make();
  std::atomic<bool> saw_stop{false};
  auto f = executor.submit([started, never, &saw_stop](std::stop_token stop) {
    started->open();
    bool opened = never->wait(stop);  // a blocking wait that ends when stop is requested
    saw_stop = !opened && stop.stop_requested();
    return 1;
  });
  started->wait();
  EXPECT_TRUE(f.running());
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());  // at once, before the job has returned
  EXPECT_THROW(f.result(), CancelledError);
  executor.shutdown(/*wait=*/true);  // the job ended early: this returns
  EXPECT_TRUE(saw_stop);
}

TEST(ThreadPoolExecutor, AStopTokenJobPassesItsArgumentsAfterTheToken) {
  ThreadPoolExecutor executor(1);
  auto f = executor.submit(
      [](std::stop_token stop, int a, std::string b) {
        return std::to_string(stop.stop_possible()) + std::to_string(stop.stop_requested()) +
               std::to_string(a) + b;
      },
      4, std::string("x"));
  EXPECT_EQ(f.result(), "104x");  // stop possible, not requested
}

TEST(ThreadPoolExecutor, ACompletedJobIgnoresCancel) {
  ThreadPoolExecutor executor(1);
  auto f = executor.submit([](std::stop_token) { return 3; });
  EXPECT_EQ(f.result(), 3);
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.result(), 3);
}

TEST(ThreadPoolExecutor, ShutdownWithoutWaitStillRunsQueuedJobs) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto first = executor.submit(blocker.job(1));
  auto second = executor.submit([] { return 2; });
  executor.shutdown(/*wait=*/false);
  EXPECT_THROW(executor.submit([] { return 3; }), ExecutorShutdownError);
  blocker.release->open();
  EXPECT_EQ(first.result() + second.result(), 3);
}

TEST(ThreadPoolExecutor, ShutdownWithCancelFuturesCancelsQueuedJobsButNotTheRunningOne) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto running = executor.submit(blocker.job(1));
  blocker.started->wait();
  std::atomic<int> ran{0};
  AtomicCounted::alive = 0;
  std::vector<ConcurrentFuture<void>> queued;
  for (int i = 0; i < 3; ++i)
    queued.push_back(executor.submit([&ran, c = AtomicCounted()] { ++ran; }));
  executor.shutdown(/*wait=*/false, /*cancel_futures=*/true);
  for (auto& f : queued)
    EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(AtomicCounted::alive, 0);  // the dropped jobs are destroyed
  blocker.release->open();
  EXPECT_EQ(running.result(), 1);
  executor.shutdown(/*wait=*/true);
  EXPECT_EQ(ran, 0);
}

TEST(ThreadPoolExecutor, ShutdownWaitJoinsEveryWorker) {
  ThreadPoolExecutor executor(3);
  std::vector<ConcurrentFuture<int>> futures;
  for (int i = 0; i < 10; ++i)
    futures.push_back(executor.submit([i] { return i; }));
  executor.shutdown(/*wait=*/true);
  EXPECT_EQ(detail::ExecutorAccess::threads(executor), 0u);
  for (auto& f : futures)
    EXPECT_TRUE(f.done());
}

TEST(ThreadPoolExecutor, TheDestructorRunsQueuedJobsAndJoins) {
  std::vector<ConcurrentFuture<int>> futures;
  std::atomic<int> ran{0};
  {
    ThreadPoolExecutor executor(2);
    for (int i = 0; i < 20; ++i)
      futures.push_back(executor.submit([&ran, i] {
        ++ran;
        return i;
      }));
  }
  EXPECT_EQ(ran, 20);
  int sum = 0;
  for (auto& f : futures)
    sum += f.result();
  EXPECT_EQ(sum, 190);
}

TEST(ThreadPoolExecutor, ConcurrentShutdownCallsAllWaitForTheWorkers) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  std::atomic<bool> job_done{false};
  auto f = executor.submit([&blocker, &job_done] {
    blocker.job()();
    job_done = true;
  });
  blocker.started->wait();
  std::atomic<int> returned_after_job{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&] {
      executor.shutdown(/*wait=*/true);
      if (job_done) ++returned_after_job;
    });
  }
  blocker.release->open();
  for (auto& t : callers)
    t.join();
  EXPECT_EQ(returned_after_job, 3);
}

TEST(ThreadPoolExecutor, ShutdownFromInsideAJobDoesNotWaitForItself) {
  ThreadPoolExecutor executor(2);
  auto f = executor.submit([&executor] {
    executor.shutdown(/*wait=*/true);  // cannot wait for its own worker: returns
    return 1;
  });
  EXPECT_EQ(f.result(), 1);
  EXPECT_THROW(executor.submit([] {}), ExecutorShutdownError);
}

TEST(ThreadPoolExecutor, AnExecutorDestroyedByItsOwnJobDoesNotDeadlock) {
  auto executor = std::make_unique<ThreadPoolExecutor>(1);
  ThreadPoolExecutor* raw = executor.get();
  auto f = raw->submit([owned = std::move(executor)]() mutable {
    owned.reset();  // runs ~ThreadPoolExecutor on its own worker
    return 2;
  });
  EXPECT_EQ(f.result(), 2);
}

TEST(ThreadPoolExecutor, FnAndItsArgumentsAreDestroyedBeforeTheFutureCompletes) {
  ThreadPoolExecutor executor(1);
  AtomicCounted::alive = 0;
  auto f = executor.submit([c = AtomicCounted()](AtomicCounted) { return 1; }, AtomicCounted());
  EXPECT_EQ(f.result(), 1);
  EXPECT_EQ(AtomicCounted::alive, 0);
}

TEST(ThreadPoolExecutor, DoneCallbacksRunOnceWithTheResult) {
  ThreadPoolExecutor executor(2);
  std::atomic<int> calls{0};
  auto f = executor.submit([] { return 5; });
  f.add_done_callback([&calls](ConcurrentFuture<int>& done) { calls += done.result(); });
  f.result();
  executor.shutdown();
  // The callback runs on the completing thread before result() may return
  // (waiters are woken first), so wait for the pool, then check.
  EXPECT_EQ(calls, 5);
}

// ============================================================ run_in_executor

using RunInExecutor = RealLoopTest;

TEST_F(RunInExecutor, ReturnsAFutureCompletedOnTheLoopThread) {
  const std::thread::id loop_thread = std::this_thread::get_id();
  Future<std::thread::id> f = loop.run_in_executor([] { return std::this_thread::get_id(); });
  std::thread::id seen_in_callback;
  f.add_done_callback([&seen_in_callback] { seen_in_callback = std::this_thread::get_id(); });
  std::thread::id worker = run(f);  // (our callback was added first: it has run)
  EXPECT_NE(worker, loop_thread);
  EXPECT_EQ(seen_in_callback, loop_thread);
}

TEST_F(RunInExecutor, AnEmptyCallableIsRefusedBeforeAnythingIsQueued) {
  int (*null_fn)(int) = nullptr;
  const std::function<int()> empty;
  ThreadPoolExecutor executor(1);
  EXPECT_THROW(loop.run_in_executor(null_fn, 1), std::invalid_argument);
  EXPECT_THROW(loop.run_in_executor(executor, empty), std::invalid_argument);
  EXPECT_THROW(executor.submit(null_fn, 1), std::invalid_argument);
  // Nothing was left behind: the next job runs, and shutdown finds nothing else.
  EXPECT_EQ(run(loop.run_in_executor(executor, [] { return 7; })), 7);
  EXPECT_EQ(executor.submit([] { return 8; }).result(), 8);
}

TEST_F(RunInExecutor, PassesArgumentsAndReturnsTheResult) {
  EXPECT_EQ(run(loop.run_in_executor([](int a, std::string b) { return b + std::to_string(a); }, 42,
                                     std::string("answer "))),
            "answer 42");
}

// A result whose move constructor throws on the k-th move from now (any thread).
struct MoveBomb {
  static inline std::atomic<int> moves_left{0};
  MoveBomb() = default;
  MoveBomb(MoveBomb&&) noexcept(false) {
    if (--moves_left == 0) throw std::runtime_error("move failed");
  }
  MoveBomb& operator=(MoveBomb&&) = delete;  // not assignable either
};

// Wherever the move between the worker and the future throws, the future
// fails with its exception: it is never left pending, and nothing terminates.
TEST_F(RunInExecutor, AResultWhoseMoveThrowsFailsTheFutureWithThatException) {
  for (int k = 1; k <= 10; ++k) {
    MoveBomb::moves_left = k;
    bool failed = false;
    try {
      run(loop.run_in_executor([] { return MoveBomb(); }));
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "move failed");
      failed = true;
    }
    if (k == 1) {
      EXPECT_TRUE(failed);  // the first move is the worker's own
    }
    MoveBomb::moves_left = 0;
  }
}

TEST_F(RunInExecutor, ASubmittedResultWhoseMoveThrowsFailsTheConcurrentFuture) {
  ThreadPoolExecutor executor(1);
  for (int k = 1; k <= 10; ++k) {
    MoveBomb::moves_left = k;
    ConcurrentFuture<MoveBomb> f = executor.submit([] { return MoveBomb(); });
    std::exception_ptr error;
    ASSERT_NO_THROW(error = f.exception(std::chrono::seconds(60)))
        << "k = " << k << ": left running";
    if (k == 1) {
      EXPECT_NE(error, nullptr);
    }
    if (error) {
      EXPECT_EQ(what_of(error), "move failed");
    }
    MoveBomb::moves_left = 0;
  }
}

TEST_F(RunInExecutor, VoidAndMoveOnlyResults) {
  std::atomic<bool> ran{false};
  run(loop.run_in_executor([&ran] { ran = true; }));
  EXPECT_TRUE(ran);
  Future<std::unique_ptr<int>> f = loop.run_in_executor([] { return std::make_unique<int>(9); });
  std::unique_ptr<int> p = run(f);
  EXPECT_EQ(*p, 9);
}

TEST_F(RunInExecutor, AnExceptionThrownByFnArrivesInTheFuture) {
  Future<int> f = loop.run_in_executor([]() -> int { throw std::logic_error("bad input"); });
  EXPECT_THROW(run(f), std::logic_error);
  EXPECT_EQ(what_of(f.exception()), "bad input");
}

TEST_F(RunInExecutor, TheDefaultExecutorIsMadeOnFirstUseWithAsynciosSize) {
  EXPECT_EQ(detail::LoopExecutors::peek_default_executor(loop), nullptr);
  EXPECT_EQ(run(loop.run_in_executor(this_thread_name)), "eddy-default-0");
  std::shared_ptr<ThreadPoolExecutor> made = detail::LoopExecutors::peek_default_executor(loop);
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(made->max_workers(), ThreadPoolExecutor::default_max_workers());
  run(loop.run_in_executor([] {}));
  EXPECT_EQ(detail::LoopExecutors::peek_default_executor(loop), made);  // the same one
}

TEST_F(RunInExecutor, AGivenExecutorRunsTheJobOnItsThreads) {
  ThreadPoolExecutor mine(1, "mine");
  EXPECT_EQ(run(loop.run_in_executor(mine, this_thread_name)), "mine-0");
  EXPECT_EQ(detail::LoopExecutors::peek_default_executor(loop), nullptr);  // none was made
}

TEST_F(RunInExecutor, ManyJobsEachCompleteTheirFutureExactlyOnce) {
  ThreadPoolExecutor executor(4);
  constexpr int kJobs = 2000;
  std::vector<int> completions(kJobs, 0);  // loop thread only
  long long sum = 0;
  int done = 0;
  Future<void> all = loop.create_future<void>();
  for (int i = 0; i < kJobs; ++i) {
    Future<int> f = loop.run_in_executor(
        executor, [](int x) { return x + 1; }, i);
    f.add_done_callback([&, i](Future<int>& r) {
      ++completions[static_cast<std::size_t>(i)];
      sum += r.result();
      if (++done == kJobs) all.set_result();
    });
  }
  run(all);
  EXPECT_EQ(sum, static_cast<long long>(kJobs) * (kJobs + 1) / 2);
  EXPECT_TRUE(std::all_of(completions.begin(), completions.end(), [](int c) { return c == 1; }));
  EXPECT_EQ(detail::LoopExecutors::of(loop, "test").in_flight(), 0u);
}

TEST_F(RunInExecutor, ABurstOfResultsIsDeliveredInChunksAcrossIterations) {
  ThreadPoolExecutor executor(2);
  constexpr int kJobs = 1000;
  std::atomic<int> finished{0};
  auto all_finished = Gate::make();
  std::vector<std::uint64_t> delivered_in;  // the iteration each result arrived in
  std::vector<int> order;                   // job indices, in arrival order
  Future<void> all = loop.create_future<void>();
  for (int i = 0; i < kJobs; ++i) {
    Future<int> f = loop.run_in_executor(executor, [&finished, all_finished, i] {
      if (++finished == kJobs) all_finished->open();
      return i;
    });
    f.add_done_callback([&, i](Future<int>&) {
      delivered_in.push_back(loop.stats().iterations);
      order.push_back(i);
      if (static_cast<int>(order.size()) == kJobs) all.set_result();
    });
  }
  all_finished->wait();  // the results are waiting in the port (or about to be): one burst
  run(all);
  std::vector<std::uint64_t> iterations = delivered_in;
  iterations.erase(std::unique(iterations.begin(), iterations.end()), iterations.end());
  const std::size_t chunks =
      (kJobs + detail::CompletionPort::kChunk - 1) / detail::CompletionPort::kChunk;
  EXPECT_GE(iterations.size(), chunks);  // no iteration delivered more than a chunk
  for (std::uint64_t it : iterations) {
    EXPECT_LE(static_cast<std::size_t>(std::count(delivered_in.begin(), delivered_in.end(), it)),
              detail::CompletionPort::kChunk);
  }
}

TEST_F(RunInExecutor, ResultsOfOneWorkerArriveInTheOrderTheJobsFinished) {
  ThreadPoolExecutor executor(1);  // one worker: jobs finish in submission order
  std::vector<int> order;
  Future<void> all = loop.create_future<void>();
  for (int i = 0; i < 600; ++i) {
    loop.run_in_executor(executor, [i] { return i; }).add_done_callback([&](Future<int>& f) {
      order.push_back(f.result());
      if (order.size() == 600) all.set_result();
    });
  }
  run(all);
  for (int i = 0; i < 600; ++i)
    ASSERT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST_F(RunInExecutor, CancellingTheFutureBeforeTheJobStartsMeansItNeverRuns) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  Future<int> first = loop.run_in_executor(executor, blocker.job(1));
  std::atomic<bool> ran{false};
  Future<int> second = loop.run_in_executor(executor, [&ran] {
    ran = true;
    return 2;
  });
  EXPECT_TRUE(second.cancel());
  // The cancellation reaches the job through a done callback: one iteration.
  loop.call_soon([&] { blocker.release->open(); });
  EXPECT_EQ(run(first), 1);
  executor.shutdown(/*wait=*/true);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(second.cancelled());
}

TEST_F(RunInExecutor, CancellingTheFutureOfARunningJobRequestsStopOnItsToken) {
  auto started = Gate::make();
  auto stopped = Gate::make();
  auto never = Gate::make();
  Future<int> f = loop.run_in_executor([=](std::stop_token stop) {
    started->open();
    if (!never->wait(stop)) stopped->open();
    return 1;
  });
  started->wait();  // (blocks the loop thread a moment: the job is on a worker)
  EXPECT_TRUE(f.cancel());
  // Wait, on another worker of the default executor, until the job saw the stop.
  run(loop.run_in_executor([stopped] { stopped->wait(); }));
  EXPECT_TRUE(stopped->is_open());
  EXPECT_TRUE(f.cancelled());
}

TEST_F(RunInExecutor, AResultArrivingForACancelledFutureIsDropped) {
  int reports = 0;
  loop.set_exception_handler([&](Loop&, const ExceptionContext&) { ++reports; });
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  Future<int> f = loop.run_in_executor(executor, blocker.job(5));
  blocker.started->wait();
  EXPECT_TRUE(f.cancel());
  blocker.release->open();
  // One worker: the next job's completion comes back after the first one's.
  run(loop.run_in_executor(executor, [] {}));
  EXPECT_EQ(detail::LoopExecutors::of(loop, "test").in_flight(), 0u);
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(reports, 0);
}

TEST_F(RunInExecutor, CancellingAfterCompletionChangesNothing) {
  Future<int> f = loop.run_in_executor([] { return 3; });
  EXPECT_EQ(run(f), 3);
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.result(), 3);
}

TEST_F(RunInExecutor, ShutdownWithCancelFuturesCancelsTheLoopFuturesOfQueuedJobs) {
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  Future<int> running = loop.run_in_executor(executor, blocker.job(1));
  blocker.started->wait();
  std::atomic<int> ran{0};
  std::vector<Future<int>> queued;
  for (int i = 0; i < 3; ++i)
    queued.push_back(loop.run_in_executor(executor, [&ran] { return ++ran; }));
  executor.shutdown(/*wait=*/false, /*cancel_futures=*/true);
  blocker.release->open();
  // The dropped jobs were posted back before the running one finished, and
  // completions are delivered in posting order.
  EXPECT_EQ(run(running), 1);
  for (Future<int>& f : queued)
    EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(ran, 0);
}

TEST_F(RunInExecutor, OnAShutDownExecutorThrowsAndLeavesNothingBehind) {
  ThreadPoolExecutor executor(1);
  executor.shutdown();
  AtomicCounted::alive = 0;
  EXPECT_THROW(loop.run_in_executor(executor, [c = AtomicCounted()] { return 1; }),
               ExecutorShutdownError);
  EXPECT_EQ(AtomicCounted::alive, 0);
  EXPECT_EQ(detail::LoopExecutors::of(loop, "test").in_flight(), 0u);
}

TEST_F(RunInExecutor, OnAClosedLoopThrowsLoopClosedError) {
  loop.close();
  EXPECT_THROW(loop.run_in_executor([] {}), LoopClosedError);
  ThreadPoolExecutor executor(1);
  EXPECT_THROW(loop.run_in_executor(executor, [] {}), LoopClosedError);
}

TEST_F(RunInExecutor, FromAnotherThreadThrowsWrongThreadError) {
  bool wrong_thread = false;
  Future<void> done = loop.create_future<void>();
  loop.call_soon([&] {
    std::thread other([&] {
      try {
        loop.run_in_executor([] {});
      } catch (const WrongThreadError&) {
        wrong_thread = true;
      }
    });
    other.join();
    done.set_result();
  });
  run(done);
  EXPECT_TRUE(wrong_thread);
}

TEST_F(RunInExecutor, ToThreadUsesTheDefaultExecutorOfTheRunningLoop) {
  Future<std::string> f;
  Future<void> called = loop.create_future<void>();
  loop.call_soon([&] {
    f = to_thread([](int n) { return std::to_string(n) + " on " + this_thread_name(); }, 7);
    called.set_result();
  });
  run(called);
  EXPECT_EQ(run(f).rfind("7 on eddy-default-", 0), 0u);
}

TEST(ToThread, OutsideARunningLoopThrowsNoRunningLoopError) {
  EXPECT_THROW(to_thread([] {}), NoRunningLoopError);
}

// ============================================================ default executor

TEST_F(RunInExecutor, SetDefaultExecutorIsUsedByLaterCalls) {
  auto mine = std::make_shared<ThreadPoolExecutor>(1, "chosen");
  loop.set_default_executor(mine);
  EXPECT_EQ(run(loop.run_in_executor(this_thread_name)), "chosen-0");
  EXPECT_EQ(detail::LoopExecutors::peek_default_executor(loop), mine);
}

TEST_F(RunInExecutor, SetDefaultExecutorRejectsNull) {
  EXPECT_THROW(loop.set_default_executor(nullptr), std::invalid_argument);
}

TEST_F(RunInExecutor, SetDefaultExecutorLetsThePreviousOneFinishItsWork) {
  Blocker blocker;
  Future<int> on_first = loop.run_in_executor(blocker.job(11));
  std::weak_ptr<ThreadPoolExecutor> first = detail::LoopExecutors::peek_default_executor(loop);
  loop.set_default_executor(std::make_shared<ThreadPoolExecutor>(1, "second"));
  EXPECT_TRUE(first.expired());  // let go at once: nothing else held it, nothing waited
  blocker.release->open();
  EXPECT_EQ(run(on_first), 11);  // its queued work still completes
  EXPECT_EQ(run(loop.run_in_executor(this_thread_name)), "second-0");
}

TEST_F(RunInExecutor, ShutdownDefaultExecutorCompletesOnceTheWorkersJoined) {
  Blocker blocker;
  Future<int> job = loop.run_in_executor(blocker.job(4));
  std::weak_ptr<ThreadPoolExecutor> executor = detail::LoopExecutors::peek_default_executor(loop);
  Future<void> shutdown = loop.shutdown_default_executor();
  EXPECT_FALSE(shutdown.done());
  loop.call_soon([&] { blocker.release->open(); });
  run(shutdown);
  EXPECT_TRUE(job.done());  // its result came back before the join was reported
  EXPECT_EQ(job.result(), 4);
  EXPECT_TRUE(executor.expired());
}

TEST_F(RunInExecutor, RunInExecutorAfterShutdownDefaultExecutorThrows) {
  run(loop.run_in_executor([] {}));
  run(loop.shutdown_default_executor());
  EXPECT_THROW(loop.run_in_executor([] {}), ExecutorShutdownError);
  // As in asyncio, a new default executor does not lift the rule...
  loop.set_default_executor(std::make_shared<ThreadPoolExecutor>(1));
  EXPECT_THROW(loop.run_in_executor([] {}), ExecutorShutdownError);
  // ...while an explicit executor still works.
  ThreadPoolExecutor explicit_one(1);
  EXPECT_EQ(run(loop.run_in_executor(explicit_one, [] { return 1; })), 1);
}

TEST_F(RunInExecutor, ShutdownDefaultExecutorWithoutOneIsDoneAtOnce) {
  Future<void> f = loop.shutdown_default_executor();
  EXPECT_TRUE(f.done());
  EXPECT_THROW(loop.run_in_executor([] {}), ExecutorShutdownError);
}

TEST_F(RunInExecutor, ShutdownDefaultExecutorRejectsANaNTimeout) {
  EXPECT_THROW(loop.shutdown_default_executor(std::nan("")), std::invalid_argument);
  EXPECT_NO_THROW(loop.run_in_executor([] {}));  // nothing changed
  run(loop.run_in_executor([] {}));
}

TEST_F(RunInExecutor, ASecondShutdownDefaultExecutorWaitsForTheSameJoin) {
  Blocker blocker;
  Future<int> job = loop.run_in_executor(blocker.job(1));
  Future<void> first = loop.shutdown_default_executor();
  Future<void> second = loop.shutdown_default_executor();
  EXPECT_FALSE(second.done());
  loop.call_soon([&] { blocker.release->open(); });
  run(second);
  EXPECT_TRUE(first.done());
  EXPECT_TRUE(job.done());
}

TEST_F(RunInExecutor, AJoinInTimeReportsNothing) {
  int reports = 0;
  loop.set_exception_handler([&](Loop&, const ExceptionContext&) { ++reports; });
  run(loop.run_in_executor([] {}));
  run(loop.shutdown_default_executor(std::chrono::hours(1)));
  EXPECT_EQ(reports, 0);
}

// The timeout runs on a VirtualClock: the loop jumps to it as soon as it has
// nothing else to do, while the straggler is still blocked.
using ShutdownDefaultExecutorTimeout = LoopTest;

TEST_F(ShutdownDefaultExecutorTimeout, ReportsStragglersThroughTheExceptionHandler) {
  std::vector<ExceptionContext> reports;
  loop.set_exception_handler([&](Loop&, const ExceptionContext& c) { reports.push_back(c); });
  Blocker blocker;
  Future<int> job = loop.run_in_executor(blocker.job(8));
  blocker.started->wait();
  const double start = loop.time();
  Future<void> shutdown = loop.shutdown_default_executor(5.0);
  loop.run_until_complete(shutdown);  // does not hang on the blocked job
  EXPECT_GE(loop.time() - start, 5.0);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].message.find("did not finish joining its threads within 5 seconds"),
            std::string::npos)
      << reports[0].message;
  EXPECT_NE(reports[0].message.find("1 job(s) still running, 0 queued"), std::string::npos)
      << reports[0].message;
  EXPECT_EQ(what_of(reports[0].exception),
            "eddy::Loop::shutdown_default_executor: the default executor did not join its threads "
            "in time");
  EXPECT_FALSE(job.done());
  // The straggler finishes later; its result still arrives.
  blocker.release->open();
  EXPECT_EQ(loop.run_until_complete(job), 8);
}

TEST_F(ShutdownDefaultExecutorTimeout, AZeroTimeoutReportsAtOnceWhenWorkIsRunning) {
  int reports = 0;
  loop.set_exception_handler([&](Loop&, const ExceptionContext&) { ++reports; });
  Blocker blocker;
  Future<int> job = loop.run_in_executor(blocker.job(1));
  blocker.started->wait();
  loop.run_until_complete(loop.shutdown_default_executor(0.0));
  EXPECT_EQ(reports, 1);
  blocker.release->open();
  EXPECT_EQ(loop.run_until_complete(job), 1);
}

// ============================================================ loop close

TEST_F(RunInExecutor, CloseWithWorkInFlightCancelsEveryFutureAndNeverHangs) {
  // Running without a stop token, running with one, and queued behind them.
  Blocker plain;
  Future<int> running = loop.run_in_executor(plain.job(1));
  auto stoppable_started = Gate::make();
  auto saw_stop = Gate::make();
  auto never = Gate::make();
  Future<int> stoppable = loop.run_in_executor([=](std::stop_token stop) {
    stoppable_started->open();
    if (!never->wait(stop)) saw_stop->open();
    return 2;
  });
  ThreadPoolExecutor single(1);
  Blocker single_blocker;
  Future<int> single_running = loop.run_in_executor(single, single_blocker.job(3));
  std::atomic<bool> queued_ran{false};
  Future<int> queued = loop.run_in_executor(single, [&queued_ran] {
    queued_ran = true;
    return 4;
  });
  plain.started->wait();
  stoppable_started->wait();
  single_blocker.started->wait();

  loop.close();  // returns although three jobs are blocked

  for (Future<int>* f : {&running, &stoppable, &single_running, &queued}) {
    EXPECT_TRUE(f->cancelled());
    try {
      f->result();
    } catch (const CancelledError& e) {
      EXPECT_EQ(e.message(),
                "eddy::Loop::close: the loop closed before the executor job completed");
    }
  }
  saw_stop->wait();  // the stoppable job was asked to stop
  single_blocker.release->open();
  single.shutdown(/*wait=*/true);
  EXPECT_FALSE(queued_ran);  // the queued job never ran
  plain.release->open();     // let the default executor's detached thread end
}

TEST_F(RunInExecutor, CloseWhileResultsAreOnTheirWayLeavesNothingPending) {
  ThreadPoolExecutor executor(2);
  constexpr int kJobs = 500;
  std::atomic<int> finished{0};
  auto all_finished = Gate::make();
  std::vector<Future<int>> futures;
  for (int i = 0; i < kJobs; ++i) {
    futures.push_back(loop.run_in_executor(executor, [&finished, all_finished, i] {
      if (++finished == kJobs) all_finished->open();
      return i;
    }));
  }
  all_finished->wait();  // every result is posted, none delivered: the loop has not run
  executor.shutdown(/*wait=*/true);
  loop.close();
  for (Future<int>& f : futures)
    EXPECT_TRUE(f.cancelled());
}

TEST_F(RunInExecutor, CloseShutsTheDefaultExecutorDownWithoutWaiting) {
  Blocker blocker;
  Future<int> job = loop.run_in_executor(blocker.job());
  std::shared_ptr<ThreadPoolExecutor> executor = detail::LoopExecutors::peek_default_executor(loop);
  blocker.started->wait();
  loop.close();
  EXPECT_THROW(executor->submit([] {}), ExecutorShutdownError);
  blocker.release->open();
  executor.reset();  // the last reference: joins the (finishing) worker
  EXPECT_TRUE(job.cancelled());
}

TEST_F(RunInExecutor, CloseCancelsAPendingShutdownDefaultExecutor) {
  Blocker blocker;
  Future<int> job = loop.run_in_executor(blocker.job());
  blocker.started->wait();
  Future<void> shutdown = loop.shutdown_default_executor();
  loop.close();
  EXPECT_TRUE(shutdown.cancelled());
  blocker.release->open();
}

// ============================================================ asyncio's and concurrent.futures'
// scenarios Each test names the CPython 3.12 test or function it follows.

TEST(ThreadPoolExecutor, ASecondShutdownWithCancelFuturesCancelsWhatIsStillQueued) {
  // concurrent/futures/thread.py ThreadPoolExecutor.shutdown: cancel_futures drains the queue
  // on every call, not only the first.
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto running = executor.submit(blocker.job(1));
  blocker.started->wait();
  std::atomic<bool> ran{false};
  auto queued = executor.submit([&ran] { ran = true; });
  executor.shutdown(/*wait=*/false);
  EXPECT_FALSE(queued.done());
  executor.shutdown(/*wait=*/false, /*cancel_futures=*/true);
  EXPECT_TRUE(queued.cancelled());
  blocker.release->open();
  EXPECT_EQ(running.result(), 1);
  executor.shutdown(/*wait=*/true);
  EXPECT_FALSE(ran);
}

TEST(ThreadPoolExecutor, ANonStandardExceptionThrownByFnArrivesInTheFuture) {
  // concurrent/futures/thread.py _WorkItem.run: `except BaseException as exc: set_exception(exc)`.
  ThreadPoolExecutor executor(1);
  auto f = executor.submit([]() -> int { throw 42; });
  ASSERT_TRUE(f.exception());
  try {
    f.result();
    ADD_FAILURE() << "result() did not throw";
  } catch (int value) {
    EXPECT_EQ(value, 42);
  }
  EXPECT_EQ(executor.submit([] { return 1; }).result(), 1);  // the worker survived
}

TEST(ThreadPoolExecutor, ShutdownWithCancelFuturesRunsTheDoneCallbacksOfTheCancelledFutures) {
  // concurrent/futures/thread.py shutdown(cancel_futures=True): work_item.future.cancel(), which
  // invokes the future's done callbacks (_base.Future.cancel -> _invoke_callbacks).
  ThreadPoolExecutor executor(1);
  Blocker blocker;
  auto running = executor.submit(blocker.job(1));
  blocker.started->wait();
  auto queued = executor.submit([] { return 2; });
  std::atomic<int> cancelled_callbacks{0};
  queued.add_done_callback([&](ConcurrentFuture<int>& f) {
    if (f.cancelled()) ++cancelled_callbacks;
  });
  executor.shutdown(/*wait=*/false, /*cancel_futures=*/true);
  EXPECT_EQ(cancelled_callbacks, 1);
  blocker.release->open();
  EXPECT_EQ(running.result(), 1);
}

TEST(ThreadPoolExecutor, SequentialJobsReuseTheIdleWorker) {
  // test_concurrent_futures/test_thread_pool.py ThreadPoolExecutorTest.test_idle_thread_reuse.
  // As in CPython (whose worker releases _idle_semaphore only after the result is set), a worker
  // counts as idle once it is back from its job: wait for that between the submits.
  ThreadPoolExecutor executor(4);
  auto until_idle = [&executor] {
    while (detail::ExecutorAccess::load(executor).first != 0)
      std::this_thread::yield();
  };
  EXPECT_EQ(executor.submit([](int a, int b) { return a * b; }, 21, 2).result(), 42);
  until_idle();
  EXPECT_EQ(executor.submit([](int a, int b) { return a * b; }, 6, 7).result(), 42);
  until_idle();
  EXPECT_EQ(executor.submit([](int a, int b) { return a * b; }, 3, 14).result(), 42);
  EXPECT_EQ(detail::ExecutorAccess::threads(executor), 1u);
  executor.shutdown(/*wait=*/true);
}

TEST(ThreadPoolExecutor, ManyBlockingJobsStartExactlyMaxWorkersThreads) {
  // test_concurrent_futures/test_thread_pool.py ThreadPoolExecutorTest.test_saturation.
  ThreadPoolExecutor executor(4);
  auto release = Gate::make();
  std::vector<ConcurrentFuture<void>> futures;
  for (int i = 0; i < 15 * 4; ++i)
    futures.push_back(executor.submit([release] { release->wait(); }));
  // Unlike CPython, where each submit starts its thread, submits made while a
  // worker spins leave the growth to that worker: the pool reaches its size
  // when the jobs are taken, a moment after the submits return. Wait for
  // four jobs to run, then check that no fifth thread came.
  while (detail::ExecutorAccess::load(executor).first != 4)
    std::this_thread::yield();
  EXPECT_EQ(detail::ExecutorAccess::threads(executor), 4u);
  release->open();
  for (auto& f : futures)
    f.result();
}

TEST_F(RunInExecutor, AFailedJobWhoseFutureNobodyReadsIsReportedAsNeverRetrieved) {
  // futures.py Future.__del__ ("Future exception was never retrieved") on the future that
  // run_in_executor's wrap_future made; _copy_future_state set the job's exception on it.
  std::vector<ExceptionContext> reports;
  loop.set_exception_handler([&](Loop&, const ExceptionContext& c) { reports.push_back(c); });
  ThreadPoolExecutor executor(1);
  (void)loop.run_in_executor(executor, []() -> int { throw std::runtime_error("nobody reads"); });
  // One worker: this job's completion comes back after the first one's.
  run(loop.run_in_executor(executor, [] {}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].message, "Future exception was never retrieved");
  EXPECT_EQ(what_of(reports[0].exception), "nobody reads");
  EXPECT_FALSE(reports[0].future.empty());
  // The call that made the future, not a line of eddy's own header.
  EXPECT_FALSE(reports[0].source.known());
  EXPECT_STREQ(reports[0].source.function, "eddy::Loop::run_in_executor");
}

TEST_F(RunInExecutor, AFailedJobWhoseExceptionWasReadIsNotReported) {
  // futures.py Future.exception() clears __log_traceback.
  int reports = 0;
  loop.set_exception_handler([&](Loop&, const ExceptionContext&) { ++reports; });
  {
    Future<int> f = loop.run_in_executor([]() -> int { throw std::runtime_error("read"); });
    EXPECT_THROW(run(f), std::runtime_error);
  }
  run(loop.run_in_executor([] {}));
  EXPECT_EQ(reports, 0);
}

TEST_F(RunInExecutor, ANonStandardExceptionThrownByFnArrivesInTheFuture) {
  // concurrent/futures/thread.py _WorkItem.run catches BaseException; futures._copy_future_state
  // passes it on to the loop's future.
  Future<int> f = loop.run_in_executor([]() -> int { throw 7; });
  try {
    run(f);
    ADD_FAILURE() << "no exception";
  } catch (int value) {
    EXPECT_EQ(value, 7);
  }
}

TEST_F(RunInExecutor, SetDefaultExecutorDoesNotShutDownAPreviousOneItsOwnerStillHolds) {
  // base_events.py BaseEventLoop.set_default_executor only replaces _default_executor.
  auto first = std::make_shared<ThreadPoolExecutor>(1, "first");
  loop.set_default_executor(first);
  loop.set_default_executor(std::make_shared<ThreadPoolExecutor>(1, "second"));
  EXPECT_EQ(first->submit(this_thread_name).result(), "first-0");
  EXPECT_EQ(run(loop.run_in_executor(*first, this_thread_name)), "first-0");
  EXPECT_EQ(run(loop.run_in_executor(this_thread_name)), "second-0");
}

TEST_F(RunInExecutor, ShutdownDefaultExecutorShutsDownAnExecutorSetAsDefault) {
  // base_events.py BaseEventLoop._do_shutdown: self._default_executor.shutdown(wait=True),
  // whoever made it.
  auto mine = std::make_shared<ThreadPoolExecutor>(1, "mine");
  loop.set_default_executor(mine);
  EXPECT_EQ(run(loop.run_in_executor(this_thread_name)), "mine-0");
  run(loop.shutdown_default_executor());
  EXPECT_THROW(mine->submit([] {}), ExecutorShutdownError);
  EXPECT_EQ(detail::ExecutorAccess::threads(*mine), 0u);  // joined
}

TEST_F(RunInExecutor, ShutdownDefaultExecutorRunsTheQueuedJobsBeforeItCompletes) {
  // base_events.py BaseEventLoop._do_shutdown: shutdown(wait=True) without cancel_futures:
  // queued jobs still run, and their results arrive.
  loop.set_default_executor(std::make_shared<ThreadPoolExecutor>(1, "single"));
  Blocker blocker;
  Future<int> first = loop.run_in_executor(blocker.job(1));
  std::vector<Future<int>> queued;
  for (int i = 2; i <= 4; ++i)
    queued.push_back(loop.run_in_executor([i] { return i; }));
  Future<void> shutdown = loop.shutdown_default_executor();
  loop.call_soon([&] { blocker.release->open(); });
  run(shutdown);
  EXPECT_EQ(first.result(), 1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queued[static_cast<std::size_t>(i)].done());
    EXPECT_EQ(queued[static_cast<std::size_t>(i)].result(), i + 2);
  }
}

TEST_F(RunInExecutor, CloseShutsDownAnExecutorSetAsDefault) {
  // base_events.py BaseEventLoop.close: executor.shutdown(wait=False) on _default_executor.
  auto mine = std::make_shared<ThreadPoolExecutor>(1, "mine");
  loop.set_default_executor(mine);
  loop.close();
  EXPECT_THROW(mine->submit([] {}), ExecutorShutdownError);
}

TEST_F(RunInExecutor, ACancelledJobThenShutdownAndCloseLeaveNothingBehind) {
  // test_base_events.py BaseEventLoopTests.test_run_in_executor_cancel.
  auto release = Gate::make();
  Future<void> f = loop.run_in_executor([release] { release->wait(); });
  EXPECT_TRUE(f.cancel());
  loop.call_soon([release] { release->open(); });
  run(loop.shutdown_default_executor());
  EXPECT_EQ(detail::LoopExecutors::of(loop, "test").in_flight(), 0u);
  loop.close();
  EXPECT_TRUE(f.cancelled());
}

// ============================================================ concurrent.futures details

TEST(ThreadPoolExecutor, AJobSubmittedWhileEveryThreadIsBusyGetsANewThreadBelowMaxWorkers) {
  // concurrent/futures/thread.py ThreadPoolExecutor._adjust_thread_count: a submit that finds no
  // idle thread (_idle_semaphore.acquire(timeout=0) fails) starts one while fewer than max_workers
  // run, so a job never waits behind busy threads while the pool may still grow.
  // A worker that spins takes one of the jobs submitted meanwhile; if more are queued and no
  // thread sleeps, it starts one below max_workers (a job waiting for c would deadlock else).
  for (int round = 0; round < 50; ++round) {
    ThreadPoolExecutor executor(3);
    Blocker a;
    auto fa = executor.submit(a.job(1));
    a.started->wait();
    executor.submit([] {}).result();  // starts a second thread, which then goes idle
    while (detail::ExecutorAccess::load(executor).first != 1)
      std::this_thread::yield();  // the second thread has finished its job: it is idle
    Blocker b;
    auto fb = executor.submit(b.job(2));          // takes the idle thread
    auto fc = executor.submit([] { return 3; });  // every thread busy, 2 of 3 started
    bool c_ran = true;
    try {
      fc.result(std::chrono::seconds(5));
    } catch (const TimeoutError&) {
      c_ran = false;
    }
    const std::size_t threads = detail::ExecutorAccess::threads(executor);
    a.release->open();
    b.release->open();
    ASSERT_TRUE(c_ran) << "round " << round << ": the job waited 5 s behind two busy threads with "
                       << threads << " of 3 threads started";
  }
}

// ------------------------------------------------------------------ attached to a host

// A job in flight keeps the host's uv_run alive, as a pending uv_work_t does:
// uv_run returns once the result is delivered and eddy has nothing left.
TEST_F(HostLoop, AJobInFlightKeepsTheHostsUvRunAliveUntilItsResultArrives) {
  ThreadPoolExecutor pool(1);
  {
    Loop loop(LoopOptions().attach_to(&uv));
    std::optional<int> result;
    loop.run_in_executor(pool, [] { return 7; }).add_done_callback([&](Future<int>& f) {
      result = f.result();
    });
    {
      HostWatchdog watchdog(&uv, 5000);
      EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);  // returns: nothing is left
      EXPECT_FALSE(watchdog.fired);
    }
    EXPECT_EQ(result, 7);
    // With nothing in flight, nothing holds the host.
    EXPECT_EQ(uv_run(&uv, UV_RUN_NOWAIT), 0);
    loop.close();
  }
  pool.shutdown();
}

// run_until_complete on the attached loop drives libuv itself; when it
// returns, the job still in flight holds the host's uv_run again.
TEST_F(HostLoop, AJobStillInFlightAfterRunUntilCompleteKeepsHoldingTheHost) {
  ThreadPoolExecutor pool(1);
  {
    Loop loop(LoopOptions().attach_to(&uv));
    auto gate = Gate::make();
    std::optional<int> result;
    loop.run_in_executor(pool,
                         [gate] {
                           gate->wait();
                           return 5;
                         })
        .add_done_callback([&](Future<int>& f) { result = f.result(); });
    Future<int> ready = loop.create_future<int>();
    loop.call_soon([&] { ready.set_result(1); });
    EXPECT_EQ(loop.run_until_complete(ready), 1);
    EXPECT_FALSE(result.has_value());
    gate->open();
    {
      HostWatchdog watchdog(&uv, 5000);
      EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
      EXPECT_FALSE(watchdog.fired);
    }
    EXPECT_EQ(result, 5);
    loop.close();
  }
  pool.shutdown();
}

TEST_F(HostLoop, ACancelledJobHoldsTheHostUntilItsWorkerHasLetGoOfIt) {
  ThreadPoolExecutor pool(1);
  {
    Loop loop(LoopOptions().attach_to(&uv));
    auto started = Gate::make();
    auto gate = Gate::make();
    std::atomic<bool> finished{false};
    Future<void> running = loop.run_in_executor(pool, [started, gate, &finished] {
      started->open();
      gate->wait();
      finished = true;
    });
    Future<int> queued = loop.run_in_executor(pool, [] { return 1; });
    started->wait();
    EXPECT_TRUE(running.cancel());  // running: its result will be dropped
    EXPECT_TRUE(queued.cancel());   // queued: it never runs
    gate->open();
    {
      HostWatchdog watchdog(&uv, 5000);
      EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
      EXPECT_FALSE(watchdog.fired);
    }
    EXPECT_TRUE(finished);  // uv_run waited for the worker's job to come back
    EXPECT_EQ(detail::LoopExecutors::of(loop, "test").in_flight(), 0u);
    loop.close();
  }
  pool.shutdown();
}

TEST_F(HostLoop, ClosingALoopWithAJobInFlightLetsTheHostsUvRunReturn) {
  ThreadPoolExecutor pool(1);
  auto gate = Gate::make();
  {
    Loop loop(LoopOptions().attach_to(&uv));
    Future<void> job = loop.run_in_executor(pool, [gate] { gate->wait(); });
    loop.close();
    EXPECT_TRUE(job.cancelled());
    HostWatchdog watchdog(&uv, 5000);
    EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);  // the job still runs, but holds nothing
    EXPECT_FALSE(watchdog.fired);
  }
  gate->open();
  pool.shutdown();
}

TEST_F(HostLoop, ShutdownDefaultExecutorKeepsTheHostsUvRunAliveUntilItsThreadsAreJoined) {
  Loop loop(LoopOptions().attach_to(&uv));
  Future<int> job = loop.run_in_executor([] { return 2; });  // makes the default executor
  bool joined = false;
  loop.shutdown_default_executor().add_done_callback([&] { joined = true; });
  {
    HostWatchdog watchdog(&uv, 5000);
    EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
    EXPECT_FALSE(watchdog.fired);
  }
  EXPECT_EQ(job.result(), 2);
  EXPECT_TRUE(joined);
  loop.close();
}

}  // namespace
}  // namespace eddy
