// Tests for eddy::gather and eddy::gather_settled (eddy/gather.hpp): result
// order and shapes, futures and tasks as children, the first failure, the
// settled form, cancellation both ways, bad arguments, and lifetimes at loop
// close. Mirrors asyncio.gather's observable rules. Time runs on the
// fixture's VirtualClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <eddy/as_completed.hpp>
#include <eddy/future.hpp>
#include <eddy/gather.hpp>
#include <eddy/shield.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/wait.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::LoopTest;
using eddy::testing::what_of;

class GatherTest : public LoopTest {
 protected:
  void capture_reports() {
    loop.set_exception_handler([this](Loop&, const ExceptionContext& context) {
      reports.push_back(context.message);
      sources.push_back(context.source);
    });
  }
  /// Runs the loop for `seconds` of virtual time.
  void run_for(double seconds) { loop.run_until_complete(loop.create_task(pause(seconds))); }
  static Task<> pause(double seconds) { co_await sleep(seconds); }

  std::vector<std::string> reports;
  std::vector<SourceLocation> sources;  // of each report
};

Task<int> after_sleep(double delay, int v) {
  co_await sleep(delay);
  co_return v;
}

Task<int> throws_after(double delay, std::string what) {
  co_await sleep(delay);
  throw std::runtime_error(what);
}

Task<> nothing_after(double delay) {
  co_await sleep(delay);
}

Task<std::unique_ptr<int>> pointer_after(double delay, int v) {
  co_await sleep(delay);
  co_return std::make_unique<int>(v);
}

/// The message of the CancelledError in `error`.
std::string cancel_message(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError& e) {
    return e.message();
  } catch (...) {
    return "<not a CancelledError>";
  }
}

// ------------------------------------------------------------ results

TEST_F(GatherTest, VariadicGatherGivesATupleInArgumentOrderWhateverTheCompletionOrder) {
  std::vector<int> finished;
  auto child = [&](double delay, int v) -> Task<int> {
    co_await sleep(delay);
    finished.push_back(v);
    co_return v;
  };
  auto word = [](double delay) -> Task<std::string> {
    co_await sleep(delay);
    co_return "two";
  };
  auto body = [&]() -> Task<std::tuple<int, std::string, int>> {
    co_return co_await gather(child(3, 1), word(1), child(2, 3));
  };
  EXPECT_EQ(loop.run_until_complete(body()), std::make_tuple(1, std::string("two"), 3));
  EXPECT_EQ(finished, (std::vector<int>{3, 1}));
  EXPECT_DOUBLE_EQ(loop.time(), 3.0);
}

TEST_F(GatherTest, AVoidChildStandsAsMonostateInTheTuple) {
  auto nothing = []() -> Task<> { co_await sleep(1); };
  auto body = [&]() -> Task<int> {
    auto gathered = gather(nothing(), after_sleep(2, 7));
    static_assert(std::is_same_v<decltype(gathered), Future<std::tuple<std::monostate, int>>>);
    auto [unit, v] = co_await gathered;
    EXPECT_EQ(unit, std::monostate{});
    co_return v;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 7);
}

TEST_F(GatherTest, TaskArgumentsAreScheduledInArgumentOrder) {
  std::vector<std::string> started;
  auto record = [&](std::string name) -> Task<int> {
    started.push_back(name);
    co_return 0;
  };
  auto body = [&]() -> Task<> { co_await gather(record("a"), record("b"), record("c")); };
  loop.run_until_complete(body());
  EXPECT_EQ(started, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(GatherTest, FuturesAndTasksMixAndATaskIsScheduledAtOnce) {
  auto set_then_return = [](Future<int> target) -> Task<int> {
    target.set_result(1);  // the plain future is completed by the task itself
    co_return 2;
  };
  auto body = [&]() -> Task<std::tuple<int, int>> {
    Future<int> plain = loop.create_future<int>();
    std::size_t before = all_tasks(loop).size();
    auto gathered = gather(plain, set_then_return(plain));
    EXPECT_EQ(all_tasks(loop).size(), before + 1);  // scheduled by gather, not by the await
    co_return co_await gathered;
  };
  EXPECT_EQ(loop.run_until_complete(body()), std::make_tuple(1, 2));
}

TEST_F(GatherTest, RangeGatherOverFuturesGivesAVectorInOrder) {
  std::vector<Future<int>> futures;
  for (int i = 0; i < 5; ++i) {
    Future<int> f = loop.create_future<int>();
    loop.call_later(5 - i, [f, i]() mutable { f.set_result(i * 10); });  // last one first
    futures.push_back(f);
  }
  auto gathered = gather(futures);
  static_assert(std::is_same_v<decltype(gathered), Future<std::vector<int>>>);
  EXPECT_EQ(loop.run_until_complete(gathered), (std::vector<int>{0, 10, 20, 30, 40}));
}

TEST_F(GatherTest, RangeGatherOfStringsGivesThemInOrderWhateverOrderTheyFinish) {
  // Numbers are stored straight into the result; other types wait in
  // optionals: both keep the argument order.
  std::vector<Future<std::string>> futures;
  for (int i = 0; i < 4; ++i) {
    Future<std::string> f = loop.create_future<std::string>();
    loop.call_later(4 - i, [f, i]() mutable { f.set_result(std::string(40, char('a' + i))); });
    futures.push_back(f);
  }
  std::vector<std::string> got = loop.run_until_complete(gather(futures));
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)], std::string(40, char('a' + i)));
}

TEST_F(GatherTest, RangeGatherOverTasksSchedulesThemAndGivesAVectorInOrder) {
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    tasks.push_back(after_sleep(3, 1));
    tasks.push_back(after_sleep(1, 2));
    tasks.push_back(after_sleep(2, 3));
    std::size_t before = all_tasks(loop).size();
    auto gathered = gather(std::move(tasks));
    EXPECT_EQ(all_tasks(loop).size(), before + 3);
    co_return co_await gathered;
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<int>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(loop.time(), 3.0);  // concurrently, not one after the other
}

