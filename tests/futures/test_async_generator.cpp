// Tests for eddy::AsyncGenerator<T, Sent> (eddy/async_generator.hpp): lazy
// start, values in order with awaits between them, the end, exceptions,
// send-style generators, misuse (send before start, next while running),
// closing early, cancellation of the consuming task, and use from several
// tasks in turn. Time runs on the fixture's VirtualClock.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/async_generator.hpp>
#include <eddy/errors.hpp>
#include <eddy/future.hpp>
#include <eddy/handle.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/wait_for.hpp>

#include "future_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::FutureTest;

class AsyncGeneratorTest : public FutureTest {
 protected:
};

/// Yields 0, 1, ..., to - 1, sleeping `delay` after each (the seed's Ticker).
AsyncGenerator<int> ticker(double delay, int to) {
  for (int i = 0; i < to; ++i) {
    co_yield i;
    co_await sleep(delay);
  }
}

/// The seed's averager: `co_await send(x)` gives the mean of every x so far;
/// next() ends it.
AsyncGenerator<double, double> averager() {
  double total = 0;
  int count = 0;
  double average = 0;
  for (;;) {
    std::optional<double> term = co_yield average;
    if (!term) co_return;
    total += *term;
    ++count;
    average = total / count;
  }
}

// ------------------------------------------------------------ iterating

TEST_F(AsyncGeneratorTest, TheBodyDoesNotStartBeforeTheFirstNext) {
  bool started = false;
  auto make = [&]() -> AsyncGenerator<int> {
    started = true;
    co_yield 1;
  };
  auto body = [&]() -> Task<int> {
    AsyncGenerator<int> gen = make();
    co_await sleep(1);
    EXPECT_FALSE(started);
    EXPECT_FALSE(gen.done());
    std::optional<int> first = co_await gen.next();
    EXPECT_TRUE(started);
    co_return first.value_or(-1);
  };
  EXPECT_EQ(run(body()), 1);
}

TEST_F(AsyncGeneratorTest, NextGivesTheYieldedValuesInOrderWithTheAwaitsBetweenThem) {
  auto body = [&]() -> Task<std::vector<std::pair<int, double>>> {
    std::vector<std::pair<int, double>> seen;
    AsyncGenerator<int> gen = ticker(0.5, 4);
    while (std::optional<int> i = co_await gen.next())
      seen.emplace_back(*i, loop.time());
    EXPECT_DOUBLE_EQ(loop.time(), 2.0);  // the sleep after the last value ran too
    co_return seen;
  };
  EXPECT_EQ(run(body()),
            (std::vector<std::pair<int, double>>{{0, 0.0}, {1, 0.5}, {2, 1.0}, {3, 1.5}}));
}

TEST_F(AsyncGeneratorTest, NextGivesNulloptAtTheEndAndEveryTimeAfter) {
  auto body = [&]() -> Task<> {
    AsyncGenerator<int> gen = ticker(1, 1);
    EXPECT_EQ(co_await gen.next(), std::optional<int>(0));
    EXPECT_FALSE(gen.done());
    EXPECT_EQ(co_await gen.next(), std::nullopt);
    EXPECT_TRUE(gen.done());
    EXPECT_EQ(co_await gen.next(), std::nullopt);
    EXPECT_EQ(co_await gen.next(), std::nullopt);
  };
  run(body());
}

TEST_F(AsyncGeneratorTest, ABodyThatYieldsNothingGivesNulloptAtOnce) {
  auto make = []() -> AsyncGenerator<int> { co_return; };
  auto body = [&]() -> Task<std::optional<int>> {
    AsyncGenerator<int> gen = make();
    co_return co_await gen.next();
  };
  EXPECT_EQ(run(body()), std::nullopt);
}

TEST_F(AsyncGeneratorTest, AnExceptionLeavingTheBodyComesOutOfNextAndTheGeneratorIsFinished) {
  auto make = []() -> AsyncGenerator<int> {
    co_yield 1;
    co_await sleep(1);
    throw std::runtime_error("the source broke");
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int> gen = make();
    EXPECT_EQ(co_await gen.next(), std::optional<int>(1));
    try {
      (void)co_await gen.next();
      ADD_FAILURE() << "next() did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "the source broke");
    }
    EXPECT_TRUE(gen.done());
    EXPECT_EQ(co_await gen.next(), std::nullopt);  // thrown once, then finished
  };
  run(body());
}

