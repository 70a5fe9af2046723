// ConcurrentFuture<T> and wrap_future: concurrent.futures.Future's rules, and
// the bridge to a loop's Future<T> in both directions, across threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eddy/concurrent_future.hpp>
#include <eddy/task.hpp>  // a task awaiting a ConcurrentFuture

#include "host_loop.hpp"
#include "loop_test.hpp"

namespace eddy {
namespace {

using namespace std::chrono_literals;
using testing::Counted;
using testing::HostLoop;
using testing::HostWatchdog;
using testing::LoopTest;

TEST(ConcurrentFuture, StartsPendingAndNotRunning) {
  ConcurrentFuture<int> f;
  EXPECT_EQ(f.state(), ConcurrentState::pending);
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.running());
  EXPECT_FALSE(f.cancelled());
}

TEST(ConcurrentFuture, AddDoneCallbackRefusesAnEmptyCallableAndAddsNothing) {
  ConcurrentFuture<int> f;
  void (*null_fn)(ConcurrentFuture<int>&) = nullptr;
  EXPECT_THROW(f.add_done_callback(null_fn), std::invalid_argument);
  EXPECT_THROW(f.add_done_callback(std::function<void(ConcurrentFuture<int>&)>()),
               std::invalid_argument);
  int runs = 0;
  f.add_done_callback([&runs](const ConcurrentFuture<int>& done) { runs += done.result(); });
  f.set_result(1);
  EXPECT_EQ(runs, 1);  // an empty callback would have failed as the future completed
}

TEST(ConcurrentFuture, AddDoneCallbackCopiesAnLvalueCallback) {
  ConcurrentFuture<int> f;
  int runs = 0;
  ConcurrentFuture<int>::Callback count = [&runs](ConcurrentFuture<int>& done) {
    runs += done.result();
  };
  f.add_done_callback(count);
  f.add_done_callback(count);
  EXPECT_TRUE(static_cast<bool>(count));  // copied, not moved from
  f.set_result(2);
  EXPECT_EQ(runs, 4);
}

TEST(ConcurrentFuture, AddDoneCallbackTakesAMoveOnlyCallableAndDestroysItOnce) {
  Counted::reset();
  ConcurrentFuture<int> pending;
  ConcurrentFuture<int> done;
  done.set_result(2);
  int sum = 0;
  {
    auto owned = std::make_unique<Counted>();
    pending.add_done_callback(
        [&sum, counted = std::move(owned)](ConcurrentFuture<int>& f) { sum += f.result(); });
    done.add_done_callback([&sum, counted = std::make_unique<Counted>()](ConcurrentFuture<int>& f) {
      sum += f.result();
    });
  }
  EXPECT_EQ(sum, 2);               // the done future's ran at once
  EXPECT_EQ(Counted::alive(), 1);  // ... and was destroyed; the pending one's is kept
  pending.set_result(5);
  EXPECT_EQ(sum, 7);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(ConcurrentFuture, ResultBlocksUntilAnotherThreadSetsIt) {
  ConcurrentFuture<std::string> f;
  std::atomic<bool> waiting{false};
  std::thread producer([f, &waiting]() mutable {
    while (!waiting.load())
      std::this_thread::yield();
    f.set_result("from another thread");
  });
  waiting.store(true);
  EXPECT_EQ(f.result(), "from another thread");
  EXPECT_TRUE(f.done());
  producer.join();
}

TEST(ConcurrentFuture, ResultWithAnExpiredTimeoutThrowsTimeoutError) {
  ConcurrentFuture<int> f;
  EXPECT_THROW(f.result(0.0), TimeoutError);
  EXPECT_THROW(f.result(1ms), TimeoutError);
  EXPECT_THROW(f.exception(0.0), TimeoutError);
  EXPECT_FALSE(f.done());  // a timeout changes nothing
}

// A huge chrono timeout means "no timeout", as a huge one in seconds does;
// it used to overflow in the conversion to nanoseconds and time out at once.
TEST(ConcurrentFuture, AHugeChronoTimeoutWaitsAsNoTimeout) {
  for (int which = 0; which < 3; ++which) {
    ConcurrentFuture<int> f;
    std::thread producer([f]() mutable {
      std::this_thread::sleep_for(20ms);  // so that the waiter is blocked first
      f.set_result(5);
    });
    int got = 0;
    switch (which) {
      case 0:
        got = f.result(std::chrono::hours::max());
        break;
      case 1:
        got = f.result(std::chrono::nanoseconds::max());
        break;
      default:
        EXPECT_EQ(f.exception(std::chrono::duration<double>(1e300)), nullptr);
        got = 5;
    }
    EXPECT_EQ(got, 5);
    producer.join();
  }
  ConcurrentFuture<int> f;
  EXPECT_THROW(f.result(std::chrono::duration<double>(std::nan(""))), std::invalid_argument);
}

TEST(ConcurrentFuture, ResultRethrowsTheStoredException) {
  ConcurrentFuture<int> f;
  f.set_exception(std::runtime_error("worker failed"));
  EXPECT_THROW(
      {
        try {
          f.result();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "worker failed");
          throw;
        }
      },
      std::runtime_error);
  EXPECT_NE(f.exception(), nullptr);
}

TEST(ConcurrentFuture, ExceptionIsNullForAResult) {
  ConcurrentFuture<int> f;
  f.set_result(3);
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.result(), 3);
}

