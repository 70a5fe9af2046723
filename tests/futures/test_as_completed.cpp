// Tests for eddy::as_completed (eddy/as_completed.hpp): completion order,
// exactly one result per input, the deadline, exceptions, concurrent and
// cancelled awaiters, empty input, the range-for shape, and lifetimes.
// Mirrors asyncio.as_completed's observable rules. Time runs on the
// fixture's VirtualClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/as_completed.hpp>
#include <eddy/future.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/wait.hpp>

#include "future_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::FutureTest;
using eddy::testing::what_of;

using AsCompletedTest = FutureTest;

Task<int> after_sleep(double delay, int v) {
  co_await sleep(delay);
  co_return v;
}

/// Takes every result of `futures` in order, as "v@t" (value at time) or
/// "error:what@t"; a TimeoutError shows as "timeout@t".
Task<std::vector<std::string>> take_all(Loop& loop, AsCompleted<int> results) {
  std::vector<std::string> got;
  auto at = [&] { return "@" + std::to_string(static_cast<int>(loop.time())); };
  while (results.size() != 0) {
    Task<int> next = results.next();
    try {
      int v = co_await std::move(next);
      got.push_back(std::to_string(v) + at());
    } catch (const TimeoutError&) {
      got.push_back("timeout" + at());
    } catch (const std::runtime_error& e) {
      got.push_back(std::string("error:") + e.what() + at());
    }
  }
  co_return got;
}

/// Awaits one next() of `results`.
Task<int> take_one(AsCompleted<int>& results) {
  co_return co_await results.next();
}

// ------------------------------------------------------------ order and count

TEST_F(AsCompletedTest, YieldsResultsInCompletionOrder) {
  auto got = loop.run_until_complete(
      take_all(loop, as_completed(std::vector{value_at(3, 1), value_at(1, 2), value_at(2, 3)})));
  EXPECT_EQ(got, (std::vector<std::string>{"2@1", "3@2", "1@3"}));
}

TEST_F(AsCompletedTest, GivesExactlyAsManyAsInputsThenRefusesWithInvalidStateError) {
  Future<int> a = value_at(1, 1);
  AsCompleted<int> results = as_completed(std::vector{a, a, value_at(2, 2)});
  EXPECT_EQ(results.size(), 3u);
  auto body = [&]() -> Task<int> {
    int sum = 0;
    for (int i = 0; i < 3; ++i)
      sum += co_await results.next();
    co_return sum;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 4);
  EXPECT_EQ(results.size(), 0u);
  EXPECT_THROW((void)results.next(), InvalidStateError);
}

TEST_F(AsCompletedTest, AlreadyDoneFuturesComeFirst) {
  Future<int> pending = loop.create_future<int>();
  loop.call_soon([pending]() mutable { pending.set_result(1); });  // done in the first iteration
  Future<int> done_a = loop.create_future<int>();
  done_a.set_result(2);
  Future<int> done_b = loop.create_future<int>();
  done_b.set_result(3);
  auto got =
      loop.run_until_complete(take_all(loop, as_completed(std::vector{pending, done_a, done_b})));
  EXPECT_EQ(got, (std::vector<std::string>{"2@0", "3@0", "1@0"}));
}

TEST_F(AsCompletedTest, ExceptionsAreRethrownAtTheCorrespondingAwait) {
  auto got = loop.run_until_complete(take_all(
      loop, as_completed(std::vector{value_at(3, 3), failure_at(2, "two"), value_at(1, 1)})));
  EXPECT_EQ(got, (std::vector<std::string>{"1@1", "error:two@2", "3@3"}));
}

TEST_F(AsCompletedTest, FuturesOfDifferentLoopsAreRejectedWithInvalidArgument) {
  // asyncio: ValueError. A future of another loop would never arrive here
  // (a spurious TimeoutError, or a wait forever).
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    Future<int> here = loop.create_future<int>();
    Future<int> there = other.create_future<int>();
    EXPECT_THROW(as_completed(std::vector{here, there}, 2.0), std::invalid_argument);
    EXPECT_THROW(as_completed(std::vector{there, here}), std::invalid_argument);
    EXPECT_EQ(loop.stats().timers, 0u);  // no deadline left behind
  }
  other.close();
}

