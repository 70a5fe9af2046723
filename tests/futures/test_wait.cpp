// Tests for eddy::wait (eddy/wait.hpp): the three ReturnWhen conditions, the
// timeout, the order of done and pending, that it cancels nothing, suspends
// at least once, rejects an empty input, and leaves nothing behind when its
// task is cancelled or returns while callbacks are on their way. Mirrors
// asyncio.wait's observable rules. Time runs on the fixture's VirtualClock.
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/future.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/wait.hpp>

#include "future_test.hpp"

namespace eddy {
namespace {

using eddy::testing::FutureTest;
using eddy::testing::what_of;

class WaitTest : public FutureTest {
 protected:
  /// A future cancelled at virtual time `t`.
  Future<int> cancelled_at(double t) {
    Future<int> f = loop.create_future<int>();
    loop.call_later(t, [f]() mutable { f.cancel(); });
    return f;
  }
  /// The results of done futures that did not fail.
  static std::vector<int> values(std::vector<Future<int>>& futures) {
    std::vector<int> out;
    for (Future<int>& f : futures)
      out.push_back(f.result());
    return out;
  }
  /// Runs wait(futures, when, timeout) as a task; returns its result.
  WaitResult<int> run_wait(std::vector<Future<int>> futures,
                           ReturnWhen when = ReturnWhen::all_completed,
                           std::optional<double> timeout = std::nullopt) {
    return loop.run_until_complete(wait(std::move(futures), when, timeout));
  }
};

Task<int> after_sleep(double delay, int v) {
  co_await sleep(delay);
  co_return v;
}

// ------------------------------------------------------------ conditions

TEST_F(WaitTest, ByDefaultWaitReturnsWhenAllAreCompleted) {
  auto result = run_wait({value_at(2, 1), value_at(1, 2), value_at(3, 3)});
  EXPECT_DOUBLE_EQ(loop.time(), 3.0);
  EXPECT_EQ(values(result.done), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(result.pending.empty());
}

TEST_F(WaitTest, AllCompletedCountsFailuresAndCancellationsAsDone) {
  auto result = run_wait({failure_at(1, "x"), cancelled_at(2), value_at(3, 3)});
  EXPECT_DOUBLE_EQ(loop.time(), 3.0);
  ASSERT_EQ(result.done.size(), 3u);
  EXPECT_EQ(what_of(result.done[0].exception()), "x");
  EXPECT_TRUE(result.done[1].cancelled());
}

TEST_F(WaitTest, FirstCompletedReturnsAsSoonAsOneIsDone) {
  auto result =
      run_wait({value_at(3, 1), value_at(1, 2), value_at(2, 3)}, ReturnWhen::first_completed);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  EXPECT_EQ(values(result.done), (std::vector<int>{2}));
  ASSERT_EQ(result.pending.size(), 2u);
}

TEST_F(WaitTest, FirstCompletedCountsAFailureOrACancellationAsCompletion) {
  auto failed = run_wait({value_at(3, 1), failure_at(1, "x")}, ReturnWhen::first_completed);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  ASSERT_EQ(failed.done.size(), 1u);
  EXPECT_EQ(what_of(failed.done[0].exception()), "x");

  auto cancelled = run_wait({value_at(3, 1), cancelled_at(1)}, ReturnWhen::first_completed);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  ASSERT_EQ(cancelled.done.size(), 1u);
  EXPECT_TRUE(cancelled.done[0].cancelled());
}

TEST_F(WaitTest, FirstExceptionReturnsWhenOneFails) {
  auto result = run_wait({value_at(1, 1), failure_at(2, "second"), value_at(3, 3)},
                         ReturnWhen::first_exception);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  ASSERT_EQ(result.done.size(), 2u);
  EXPECT_EQ(result.done[0].result(), 1);
  EXPECT_EQ(what_of(result.done[1].exception()), "second");
  ASSERT_EQ(result.pending.size(), 1u);
  EXPECT_FALSE(result.pending[0].done());
}

TEST_F(WaitTest, FirstExceptionWithNoExceptionBehavesLikeAllCompleted) {
  auto result = run_wait({value_at(2, 1), value_at(1, 2)}, ReturnWhen::first_exception);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  EXPECT_EQ(values(result.done), (std::vector<int>{1, 2}));
  EXPECT_TRUE(result.pending.empty());
}

TEST_F(WaitTest, ACancelledFutureDoesNotCountAsAnExceptionForFirstException) {
  auto until_failure = run_wait({cancelled_at(1), failure_at(2, "real"), value_at(3, 3)},
                                ReturnWhen::first_exception);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  ASSERT_EQ(until_failure.done.size(), 2u);
  EXPECT_TRUE(until_failure.done[0].cancelled());
  EXPECT_EQ(what_of(until_failure.done[1].exception()), "real");

  auto until_all = run_wait({cancelled_at(1), value_at(2, 2)}, ReturnWhen::first_exception);
  EXPECT_DOUBLE_EQ(loop.time(), 4.0);  // started at 2: both were needed
  EXPECT_EQ(until_all.done.size(), 2u);
}

TEST_F(WaitTest, DoneAndPendingKeepTheInputOrderNotTheCompletionOrder) {
  auto result = run_wait(
      {value_at(3, 10), value_at(5, 20), value_at(1, 30), value_at(2, 40), value_at(6, 50)},
      ReturnWhen::all_completed, 4.0);
  EXPECT_EQ(values(result.done), (std::vector<int>{10, 30, 40}));
  ASSERT_EQ(result.pending.size(), 2u);
  loop.run_until_complete(result.pending[1]);
  EXPECT_EQ(values(result.pending), (std::vector<int>{20, 50}));
}

TEST_F(WaitTest, FuturesGivenTwiceAppearTwice) {
  Future<int> a = value_at(1, 1);
  auto result = run_wait({a, a, value_at(2, 2)}, ReturnWhen::first_completed);
  EXPECT_EQ(values(result.done), (std::vector<int>{1, 1}));
  EXPECT_EQ(result.pending.size(), 1u);
}

// ------------------------------------------------------------ timeout, cancel nothing

TEST_F(WaitTest, OnTimeoutWaitReturnsWhatIsDoneSoFarWithoutTimeoutError) {
  auto result = run_wait({value_at(1, 1), value_at(5, 2)}, ReturnWhen::all_completed, 2.0);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  EXPECT_EQ(values(result.done), (std::vector<int>{1}));
  ASSERT_EQ(result.pending.size(), 1u);
  EXPECT_FALSE(result.pending[0].done());
}

TEST_F(WaitTest, WaitReturnsBeforeTheTimeoutWhenTheConditionHolds) {
  auto result = run_wait({value_at(1, 1), value_at(2, 2)}, ReturnWhen::all_completed, 10.0);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  EXPECT_EQ(result.done.size(), 2u);
}

TEST_F(WaitTest, ATimeoutOfZeroReturnsAfterOneIteration) {
  auto result = run_wait({value_at(1, 1)}, ReturnWhen::all_completed, 0.0);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  EXPECT_TRUE(result.done.empty());
  EXPECT_EQ(result.pending.size(), 1u);
}

TEST_F(WaitTest, AnInfiniteTimeoutIsNoTimeoutAndMinusInfinityIsAlreadyPast) {
  // asyncio: call_later(inf) never fires, call_later(-inf) at once.
  const double inf = std::numeric_limits<double>::infinity();
  auto all = run_wait({value_at(1e6, 1), value_at(1, 2)}, ReturnWhen::all_completed, inf);
  EXPECT_EQ(all.done.size(), 2u);
  EXPECT_DOUBLE_EQ(loop.time(), 1e6);
  double start = loop.time();
  auto none = run_wait({value_at(1, 3)}, ReturnWhen::all_completed, -inf);
  EXPECT_EQ(none.pending.size(), 1u);
  EXPECT_DOUBLE_EQ(loop.time(), start);
}

TEST_F(WaitTest, WaitCancelsNothing) {
  Future<int> slow;
  auto body = [&]() -> Task<> {
    slow = create_task(after_sleep(5, 5));
    std::vector<Future<int>> both{slow, value_at(1, 1)};
    auto first = co_await wait(both, ReturnWhen::first_completed);
    EXPECT_EQ(first.pending.size(), 1u);
    std::vector<Future<int>> just_slow{slow};
    auto timed = co_await wait(just_slow, ReturnWhen::all_completed, 1.0);
    EXPECT_EQ(timed.pending.size(), 1u);
  };
  loop.run_until_complete(body());
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  EXPECT_FALSE(slow.done());
  EXPECT_EQ(loop.run_until_complete(slow), 5);  // it ran on, untouched
}

// ------------------------------------------------------------ input

TEST_F(WaitTest, AnEmptyInputIsRejectedWithInvalidArgument) {
  auto body = [&]() -> Task<int> {
    int rejected = 0;
    try {
      co_await wait(std::vector<Future<int>>{});
    } catch (const std::invalid_argument&) {
      ++rejected;
    }
    try {
      co_await wait(std::vector<Task<int>>{}, ReturnWhen::first_completed, 1.0);
    } catch (const std::invalid_argument&) {
      ++rejected;
    }
    co_return rejected;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 2);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

TEST_F(WaitTest, AnEmptyFutureHandleIsRejectedWithInvalidStateError) {
  EXPECT_THROW(run_wait({value_at(1, 1), Future<int>()}), InvalidStateError);
}

TEST_F(WaitTest, FuturesOfDifferentLoopsAreRejectedWithInvalidArgumentBeforeSuspending) {
  // Whichever comes first: a future of another loop would never wake this
  // loop's wait (it hung, or a timeout reported it pending though it was set).
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    Future<int> here = loop.create_future<int>();
    Future<int> there = other.create_future<int>();
    there.set_result(2);
    for (bool here_first : {true, false}) {
      SCOPED_TRACE(here_first);
      std::vector<Future<int>> both =
          here_first ? std::vector{here, there} : std::vector{there, here};
      EXPECT_THROW(run_wait(both), std::invalid_argument);
      EXPECT_THROW(run_wait(both, ReturnWhen::first_completed, 1.0), std::invalid_argument);
      EXPECT_DOUBLE_EQ(loop.time(), 0.0);
    }
    here.set_result(1);  // untouched: still usable
    EXPECT_EQ(run_wait({here}).done.size(), 1u);
  }
  other.close();
}

TEST_F(WaitTest, TasksGivenToWaitAreScheduledAtOnce) {
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    tasks.push_back(after_sleep(2, 1));
    tasks.push_back(after_sleep(1, 2));
    std::size_t before = all_tasks(loop).size();
    Task<WaitResult<int>> waiting = wait(std::move(tasks));
    EXPECT_EQ(all_tasks(loop).size(), before + 2);  // before wait is awaited
    auto result = co_await std::move(waiting);
    co_return values(result.done);
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<int>{1, 2}));
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
}

TEST_F(WaitTest, WaitWorksOnVoidFutures) {
  Future<void> a = loop.create_future<void>();
  loop.call_later(1, [a]() mutable { a.set_result(); });
  auto result = loop.run_until_complete(wait(std::vector{a}));
  EXPECT_EQ(result.done.size(), 1u);
}

// ------------------------------------------------------------ suspension and cleanup

TEST_F(WaitTest, WaitAlwaysSuspendsAtLeastOnceEvenIfAllAreDone) {
  Future<int> a = loop.create_future<int>();
  a.set_result(1);
  auto body = [&]() -> Task<bool> {
    bool other_ran = false;
    loop.call_soon([&] { other_ran = true; });
    std::vector<Future<int>> done{a};
    auto result = co_await wait(done);
    EXPECT_EQ(result.done.size(), 1u);
    co_return other_ran;
  };
  EXPECT_TRUE(loop.run_until_complete(body()));
}

TEST_F(WaitTest, CancellingTheWaitingTaskLeavesTheFuturesUntouchedAndRemovesItsCallbacks) {
  Future<int> a = loop.create_future<int>();
  Future<int> b = loop.create_future<int>();
  auto body = [&]() -> Task<> {
    std::vector<Future<int>> futures{a, b};
    co_await wait(futures, ReturnWhen::all_completed, 10.0);
  };
  Future<void> waiting = loop.create_task(body());
  loop.call_later(1, [&] { waiting.cancel(); });
  EXPECT_THROW(loop.run_until_complete(waiting), CancelledError);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  EXPECT_FALSE(a.done());
  EXPECT_FALSE(b.done());
  // Both callbacks are gone: nothing would run for these futures now.
  EXPECT_FALSE(static_cast<bool>(detail::FutureAccess::shared(a)->first));
  EXPECT_FALSE(static_cast<bool>(detail::FutureAccess::shared(b)->first));
  a.set_result(1);
  b.set_result(2);
  loop.run_until_complete(value_at(20, 0));  // its timer is gone too: time runs on quietly
}

TEST_F(WaitTest, AFutureDoneAfterWaitWasReleasedButBeforeItResumedIsHarmless) {
  Future<int> a = loop.create_future<int>();
  Future<int> b = loop.create_future<int>();
  auto body = [&]() -> Task<std::size_t> {
    std::vector<Future<int>> futures{a, b};
    auto result = co_await wait(futures, ReturnWhen::first_completed);
    co_return result.done.size();
  };
  Future<std::size_t> waiting = loop.create_task(body());
  loop.call_soon([&] {
    a.set_result(1);  // wait's callback for a runs next iteration and wakes the task...
    loop.call_soon([&] { b.set_result(2); });  // ... and b's callback is queued behind it
  });
  EXPECT_EQ(loop.run_until_complete(waiting), 2u);
  loop.run_until_complete(value_at(1, 0));  // runs b's callback, after wait's frame is gone
}

TEST_F(WaitTest, AFutureDoneJustAfterTheWaitingTaskWasCancelledIsHarmless) {
  Future<int> a = loop.create_future<int>();
  auto body = [&]() -> Task<> {
    std::vector<Future<int>> futures{a};
    co_await wait(futures);
  };
  Future<void> waiting = loop.create_task(body());
  loop.call_later(1, [&] {
    waiting.cancel();  // the task's wake-up is queued first...
    a.set_result(1);   // ... wait's callback for a behind it
  });
  EXPECT_THROW(loop.run_until_complete(waiting), CancelledError);
  loop.run_until_complete(value_at(1, 0));
  EXPECT_EQ(a.result(), 1);
}

TEST_F(WaitTest, ClosingTheLoopWhileWaitingLosesNothing) {
  Future<int> a = loop.create_future<int>();
  auto body = [&]() -> Task<> {
    std::vector<Future<int>> futures{a, value_at(5, 1)};
    co_await wait(futures, ReturnWhen::all_completed, 10.0);
  };
  Future<void> waiting = loop.create_task(body());
  loop.run_until_complete(value_at(1, 0));
  loop.close();
  EXPECT_TRUE(waiting.cancelled());
  EXPECT_FALSE(a.done());
}

// ------------------------------------------------------------ asyncio scenarios: more of
// test_tasks.py's wait tests

// test_wait_really_done: with first_completed, a future that finished before
// the waiting task resumed is in done too.
TEST_F(WaitTest, FirstCompletedAlsoListsAFutureThatFinishedBeforeTheWaitResumed) {
  auto coro1 = []() -> Task<int> {
    co_await sleep(0);
    co_return 1;
  };
  auto coro2 = []() -> Task<int> {
    co_await sleep(0);
    co_await sleep(0);
    co_return 2;
  };
  Future<int> a = loop.create_task(coro1());
  Future<int> b = loop.create_task(coro2());
  WaitResult<int> r = loop.run_until_complete(wait(std::vector{b, a}, ReturnWhen::first_completed));
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_TRUE(r.pending.empty());
  EXPECT_EQ(a.result(), 1);
  EXPECT_EQ(b.result(), 2);
}

// test_wait_concurrent_complete: a task whose sleep ends at the timeout's
// moment (its timer set first) is done when the wait returns.
TEST_F(WaitTest, ATaskFinishingAtTheTimeoutsMomentIsDone) {
  Future<int> a = loop.create_task(after_sleep(0.1, 1));
  Future<int> b = loop.create_task(after_sleep(0.15, 2));
  WaitResult<int> r =
      loop.run_until_complete(wait(std::vector{b, a}, ReturnWhen::all_completed, 0.1));
  ASSERT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.done[0].result(), 1);
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_FALSE(r.pending[0].done());
  EXPECT_EQ(loop.run_until_complete(b), 2);
}