TEST(ConcurrentFuture, CancelSucceedsOnlyWhilePending) {
  ConcurrentFuture<int> pending;
  EXPECT_TRUE(pending.cancel());
  EXPECT_TRUE(pending.cancel());  // already cancelled: still true, as in concurrent.futures
  EXPECT_TRUE(pending.cancelled());
  EXPECT_THROW(pending.result(), CancelledError);
  EXPECT_THROW(pending.exception(), CancelledError);

  ConcurrentFuture<int> running;
  EXPECT_TRUE(running.set_running_or_notify_cancel());
  EXPECT_TRUE(running.running());
  EXPECT_FALSE(running.cancel());

  ConcurrentFuture<int> finished;
  finished.set_result(1);
  EXPECT_FALSE(finished.cancel());
  EXPECT_EQ(finished.result(), 1);
}

TEST(ConcurrentFuture, SetRunningOrNotifyCancelReportsACancelledFuture) {
  ConcurrentFuture<void> f;
  f.cancel();
  EXPECT_FALSE(f.set_running_or_notify_cancel());
}

TEST(ConcurrentFuture, SetRunningOrNotifyCancelTwiceIsAnError) {
  ConcurrentFuture<void> f;
  EXPECT_TRUE(f.set_running_or_notify_cancel());
  EXPECT_THROW(f.set_running_or_notify_cancel(), InvalidStateError);
}

TEST(ConcurrentFuture, SettingADoneFutureThrowsInvalidStateError) {
  ConcurrentFuture<int> f;
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::runtime_error("late")), InvalidStateError);
  EXPECT_EQ(f.result(), 1);

  ConcurrentFuture<int> cancelled;
  cancelled.cancel();
  EXPECT_THROW(cancelled.set_result(2), InvalidStateError);
}

TEST(ConcurrentFuture, SetExceptionRejectsANullException) {
  ConcurrentFuture<int> f;
  EXPECT_THROW(f.set_exception(std::exception_ptr{}), std::invalid_argument);
  EXPECT_FALSE(f.done());
}

TEST(ConcurrentFuture, DoneCallbacksRunOnTheCompletingThreadInOrder) {
  ConcurrentFuture<int> f;
  std::vector<int> order;
  std::thread::id ran_on;
  f.add_done_callback([&](ConcurrentFuture<int>& self) {
    ran_on = std::this_thread::get_id();
    order.push_back(self.result());
  });
  f.add_done_callback([&](ConcurrentFuture<int>&) { order.push_back(-1); });
  std::thread producer([f]() mutable { f.set_result(7); });
  std::thread::id producer_id = producer.get_id();
  producer.join();
  EXPECT_EQ(ran_on, producer_id);
  EXPECT_EQ(order, (std::vector<int>{7, -1}));
}

