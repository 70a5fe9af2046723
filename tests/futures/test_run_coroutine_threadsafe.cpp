// Tests for eddy::run_coroutine_threadsafe (eddy/run_coroutine_threadsafe.hpp):
// a coroutine handed to a loop from another thread, its result, exception and
// cancellation in both directions, and the loop closing under it. Real
// threads (run under TSan); waits use the futures' blocking result(), never
// sleeps.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eddy/loop_thread.hpp>
#include <eddy/run_coroutine_threadsafe.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;

/// A loop running forever on its own thread until stop_and_join().
class LoopOnThread {
 public:
  LoopOnThread() : thread_([this] { loop.run_forever(); }) {}
  ~LoopOnThread() { stop_and_join(); }
  void stop_and_join() {
    if (!thread_.joinable()) return;
    loop.call_soon_threadsafe([this] { loop.stop(); });
    thread_.join();
    loop.close();
  }
  Loop loop;

 private:
  std::thread thread_;
};

Task<int> add_after_sleep(int a, int b) {
  co_await sleep(0.001);
  co_return a + b;
}

TEST(RunCoroutineThreadsafe, TheResultReachesTheCallingThread) {
  LoopOnThread runner;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(add_after_sleep(2, 3), runner.loop);
  EXPECT_EQ(f.result(), 5);
}

TEST(RunCoroutineThreadsafe, TheTaskRunsOnTheLoopsThread) {
  LoopOnThread runner;
  std::thread::id loop_thread;
  runner.loop.call_soon_threadsafe([&] { loop_thread = std::this_thread::get_id(); });
  auto where = []() -> Task<std::thread::id> { co_return std::this_thread::get_id(); };
  std::thread::id ran_on = run_coroutine_threadsafe(where(), runner.loop).result();
  EXPECT_EQ(ran_on, loop_thread);
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(RunCoroutineThreadsafe, AnExceptionOfTheTaskIsRethrownByResult) {
  LoopOnThread runner;
  auto fails = []() -> Task<int> {
    co_await sleep(0);
    throw std::runtime_error("failed on the loop");
  };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(fails(), runner.loop);
  EXPECT_THROW(f.result(), std::runtime_error);
}

TEST(RunCoroutineThreadsafe, CancellingTheReturnedFutureCancelsTheRunningTask) {
  LoopOnThread runner;
  ConcurrentFuture<void> started;
  ConcurrentFuture<std::string> saw_cancel;
  auto waits = [&]() -> Task<int> {
    started.set_result();
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      saw_cancel.set_result("cancelled at the sleep");
      throw;
    }
    co_return 1;
  };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(waits(), runner.loop);
  started.result();  // the task is running (suspended in its sleep)
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(f.result(), CancelledError);
  EXPECT_EQ(saw_cancel.result(), "cancelled at the sleep");
}