TEST_F(AsCompletedTest, ACancelledFutureRaisesCancelledErrorAtItsAwait) {
  Future<int> a = loop.create_future<int>();
  loop.call_later(1, [a]() mutable { a.cancel("gone"); });
  AsCompleted<int> results = as_completed(std::vector{a, value_at(2, 2)});
  auto body = [&]() -> Task<std::string> {
    std::string seen;
    try {
      co_await results.next();
    } catch (const CancelledError& e) {
      seen = e.message();
    }
    seen += "+" + std::to_string(co_await results.next());
    co_return seen;
  };
  EXPECT_EQ(loop.run_until_complete(body()), "gone+2");
}

// ------------------------------------------------------------ timeout

TEST_F(AsCompletedTest, WithATimeoutTheOnesPastTheDeadlineThrowTimeoutError) {
  Future<int> slow = value_at(10, 3);
  auto got = loop.run_until_complete(take_all(
      loop, as_completed(std::vector{slow, value_at(1, 1), value_at(2, 2), value_at(20, 4)}, 5.0)));
  EXPECT_EQ(got, (std::vector<std::string>{"1@1", "2@2", "timeout@5", "timeout@5"}));
  EXPECT_FALSE(slow.done());  // nothing is cancelled
  EXPECT_EQ(loop.run_until_complete(slow), 3);
}

TEST_F(AsCompletedTest, AnInfiniteTimeoutIsNoTimeoutAndMinusInfinityIsAlreadyPast) {
  const double inf = std::numeric_limits<double>::infinity();
  auto got = loop.run_until_complete(
      take_all(loop, as_completed(std::vector{value_at(1e6, 2), value_at(1, 1)}, inf)));
  EXPECT_EQ(got, (std::vector<std::string>{"1@1", "2@1000000"}));
  Future<int> pending = value_at(1, 3);
  double start = loop.time();
  auto past = loop.run_until_complete(take_all(loop, as_completed(std::vector{pending}, -inf)));
  EXPECT_EQ(past.size(), 1u);
  EXPECT_EQ(past[0].rfind("timeout@", 0), 0u);
  EXPECT_DOUBLE_EQ(loop.time(), start);
}

TEST_F(AsCompletedTest, ArrivalsBeforeTheDeadlineGiveTheirValuesEvenWhenTakenAfterIt) {
  AsCompleted<int> results = as_completed(std::vector{value_at(9, 9), value_at(1, 1)}, 5.0);
  auto body = [&]() -> Task<std::vector<std::string>> {
    co_await sleep(6);
    co_return co_await take_all(loop, std::move(results));
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<std::string>{"1@6", "timeout@6"}));
}

TEST_F(AsCompletedTest, TheTimeoutCountsFromTheCallToAsCompleted) {
  auto body = [&]() -> Task<std::vector<std::string>> {
    AsCompleted<int> results = as_completed(std::vector{value_at(4, 1)}, 3.0);
    co_await sleep(2);
    co_return co_await take_all(loop, std::move(results));
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<std::string>{"timeout@3"}));
}

TEST_F(AsCompletedTest, AFutureDoneAtTheDeadlineIsCountedOnce) {
  // Done in the deadline's iteration, before its callback ran: it times out
  // (as asyncio's), and its late arrival is dropped, not counted again.
  Future<int> at_deadline = value_at(5, 5);  // its timer comes first among equals
  auto got = loop.run_until_complete(
      take_all(loop, as_completed(std::vector{at_deadline, value_at(9, 9)}, 5.0)));
  EXPECT_EQ(got, (std::vector<std::string>{"timeout@5", "timeout@5"}));
}