TEST(ConcurrentFuture, ACallbackAddedToADoneFutureRunsAtOnce) {
  ConcurrentFuture<int> f;
  f.set_result(1);
  bool ran = false;
  f.add_done_callback([&](ConcurrentFuture<int>&) { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(ConcurrentFuture, AThrowingCallbackIsReportedOnStderrAndTheNextStillRuns) {
  ConcurrentFuture<int> f;
  bool second = false;
  f.add_done_callback([](ConcurrentFuture<int>&) { throw std::runtime_error("callback broke"); });
  f.add_done_callback([&](ConcurrentFuture<int>&) { second = true; });
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  f.set_result(1);
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(second);
  EXPECT_NE(err.find("callback broke"), std::string::npos);
  EXPECT_EQ(out, "");
}

TEST(ConcurrentFuture, AMoveOnlyResultCanBeMovedOut) {
  ConcurrentFuture<std::unique_ptr<int>> f;
  f.set_result(std::make_unique<int>(9));
  std::unique_ptr<int> taken = std::move(f.result());
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 9);
}

TEST(ConcurrentFuture, AMovedFromConcurrentFutureThrowsInvalidStateError) {
  ConcurrentFuture<int> f;
  ConcurrentFuture<int> g = std::move(f);
  EXPECT_FALSE(f.valid());  // NOLINT(bugprone-use-after-move): what is tested
  EXPECT_TRUE(g.valid());
  EXPECT_THROW(f.done(), InvalidStateError);
  EXPECT_THROW(f.running(), InvalidStateError);
  EXPECT_THROW(f.cancelled(), InvalidStateError);
  EXPECT_THROW(f.state(), InvalidStateError);
  EXPECT_THROW(f.result(0.0), InvalidStateError);
  EXPECT_THROW(f.exception(0.0), InvalidStateError);
  EXPECT_THROW(f.cancel(), InvalidStateError);
  EXPECT_THROW(f.set_running_or_notify_cancel(), InvalidStateError);
  EXPECT_THROW(f.set_result(1), InvalidStateError);
  EXPECT_THROW(f.set_exception(std::runtime_error("x")), InvalidStateError);
  EXPECT_THROW(f.add_done_callback([](ConcurrentFuture<int>&) {}), InvalidStateError);
  try {
    f.done();
  } catch (const InvalidStateError& e) {
    EXPECT_STREQ(e.what(),
                 "eddy::ConcurrentFuture::done: the ConcurrentFuture is empty (moved from)");
  }
  g.set_result(3);  // the future itself is untouched
  EXPECT_EQ(g.result(), 3);
}

TEST(ConcurrentFuture, ManyWaitersAreAllWoken) {
  ConcurrentFuture<int> f;
  std::atomic<int> sum{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([f, &sum]() mutable { sum += f.result(); });
  }
  f.set_result(5);
  for (auto& t : waiters)
    t.join();
  EXPECT_EQ(sum.load(), 20);
}

// ------------------------------------------------------------------ wrap_future

TEST_F(LoopTest, WrapFutureDeliversAResultFromAnotherThreadOnTheLoopThread) {
  ConcurrentFuture<int> source;
  Future<int> wrapped = wrap_future(source, loop);
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id callback_thread;
  wrapped.add_done_callback([&] { callback_thread = std::this_thread::get_id(); });
  std::thread worker([source]() mutable {
    source.set_running_or_notify_cancel();
    source.set_result(41 + 1);
  });
  EXPECT_EQ(loop.run_until_complete(wrapped), 42);
  worker.join();
  loop.run_once();  // the done callback registered above runs after run_until_complete's
  EXPECT_EQ(callback_thread, loop_thread);
}

TEST_F(LoopTest, AnUnretrievedExceptionOfAWrappedFutureNamesTheLineThatWrappedIt) {
  std::vector<ExceptionContext> reports;
  loop.set_exception_handler([&](Loop&, const ExceptionContext& c) { reports.push_back(c); });
  ConcurrentFuture<int> source;
  {
    const std::uint_least32_t wrapped_line = __LINE__ + 1;
    Future<int> wrapped = wrap_future(source, loop);
    source.set_running_or_notify_cancel();
    source.set_exception(std::make_exception_ptr(std::runtime_error("nobody reads")));
    loop.run_once();  // the outcome arrives through call_soon_threadsafe
    loop.run_once();
    ASSERT_TRUE(wrapped.done());
    ASSERT_TRUE(reports.empty());
    source = ConcurrentFuture<int>();  // its callback held the wrapped future
    wrapped = Future<int>();
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].source.line, wrapped_line);
    EXPECT_NE(std::string(reports[0].source.file).find("test_concurrent_future.cpp"),
              std::string::npos)
        << reports[0].source.file;
  }
}

