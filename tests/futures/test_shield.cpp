// Tests for eddy::shield (eddy/shield.hpp): asyncio.shield's rules — the
// inner one outlives the cancellation of the outer one.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
  EXPECT_LT(finished, 0);
}

}  // namespace
}  // namespace eddy