TEST(RunCoroutineThreadsafe, ATaskCancelledBeforeTheLoopPicksItUpNeverRuns) {
  Loop loop;
  bool ran = false;
  auto body = [&](Counted) -> Task<int> {
    ran = true;
    co_return 1;
  };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(body(Counted{}), loop);
  EXPECT_TRUE(f.cancel());
  // Threadsafe calls run in order: the submission, then the stop.
  loop.call_soon_threadsafe([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
  loop.close();
}

TEST(RunCoroutineThreadsafe, ACancelArrivingAfterTheLoopWasDestroyedTouchesNothing) {
  // The returned future's cancel reaches the task through the loop: here the
  // loop is destroyed between the cancel and that step (by a callback that
  // runs first; in real programs, by another thread). Under AddressSanitizer
  // this was a use after free of the Loop.
  auto loop = std::make_unique<Loop>();
  auto waits = [](Counted) -> Task<int> {
    co_await sleep(3600.0);
    co_return 1;
  };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(waits(Counted{}), *loop);
  f.add_done_callback([&loop](ConcurrentFuture<int>&) { loop.reset(); });
  loop->call_soon_threadsafe([&loop] { loop->stop(); });
  loop->run_forever();  // the task is picked up, and waits in its sleep
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(loop, nullptr);
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(RunCoroutineThreadsafe, AValueThatCannotBeCopiedOutFailsTheReturnedFuture) {
  using testing::FragileCopy;
  Loop loop;
  auto make = []() -> Task<FragileCopy> { co_return FragileCopy(1); };
  ConcurrentFuture<FragileCopy> f = run_coroutine_threadsafe(make(), loop);
  {
    FragileCopy::Failing failing;
    for (int i = 0; i < 100 && !f.done(); ++i)
      loop.run_once();
  }
  ASSERT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());  // not cancelled as if the task had gone
  EXPECT_EQ(testing::what_of(f.exception()), "copy failed");
  loop.close();
}

TEST(RunCoroutineThreadsafe, ATaskThatEndsCancelledCancelsTheReturnedFuture) {
  LoopOnThread runner;
  auto cancels_itself = []() -> Task<int> {
    current_task().cancel("self");
    co_await sleep(0);
    co_return 1;
  };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(cancels_itself(), runner.loop);
  EXPECT_THROW(f.result(), CancelledError);
  EXPECT_TRUE(f.cancelled());
}

TEST(RunCoroutineThreadsafe, AnEmptyTaskThrowsInvalidStateError) {
  Loop loop;
  EXPECT_THROW(run_coroutine_threadsafe(Task<int>(), loop), InvalidStateError);
  loop.close();
}

TEST(RunCoroutineThreadsafe, AClosedLoopThrowsLoopClosedErrorAndDestroysTheTask) {
  Counted::reset();
  Loop loop;
  loop.close();
  auto body = [](Counted) -> Task<int> { co_return 1; };
  EXPECT_THROW(run_coroutine_threadsafe(body(Counted{}), loop), LoopClosedError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(RunCoroutineThreadsafe, ClosingTheLoopWithTheTaskPendingCancelsTheReturnedFuture) {
  Counted::reset();
  ConcurrentFuture<int> f;
  {
    Loop loop;
    auto sleeps = [](Counted) -> Task<int> {
      co_await sleep(3600.0);
      co_return 1;
    };
    f = run_coroutine_threadsafe(sleeps(Counted{}), loop);
    loop.run_once();  // creates the task; it runs its first step later
    loop.run_once();
    EXPECT_FALSE(f.done());
    loop.close();
    EXPECT_EQ(Counted::alive(), 0);
  }
  EXPECT_TRUE(f.cancelled());
}

TEST(RunCoroutineThreadsafe, ClosingTheLoopBeforeItPickedTheTaskUpCancelsTheReturnedFuture) {
  // The submission still waits in the loop's threadsafe inbox: close()
  // destroys it unrun, and that cancels the future (asyncio leaves it
  // pending, and a result() without a timeout would block forever).
  Counted::reset();
  ConcurrentFuture<int> f;
  std::thread([&] {
    Loop loop;
    auto body = [](Counted) -> Task<int> { co_return 1; };
    f = run_coroutine_threadsafe(body(Counted{}), loop);
    EXPECT_FALSE(f.done());
    loop.close();
    EXPECT_EQ(Counted::alive(), 0);
  }).join();
  EXPECT_TRUE(f.cancelled());
  EXPECT_THROW(f.result(1.0), CancelledError);  // a bound: a regression fails, not hangs
}

TEST(RunCoroutineThreadsafe, ManyThreadsSubmittingGetEveryResultExactlyOnce) {
  LoopOnThread runner;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> submitters;
  std::atomic<long> sum{0};
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      std::vector<ConcurrentFuture<int>> futures;
      for (int i = 0; i < kPerThread; ++i) {
        futures.push_back(
            run_coroutine_threadsafe(add_after_sleep(t * kPerThread, i), runner.loop));
      }
      for (ConcurrentFuture<int>& f : futures)
        sum += f.result();
    });
  }
  for (std::thread& s : submitters)
    s.join();
  const long n = kThreads * kPerThread;
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

TEST(LoopThreadSubmit, RunsACoroutineFunctionWithItsArgumentsAndKeepsTheLambdaAlive) {
  LoopThread runner;
  int factor = 5;
  // A temporary lambda with a capture: submit keeps it alive for the task.
  ConcurrentFuture<int> f = runner.submit(
      [factor](int x) -> Task<int> {
        co_await sleep(0.001);
        co_return x* factor;
      },
      7);
  EXPECT_EQ(f.result(), 35);
}

TEST(LoopThreadSubmit, PassesTheKeptArgumentsAsRvaluesAsStdThreadDoes) {
  LoopThread runner;
  // By value, move-only: taken over.
  auto take = [](std::unique_ptr<int> p) -> Task<int> {
    co_await sleep(0);
    co_return *p;
  };
  EXPECT_EQ(runner.submit(take, std::make_unique<int>(5)).result(), 5);
  // By const reference: the kept copy, alive across the task's awaits.
  auto length = [](const std::string& s) -> Task<std::size_t> {
    co_await sleep(0);
    co_return s.size();
  };
  EXPECT_EQ(runner.submit(length, std::string(100, 'x')).result(), 100u);
  // By non-const reference: through std::ref, the caller's object.
  int counter = 0;
  auto bump = [](int& c) -> Task<void> {
    ++c;
    co_return;
  };
  runner.submit(bump, std::ref(counter)).result();
  EXPECT_EQ(counter, 1);
}

TEST(LoopThreadSubmit, AnEmptyCallableIsRefusedAndTheThreadGoesOn) {
  LoopThread runner;
  Task<int> (*null_fn)(int) = nullptr;
  EXPECT_THROW(runner.submit(null_fn, 1), std::invalid_argument);
  ConcurrentFuture<int> f = runner.submit([](int x) -> Task<int> { co_return x + 1; }, 1);
  EXPECT_EQ(f.result(), 2);
}

TEST(LoopThreadSubmit, CancellingTheFutureCancelsTheTask) {
  LoopThread runner;
  ConcurrentFuture<void> started;
  ConcurrentFuture<bool> saw_cancel;
  auto body = [&]() -> Task<int> {
    started.set_result();
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      saw_cancel.set_result(true);
      throw;
    }
    co_return 0;
  };
  ConcurrentFuture<int> f = runner.submit(body);
  started.result();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(saw_cancel.result());
}

TEST(LoopThreadSubmit, AfterShutdownThrowsLoopClosedError) {
  LoopThread runner;
  runner.shutdown();
  auto body = []() -> Task<int> { co_return 1; };
  EXPECT_THROW(runner.submit(body), LoopClosedError);
}

// ------------------------------------------------------------ asyncio 3.12 details

// test_run_coroutine_threadsafe_task_factory_exception: the task factory
// throws; the returned future fails with that exception, and the exception
// also reaches the loop's exception handler, once.
// As in asyncio 3.12: its run_coroutine_threadsafe (Lib/asyncio/tasks.py) catches the
// exception in its loop callback, sets it on the concurrent future and re-raises it, so the loop's
// Handle._run reports it ("Exception in callback ...").
TEST(RunCoroutineThreadsafe, AFailingTaskFactoryFailsTheFutureAndIsReportedToTheExceptionHandler) {
  Loop loop;
  std::vector<std::string> reported;
  loop.set_exception_handler([&](Loop&, const ExceptionContext& context) {
    reported.push_back(testing::what_of(context.exception));
  });
  loop.set_task_factory([](TaskRef) { throw std::runtime_error("factory failed"); });
  auto body = []() -> Task<int> { co_return 1; };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(body(), loop);
  loop.call_soon_threadsafe([&] { loop.stop(); });
  loop.run_forever();
  loop.set_task_factory(nullptr);
  ASSERT_TRUE(f.done());
  EXPECT_EQ(testing::what_of(f.exception(0.0)), "factory failed");
  EXPECT_EQ(reported, (std::vector<std::string>{"factory failed"}));
  loop.close();
}

// The same scenario: the coroutine of a task whose factory failed never runs.
// As in asyncio 3.12: the factory makes the task (BaseEventLoop.create_task calls it
// instead of Task()); when it raises, no task exists and the coroutine is never started
// (ensure_future -> loop.create_task raises in run_coroutine_threadsafe's callback).
TEST(RunCoroutineThreadsafe, AFailingTaskFactoryLeavesTheCoroutineUnrun) {
  Loop loop;
  loop.set_exception_handler([](Loop&, const ExceptionContext&) {});
  loop.set_task_factory([](TaskRef) { throw std::runtime_error("factory failed"); });
  bool ran = false;
  auto body = [&]() -> Task<int> {
    ran = true;
    co_return 1;
  };
  ConcurrentFuture<int> f = run_coroutine_threadsafe(body(), loop);
  loop.call_soon_threadsafe([&] { loop.stop(); });
  loop.run_forever();
  loop.set_task_factory(nullptr);
  loop.run_once();
  loop.run_once();
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(ran);
  loop.close();
}

}  // namespace
}  // namespace eddy