TEST_F(HostLoop, AWrappedFutureKeepsTheHostsUvRunAliveUntilItsSourceCompletes) {
  Loop loop(LoopOptions().attach_to(&uv));
  ConcurrentFuture<int> source;
  std::optional<int> result;
  wrap_future(source, loop).add_done_callback([&](Future<int>& f) { result = f.result(); });
  std::thread worker([source]() mutable {
    std::this_thread::yield();
    source.set_result(3);
  });
  {
    HostWatchdog watchdog(&uv, 5000);
    EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);  // returns once the result is in
    EXPECT_FALSE(watchdog.fired);
  }
  worker.join();
  EXPECT_EQ(result, 3);
  loop.close();
}

TEST_F(HostLoop, AWrappedFutureWhoseSourceIsDroppedLetsTheHostsUvRunReturn) {
  Loop loop(LoopOptions().attach_to(&uv));
  Future<int> wrapped;
  {
    ConcurrentFuture<int> source;
    wrapped = wrap_future(source, loop);
  }
  HostWatchdog watchdog(&uv, 5000);
  EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
  EXPECT_FALSE(watchdog.fired);
  EXPECT_TRUE(wrapped.cancelled());
  loop.close();
}

TEST_F(LoopTest, WrapFutureFromAnotherThreadWhileTheLoopRunsThrowsWrongThreadError) {
  ConcurrentFuture<int> source;
  std::string refused;
  loop.call_soon([&] {
    std::thread other([&] {
      try {
        (void)wrap_future(source, loop);
      } catch (const WrongThreadError& e) {
        refused = e.what();
      }
    });
    other.join();
  });
  loop.run_once();
  EXPECT_EQ(refused.rfind("eddy::wrap_future:", 0), 0u) << refused;
  source.set_result(1);  // nothing was wrapped: nothing is posted to the loop
  loop.run_once();
}

TEST_F(LoopTest, WrapFutureDeliversAnException) {
  ConcurrentFuture<int> source;
  Future<int> wrapped = wrap_future(source, loop);
  std::thread worker(
      [source]() mutable { source.set_exception(std::runtime_error("job failed")); });
  EXPECT_THROW(loop.run_until_complete(wrapped), std::runtime_error);
  worker.join();
}

TEST_F(LoopTest, WrapFutureOfADoneSourceCompletesOnTheNextIterations) {
  ConcurrentFuture<std::string> source;
  source.set_result("ready");
  Future<std::string> wrapped = wrap_future(source, loop);
  EXPECT_FALSE(wrapped.done());  // delivered through the loop, never inline
  EXPECT_EQ(loop.run_until_complete(wrapped), "ready");
}

TEST_F(LoopTest, CancellingTheConcurrentFutureCancelsTheWrappedOne) {
  ConcurrentFuture<int> source;
  Future<int> wrapped = wrap_future(source, loop);
  std::thread canceller([source]() mutable { source.cancel(); });
  canceller.join();
  EXPECT_THROW(loop.run_until_complete(wrapped), CancelledError);
  EXPECT_TRUE(wrapped.cancelled());
}