TEST_F(AsyncGeneratorTest, MoveOnlyValuesAreMovedOut) {
  auto make = []() -> AsyncGenerator<std::unique_ptr<int>> {
    co_yield std::make_unique<int>(1);
    auto two = std::make_unique<int>(2);
    co_yield std::move(two);
  };
  auto body = [&]() -> Task<int> {
    AsyncGenerator<std::unique_ptr<int>> gen = make();
    int sum = 0;
    while (std::optional<std::unique_ptr<int>> p = co_await gen.next())
      sum += **p;
    co_return sum;
  };
  EXPECT_EQ(run(body()), 3);
}

TEST_F(AsyncGeneratorTest, ValuesThatCannotBeAssignedAreMovedOut) {
  struct Reading {
    const int value;  // constructible, not assignable
  };
  auto make = []() -> AsyncGenerator<Reading> {
    co_yield Reading{1};
    co_yield Reading{2};
  };
  auto body = [&]() -> Task<int> {
    AsyncGenerator<Reading> gen = make();
    int sum = 0;
    while (std::optional<Reading> r = co_await gen.next())
      sum += r->value;
    co_return sum;
  };
  EXPECT_EQ(run(body()), 3);
}

TEST_F(AsyncGeneratorTest, AGeneratorMayAwaitTasksAndOtherGenerators) {
  auto square = [](int x) -> Task<int> {
    co_await sleep(1);
    co_return x* x;
  };
  auto squares = [&](int to) -> AsyncGenerator<int> {
    AsyncGenerator<int> source = ticker(0, to);
    while (std::optional<int> i = co_await source.next())
      co_yield co_await square(*i);
  };
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<int> out;
    AsyncGenerator<int> gen = squares(4);
    while (std::optional<int> v = co_await gen.next())
      out.push_back(*v);
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{0, 1, 4, 9}));
  EXPECT_DOUBLE_EQ(loop.time(), 4.0);
}

TEST_F(AsyncGeneratorTest, AMovedGeneratorKeepsItsPlace) {
  auto body = [&]() -> Task<std::vector<int>> {
    AsyncGenerator<int> gen = ticker(0, 3);
    std::vector<int> out;
    out.push_back(*co_await gen.next());
    AsyncGenerator<int> moved = std::move(gen);
    EXPECT_FALSE(gen.valid());  // NOLINT(bugprone-use-after-move): checked on purpose
    while (std::optional<int> i = co_await moved.next())
      out.push_back(*i);
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{0, 1, 2}));
}

TEST_F(AsyncGeneratorTest, NextOnAnEmptyGeneratorThrowsInvalidStateError) {
  auto body = [&]() -> Task<> {
    AsyncGenerator<int> empty;
    EXPECT_FALSE(empty.valid());
    EXPECT_TRUE(empty.done());
    EXPECT_THROW((void)co_await empty.next(), InvalidStateError);
  };
  run(body());
}

// ----------------------------------------------------------------- send

TEST_F(AsyncGeneratorTest, SendResumesTheGeneratorWithTheValueAsTheCoYieldsResult) {
  auto body = [&]() -> Task<std::vector<double>> {
    AsyncGenerator<double, double> mean = averager();
    EXPECT_EQ(co_await mean.next(), std::optional<double>(0.0));  // primes it
    std::vector<double> out;
    for (double x : {10.0, 30.0, 5.0})
      out.push_back(*co_await mean.send(x));
    EXPECT_EQ(co_await mean.next(), std::nullopt);  // next() sends nothing: it ends
    EXPECT_TRUE(mean.done());
    EXPECT_EQ(co_await mean.send(1.0), std::nullopt);  // a finished one gives nullopt
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<double>{10.0, 20.0, 15.0}));
}