TEST_F(AsCompletedTest, ATimeoutAfterEverythingArrivedChangesNothing) {
  auto got = loop.run_until_complete(
      take_all(loop, as_completed(std::vector{value_at(1, 1), value_at(2, 2)}, 5.0)));
  EXPECT_EQ(got, (std::vector<std::string>{"1@1", "2@2"}));
  loop.run_until_complete(value_at(10, 0));  // the deadline passes with nothing left
}

// ------------------------------------------------------------ awaiters

TEST_F(AsCompletedTest, ConcurrentAwaitersEachGetOneArrivalOldestFirst) {
  AsCompleted<int> results =
      as_completed(std::vector{value_at(3, 30), value_at(1, 10), value_at(2, 20)});
  std::vector<Future<int>> takers;
  for (int i = 0; i < 3; ++i)
    takers.push_back(loop.create_task(take_one(results)));
  std::vector<int> got;
  for (Future<int>& t : takers)
    got.push_back(loop.run_until_complete(t));
  EXPECT_EQ(results.size(), 0u);  // every next() was taken
  EXPECT_EQ(got, (std::vector<int>{10, 20, 30}));
}

TEST_F(AsCompletedTest, AnAwaiterCancelledBeforeAnArrivalDoesNotSwallowIt) {
  AsCompleted<int> results = as_completed(std::vector{value_at(2, 1), value_at(9, 2)});
  Future<int> first = loop.create_task(take_one(results));
  Future<int> second = loop.create_task(take_one(results));
  loop.call_later(1, [&] { first.cancel(); });
  EXPECT_EQ(loop.run_until_complete(second), 1);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  EXPECT_TRUE(first.cancelled());
}

TEST_F(AsCompletedTest, AnAwaiterCancelledAfterItWasWokenPassesTheArrivalOn) {
  Future<int> a = value_at(1, 1);
  AsCompleted<int> results = as_completed(std::vector{a, value_at(9, 2)});
  Future<int> first = loop.create_task(take_one(results));
  Future<int> second = loop.create_task(take_one(results));
  // Runs right after as_completed's own callback for a, which woke `first`:
  // `first` is cancelled before it could take the arrival.
  a.add_done_callback([&] { first.cancel(); });
  EXPECT_EQ(loop.run_until_complete(second), 1);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);  // not held back until the next arrival
  EXPECT_THROW(loop.run_until_complete(first), CancelledError);
}

// ------------------------------------------------------------ shapes

TEST_F(AsCompletedTest, AnEmptyInputGivesNoIterations) {
  int iterations = 0;
  for (Task<int> next : as_completed(std::vector<Future<int>>{})) {
    (void)next;
    ++iterations;
  }
  EXPECT_EQ(iterations, 0);
  AsCompleted<int> none = as_completed(std::vector<Future<int>>{}, 1.0);
  EXPECT_EQ(none.size(), 0u);
  EXPECT_THROW((void)none.next(), InvalidStateError);
}

TEST_F(AsCompletedTest, UsableAsARangeForOverTasksThatAreScheduledAtOnce) {
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    tasks.push_back(after_sleep(3, 3));
    tasks.push_back(after_sleep(1, 1));
    tasks.push_back(after_sleep(2, 2));
    std::size_t before = all_tasks(loop).size();
    std::vector<int> got;
    for (Task<int> next : as_completed(std::move(tasks))) {
      EXPECT_EQ(all_tasks(loop).size(), before + 3 - got.size());
      got.push_back(co_await next);
    }
    co_return got;
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<int>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(loop.time(), 3.0);
}

TEST_F(AsCompletedTest, WorksOnVoidAndMoveOnlyResults) {
  Future<void> nothing = loop.create_future<void>();
  loop.call_later(1, [nothing]() mutable { nothing.set_result(); });
  Future<std::unique_ptr<int>> pointer = loop.create_future<std::unique_ptr<int>>();
  loop.call_later(2, [pointer]() mutable { pointer.set_result(std::make_unique<int>(7)); });
  auto body = [&]() -> Task<int> {
    for (Task<void> next : as_completed(std::vector{nothing}))
      co_await next;
    int v = 0;
    for (Task<std::unique_ptr<int>> next : as_completed(std::vector{pointer})) {
      std::unique_ptr<int> p = co_await next;
      v = *p;
    }
    co_return v;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 7);
}

