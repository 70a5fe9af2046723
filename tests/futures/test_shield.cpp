// Tests for eddy::shield (eddy/shield.hpp): asyncio.shield's rules — the
// inner one outlives the cancellation of the outer one.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eddy/gather.hpp>
#include <eddy/shield.hpp>
#include <eddy/sleep.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using testing::what_of;

class Shield : public testing::LoopTest {
 protected:
  /// Runs the loop for `seconds` of virtual time.
  void run_for(double seconds) {
    loop.call_later(seconds, [this] { loop.stop(); });
    loop.run_forever();
  }
};

double now() {
  return get_running_loop().time();
}

/// Sleeps `delay`, records the time it finished in `finished_at`, returns `value`.
Task<int> work(double delay, int value, double& finished_at, Counted = {}) {
  Counted local;
  co_await sleep(delay);
  finished_at = now();
  co_return value;
}

// ------------------------------------------------------------------ following the inner one

TEST_F(Shield, TheOuterGetsTheInnerResult) {
  Future<int> inner = loop.create_future<int>();
  Future<int> outer = shield(inner);
  EXPECT_FALSE(outer.done());
  loop.call_soon([inner]() mutable { inner.set_result(5); });
  EXPECT_EQ(loop.run_until_complete(outer), 5);
}

TEST_F(Shield, TheOuterGetsTheInnerException) {
  Future<int> inner = loop.create_future<int>();
  Future<int> outer = shield(inner);
  inner.set_exception(std::runtime_error("inner failed"));
  EXPECT_THROW(loop.run_until_complete(outer), std::runtime_error);
  EXPECT_EQ(what_of(outer.exception()), "inner failed");
}

TEST_F(Shield, CancellingTheInnerCancelsTheOuter) {
  Future<int> inner = loop.create_future<int>();
  Future<int> outer = shield(inner);
  inner.cancel();
  EXPECT_THROW(loop.run_until_complete(outer), CancelledError);
  EXPECT_TRUE(outer.cancelled());
}

TEST_F(Shield, ADoneInnerIsReturnedAsItIs) {
  Future<int> finished = loop.create_future<int>();
  finished.set_result(3);
  Future<int> a = shield(finished);
  EXPECT_TRUE(a.done());  // no trip through the loop
  EXPECT_EQ(a.result(), 3);

  Future<int> cancelled = loop.create_future<int>();
  cancelled.cancel("early");
  EXPECT_TRUE(shield(cancelled).cancelled());

  Future<int> failed = loop.create_future<int>();
  failed.set_exception(std::runtime_error("failed"));
  Future<int> c = shield(failed);
  ASSERT_TRUE(c.done());
  EXPECT_EQ(what_of(c.exception()), "failed");
  EXPECT_EQ(what_of(failed.exception()), "failed");  // the same state
}

TEST_F(Shield, MovesAMoveOnlyResultIntoTheOuter) {
  Future<std::unique_ptr<int>> inner = loop.create_future<std::unique_ptr<int>>();
  Future<std::unique_ptr<int>> outer = shield(inner);
  loop.call_soon([inner]() mutable { inner.set_result(std::make_unique<int>(9)); });
  std::unique_ptr<int> p = loop.run_until_complete(outer);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 9);
}