TEST_F(AsyncGeneratorTest, NextResumesASendStyleGeneratorWithNullopt) {
  std::vector<std::optional<int>> received;
  auto make = [&]() -> AsyncGenerator<int, int> {
    for (int i = 0; i < 3; ++i)
      received.push_back(co_yield i);
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int, int> gen = make();
    (void)co_await gen.next();
    (void)co_await gen.send(7);
    (void)co_await gen.next();
    (void)co_await gen.next();
  };
  run(body());
  EXPECT_EQ(received, (std::vector<std::optional<int>>{7, std::nullopt, std::nullopt}));
}

TEST_F(AsyncGeneratorTest, SendBeforeTheFirstNextThrowsInvalidStateError) {
  bool started = false;
  auto make = [&]() -> AsyncGenerator<int, int> {
    started = true;
    co_yield 1;
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int, int> gen = make();
    try {
      (void)co_await gen.send(1);
      ADD_FAILURE() << "send() did not throw";
    } catch (const InvalidStateError& e) {
      EXPECT_NE(std::string(e.what()).find("not started"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(started);
    EXPECT_EQ(co_await gen.next(), std::optional<int>(1));  // still usable
  };
  run(body());
}

// ------------------------------------------------ one consumer at a time

TEST_F(AsyncGeneratorTest, NextWhileTheGeneratorIsRunningThrowsInvalidStateError) {
  AsyncGenerator<int> gen = ticker(1, 3);
  auto first = [&]() -> Task<std::vector<int>> {
    std::vector<int> out;
    out.push_back(*co_await gen.next());
    out.push_back(*co_await gen.next());  // runs the sleep(1) inside the generator
    co_return out;
  };
  auto second = [&]() -> Task<std::string> {
    co_await sleep(0.5);  // the generator is in its sleep, run by `first`
    try {
      (void)co_await gen.next();
    } catch (const InvalidStateError& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  auto body = [&]() -> Task<> {
    Future<std::vector<int>> a = create_task(first());
    Future<std::string> b = create_task(second());
    std::string refused = co_await b;
    EXPECT_NE(refused.find("already running"), std::string::npos) << refused;
    std::vector<int> taken = co_await a;
    EXPECT_EQ(taken, (std::vector<int>{0, 1}));  // undisturbed
  };
  run(body());
}

TEST_F(AsyncGeneratorTest, ASendRefusedWhileRunningIsNotDeliveredLater) {
  std::vector<std::optional<int>> received;
  auto make = [&]() -> AsyncGenerator<int, int> {
    for (int i = 0;; ++i) {
      received.push_back(co_yield i);
      co_await sleep(1);
    }
  };
  AsyncGenerator<int, int> gen = make();
  auto first = [&]() -> Task<> {
    (void)co_await gen.next();
    (void)co_await gen.send(10);  // resumes it into its sleep(1)
    (void)co_await gen.next();
  };
  auto intruder = [&]() -> Task<bool> {
    co_await sleep(0.5);
    try {
      (void)co_await gen.send(99);
    } catch (const InvalidStateError&) {
      co_return true;
    }
    co_return false;
  };
  auto body = [&]() -> Task<> {
    Future<void> a = create_task(first());
    Future<bool> b = create_task(intruder());
    EXPECT_TRUE(co_await b);
    co_await a;
  };
  run(body());
  EXPECT_EQ(received, (std::vector<std::optional<int>>{10, std::nullopt}));
}

TEST_F(AsyncGeneratorTest, ASendThatIsNeverAwaitedDeliversNothing) {
  std::vector<std::optional<int>> received;
  auto make = [&]() -> AsyncGenerator<int, int> {
    for (int i = 0; i < 2; ++i)
      received.push_back(co_yield i);
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int, int> gen = make();
    (void)co_await gen.next();
    (void)gen.send(5);  // made, never awaited
    (void)co_await gen.next();
  };
  run(body());
  EXPECT_EQ(received, (std::vector<std::optional<int>>{std::nullopt}));
}

TEST_F(AsyncGeneratorTest, AGeneratorCanBeUsedByTwoTasksInTurn) {
  // Its awaits run in the task that awaits next(): current_task() says so.
  auto make = [&]() -> AsyncGenerator<std::string> {
    for (;;) {
      co_await sleep(1);
      co_yield current_task().name();
    }
  };
  AsyncGenerator<std::string> gen = make();
  auto take = [&](int n) -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i)
      out.push_back(*co_await gen.next());
    co_return out;
  };
  auto body = [&]() -> Task<> {
    std::vector<std::string> names = co_await create_task(take(2), "A");
    for (std::string& name : co_await create_task(take(1), "B"))
      names.push_back(name);
    for (std::string& name : co_await create_task(take(1), "C"))
      names.push_back(name);
    EXPECT_EQ(names, (std::vector<std::string>{"A", "A", "B", "C"}));
  };
  run(body());
  EXPECT_DOUBLE_EQ(loop.time(), 4.0);
}

// ---------------------------------------------------- closing, lifetimes

TEST_F(AsyncGeneratorTest, DestroyingAGeneratorSuspendedAtACoYieldRunsItsDestructorsOnce) {
  int resumed_after_last = 0;
  auto make = [&](Counted argument) -> AsyncGenerator<int> {
    Counted local;
    (void)argument;
    co_await sleep(1);
    co_yield 1;
    Counted later;
    co_yield 2;
    ++resumed_after_last;
  };
  auto body = [&]() -> Task<> {
    {
      AsyncGenerator<int> gen = make(Counted());
      EXPECT_EQ(co_await gen.next(), std::optional<int>(1));
      EXPECT_GE(Counted::alive(), 2);  // the argument's copy in the frame, `local`
    }                                  // closed early, at the first co_yield
    EXPECT_EQ(Counted::alive(), 0);
    {
      AsyncGenerator<int> gen = make(Counted());
      (void)co_await gen.next();
      (void)co_await gen.next();
    }  // closed at the second co_yield: `later` too
    EXPECT_EQ(Counted::alive(), 0);
  };
  run(body());
  EXPECT_EQ(resumed_after_last, 0);  // closing does not resume the body
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
}

TEST_F(AsyncGeneratorTest, DestroyingAGeneratorThatNeverStartedDestroysItsArgumentsOnce) {
  bool started = false;
  auto make = [&](Counted argument) -> AsyncGenerator<int> {
    (void)argument;
    started = true;
    co_yield 1;
  };
  {
    AsyncGenerator<int> gen = make(Counted());
    EXPECT_GE(Counted::alive(), 1);
  }
  EXPECT_FALSE(started);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(AsyncGeneratorTest, AFinishedGeneratorsLocalsAreDestroyedOnce) {
  auto make = []() -> AsyncGenerator<int> {
    Counted local;
    co_yield 1;
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int> gen = make();
    while (co_await gen.next()) {
    }
    EXPECT_EQ(Counted::alive(), 0);  // gone when the body ended
  };
  run(body());
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
}

TEST_F(AsyncGeneratorTest, CancellingTheConsumerWhileTheGeneratorAwaitsThrowsOutOfNext) {
  bool saw_cancel_inside = false;
  auto make = [&]() -> AsyncGenerator<int> {
    Counted local;
    co_yield 1;
    try {
      co_await sleep(10);
    } catch (const CancelledError&) {
      saw_cancel_inside = true;
      throw;
    }
    co_yield 2;
  };
  auto consumer = [&]() -> Task<std::string> {
    AsyncGenerator<int> gen = make();
    (void)co_await gen.next();
    std::string outcome = "not cancelled";
    try {
      (void)co_await gen.next();
    } catch (const CancelledError& e) {
      outcome = "cancelled: " + e.message();
    }
    EXPECT_TRUE(gen.done());
    EXPECT_EQ(Counted::alive(), 0);
    EXPECT_EQ(co_await gen.next(), std::nullopt);
    co_return outcome;
  };
  auto body = [&]() -> Task<std::string> {
    Future<std::string> consuming = create_task(consumer());
    co_await sleep(1);
    consuming.cancel("stop");
    co_return co_await consuming;
  };
  EXPECT_EQ(run(body()), "cancelled: stop");
  EXPECT_TRUE(saw_cancel_inside);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
}

TEST_F(AsyncGeneratorTest, ACancelledErrorLeavingTheConsumerEndsItsTaskCancelled) {
  auto consumer = [&]() -> Task<> {
    AsyncGenerator<int> gen = ticker(10, 5);
    while (co_await gen.next()) {
    }
  };
  auto body = [&]() -> Task<> {
    Future<void> consuming = create_task(consumer());
    co_await sleep(15);
    consuming.cancel();
    co_await sleep(0);
    co_await sleep(0);
    EXPECT_TRUE(consuming.cancelled());
  };
  run(body());
}

TEST_F(AsyncGeneratorTest, ClosingTheLoopWithAConsumerInsideNextDestroysEverythingOnce) {
  auto make = []() -> AsyncGenerator<int> {
    Counted local;
    co_await sleep(100);
    co_yield 1;
  };
  auto consumer = [&]() -> Task<> {
    AsyncGenerator<int> gen = make();
    (void)co_await gen.next();
  };
  Future<void> consuming = loop.create_task(consumer());
  loop.call_later(1, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(Counted::alive(), 1);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(consuming.cancelled());
}

TEST_F(AsyncGeneratorTest, AGeneratorWhoseStepWasCutByItsLoopsCloseRefusesToGoOn) {
  bool past_the_sleep = false;
  auto make = [&]() -> AsyncGenerator<int> {
    co_yield 1;
    co_await sleep(100);  // the loop closes here
    past_the_sleep = true;
    co_yield 2;
  };
  AsyncGenerator<int> gen = make();  // outlives the loop
  auto consumer = [&]() -> Task<> {
    (void)co_await gen.next();
    (void)co_await gen.next();
  };
  loop.create_task(consumer());
  loop.call_later(1, [&] { loop.stop(); });
  loop.run_forever();
  loop.close();  // destroys the consumer inside the second step
  Loop other{LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false)};
  auto again = [&]() -> Task<std::optional<int>> { co_return co_await gen.next(); };
  EXPECT_THROW(other.run_until_complete(again()), InvalidStateError);
  EXPECT_FALSE(past_the_sleep);  // not resumed as if the sleep had ended
  other.close();
}

TEST_F(AsyncGeneratorTest, DestroyingAGeneratorWhileATaskIsInsideItLetsThatStepEndFirst) {
  int resumed_after_yield = 0;
  auto make = [&]() -> AsyncGenerator<int> {
    Counted local;
    co_await sleep(1);
    co_yield 7;
    ++resumed_after_yield;
  };
  std::optional<AsyncGenerator<int>> gen(make());
  std::optional<int> got;
  int alive_after_next = -1;
  auto consumer = [&]() -> Task<> {
    AsyncGenerator<int>& g = *gen;
    got = co_await g.next();
    alive_after_next = Counted::alive();
  };
  Future<void> consuming = loop.create_task(consumer());
  loop.call_later(0.5, [&] { gen.reset(); });  // while the body sleeps
  run(consuming);
  EXPECT_EQ(got, std::optional<int>(7));  // the step it was waiting for ended
  EXPECT_EQ(alive_after_next, 0);         // and then the frame went
  EXPECT_EQ(resumed_after_yield, 0);
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
}

TEST_F(AsyncGeneratorTest, AnExceptionOfAStepWhoseGeneratorWentAwayStillComesOutOfNext) {
  auto make = [&]() -> AsyncGenerator<int> {
    Counted local;
    co_await sleep(1);
    throw std::runtime_error("body failed");
    co_yield 1;
  };
  AsyncGenerator<int> gen = make();
  auto consumer = [&]() -> Task<std::string> {
    try {
      (void)co_await gen.next();
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  Future<std::string> consuming = loop.create_task(consumer());
  loop.call_later(0.5, [&] { gen = AsyncGenerator<int>(); });  // assigning over it drops the frame
  EXPECT_EQ(run(consuming), "body failed");
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(AsyncGeneratorTest, ClosingTheLoopAfterTheGeneratorWentAwayWithATaskInsideDestroysItOnce) {
  auto make = []() -> AsyncGenerator<int> {
    Counted local;
    co_await sleep(100);
    co_yield 1;
  };
  std::optional<AsyncGenerator<int>> gen(make());
  auto consumer = [&]() -> Task<> { (void)co_await gen->next(); };
  Future<void> consuming = loop.create_task(consumer());
  loop.call_later(1, [&] {
    gen.reset();
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(Counted::alive(), 1);  // the step is still running
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
  EXPECT_TRUE(consuming.cancelled());
}

// ------------------------------------------------------------ Python's own scenarios

TEST_F(AsyncGeneratorTest, AGeneratorThatCatchesTheCancelledErrorMayYieldAndTheConsumerGoesOn) {
  // Follows asyncio.Task.__step: a CancelledError the coroutine (here, the
  // async generator it drives) swallows does not end the task.
  Future<void> blocker = loop.create_future<void>();
  auto make = [&]() -> AsyncGenerator<int> {
    co_yield 1;
    try {
      co_await blocker;
    } catch (const CancelledError&) {
    }
    co_yield 99;
  };
  std::vector<int> got;
  auto consumer = [&]() -> Task<int> {
    AsyncGenerator<int> gen = make();
    while (std::optional<int> v = co_await gen.next())
      got.push_back(*v);
    co_return 7;
  };
  Future<int> task = loop.create_task(consumer());
  loop.run_once();
  loop.run_once();
  task.cancel();
  EXPECT_EQ(run(task), 7);
  EXPECT_FALSE(task.cancelled());
  EXPECT_EQ(got, (std::vector<int>{1, 99}));
}

TEST_F(AsyncGeneratorTest, SendsBetweenAwaitsReachTheGeneratorAndTheEndGivesNullopt) {
  // test_asyncgen.py AsyncGenAsyncioTest.test_async_gen_asyncio_asend_01.
  auto foo = [&]() -> AsyncGenerator<int, int> {
    co_await sleep(0.01);
    std::optional<int> v = co_yield 1;
    co_await sleep(0.01);
    co_yield *v * 2;
    co_await sleep(0.01);
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int, int> g = foo();
    EXPECT_EQ(co_await g.next(), std::optional<int>(1));
    EXPECT_EQ(co_await g.send(100), std::optional<int>(200));
    EXPECT_EQ(co_await g.next(), std::nullopt);
  };
  run(body());
  EXPECT_NEAR(loop.time(), 0.03, 1e-9);
}

// ------------------------------------------------------------ Python 3.12 details

TEST_F(AsyncGeneratorTest, NextOfATemporaryGeneratorTakesItOverAndDestroysItOnce) {
  // `auto n = make_gen().next(); co_await n;` would await an awaiter of a
  // destroyed generator; as Python's awaitable keeps its generator alive,
  // the awaiter takes the temporary over instead. The body's locals are
  // destroyed once, when the awaiter goes.
  auto counted = [](int first) -> AsyncGenerator<int> {
    Counted alive;
    co_yield first;
    co_yield first + 1;
  };
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<int> seen;
    {
      auto n = counted(10).next();  // the generator is a temporary
      seen.push_back(*co_await n);
      EXPECT_EQ(Counted::alive(), 1);  // suspended at its first co_yield
    }
    EXPECT_EQ(Counted::alive(), 0);
    seen.push_back(*co_await counted(20).next());
    EXPECT_EQ(Counted::alive(), 0);
    AsyncGenerator<double, double> avg = averager();
    (void)co_await avg.next();
    std::optional<double> mean = co_await std::move(avg).send(4.0);  // takes it over
    EXPECT_FALSE(avg.valid());
    seen.push_back(static_cast<int>(*mean));
    co_return seen;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{10, 20, 4}));
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(AsyncGeneratorTest, ANextOfATemporaryGeneratorThatIsNeverAwaitedDestroysIt) {
  auto counted = []() -> AsyncGenerator<int> {
    Counted alive;
    co_yield 1;
  };
  auto body = [&]() -> Task<> {
    AsyncGenerator<int> gen = counted();
    (void)co_await gen.next();
    EXPECT_EQ(Counted::alive(), 1);
    { auto n = std::move(gen).next(); }  // dropped unawaited
    EXPECT_EQ(Counted::alive(), 0);
  };
  run(body());
}

TEST_F(AsyncGeneratorTest, WaitForTakesANextAndGivesItsValueInTime) {
  auto body = [&]() -> Task<std::vector<std::optional<int>>> {
    AsyncGenerator<int> gen = ticker(0.5, 2);
    std::vector<std::optional<int>> seen;
    seen.push_back(co_await wait_for(gen.next(), 1.0));
    seen.push_back(co_await wait_for(gen.next(), 1.0));  // after the 0.5 s sleep
    seen.push_back(co_await wait_for(gen.next(), 1.0));  // the end
    co_return seen;
  };
  EXPECT_EQ(run(body()), (std::vector<std::optional<int>>{0, 1, std::nullopt}));
}

TEST_F(AsyncGeneratorTest, WaitForANextThatTimesOutCancelsTheBodyAndFinishesTheGenerator) {
  // As asyncio's wait_for(agen.__anext__(), t): the timeout cancels the
  // step, CancelledError is thrown into the body at its await, and a body
  // that lets it out is finished.
  bool body_saw_cancel = false;
  auto slow = [&]() -> AsyncGenerator<int> {
    co_yield 1;
    try {
      co_await sleep(10);
    } catch (const CancelledError&) {
      body_saw_cancel = true;
      throw;
    }
    co_yield 2;
  };
  auto body = [&]() -> Task<std::string> {
    AsyncGenerator<int> gen = slow();
    EXPECT_EQ(co_await wait_for(gen.next(), 1.0), std::optional<int>(1));
    std::string outcome;
    try {
      co_await wait_for(gen.next(), 1.0);
      outcome = "value";
    } catch (const TimeoutError&) {
      outcome = "TimeoutError at " + std::to_string(loop.time());
    }
    EXPECT_TRUE(gen.done());
    EXPECT_EQ(co_await gen.next(), std::nullopt);
    co_return outcome;
  };
  EXPECT_EQ(run(body()), "TimeoutError at 1.000000");
  EXPECT_TRUE(body_saw_cancel);
}

TEST_F(AsyncGeneratorTest, AMovedFromNextIsEmptyAndTheMovedOneWorks) {
  auto body = [&]() -> Task<> {
    AsyncGenerator<int> gen = ticker(0, 2);
    auto first = gen.next();
    auto moved = std::move(first);
    EXPECT_EQ(co_await moved, std::optional<int>(0));
    bool refused = false;
    try {
      co_await first;
    } catch (const InvalidStateError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    EXPECT_EQ(co_await gen.next(), std::optional<int>(1));  // the generator went on as usual
  };
  run(body());
}

TEST_F(AsyncGeneratorTest, AwaitingTheSameNextTwiceThrows) {
  // test_asyncgen.py AsyncGenAsyncioTest.test_async_gen_await_same_anext_coro_twice.
  // As in Python: the awaitable returned by __anext__()/asend() may be awaited once;
  // awaiting it again raises RuntimeError("cannot reuse already awaited __anext__()/asend()")
  // (Objects/genobject.c, async_gen_asend_send: the ASEND state AWAITABLE_STATE_CLOSED).
  auto make = []() -> AsyncGenerator<int> {
    co_yield 1;
    co_yield 2;
  };
  auto body = [&]() -> Task<std::optional<int>> {
    AsyncGenerator<int> gen = make();
    auto next = gen.next();
    EXPECT_EQ(co_await next, std::optional<int>(1));
    std::optional<int> second;
    bool threw = false;
    try {
      second = co_await next;
    } catch (const InvalidStateError&) {
      threw = true;
    }
    EXPECT_TRUE(threw) << "the same next() awaited twice gave " << second.value_or(-1);
    co_return second;
  };
  run(body());
}

}  // namespace
}  // namespace eddy