TEST_F(AsCompletedTest, AnEmptyFutureHandleIsRejectedWithInvalidStateError) {
  EXPECT_THROW(as_completed(std::vector{value_at(1, 1), Future<int>()}), InvalidStateError);
}

// ------------------------------------------------------------ lifetimes

TEST_F(AsCompletedTest, DroppingItWhileFuturesArePendingIsHarmless) {
  Future<int> a = value_at(1, 1);
  { AsCompleted<int> results = as_completed(std::vector{a}, 2.0); }
  EXPECT_EQ(loop.run_until_complete(a), 1);
  loop.run_until_complete(value_at(5, 0));  // past the deadline it had
}

TEST_F(AsCompletedTest, ClosingTheLoopWithAwaitersPendingLosesNothing) {
  auto hold = [](Counted, AsCompleted<int>& results) -> Task<int> {
    co_return co_await results.next();
  };
  Future<int> never = loop.create_future<int>();
  AsCompleted<int> results = as_completed(std::vector{never, value_at(9, 9)}, 20.0);
  Future<int> taker = loop.create_task(hold(Counted{}, results));
  loop.run_until_complete(value_at(1, 0));
  loop.close();
  EXPECT_TRUE(taker.cancelled());
  EXPECT_EQ(Counted::alive(), 0);
}

// ------------------------------------------------------------ asyncio scenarios: more of
// test_tasks.py's as_completed tests

// test_as_completed_reverse_wait: awaiting the second next() first gives it
// the first arrival; the first next() then gets the second.
TEST_F(AsCompletedTest, AwaitingALaterNextFirstGivesItTheFirstArrival) {
  AsCompleted<int> results = as_completed(std::vector{value_at(0.05, 1), value_at(0.10, 2)});
  auto body = [&]() -> Task<std::vector<double>> {
    Task<int> first = results.next();
    Task<int> second = results.next();
    std::vector<double> got;
    got.push_back(co_await std::move(second));
    got.push_back(loop.time());
    got.push_back(co_await std::move(first));
    got.push_back(loop.time());
    co_return got;
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<double>{1, 0.05, 2, 0.10}));
}

// test_as_completed_concurrent: the next() tasks, awaited together by wait(),
// give every result once.
TEST_F(AsCompletedTest, NextTasksAwaitedTogetherGiveEveryResultOnce) {
  AsCompleted<int> results = as_completed(std::vector{value_at(0.05, 1), value_at(0.05, 2)});
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<Future<int>> futs;
    while (results.size() != 0)
      futs.push_back(create_task(results.next()));
    WaitResult<int> r = co_await wait(futs);
    std::vector<int> got;
    for (Future<int>& f : r.done)
      got.push_back(f.result());
    std::sort(got.begin(), got.end());
    co_return got;
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<int>{1, 2}));
}

// ------------------------------------------------------------ asyncio 3.12 details

// as_completed's _on_timeout: a future finished in the deadline's iteration,
// whose done callback has not run yet, counts as timed out.
// As in asyncio 3.12: (Lib/asyncio/tasks.py, as_completed), _on_timeout queues a None
// (TimeoutError) for every future still in `todo` and clears it; `todo` loses a future only when
// its _on_completion runs, one iteration after it finished, and that late _on_completion returns at
// once ("_on_timeout() was here first"). So a future whose timer comes first among equals with the
// deadline's still gives TimeoutError.
TEST_F(AsCompletedTest, AFutureDoneInTheDeadlinesIterationButNotYetSeenTimesOut) {
  Future<int> at_deadline = value_at(5, 5);  // its timer comes first among equals
  auto got = loop.run_until_complete(take_all(loop, as_completed(std::vector{at_deadline}, 5.0)));
  EXPECT_EQ(got, (std::vector<std::string>{"timeout@5"}));
  EXPECT_EQ(at_deadline.result(), 5);
}

}  // namespace
}  // namespace eddy