// test_wait_first_exception_in_wait: the failure of a task ends the wait at
// its moment; the other stays pending.
TEST_F(WaitTest, FirstExceptionEndsTheWaitWhenATaskFailsDuringIt) {
  auto fails = []() -> Task<int> {
    co_await sleep(0.01);
    throw std::runtime_error("err");
  };
  Future<int> a = loop.create_task(after_sleep(10, 1));
  Future<int> b = loop.create_task(fails());
  WaitResult<int> r = loop.run_until_complete(wait(std::vector{b, a}, ReturnWhen::first_exception));
  ASSERT_EQ(r.done.size(), 1u);
  EXPECT_EQ(what_of(r.done[0].exception()), "err");
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
  a.cancel();
  EXPECT_THROW(loop.run_until_complete(a), CancelledError);
}

// _wait's _on_completion never reads an exception under ALL_COMPLETED: a
// failure nobody looks at afterwards is reported (Future.__del__).
TEST_F(WaitTest, AllCompletedLeavesAnUnreadFailureToBeReported) {
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  {
    WaitResult<int> r = run_wait({failure_at(1, "unseen")});
    EXPECT_EQ(r.done.size(), 1u);
  }
  EXPECT_EQ(reports, (std::vector<std::string>{"Future exception was never retrieved"}));
}

// ------------------------------------------------------------ asyncio 3.12 details

// _wait's _on_completion with FIRST_EXCEPTION, when the failure is the last
// completion: nobody reads the exception, and asyncio reports it.
// As in asyncio 3.12: its _wait (Lib/asyncio/tasks.py), _on_completion tests `counter <= 0
// or return_when == FIRST_COMPLETED or (return_when == FIRST_EXCEPTION and (not f.cancelled() and
// f.exception() is not None))`; the `or` short-circuits, so f.exception() is not called for the
// completion that brings the counter to zero, and that future's exception stays unretrieved
// (reported by Future.__del__).
TEST_F(WaitTest, FirstExceptionLeavesTheFailureThatCompletesTheSetUnretrieved) {
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  {
    WaitResult<int> r = run_wait({failure_at(1, "unseen")}, ReturnWhen::first_exception);
    EXPECT_EQ(r.done.size(), 1u);
  }
  EXPECT_EQ(reports, (std::vector<std::string>{"Future exception was never retrieved"}));
}

}  // namespace
}  // namespace eddy