TEST_F(GatherTest, AVoidRangeGivesAVectorOfMonostate) {
  auto nothing = [](double delay) -> Task<> { co_await sleep(delay); };
  auto body = [&]() -> Task<std::size_t> {
    std::vector<Task<>> tasks;
    tasks.push_back(nothing(2));
    tasks.push_back(nothing(1));
    std::vector<std::monostate> units = co_await gather(std::move(tasks));
    co_return units.size();
  };
  EXPECT_EQ(loop.run_until_complete(body()), 2u);
}

TEST_F(GatherTest, MoveOnlyResultsAreMovedIntoTheGather) {
  auto body = [&]() -> Task<int> {
    auto [a, b] = co_await gather(pointer_after(2, 1), pointer_after(1, 2));
    std::vector<Task<std::unique_ptr<int>>> tasks;
    tasks.push_back(pointer_after(1, 3));
    tasks.push_back(pointer_after(2, 4));
    std::vector<std::unique_ptr<int>> ranged = co_await gather(std::move(tasks));
    auto [settled] = co_await gather_settled(pointer_after(1, 5));
    co_return *a * 10000 + *b * 1000 + *ranged[0] * 100 + *ranged[1] * 10 + *settled.value();
  };
  EXPECT_EQ(loop.run_until_complete(body()), 12345);
}

// A standard container of move-only values declares a copy constructor that
// cannot be used: such results are moved too, in every form.
TEST_F(GatherTest, ContainersOfMoveOnlyValuesAreMovedIntoTheGather) {
  using Table = std::map<int, std::unique_ptr<int>>;
  auto table = [](int key, int value) -> Task<Table> {
    Table t;
    t.emplace(key, std::make_unique<int>(value));
    co_return t;
  };
  auto body = [&]() -> Task<int> {
    auto [a, b] = co_await gather(table(1, 10), table(2, 20));
    auto [settled] = co_await gather_settled(table(3, 30));
    std::vector<Task<Table>> tasks;
    tasks.push_back(table(4, 40));
    std::vector<Outcome<Table>> ranged = co_await gather_settled(std::move(tasks));
    const Outcome<Table>& first = ranged[0];  // value() on a const Outcome
    co_return *a.at(1) + *b.at(2) + *settled.value().at(3) + *first.value().at(4);
  };
  EXPECT_EQ(loop.run_until_complete(body()), 100);
}

TEST_F(GatherTest, ChildrenOfACopyableTypeStillHoldTheirResultsAfterTheGather) {
  Future<std::string> a = loop.create_future<std::string>();
  a.set_result("kept");
  auto [copy] = loop.run_until_complete(gather(a));
  EXPECT_EQ(copy, "kept");
  EXPECT_EQ(a.result(), "kept");
}

TEST_F(GatherTest, AFutureGivenTwiceGivesItsResultInBothPlaces) {
  Future<int> a = loop.create_future<int>();
  loop.call_later(1, [a]() mutable { a.set_result(4); });
  EXPECT_EQ(loop.run_until_complete(gather(a, a)), std::make_tuple(4, 4));
  EXPECT_EQ(loop.run_until_complete(gather(std::vector{a, a, a})), (std::vector<int>{4, 4, 4}));
}

TEST_F(GatherTest, AGatherOfDoneFuturesCompletesOnALaterIterationNotInline) {
  Future<int> a = loop.create_future<int>();
  a.set_result(1);
  auto gathered = gather(a);
  EXPECT_FALSE(gathered.done());  // done callbacks go through call_soon
  EXPECT_EQ(loop.run_until_complete(gathered), std::make_tuple(1));
}

TEST_F(GatherTest, AGatherSeesATaskChildEndInTheSameIterationWhenNothingElseWatchesIt) {
  // eddy's one departure from asyncio's timing: a task child whose only done
  // callback is the gather's hands over its outcome as it ends, instead of
  // one iteration later (nothing else can observe the order).
  Future<int> child;
  Future<std::vector<int>> gathered;
  bool gather_done_with_child = false;
  auto body = [&]() -> Task<int> {
    co_await sleep(1);
    // Runs on the next iteration, before anything the child's end schedules.
    loop.call_soon([&] { gather_done_with_child = child.done() && gathered.done(); });
    co_return 7;
  };
  child = loop.create_task(body());
  gathered = gather(std::vector{child});
  EXPECT_EQ(loop.run_until_complete(gathered), std::vector<int>{7});
  EXPECT_TRUE(gather_done_with_child);
}

TEST_F(GatherTest, ACallbackAddedToATaskChildBeforeTheGatherStillRunsBeforeTheGatherSeesIt) {
  Future<int> child;
  Future<std::vector<int>> gathered;
  std::vector<std::string> order;
  bool child_done = false;
  bool gather_done_with_child = true;
  auto body = [&]() -> Task<int> {
    co_await sleep(1);
    loop.call_soon([&] {
      child_done = child.done();
      gather_done_with_child = gathered.done();
    });
    co_return 7;
  };
  child = loop.create_task(body());
  child.add_done_callback([&] { order.push_back(gathered.done() ? "after" : "before"); });
  gathered = gather(std::vector{child});
  EXPECT_EQ(loop.run_until_complete(gathered), std::vector<int>{7});
  EXPECT_EQ(order, std::vector<std::string>{"before"});  // asyncio's order: registration
  EXPECT_TRUE(child_done);
  EXPECT_FALSE(gather_done_with_child);
}