TEST_F(Shield, MovesAVectorOfMoveOnlyValuesIntoTheOuter) {
  using Pointers = std::vector<std::unique_ptr<int>>;
  Future<Pointers> inner = loop.create_future<Pointers>();
  Future<Pointers> outer = shield(inner);
  loop.call_soon([inner]() mutable {
    Pointers v;
    v.push_back(std::make_unique<int>(4));
    inner.set_result(std::move(v));
  });
  Pointers got = loop.run_until_complete(outer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(*got[0], 4);
}

TEST_F(Shield, WorksForVoid) {
  Future<void> inner = loop.create_future<void>();
  Future<void> outer = shield(inner);
  loop.call_soon([inner]() mutable { inner.set_result(); });
  loop.run_until_complete(outer);
  EXPECT_TRUE(outer.done());
  EXPECT_FALSE(outer.cancelled());
}

// ------------------------------------------------------------------ cancelling the outer one

TEST_F(Shield, CancellingTheOuterLeavesTheInnerRunning) {
  Future<int> inner = loop.create_future<int>();
  Future<int> outer = shield(inner);
  EXPECT_TRUE(outer.cancel("outer only"));
  EXPECT_TRUE(outer.cancelled());
  EXPECT_FALSE(inner.done());
  loop.call_soon([inner]() mutable { inner.set_result(4); });
  EXPECT_EQ(loop.run_until_complete(inner), 4);  // its result stays available
  EXPECT_TRUE(outer.cancelled());
}

TEST_F(Shield, ATaskAwaitingAShieldGetsCancelledErrorWhileTheInnerFinishes) {
  double inner_finished = -1;
  double caller_cancelled = -1;
  Future<int> inner;
  auto caller = [](Future<int>& in, double& finished, double& cancelled_at) -> Task<int> {
    in = create_task(work(3, 8, finished));
    try {
      co_return co_await shield(in);
    } catch (const CancelledError& e) {
      EXPECT_EQ(e.message(), "stop");
      cancelled_at = now();
      throw;
    }
  };
  double start = loop.time();
  Future<int> task = loop.create_task(caller(inner, inner_finished, caller_cancelled));
  loop.call_later(1, [&task] { task.cancel("stop"); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_DOUBLE_EQ(caller_cancelled - start, 1.0);  // at once, not when the inner ends
  EXPECT_FALSE(inner.done());
  EXPECT_EQ(loop.run_until_complete(inner), 8);
  EXPECT_DOUBLE_EQ(inner_finished - start, 3.0);
}

TEST_F(Shield, ShieldOfATaskSchedulesIt) {
  double finished = -1;
  auto caller = [](double& done_at) -> Task<> {
    Future<int> outer = shield(work(2, 1, done_at));  // never awaited
    EXPECT_FALSE(outer.done());
    co_await sleep(5);
    EXPECT_TRUE(outer.done());
    EXPECT_EQ(outer.result(), 1);
  };
  double start = loop.time();
  loop.run_until_complete(caller(finished));
  EXPECT_DOUBLE_EQ(finished - start, 2.0);
}

TEST_F(Shield, AShieldedTaskOutlivesTheCancelOfItsAwaiter) {
  double finished = -1;
  auto caller = [](double& done_at, Counted) -> Task<int> {
    co_return co_await shield(work(3, 2, done_at, Counted{}));
  };
  double start = loop.time();
  Future<int> task = loop.create_task(caller(finished, Counted{}));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_LT(finished, 0);
  EXPECT_GT(Counted::alive(), 0);  // the shielded task's frame lives on
  run_for(5);
  EXPECT_DOUBLE_EQ(finished - start, 3.0);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(Shield, AnInnerFailureAfterTheOuterWasCancelledIsNotReported) {
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  {
    Future<int> inner = loop.create_future<int>();
    Future<int> outer = shield(inner);
    outer.cancel();
    inner.set_exception(std::runtime_error("late failure"));
  }
  run_for(1);
  EXPECT_TRUE(reports.empty());
}

// ------------------------------------------------------------------ with gather

// test_shield_gather: cancelling the shield of a gather leaves the gather and
// its children running to their results.
TEST_F(Shield, CancellingTheShieldOfAGatherLeavesTheGatherRunning) {
  Future<int> child1 = loop.create_future<int>();
  Future<int> child2 = loop.create_future<int>();
  auto parent = gather(child1, child2);
  auto outer = shield(parent);
  loop.run_once();
  EXPECT_TRUE(outer.cancel());
  loop.run_once();
  EXPECT_TRUE(outer.cancelled());
  child1.set_result(1);
  child2.set_result(2);
  auto result = loop.run_until_complete(parent);
  EXPECT_EQ(std::get<0>(result), 1);
  EXPECT_EQ(std::get<1>(result), 2);
}

// test_gather_shield: cancelling a gather of shields cancels the shields, not
// the futures behind them; the gather ends with a CancelledError.
TEST_F(Shield, CancellingAGatherOfShieldsCancelsTheShieldsOnly) {
  Future<int> child1 = loop.create_future<int>();
  Future<int> child2 = loop.create_future<int>();
  Future<int> inner1 = shield(child1);
  Future<int> inner2 = shield(child2);
  auto parent = gather(inner1, inner2);
  loop.run_once();
  parent.cancel();
  loop.run_once();
  loop.run_once();
  ASSERT_TRUE(parent.done());
  EXPECT_THROW(std::rethrow_exception(parent.exception()), CancelledError);
  EXPECT_TRUE(inner1.cancelled());
  EXPECT_TRUE(inner2.cancelled());
  EXPECT_FALSE(child1.done());
  EXPECT_FALSE(child2.done());
  child1.set_result(1);
  child2.set_result(2);
  run_for(1);
  EXPECT_EQ(child1.result(), 1);
}

// test_shield_effect, with the inner one a coroutine awaiting a future.
TEST_F(Shield, CancellingTheCallerDoesNotReachTheShieldedCoroutine) {
  int proof = 0;
  Future<void> waiter = loop.create_future<void>();
  auto inner = [&]() -> Task<> {
    co_await waiter;
    proof += 1;
  };
  auto outer = [&]() -> Task<> {
    co_await shield(inner());
    proof += 100;
  };
  Future<void> f = loop.create_task(outer());
  loop.run_once();
  f.cancel();
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  waiter.set_result();
  run_for(1);
  EXPECT_EQ(proof, 1);
}

// ------------------------------------------------------------------ lifetimes

TEST_F(Shield, ClosingTheLoopDestroysAShieldedTaskOnceAndCancelsItsFuture) {
  double finished = -1;
  Future<int> inner;
  Future<int> outer;
  auto caller = [](Future<int>& in, Future<int>& out, double& done_at) -> Task<int> {
    in = create_task(work(10, 1, done_at, Counted{}));
    out = shield(in);
    co_return co_await out;
  };
  Future<int> task = loop.create_task(caller(inner, outer, finished));
  run_for(1);
  EXPECT_EQ(Counted::alive(), 2);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(outer.cancelled());  // though the inner's future is still held
  EXPECT_LT(finished, 0);
}

// The shield holds no reference to its inner future: an inner that goes
// away pending can never complete, and neither could the shield (asyncio's
// would stay pending forever). It ends cancelled, and its awaiter wakes up.
TEST_F(Shield, AValueThatCannotBeCopiedFailsTheOuterWithTheCopysError) {
  using testing::FragileCopy;
  Future<FragileCopy> inner = loop.create_future<FragileCopy>();
  Future<FragileCopy> outer = shield(inner);
  FragileCopy::Failing failing;
  inner.set_result(FragileCopy(1));
  run_for(1);
  ASSERT_TRUE(outer.done());
  EXPECT_FALSE(outer.cancelled());  // not "the inner future was destroyed"
  EXPECT_EQ(what_of(outer.exception()), "copy failed");
}

TEST_F(Shield, AShieldWhoseInnerGoesAwayPendingEndsCancelledAndWakesItsAwaiter) {
  Future<int> inner = loop.create_future<int>();
  Future<int> outer = shield(inner);
  std::string caught;
  auto awaiter = [&]() -> Task<> {
    try {
      co_await outer;
    } catch (const CancelledError& e) {
      caught = e.message();
    }
  };
  Future<void> task = loop.create_task(awaiter());
  loop.run_once();        // the task awaits the shield
  inner = Future<int>();  // nothing else holds the inner future
  ASSERT_TRUE(outer.cancelled());
  run_for(1);
  ASSERT_TRUE(task.done());  // woke up, not left waiting forever
  EXPECT_NE(caught.find("eddy::shield: the inner future was destroyed before it completed"),
            std::string::npos)
      << caught;
}

TEST_F(Shield, AwaitingTheShieldOfAMovedFutureDoesNotHoldTheInner) {
  // shield's parameter would live across the co_await (to the end of the
  // full expression) and hold the inner future, which then never went away.
  std::string caught;
  auto awaiter = [&]() -> Task<> {
    Future<int> only = loop.create_future<int>();
    try {
      co_await shield(std::move(only));
    } catch (const CancelledError& e) {
      caught = e.message();
    }
  };
  Future<void> task = loop.create_task(awaiter());
  run_for(1);
  ASSERT_TRUE(task.done());
  EXPECT_NE(caught.find("the inner future was destroyed before it completed"), std::string::npos)
      << caught;
}

TEST_F(Shield, ClosingTheLoopWithAShieldedTaskNobodyElseHoldsCancelsTheShield) {
  double finished = -1;
  Future<int> outer;
  auto caller = [](Future<int>& out, double& done_at) -> Task<int> {
    out = shield(work(10, 1, done_at, Counted{}));
    co_return co_await out;
  };
  Future<int> task = loop.create_task(caller(outer, finished));
  run_for(1);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(outer.cancelled());
  EXPECT_LT(finished, 0);
}

TEST_F(Shield, AnInnerDroppedAfterTheLoopClosedCancelsTheShield) {
  Future<int> outer;
  {
    Future<int> inner = loop.create_future<int>();
    outer = shield(inner);
    loop.close();
    EXPECT_FALSE(outer.done());  // the inner could still be completed
  }
  EXPECT_TRUE(outer.cancelled());
}

// ------------------------------------------------------------------ asyncio scenarios: more of
// test_tasks.py's shield tests

// test_shield_cancel_outer_result: the outer cancelled (and its callbacks
// run), a later result of the inner is not reported.
TEST_F(Shield, AnInnerResultAfterTheCancelledOuterWasSeenReportsNothing) {
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  {
    Future<int> inner = loop.create_future<int>();
    Future<int> outer = shield(inner);
    loop.run_once();
    outer.cancel();
    loop.run_once();
    inner.set_result(1);
    loop.run_once();
  }
  run_for(1);
  EXPECT_TRUE(reports.empty());
}

// test_shield_effect: cancelling the task that awaits the shield does not
// reach the shielded task, which finishes with its result.
TEST_F(Shield, TheShieldedTaskFinishesWithItsResultAfterItsAwaiterWasCancelled) {
  double finished = -1;
  Future<int> inner;
  auto outer = [&]() -> Task<int> {
    inner = create_task(work(1, 42, finished));
    co_return co_await shield(inner);
  };
  Future<int> task = loop.create_task(outer());
  loop.run_once();
  loop.run_once();
  EXPECT_TRUE(task.cancel());
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_FALSE(inner.done());
  EXPECT_EQ(loop.run_until_complete(inner), 42);
}

// ------------------------------------------------------------ asyncio 3.12 details

// test_shield_cancel_outer_exception: the outer cancelled and its callbacks
// run, then the inner fails and nobody reads it: asyncio reports it.
// As in asyncio 3.12: its shield() adds _outer_done_callback, which removes
// _inner_done_callback from the inner once the outer is done while the inner is pending
// (Lib/asyncio/tasks.py, shield). The inner's later exception is then never retrieved, and
// Future.__del__ reports "exception was never retrieved" (3.13+ even logs it at once, "exception in
// shielded future").
TEST_F(Shield, AnInnerFailureAfterTheCancelledOuterWasSeenIsReported) {
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  {
    Future<int> inner = loop.create_future<int>();
    Future<int> outer = shield(inner);
    loop.run_once();
    outer.cancel();
    loop.run_once();  // the outer's done callbacks ran
    inner.set_exception(std::runtime_error("foo"));
    loop.run_once();
  }
  run_for(1);
  EXPECT_EQ(reports, (std::vector<std::string>{"Future exception was never retrieved"}));
}

}  // namespace
}  // namespace eddy