TEST_F(LoopTest, CancellingTheWrappedFutureCancelsAPendingConcurrentFuture) {
  ConcurrentFuture<int> source;
  Future<int> wrapped = wrap_future(source, loop);
  EXPECT_TRUE(wrapped.cancel());
  loop.run_once();  // the wrapped future's done callbacks run
  EXPECT_TRUE(source.cancelled());
  loop.run_once();  // the source's cancellation echoes back and finds the wrapped one done
  EXPECT_TRUE(wrapped.cancelled());
}

TEST_F(LoopTest, CancellingTheWrappedFutureDoesNotStopARunningJob) {
  ConcurrentFuture<int> source;
  ASSERT_TRUE(source.set_running_or_notify_cancel());
  Future<int> wrapped = wrap_future(source, loop);
  wrapped.cancel();
  loop.run_once();
  EXPECT_FALSE(source.cancelled());
  source.set_result(1);  // the job finishes; the result is dropped, nothing breaks
  loop.run_once();
  EXPECT_TRUE(wrapped.cancelled());
}

TEST_F(LoopTest, WrapFutureCarriesAMoveOnlyResult) {
  ConcurrentFuture<std::unique_ptr<int>> source;
  Future<std::unique_ptr<int>> wrapped = wrap_future(source, loop);
  std::thread worker([source]() mutable { source.set_result(std::make_unique<int>(5)); });
  std::unique_ptr<int> value = loop.run_until_complete(wrapped);
  worker.join();
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 5);
}

TEST_F(LoopTest, WrapFutureCarriesAVectorOfMoveOnlyValues) {
  using Pointers = std::vector<std::unique_ptr<int>>;
  ConcurrentFuture<Pointers> source;
  Future<Pointers> wrapped = wrap_future(source, loop);
  std::thread worker([source]() mutable {
    Pointers v;
    v.push_back(std::make_unique<int>(6));
    source.set_result(std::move(v));
  });
  Pointers value = loop.run_until_complete(wrapped);
  worker.join();
  ASSERT_EQ(value.size(), 1u);
  EXPECT_EQ(*value[0], 6);
}

TEST_F(LoopTest, ResultsDeliveredAfterTheLoopClosedAreDroppedWithoutLeaks) {
  ConcurrentFuture<Counted> source;
  { Future<Counted> wrapped = wrap_future(source, loop); }
  loop.close();
  std::thread worker([source]() mutable { source.set_result(Counted{}); });
  worker.join();
  EXPECT_TRUE(source.done());
  EXPECT_EQ(Counted::alive(), 1);  // only the value the source still holds
}

TEST(WrapFuture, AResultDeliveredAfterTheLoopWasDestroyedIsDroppedWithoutTouchingIt) {
  // The loop goes first (closed, then destroyed) while the source is still
  // pending; completing the source later must not reach the freed loop (the
  // sanitizer builds would see it) and frees what the link held.
  ConcurrentFuture<Counted> source;
  Counted::reset();
  {
    Loop loop;
    Future<Counted> wrapped = wrap_future(source, loop);
    EXPECT_FALSE(wrapped.done());
  }
  std::thread worker([source]() mutable { source.set_result(Counted{}); });
  worker.join();
  EXPECT_EQ(Counted::alive(), 1);  // the source's own value, and nothing else
}

TEST(WrapFuture, ATaskAwaitingAConcurrentFutureSurvivesItsLoopsDestruction) {
  ConcurrentFuture<int> source;
  Counted::reset();
  {
    Loop loop;
    auto waiter = [](ConcurrentFuture<int> f, Counted) -> Task<int> { co_return co_await f; };
    Future<int> task = loop.create_task(waiter(source, Counted{}));
    loop.run_once();  // the task awaits the source, wrapped onto the loop
    EXPECT_FALSE(task.done());
  }  // closing the loop destroys the task's frame
  EXPECT_EQ(Counted::alive(), 0);
  std::thread worker([source]() mutable { source.set_result(5); });
  worker.join();
  EXPECT_EQ(source.result(), 5);
}