TEST_F(GatherTest, ACallbackAddedToATaskChildAfterTheGatherRunsAfterTheGatherSawTheChild) {
  // The gather's watcher is no longer the child's only callback: both go
  // through call_soon, in registration order, and neither is lost.
  std::vector<std::string> order;
  Future<int> child = loop.create_task(after_sleep(1.0, 7));
  Future<std::vector<int>> gathered = gather(std::vector{child});
  child.add_done_callback([&] { order.push_back(gathered.done() ? "after" : "before"); });
  EXPECT_EQ(loop.run_until_complete(gathered), std::vector<int>{7});
  EXPECT_EQ(order, std::vector<std::string>{"after"});  // asyncio's order: registration
}

// ------------------------------------------------------------ failures

TEST_F(GatherTest, TheFirstChildExceptionFailsTheGatherWhileTheOthersKeepRunning) {
  capture_reports();
  Future<int> slow;
  auto body = [&]() -> Task<std::string> {
    slow = create_task(after_sleep(3, 3));
    auto gathered = gather(throws_after(2, "second"), throws_after(1, "first"), slow);
    std::string caught;
    try {
      co_await gathered;
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    EXPECT_DOUBLE_EQ(loop.time(), 1.0);
    EXPECT_FALSE(slow.done());  // not cancelled: it keeps running
    co_return caught;
  };
  EXPECT_EQ(loop.run_until_complete(body()), "first");
  run_for(5);
  EXPECT_EQ(slow.result(), 3);
  slow = {};
  // The second failure came after the gather was decided: it is not reported.
  EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST_F(GatherTest, TheFirstFailureOfARangeGatherFailsIt) {
  std::vector<Future<int>> futures;
  for (int i = 0; i < 3; ++i)
    futures.push_back(loop.create_future<int>());
  auto gathered = gather(futures);
  loop.call_later(1, [&] { futures[2].set_exception(std::invalid_argument("bad")); });
  loop.call_later(2, [&] { futures[0].set_result(0); });
  EXPECT_THROW(loop.run_until_complete(gathered), std::invalid_argument);
  EXPECT_FALSE(futures[1].done());
  EXPECT_FALSE(futures[0].done());
  futures[1].set_result(1);
}

TEST_F(GatherTest, TheGathersOwnFailureIsReportedIfNobodyRetrievesIt) {
  capture_reports();
  {
    Future<int> a = loop.create_future<int>();
    auto gathered = gather(a);
    a.set_exception(std::runtime_error("lost"));
    run_for(1);
    EXPECT_TRUE(gathered.done());
  }
  ASSERT_EQ(reports.size(), 1u);  // the gather's future; the child's was retrieved
  EXPECT_EQ(reports[0], "Future exception was never retrieved");
  // Made by gather, whose arguments are a pack: named, not a line of eddy's header.
  EXPECT_FALSE(sources[0].known());
  EXPECT_STREQ(sources[0].function, "eddy::gather");
}

TEST_F(GatherTest, TasksScheduledByACombinatorAreReportedAsMadeByItNotByEddysHeader) {
  // A failed task nobody retrieves is reported with where it was made. A
  // task that wait or as_completed scheduled was made by that call, whose
  // arguments are not a call site of the user's: the report names the call.
  // A shield(Task) or run_until_complete(Task) names the user's line.
  capture_reports();
  auto body = [&]() -> Task<> {
    std::vector<Task<int>> waited;
    waited.push_back(after_sleep(0.1, 1));
    waited.push_back(throws_after(0.5, "wait's pending one"));
    (void)co_await wait(std::move(waited), ReturnWhen::first_completed);
    std::vector<Task<int>> ranged;
    ranged.push_back(throws_after(0.5, "as_completed's straggler"));
    try {
      for (Task<int> next : as_completed(std::move(ranged), 0.1))
        (void)co_await std::move(next);
    } catch (const TimeoutError&) {
    }
    co_await sleep(1);
  };
  loop.run_until_complete(body());
  int shield_line = 0;
  auto shielded = [&]() -> Task<> {
    shield_line = __LINE__ + 1;
    Future<int> outer = shield(throws_after(0.5, "shielded"));
    outer.cancel();
    co_await sleep(1);
  };
  loop.run_until_complete(shielded());
  ASSERT_EQ(sources.size(), 3u);
  std::vector<std::string> makers;
  for (const SourceLocation& source : sources) {
    if (source.known()) {
      EXPECT_EQ(source.line, static_cast<std::uint_least32_t>(shield_line));
      EXPECT_NE(std::string(source.file).find("test_gather.cpp"), std::string::npos);
    } else {
      makers.push_back(source.function);
    }
  }
  std::sort(makers.begin(), makers.end());
  EXPECT_EQ(makers, (std::vector<std::string>{"eddy::as_completed", "eddy::wait"}));
}

// ------------------------------------------------------------ gather_settled

TEST_F(GatherTest, SettledGatherGivesAnOutcomePerChildAndNeverFailsBecauseOfOne) {
  capture_reports();
  Future<int> cancelled = loop.create_future<int>();
  loop.call_later(1, [cancelled]() mutable { cancelled.cancel("by hand"); });
  auto body = [&]() -> Task<> {
    auto [value, error, gone] =
        co_await gather_settled(after_sleep(3, 7), throws_after(2, "failed"), cancelled);
    EXPECT_TRUE(value.has_value());
    EXPECT_FALSE(value.cancelled());
    EXPECT_EQ(value.value(), 7);
    EXPECT_EQ(value.error(), nullptr);

    EXPECT_FALSE(error.has_value());
    EXPECT_FALSE(error.cancelled());
    EXPECT_EQ(what_of(error.error()), "failed");
    EXPECT_THROW(error.value(), std::runtime_error);

    EXPECT_FALSE(gone.has_value());
    EXPECT_TRUE(gone.cancelled());
    EXPECT_EQ(cancel_message(gone.error()), "by hand");
    EXPECT_THROW(gone.value(), CancelledError);
    EXPECT_DOUBLE_EQ(loop.time(), 3.0);  // waited for every child
  };
  loop.run_until_complete(body());
  EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST_F(GatherTest, SettledRangeGatherGivesOutcomesInOrder) {
  capture_reports();
  auto body = [&]() -> Task<> {
    std::vector<Task<int>> tasks;
    tasks.push_back(throws_after(1, "one"));
    tasks.push_back(after_sleep(2, 2));
    tasks.push_back(throws_after(3, "three"));
    std::vector<Outcome<int>> outcomes = co_await gather_settled(std::move(tasks));
    EXPECT_EQ(outcomes.size(), 3u);
    EXPECT_EQ(what_of(outcomes[0].error()), "one");
    EXPECT_EQ(outcomes[1].value(), 2);
    EXPECT_EQ(what_of(outcomes[2].error()), "three");
  };
  loop.run_until_complete(body());
  EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST_F(GatherTest, SettledGatherOfVoidChildrenHoldsMonostateOutcomes) {
  auto fails = []() -> Task<> {
    co_await sleep(1);
    throw std::logic_error("void failed");
  };
  auto body = [&]() -> Task<> {
    auto [ok, bad] = co_await gather_settled(nothing_after(1), fails());
    EXPECT_TRUE(ok.has_value());
    EXPECT_EQ(ok.value(), std::monostate{});
    EXPECT_EQ(what_of(bad.error()), "void failed");
  };
  loop.run_until_complete(body());
}

// ------------------------------------------------------------ cancellation

TEST_F(GatherTest, CancellingTheGatherCancelsEveryChildNotDoneAndEndsItCancelled) {
  Future<int> done_child = loop.create_future<int>();
  done_child.set_result(1);
  Future<int> a, b;
  Future<std::tuple<int, int, int>> gathered;
  auto body = [&]() -> Task<std::string> {
    a = create_task(after_sleep(5, 2));
    b = create_task(after_sleep(10, 3));
    gathered = gather(done_child, a, b);
    co_await sleep(1);
    EXPECT_TRUE(gathered.cancel("stop"));
    EXPECT_FALSE(gathered.done());  // it ends once the children say so
    try {
      co_await gathered;
    } catch (const CancelledError& e) {
      co_return e.message();
    }
    co_return "not cancelled";
  };
  EXPECT_EQ(loop.run_until_complete(body()), "stop");
  EXPECT_FALSE(gathered.cancelled());  // asyncio: finished, with the CancelledError
  EXPECT_EQ(cancel_message(gathered.exception()), "stop");
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
  EXPECT_EQ(done_child.result(), 1);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  EXPECT_FALSE(gathered.cancel());  // done: nothing to cancel
}

TEST_F(GatherTest, CancellingTheTaskThatAwaitsTheGatherCancelsTheChildren) {
  Future<int> a, b;
  auto body = [&]() -> Task<int> {
    a = create_task(after_sleep(5, 2));
    b = create_task(after_sleep(10, 3));
    auto [x, y] = co_await gather(a, b);
    co_return x + y;
  };
  Future<int> waiting = loop.create_task(body());
  loop.call_later(1, [&] { waiting.cancel(); });
  EXPECT_THROW(loop.run_until_complete(waiting), CancelledError);
  EXPECT_TRUE(waiting.cancelled());
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
}

TEST_F(GatherTest, CancellingARangeGatherCancelsItsChildren) {
  std::vector<Future<int>> futures;
  for (int i = 0; i < 3; ++i)
    futures.push_back(loop.create_future<int>());
  futures[1].set_result(1);
  auto gathered = gather(futures);
  EXPECT_TRUE(gathered.cancel());
  EXPECT_THROW(loop.run_until_complete(gathered), CancelledError);
  EXPECT_TRUE(futures[0].cancelled());
  EXPECT_FALSE(futures[1].cancelled());
  EXPECT_TRUE(futures[2].cancelled());
}

TEST_F(GatherTest, AGatherWhoseChildIgnoresTheCancelStillEndsCancelled) {
  auto stubborn = []() -> Task<int> {
    try {
      co_await sleep(10);
    } catch (const CancelledError&) {
    }
    co_return 7;
  };
  Future<int> child, settled_child;
  Future<std::tuple<int>> gathered;
  Future<std::tuple<Outcome<int>>> settled;
  auto body = [&]() -> Task<> {
    child = create_task(stubborn());
    settled_child = create_task(stubborn());
    gathered = gather(child);
    settled = gather_settled(settled_child);
    co_await sleep(1);
    EXPECT_TRUE(gathered.cancel());
    EXPECT_TRUE(settled.cancel());
    co_await sleep(1);
  };
  loop.run_until_complete(body());
  EXPECT_EQ(child.result(), 7);  // they answered the cancel with a result...
  EXPECT_EQ(settled_child.result(), 7);
  // ... but a cancelled gather ends with a CancelledError (its exception).
  EXPECT_THROW(gathered.result(), CancelledError);
  EXPECT_THROW(settled.result(), CancelledError);
  EXPECT_FALSE(gathered.cancelled());
  EXPECT_FALSE(settled.cancelled());
}

TEST_F(GatherTest, CancellingASettledGatherEndsItWithCancelledErrorToo) {
  Future<int> a;
  Future<std::tuple<Outcome<int>, Outcome<int>>> settled;
  auto body = [&]() -> Task<> {
    a = create_task(after_sleep(5, 1));
    settled = gather_settled(a, after_sleep(0.5, 2));
    co_await sleep(1);
    EXPECT_TRUE(settled.cancel("enough"));
    co_await sleep(1);
  };
  loop.run_until_complete(body());
  EXPECT_FALSE(settled.cancelled());
  EXPECT_EQ(cancel_message(settled.exception()), "enough");
  EXPECT_TRUE(a.cancelled());
}

TEST_F(GatherTest, ACancelledSettledGatherDoesNotReportAChildFailureItSaw) {
  capture_reports();
  Future<std::tuple<Outcome<int>, Outcome<int>>> settled;
  auto body = [&]() -> Task<> {
    settled = gather_settled(throws_after(1, "seen"), after_sleep(5, 2));
    co_await sleep(2);  // the first child failed; the gather holds its exception
    EXPECT_TRUE(settled.cancel());
    co_await sleep(1);
  };
  loop.run_until_complete(body());
  EXPECT_THROW(settled.result(), CancelledError);  // retrieved: not reported
  settled = {};
  EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST_F(GatherTest, CancellingAGatherWhoseChildrenAreAllDoneReturnsFalse) {
  Future<int> a = loop.create_future<int>();
  a.set_result(1);
  auto gathered = gather(a);
  EXPECT_FALSE(gathered.cancel());  // the child is done; its callback is on its way
  EXPECT_EQ(loop.run_until_complete(gathered), std::make_tuple(1));
}

TEST_F(GatherTest, AChildCancelledOnItsOwnMakesTheGatherRaiseCancelledError) {
  Future<int> own = loop.create_future<int>();
  Future<int> other;
  loop.call_later(1, [&] { own.cancel("on its own"); });
  auto body = [&]() -> Task<std::string> {
    other = create_task(after_sleep(5, 2));
    try {
      co_await gather(own, other);
    } catch (const CancelledError& e) {
      EXPECT_DOUBLE_EQ(loop.time(), 1.0);
      EXPECT_FALSE(other.done());  // the others keep running
      co_return e.message();
    }
    co_return "no CancelledError";
  };
  EXPECT_EQ(loop.run_until_complete(body()), "on its own");
  EXPECT_EQ(loop.run_until_complete(other), 2);
}

// asyncio's test_one_cancellation: "the outer Future is *not* cancelled".
TEST_F(GatherTest, AChildCancelledOnItsOwnEndsTheGatherWithItsCancelledErrorNotCancelled) {
  std::vector<Future<int>> futures{loop.create_future<int>(), loop.create_future<int>()};
  auto gathered = gather(futures);
  futures[0].cancel("child");
  EXPECT_THROW(loop.run_until_complete(gathered), CancelledError);
  EXPECT_TRUE(gathered.done());
  EXPECT_FALSE(gathered.cancelled());
  EXPECT_EQ(cancel_message(gathered.exception()), "child");
  EXPECT_FALSE(futures[1].done());
  futures[1].set_result(0);
}

// ------------------------------------------------------------ edges and misuse

TEST_F(GatherTest, AnEmptyRangeIsDoneAtOnceWithAnEmptyVector) {
  auto body = [&]() -> Task<> {
    auto of_futures = gather(std::vector<Future<int>>{});
    EXPECT_TRUE(of_futures.done());
    EXPECT_TRUE(of_futures.result().empty());
    auto of_tasks = gather(std::vector<Task<int>>{});
    EXPECT_TRUE(of_tasks.done());
    EXPECT_TRUE(of_tasks.result().empty());
    auto settled = gather_settled(std::vector<Future<int>>{});
    EXPECT_TRUE(settled.done());
    EXPECT_TRUE(settled.result().empty());
    co_return;
  };
  loop.run_until_complete(body());
}

TEST_F(GatherTest, AnEmptyRangeOutsideARunningLoopThrowsNoRunningLoopError) {
  EXPECT_THROW(gather(std::vector<Future<int>>{}), NoRunningLoopError);
}

TEST_F(GatherTest, FuturesOfDifferentLoopsAreRejectedWithInvalidArgument) {
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    Future<int> here = loop.create_future<int>();
    Future<int> there = other.create_future<int>();
    EXPECT_THROW(gather(here, there), std::invalid_argument);
    EXPECT_THROW(gather(std::vector{here, there}), std::invalid_argument);
    EXPECT_THROW(gather_settled(std::vector{there, here}), std::invalid_argument);
    here.set_result(1);  // still usable: the gather took nothing
    EXPECT_EQ(loop.run_until_complete(gather(here)), std::make_tuple(1));
  }
  other.close();
}

TEST_F(GatherTest, ARejectedRangeGatherLeavesEarlierChildrenWorkingAndTheirErrorsRetrieved) {
  // asyncio's gather adds its callback to each child as it goes: the
  // children before the one of another loop keep a callback that does
  // nothing but mark their exception retrieved. eddy's range form does the
  // same (it checks each child in the pass that watches it).
  capture_reports();
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    Future<int> fine = loop.create_future<int>();
    Future<int> failing = loop.create_future<int>();
    Future<int> there = other.create_future<int>();
    EXPECT_THROW(gather(std::vector{fine, failing, there}), std::invalid_argument);
    fine.set_result(7);
    failing.set_exception(std::runtime_error("lost?"));
    EXPECT_EQ(loop.run_until_complete(fine), 7);
    loop.run_once();  // the inert callbacks run
  }
  loop.run_once();
  EXPECT_TRUE(reports.empty()) << reports.front();
  other.close();
}

TEST_F(GatherTest, ARejectedRangeGatherHoldsNoneOfTheFuturesFromTheRejectedOneOn) {
  // The children before the one of another loop keep the gather's
  // callbacks, so its state lives on; it must not hold the others. Here the
  // first child comes again after the rejected one: held by the state, it
  // would hold the state through its callback, and neither would ever go.
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    auto mine = std::make_shared<int>(1);
    std::weak_ptr<int> watch = mine;
    Future<std::shared_ptr<int>> pending = loop.create_future<std::shared_ptr<int>>();
    Future<std::shared_ptr<int>> there = other.create_future<std::shared_ptr<int>>();
    Future<std::shared_ptr<int>> after = loop.create_future<std::shared_ptr<int>>();
    EXPECT_THROW(gather(std::vector{pending, there, pending, after}), std::invalid_argument);
    after.set_result(std::move(mine));
    after = Future<std::shared_ptr<int>>();
    EXPECT_TRUE(watch.expired());  // the gather let go of `after`
    pending.set_result(nullptr);
    loop.run_once();  // the inert callback on `pending` runs
  }
  other.close();
}

TEST_F(GatherTest, AnEmptyFutureHandleIsRejectedWithInvalidStateError) {
  Future<int> empty;
  Future<int> fine = loop.create_future<int>();
  EXPECT_THROW(gather(fine, empty), InvalidStateError);
  EXPECT_THROW(gather(std::vector{fine, empty}), InvalidStateError);
}

// asyncio's gather makes a task of each coroutine as it goes: one that
// raises for a bad argument later leaves the tasks it made running.

Task<int> counts_a_run(int* ran) {
  ++*ran;
  co_return 1;
}

TEST_F(GatherTest, AGatherRejectedForAnotherLoopsFutureLeavesTheTasksItMadeRunning) {
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    Future<int> there = other.create_future<int>();
    int ran = 0;
    auto main = [&]() -> Task<void> {
      EXPECT_THROW((void)gather(counts_a_run(&ran), there), std::invalid_argument);
      co_await sleep(0);
    };
    loop.run_until_complete(main());
    EXPECT_EQ(ran, 1);
  }
  other.close();
}

TEST_F(GatherTest, AGatherRejectedForAnEmptyFutureLeavesTheTasksItMadeRunning) {
  int ran = 0;
  auto main = [&]() -> Task<void> {
    EXPECT_THROW((void)gather_settled(counts_a_run(&ran), Future<int>()), InvalidStateError);
    co_await sleep(0);
  };
  loop.run_until_complete(main());
  EXPECT_EQ(ran, 1);
}

TEST_F(GatherTest, ARangeGatherRejectedForAnEmptyTaskLeavesTheTasksItMadeRunning) {
  int ran = 0;
  auto main = [&]() -> Task<void> {
    std::vector<Task<int>> tasks;
    tasks.push_back(counts_a_run(&ran));
    tasks.push_back(Task<int>());
    EXPECT_THROW((void)gather(std::move(tasks)), InvalidStateError);
    co_await sleep(0);
  };
  loop.run_until_complete(main());
  EXPECT_EQ(ran, 1);
}

TEST_F(GatherTest, SetResultOnTheGathersFutureThrowsRuntimeError) {
  Future<int> a = loop.create_future<int>();
  auto gathered = gather(a);
  EXPECT_THROW(gathered.set_result(std::make_tuple(1)), RuntimeError);
  EXPECT_THROW(gathered.set_exception(std::runtime_error("no")), RuntimeError);
  auto ranged = gather(std::vector{a});
  EXPECT_THROW(ranged.set_result({}), RuntimeError);
  EXPECT_FALSE(gathered.done());
  a.set_result(2);
  EXPECT_EQ(loop.run_until_complete(gathered), std::make_tuple(2));
  EXPECT_EQ(loop.run_until_complete(ranged), (std::vector<int>{2}));
}

// ------------------------------------------------------------ lifetimes

TEST_F(GatherTest, ClosingTheLoopWithAGatherOfTasksPendingLosesNothing) {
  auto hold = [](Counted, double delay) -> Task<int> {
    co_await sleep(delay);
    co_return 1;
  };
  Future<std::tuple<int, int>> gathered;
  auto body = [&]() -> Task<> {
    gathered = gather(hold(Counted{}, 10), hold(Counted{}, 20));
    co_await gathered;
  };
  Future<void> waiting = loop.create_task(body());
  run_for(1);
  EXPECT_EQ(Counted::alive(), 2);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(waiting.cancelled());
  EXPECT_TRUE(gathered.cancelled());
}

TEST_F(GatherTest, ClosingTheLoopEndsAGatherOfTasksWhoseFuturesAreStillHeld) {
  auto hold = [](double delay) -> Task<int> {
    co_await sleep(delay);
    co_return 1;
  };
  Future<int> a = loop.create_task(hold(10));
  Future<int> b = loop.create_task(hold(20));
  Future<std::vector<int>> range = gather(std::vector<Future<int>>{a, b});
  Future<std::tuple<int, int>> tuple = gather(a, b);
  run_for(1);
  loop.close();  // the tasks end cancelled; their callbacks can never run
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(range.cancelled());
  EXPECT_TRUE(tuple.cancelled());
  EXPECT_FALSE(range.cancel());  // done: nothing to cancel
}

TEST_F(GatherTest, ClosingTheLoopWithAChildsCallbackNotRunYetLosesNothing) {
  auto value = [](Counted) -> Task<int> { co_return 1; };
  Future<std::tuple<int, int>> gathered;
  auto body = [&]() -> Task<> {
    gathered = gather(value(Counted{}), after_sleep(10, 2));
    co_await sleep(0);  // the first child ends here; its done callback is queued
    loop.stop();
  };
  loop.create_task(body());
  loop.run_forever();
  loop.close();  // the queued callback is destroyed unrun
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(gathered.cancelled());
}

TEST_F(GatherTest, ClosingTheLoopWithAGatherOfPendingFuturesLosesNothing) {
  Future<std::vector<int>> gathered;
  {
    std::vector<Future<int>> futures{loop.create_future<int>(), loop.create_future<int>()};
    futures[0].set_result(1);
    gathered = gather(futures);
    run_for(1);
    loop.close();
  }  // nobody can complete the second future any more
  EXPECT_TRUE(gathered.cancelled());
}

TEST_F(GatherTest, AValueThatCannotBeCopiedOutFailsTheRangeGatherWithTheCopysError) {
  using testing::FragileCopy;
  Future<FragileCopy> a = loop.create_future<FragileCopy>();
  Future<FragileCopy> b = loop.create_future<FragileCopy>();
  Future<std::vector<FragileCopy>> gathered = gather(std::vector<Future<FragileCopy>>{a, b});
  {
    FragileCopy::Failing failing;
    a.set_result(FragileCopy(1));
    run_for(1);
  }
  ASSERT_TRUE(gathered.done());  // not pending, and no empty slot handed on
  EXPECT_FALSE(gathered.cancelled());
  EXPECT_EQ(what_of(gathered.exception()), "copy failed");
  b.set_result(FragileCopy(2));  // decided already: nothing changes
  run_for(1);
  EXPECT_EQ(what_of(gathered.exception()), "copy failed");
}

TEST_F(GatherTest, AValueThatCannotBeCopiedOutFailsTheTupleGatherWithTheCopysError) {
  using testing::FragileCopy;
  Future<FragileCopy> a = loop.create_future<FragileCopy>();
  Future<FragileCopy> b = loop.create_future<FragileCopy>();
  Future<std::tuple<FragileCopy, FragileCopy>> gathered = gather(a, b);
  FragileCopy::Failing failing;
  a.set_result(FragileCopy(1));
  b.set_result(FragileCopy(2));
  run_for(1);
  ASSERT_TRUE(gathered.done());
  EXPECT_FALSE(gathered.cancelled());  // not "a child was destroyed"
  EXPECT_EQ(what_of(gathered.exception()), "copy failed");
}

TEST_F(GatherTest, AChildThatGoesAwayPendingWakesWhoeverAwaitsTheGather) {
  Future<int> child = loop.create_future<int>();
  Future<std::vector<int>> gathered = gather(std::vector<Future<int>>{child});
  std::string caught;
  auto awaiter = [&]() -> Task<> {
    try {
      co_await gathered;
    } catch (const CancelledError& e) {
      caught = e.message();
    }
  };
  Future<void> task = loop.create_task(awaiter());
  loop.run_once();        // the task awaits the gather
  child = Future<int>();  // nobody can complete the child any more
  ASSERT_TRUE(gathered.cancelled());
  run_for(1);
  ASSERT_TRUE(task.done());  // woke up, not left waiting forever
  EXPECT_NE(caught.find("a child was destroyed before it completed"), std::string::npos) << caught;
}

TEST_F(GatherTest, AChildThatGoesAwayPendingEndsTheGatherWhileTheOthersStillRun) {
  Future<int> a = loop.create_future<int>();
  Future<int> b = loop.create_future<int>();  // held, and never completed here
  Future<std::vector<int>> gathered = gather(std::vector<Future<int>>{a, b});
  a = Future<int>();             // nobody can complete `a` any more
  ASSERT_TRUE(gathered.done());  // not only once `b` is done, which may be never
  EXPECT_TRUE(gathered.cancelled());
  b.set_result(2);
  run_for(1);
  EXPECT_TRUE(gathered.cancelled());
}

TEST_F(GatherTest, ARangeGatherWhoseOnlyHandleToAPendingChildIsItsOwnEndsCancelled) {
  // The range form keeps no reference to a child that is not done: a
  // pending future nobody else holds goes away during the gather's own
  // pass, and so can never complete; neither can the gather, which ends
  // at once, whatever the other children do.
  Future<int> kept = loop.create_future<int>();
  std::vector<Future<int>> futures{kept, loop.create_future<int>(), kept};
  Future<std::vector<int>> gathered = gather(std::move(futures));
  ASSERT_TRUE(gathered.done());  // while the callbacks on `kept` still hold its state
  EXPECT_TRUE(gathered.cancelled());
  kept.set_result(3);
  loop.run_once();  // they run, and change nothing
  EXPECT_TRUE(gathered.cancelled());
  try {
    gathered.result();
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_NE(e.message().find("a child was destroyed before it completed"), std::string::npos)
        << e.message();
  }
}

// ------------------------------------------------------------ asyncio scenarios: more of
// test_tasks.py's GatherTests

// test_cancel_gather_1: a cancel that arrives once the only child is done is
// refused, and the gather keeps its results.
TEST_F(GatherTest, ACancelArrivingAfterTheOnlyChildFinishedIsRefused) {
  Future<int> fut = loop.create_future<int>();
  auto child_coro = [](Future<int> f) -> Task<int> { co_return co_await f; };
  Future<int> child = loop.create_task(child_coro(fut));
  auto gathered = gather(std::vector{child});
  loop.run_once();  // the child now awaits `fut`
  std::optional<bool> cancel_result;
  fut.add_done_callback([&] { cancel_result = gathered.cancel(); });
  fut.set_result(42);
  EXPECT_EQ(loop.run_until_complete(gathered), std::vector<int>{42});
  EXPECT_EQ(cancel_result, false);
  EXPECT_FALSE(gathered.cancelled());
}

// test_cancel_gather_2: a task awaiting a settled gather, cancelled with a
// message, ends with a CancelledError carrying that message.
TEST_F(GatherTest, ACancelMessageCrossesASettledGatherToTheTaskAwaitingIt) {
  for (std::string message : {std::string(), std::string("my message")}) {
    auto test = []() -> Task<> {
      double time = 0;
      for (;;) {
        time += 0.05;
        co_await gather_settled(nothing_after(0.05));
        if (time > 1) co_return;
      }
    };
    auto amain = [&]() -> Task<std::string> {
      Future<void> qwe = create_task(test());
      co_await sleep(0.2);
      qwe.cancel(message);
      try {
        co_await qwe;
      } catch (const CancelledError& e) {
        co_return "cancelled:" + e.message();
      }
      co_return "not cancelled";
    };
    EXPECT_EQ(loop.run_until_complete(amain()), "cancelled:" + message);
  }
}

// test_result_exception_one_cancellation: the settled form waits for every
// child and keeps each cancellation and exception in its place.
TEST_F(GatherTest, SettledGatherKeepsEachCancellationAndExceptionInPlace) {
  std::vector<Future<int>> f;
  for (int i = 0; i < 6; ++i)
    f.push_back(loop.create_future<int>());
  auto gathered = gather_settled(f);
  int callbacks = 0;
  gathered.add_done_callback([&callbacks] { ++callbacks; });
  f[0].set_result(1);
  f[1].set_exception(std::runtime_error("zde"));
  f[2].cancel();
  loop.run_once();
  loop.run_once();
  EXPECT_FALSE(gathered.done());
  f[3].set_result(3);
  f[4].cancel();
  f[5].set_exception(std::runtime_error("rte"));
  std::vector<Outcome<int>> res = loop.run_until_complete(gathered);
  ASSERT_EQ(res.size(), 6u);
  EXPECT_EQ(res[0].value(), 1);
  EXPECT_EQ(what_of(res[1].error()), "zde");
  EXPECT_TRUE(res[2].cancelled());
  EXPECT_EQ(res[3].value(), 3);
  EXPECT_TRUE(res[4].cancelled());
  EXPECT_EQ(what_of(res[5].error()), "rte");
  EXPECT_EQ(callbacks, 1);
}

// test_cancellation_broadcast: cancelling the task that awaits a gather
// cancels the children and what they await; the gather then refuses a cancel.
TEST_F(GatherTest, CancellingTheAwaiterReachesWhatTheChildrenAwaitAndTheGatherRefusesAnother) {
  int proof = 0;
  Future<void> waiter = loop.create_future<void>();
  auto inner = [&]() -> Task<> {
    co_await waiter;
    proof += 1;
  };
  Future<void> child1 = loop.create_task(inner());
  Future<void> child2 = loop.create_task(inner());
  Future<std::tuple<std::monostate, std::monostate>> gatherer;
  auto outer = [&]() -> Task<> {
    gatherer = gather(child1, child2);
    co_await gatherer;
    proof += 100;
  };
  Future<void> f = loop.create_task(outer());
  loop.run_once();
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_FALSE(gatherer.cancel());
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_TRUE(child1.cancelled());
  EXPECT_TRUE(child2.cancelled());
  loop.run_once();
  EXPECT_EQ(proof, 0);
}

// _GatheringFuture is a Future: the CancelledError a cancelled gather ends
// with is set with set_exception, so nobody reading it is reported
// (Future.__del__ / FutureObj_finalize), as for any other exception.
TEST_F(GatherTest, ACancelledGatherNobodyReadIsReportedAsNeverRetrieved) {
  capture_reports();
  {
    Future<int> a = loop.create_future<int>();
    Future<int> b = loop.create_future<int>();
    auto gathered = gather(a, b);
    EXPECT_TRUE(gathered.cancel());
    run_for(1);
    EXPECT_TRUE(gathered.done());
  }
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "Future exception was never retrieved");
}