TEST_F(LoopTest, ManyThreadsCompleteManyWrappedFuturesEachExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<ConcurrentFuture<int>> sources(kThreads * kPerThread);
  std::vector<Future<int>> wrapped;
  wrapped.reserve(sources.size());
  for (auto& s : sources)
    wrapped.push_back(wrap_future(s, loop));
  int completed = 0;
  long long sum = 0;
  for (auto& w : wrapped) {
    w.add_done_callback([&](Future<int>& f) {
      ++completed;
      sum += f.result();
      if (completed == kThreads * kPerThread) loop.stop();
    });
  }
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&sources, t] {
      for (int i = t * kPerThread; i < (t + 1) * kPerThread; ++i)
        sources[i].set_result(i);
    });
  }
  loop.run_forever();
  for (auto& w : workers)
    w.join();
  const long long n = kThreads * kPerThread;
  EXPECT_EQ(completed, n);
  EXPECT_EQ(sum, n * (n - 1) / 2);
}

}  // namespace
}  // namespace eddy

namespace eddy {
namespace {

TEST_F(LoopTest, WrappingASourceThatNeverCompletesLeaksNothingOnceBothAreDropped) {
  {
    ConcurrentFuture<int> source;
    source.add_done_callback([token = Counted{}](ConcurrentFuture<int>&) {});  // a witness
    Future<int> wrapped = wrap_future(source, loop);
    EXPECT_EQ(Counted::alive(), 1);
  }  // both handles dropped; the source will never complete
  EXPECT_EQ(Counted::alive(), 0) << "the source's state was kept alive by a reference cycle";
}

TEST_F(LoopTest, TheLoopKeepsAWrappedFutureAliveUntilItsSourceCompletes) {
  ConcurrentFuture<int> source;
  int seen = 0;
  // Nobody keeps the wrapped future: its callback runs all the same.
  wrap_future(source, loop).add_done_callback([&seen](Future<int>& f) { seen = f.result(); });
  std::thread worker([source]() mutable {
    source.set_running_or_notify_cancel();
    source.set_result(7);
  });
  worker.join();
  for (int i = 0; i < 100 && seen == 0; ++i)
    loop.run_once();
  EXPECT_EQ(seen, 7);
}

// The source's done callback runs, or is destroyed unrun, on the thread that
// completes or drops the source: it holds no Future (whose count is not
// atomic) while the loop thread copies and drops its own handles. TSan
// reported both cases below before the loop held the wrapped futures.
TEST_F(LoopTest, ASourceDroppedUncompletedOnAnotherThreadEndsItsFutureCancelled) {
  std::optional<ConcurrentFuture<int>> source(std::in_place);
  Future<int> wrapped = wrap_future(*source, loop);
  bool ran = false;
  wrapped.add_done_callback([&ran, token = Counted{}](Future<int>&) { ran = true; });  // a witness
  std::thread worker([last = std::move(*source)]() mutable { last = ConcurrentFuture<int>(); });
  source.reset();
  for (int i = 0; i < 10'000; ++i) {
    Future<int> copy = wrapped;  // the loop thread's handles, meanwhile
  }
  worker.join();
  loop.run_once();                   // the dropped source's word: the future can never follow it
  ASSERT_TRUE(wrapped.cancelled());  // asyncio's would stay pending forever
  try {
    wrapped.result();
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_NE(e.message().find("eddy::wrap_future: the source was destroyed before it completed"),
              std::string::npos)
        << e.message();
  }
  loop.run_once();
  EXPECT_TRUE(ran);
  wrapped = Future<int>();
  EXPECT_EQ(Counted::alive(), 0) << "the loop still held the wrapped future";
}

TEST_F(LoopTest, AwaitingTheWrapOfAMovedSourceDoesNotHoldTheSource) {
  // wrap_future's parameter would live across the co_await (to the end of
  // the full expression) and hold the source, which then never went away.
  std::string caught;
  auto awaiter = [&]() -> Task<> {
    ConcurrentFuture<int> only;  // nobody else will ever complete it
    try {
      co_await wrap_future(std::move(only), get_running_loop());
    } catch (const CancelledError& e) {
      caught = e.message();
    }
  };
  Future<void> task = loop.create_task(awaiter());
  for (int i = 0; i < 100 && !task.done(); ++i)
    loop.run_once();
  ASSERT_TRUE(task.done());
  EXPECT_NE(caught.find("the source was destroyed before it completed"), std::string::npos)
      << caught;
}

TEST_F(LoopTest, AValueThatCannotBeCopiedOntoTheLoopFailsTheWrappedFuture) {
  using testing::FragileCopy;
  ConcurrentFuture<FragileCopy> source;
  Future<FragileCopy> wrapped = wrap_future(source, loop);
  FragileCopy::Failing failing;
  source.set_result(FragileCopy(1));
  for (int i = 0; i < 100 && !wrapped.done(); ++i)
    loop.run_once();
  ASSERT_TRUE(wrapped.done());  // not pending forever
  EXPECT_EQ(testing::what_of(wrapped.exception()), "copy failed");
}

TEST_F(LoopTest, ASourceCompletedAfterTheLoopClosedTouchesNoHandleAndLeaksNothing) {
  ConcurrentFuture<int> source;
  Future<int> wrapped = wrap_future(source, loop);
  wrapped.add_done_callback([token = Counted{}](Future<int>&) {});  // a witness
  loop.close();
  std::thread worker([source]() mutable {
    source.set_running_or_notify_cancel();
    source.set_result(1);  // dropped: the loop is closed
  });
  for (int i = 0; i < 10'000; ++i) {
    Future<int> copy = wrapped;
  }
  worker.join();
  EXPECT_TRUE(wrapped.cancelled());  // as the loop closed, as its tasks are
  wrapped = Future<int>();
  EXPECT_EQ(Counted::alive(), 0);
}

// ------------------------------------------------------------------ asyncio scenarios: more of
// test_futures.py

// test_wrap_future_cancel2: the source finished, a cancel of the wrapped
// future does not reach it; the wrapped one is cancelled.
TEST_F(LoopTest, CancellingTheWrappedFutureAfterTheSourceFinishedLeavesTheSourceFinished) {
  ConcurrentFuture<int> f1;
  Future<int> f2 = wrap_future(f1, loop);
  f1.set_result(42);
  EXPECT_TRUE(f2.cancel());
  loop.run_once();
  loop.run_once();
  EXPECT_FALSE(f1.cancelled());
  EXPECT_EQ(f1.result(), 42);
  EXPECT_TRUE(f2.cancelled());
}

// test_wrap_future_cancel: cancelling the wrapped future of a pending source
// cancels both, the source one iteration later (through a done callback).
TEST_F(LoopTest, CancellingTheWrappedFutureCancelsThePendingSourceAfterOneIteration) {
  ConcurrentFuture<int> f1;
  Future<int> f2 = wrap_future(f1, loop);
  EXPECT_TRUE(f2.cancel());
  EXPECT_FALSE(f1.cancelled());
  loop.run_once();
  EXPECT_TRUE(f1.cancelled());
  EXPECT_TRUE(f2.cancelled());
}

// ------------------------------------------------------------ asyncio 3.12 details

// concurrent.futures.Future.set_running_or_notify_cancel on a cancelled
// future: the first call moves it to CANCELLED_AND_NOTIFIED and returns
// False; a second call finds neither CANCELLED nor PENDING and raises
// RuntimeError('Future in unexpected state').
// As in asyncio: Lib/concurrent/futures/_base.py, Future.set_running_or_notify_cancel.
TEST(ConcurrentFuture, SetRunningOrNotifyCancelASecondTimeOnACancelledFutureIsAnError) {
  ConcurrentFuture<void> f;
  EXPECT_TRUE(f.cancel());
  EXPECT_FALSE(f.set_running_or_notify_cancel());
  EXPECT_THROW(f.set_running_or_notify_cancel(), InvalidStateError);
}

}  // namespace
}  // namespace eddy