// ------------------------------------------------------------ messages asyncio loses

// A cancelled gather whose last child answered the cancel with a value ends
// with the gather's cancel message. asyncio 3.12 ends it with the last
// child's _make_cancelled_error(), which is bare here: Task.cancel passes the
// message to the awaited future and returns before storing it. eddy keeps
// the message (README: "Combinators").
TEST_F(GatherTest, ACancelledGatherWhoseLastChildAnsweredWithAValueKeepsTheMessage) {
  auto stubborn = []() -> Task<int> {
    try {
      co_await sleep(10);
    } catch (const CancelledError&) {
    }
    co_return 7;
  };
  Future<int> child;
  Future<std::tuple<int>> gathered;
  auto body = [&]() -> Task<> {
    child = create_task(stubborn());
    gathered = gather(child);
    co_await sleep(1);
    EXPECT_TRUE(gathered.cancel("stop"));
    co_await sleep(1);
  };
  loop.run_until_complete(body());
  EXPECT_EQ(child.result(), 7);
  EXPECT_EQ(cancel_message(gathered.exception()), "stop");
}

// gather_settled (return_exceptions=True) with a task child cancelled with a
// message: the slot holds the child's CancelledError, message included, as
// the child's own result() throws it. asyncio 3.12 builds the slot from the
// task's _cancel_message, which a task cancelled through its awaited future
// never stored: its slot has an empty message. eddy keeps the message.
TEST_F(GatherTest, ASettledSlotOfATaskCancelledWithAMessageHoldsThatMessage) {
  Future<int> child;
  Future<std::tuple<Outcome<int>>> settled;
  auto body = [&]() -> Task<std::tuple<Outcome<int>>> {
    child = create_task(after_sleep(10, 1));
    settled = gather_settled(child);
    co_await sleep(1);
    EXPECT_TRUE(child.cancel("m"));
    co_return co_await settled;
  };
  auto [slot] = loop.run_until_complete(body());
  ASSERT_TRUE(slot.cancelled());
  std::string child_message;
  try {
    child.result();
  } catch (const CancelledError& e) {
    child_message = e.message();
  }
  EXPECT_EQ(child_message, "m");  // as Task.result() raises it in asyncio
  EXPECT_EQ(cancel_message(slot.error()), "m");
}

}  // namespace
}  // namespace eddy
