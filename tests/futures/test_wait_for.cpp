// Tests for eddy::wait_for (eddy/wait_for.hpp): asyncio.wait_for's rules in
// virtual time, for tasks and futures, alone and nested in other scopes.
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/gather.hpp>
#include <eddy/queue.hpp>
#include <eddy/task_group.hpp>
#include <eddy/wait_for.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using testing::what_of;
using namespace std::chrono_literals;

class WaitFor : public testing::LoopTest {
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

Task<int> work(double delay, int value) {
  co_await sleep(delay);
  co_return value;
}

/// Sleeps `delay`; on a cancel, logs it, cleans up for `cleanup` seconds
/// (an await of its own), logs that, and rethrows the CancelledError (the
/// same one: its origin() says whose cancel it is).
Task<int> slow_cleanup(double delay, double cleanup, std::vector<std::string>& log, Counted) {
  Counted local;
  std::exception_ptr cancel;
  try {
    co_await sleep(delay);
    co_return 1;
  } catch (const CancelledError&) {
    log.push_back("cancelled");
    cancel = std::current_exception();
  }
  co_await sleep(cleanup);
  log.push_back("cleaned up");
  std::rethrow_exception(cancel);
}

/// Sleeps `delay`; a cancel is caught and it returns `value` anyway.
Task<int> ignore_cancel(double delay, int value) {
  try {
    co_await sleep(delay);
  } catch (const CancelledError&) {
  }
  co_return value;
}

// ------------------------------------------------------------------ tasks

TEST_F(WaitFor, ReturnsTheValueWhenTheTaskFinishesInTime) {
  auto body = []() -> Task<double> {
    double start = now();
    int v = co_await wait_for(work(1, 42), 2.0);
    EXPECT_EQ(v, 42);
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1.0);
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(WaitFor, ThrowsTimeoutErrorOnlyAfterTheTaskRanItsCleanup) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<double> {
    double start = now();
    try {
      co_await wait_for(slow_cleanup(10, 0.5, out, Counted{}), 1.0);
    } catch (const TimeoutError&) {
      out.push_back("TimeoutError");
      EXPECT_EQ(Counted::alive(), 0);  // the task's frame is gone already
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(log)), 1.5);
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up", "TimeoutError"}));
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(WaitFor, ReturnsTheValueOfATaskThatFinishesDespiteTheCancel) {
  auto body = []() -> Task<double> {
    double start = now();
    int v = co_await wait_for(ignore_cancel(10, 7), 1.0);
    EXPECT_EQ(v, 7);
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1.0);
}

TEST_F(WaitFor, AnExceptionThrownDuringTheCancelPropagates) {
  auto failing_cleanup = []() -> Task<int> {
    try {
      co_await sleep(10);
    } catch (const CancelledError&) {
    }
    throw std::runtime_error("cleanup failed");
  };
  auto body = [&failing_cleanup]() -> Task<int> {
    co_return co_await wait_for(failing_cleanup(), 1.0);
  };
  EXPECT_THROW(loop.run_until_complete(body()), std::runtime_error);
}

TEST_F(WaitFor, TheTaskSeesTheCancelOfTheTimeoutScope) {
  auto inner = [](bool& saw) -> Task<> {
    try {
      co_await sleep(10);
    } catch (const CancelledError& e) {
      saw = e.origin() != nullptr;  // a scope's request, not cancel()
      throw;
    }
  };
  bool saw_scope = false;
  auto body = [&inner](bool& saw) -> Task<> { co_await wait_for(inner(saw), 1.0); };
  EXPECT_THROW(loop.run_until_complete(body(saw_scope)), TimeoutError);
  EXPECT_TRUE(saw_scope);
}

TEST_F(WaitFor, AFailingTaskPassesItsExceptionThrough) {
  auto failing = []() -> Task<int> {
    co_await sleep(1);
    throw std::runtime_error("inner failed");
  };
  auto body = [&failing]() -> Task<int> { co_return co_await wait_for(failing(), 5.0); };
  EXPECT_THROW(loop.run_until_complete(body()), std::runtime_error);
}

TEST_F(WaitFor, ATimeoutOfZeroOrLessNeverStartsTheTask) {
  for (double limit : {0.0, -1.0}) {
    SCOPED_TRACE(limit);
    Counted::reset();
    bool ran = false;
    auto inner = [](bool& flag, Counted) -> Task<int> {
      flag = true;
      co_return 1;
    };
    auto body = [&inner](bool& flag, double t) -> Task<> {
      Task<int> never = inner(flag, Counted{});
      EXPECT_EQ(Counted::alive(), 1);
      co_await wait_for(std::move(never), t);
    };
    EXPECT_THROW(loop.run_until_complete(body(ran, limit)), TimeoutError);
    EXPECT_FALSE(ran);
    EXPECT_EQ(Counted::alive(), 0);
  }
}

TEST_F(WaitFor, AnInfiniteTimeoutMeansNoLimit) {
  auto body = []() -> Task<int> {
    co_return co_await wait_for(work(1e6, 8), std::numeric_limits<double>::infinity());
  };
  EXPECT_EQ(loop.run_until_complete(body()), 8);
  EXPECT_DOUBLE_EQ(loop.time(), 1e6);
}

TEST_F(WaitFor, NulloptMeansNoLimit) {
  auto body = []() -> Task<double> {
    double start = now();
    int v = co_await wait_for(work(1e5, 3), std::nullopt);
    EXPECT_EQ(v, 3);
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1e5);
}

TEST_F(WaitFor, AcceptsChronoDurations) {
  auto body = []() -> Task<double> {
    double start = now();
    EXPECT_EQ(co_await wait_for(work(0.1, 1), 200ms), 1);
    EXPECT_THROW(co_await wait_for(work(1, 1), 300ms), TimeoutError);
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 0.4);
}

TEST_F(WaitFor, WorksForVoidAndMoveOnlyResults) {
  auto unit = []() -> Task<> { co_await sleep(1); };
  auto boxed = []() -> Task<std::unique_ptr<int>> {
    co_await sleep(1);
    co_return std::make_unique<int>(5);
  };
  auto body = [&]() -> Task<int> {
    co_await wait_for(unit(), 2.0);
    std::unique_ptr<int> p = co_await wait_for(boxed(), 2.0);
    Future<std::unique_ptr<int>> f = create_task(boxed());
    std::unique_ptr<int> q = co_await wait_for(f, 2.0);
    co_return *p + *q;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 10);
}

// ------------------------------------------------------------------ futures

TEST_F(WaitFor, ReturnsTheResultOfAFutureSetInTime) {
  Future<int> f = loop.create_future<int>();
  loop.call_later(1, [f]() mutable { f.set_result(8); });
  auto body = [](Future<int> fut) -> Task<int> { co_return co_await wait_for(fut, 2.0); };
  EXPECT_EQ(loop.run_until_complete(body(f)), 8);
}

TEST_F(WaitFor, RethrowsTheExceptionOfAFutureThatFailsInTime) {
  Future<int> f = loop.create_future<int>();
  loop.call_later(1, [f]() mutable {
    f.set_exception(std::make_exception_ptr(std::runtime_error("future failed")));
  });
  auto body = [](Future<int> fut) -> Task<int> { co_return co_await wait_for(fut, 2.0); };
  EXPECT_THROW(loop.run_until_complete(body(f)), std::runtime_error);
}

TEST_F(WaitFor, CancelsAFutureThatIsLate) {
  Future<int> f = loop.create_future<int>();
  auto body = [](Future<int> fut) -> Task<int> { co_return co_await wait_for(fut, 1.0); };
  EXPECT_THROW(loop.run_until_complete(body(f)), TimeoutError);
  EXPECT_TRUE(f.cancelled());
}

TEST_F(WaitFor, ATimeoutOfZeroOrLessGivesTheResultOfADoneFuture) {
  for (double limit : {0.0, -1.0}) {
    SCOPED_TRACE(limit);
    Future<int> f = loop.create_future<int>();
    f.set_result(4);
    auto body = [](Future<int> fut, double t) -> Task<int> { co_return co_await wait_for(fut, t); };
    EXPECT_EQ(loop.run_until_complete(body(f, limit)), 4);

    Future<int> failed = loop.create_future<int>();
    failed.set_exception(std::make_exception_ptr(std::runtime_error("failed")));
    EXPECT_THROW(loop.run_until_complete(body(failed, limit)), std::runtime_error);
  }
}

TEST_F(WaitFor, ATimeoutOfZeroOrLessCancelsAPendingFuture) {
  for (double limit : {0.0, -1.0}) {
    SCOPED_TRACE(limit);
    Future<int> f = loop.create_future<int>();
    auto body = [](Future<int> fut, double t) -> Task<int> { co_return co_await wait_for(fut, t); };
    EXPECT_THROW(loop.run_until_complete(body(f, limit)), TimeoutError);
    EXPECT_TRUE(f.cancelled());
  }
}

TEST_F(WaitFor, ATimeoutOfZeroWaitsForACancelledTaskToEnd) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<double> {
    double start = now();
    Future<int> task = create_task(slow_cleanup(10, 0.5, out, Counted{}));
    co_await sleep(0);  // let it start
    try {
      co_await wait_for(task, 0.0);
    } catch (const TimeoutError&) {
      out.push_back("TimeoutError");
      EXPECT_TRUE(task.cancelled());
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(log)), 0.5);
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up", "TimeoutError"}));
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(WaitFor, ATimeoutOfZeroGivesTheValueOfATaskThatIgnoresTheCancel) {
  auto body = []() -> Task<int> {
    Future<int> task = create_task(ignore_cancel(10, 6));
    co_await sleep(0);
    co_return co_await wait_for(task, 0.0);
  };
  EXPECT_EQ(loop.run_until_complete(body()), 6);
}

// A gather cancelled by wait_for ends finished with a CancelledError (its
// children answered the cancel), not cancelled(): still a TimeoutError.
TEST_F(WaitFor, ALateGatherIsCancelledAndGivesTimeoutError) {
  std::vector<std::string> reports;  // the gather's CancelledError was seen: never reported
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  for (double limit : {1.0, 0.0}) {
    SCOPED_TRACE(limit);
    std::vector<Future<int>> children;
    auto body = [](std::vector<Future<int>>& out, double t) -> Task<> {
      out.push_back(create_task(work(5, 1)));
      out.push_back(create_task(work(6, 2)));
      co_await sleep(0);  // the children start
      co_await wait_for(gather(std::vector<Future<int>>(out)), t);
    };
    Future<void> task = loop.create_task(body(children, limit));
    EXPECT_THROW(loop.run_until_complete(task), TimeoutError);
    EXPECT_FALSE(task.cancelled());
    ASSERT_EQ(children.size(), 2u);
    EXPECT_TRUE(children[0].cancelled());
    EXPECT_TRUE(children[1].cancelled());
  }
  EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST_F(WaitFor, ALateTaskAwaitingAGatherGivesTimeoutError) {
  auto inner = []() -> Task<std::vector<int>> {
    std::vector<Task<int>> children;
    children.push_back(work(5, 1));
    co_return co_await gather(std::move(children));
  };
  auto body = [&inner]() -> Task<> { co_await wait_for(inner(), 1.0); };
  double start = loop.time();
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 1.0);
}

TEST_F(WaitFor, AGatherThatFailsWhileBeingCancelledPassesItsErrorThrough) {
  // Not a CancelledError: asyncio's wait_for lets it through too.
  auto failing = []() -> Task<int> {
    try {
      co_await sleep(5);
    } catch (const CancelledError&) {
      throw std::runtime_error("failed in cleanup");
    }
    co_return 0;
  };
  auto body = [&failing]() -> Task<> {
    std::vector<Task<int>> children;
    children.push_back(failing());
    co_await wait_for(gather(std::move(children)), 1.0);
  };
  EXPECT_THROW(loop.run_until_complete(body()), std::runtime_error);
}

TEST_F(WaitFor, AFutureOfAnotherLoopIsRejectedBeforeAnythingIsCancelled) {
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  {
    Future<int> there = other.create_future<int>();
    auto body = [](Future<int> f, double t) -> Task<int> { co_return co_await wait_for(f, t); };
    for (double limit : {0.0, 1.0}) {
      SCOPED_TRACE(limit);
      EXPECT_THROW(loop.run_until_complete(body(there, limit)), std::invalid_argument);
      EXPECT_FALSE(there.done());  // asyncio's ensure_future refuses it first, too
    }
  }
  other.close();
}

TEST_F(WaitFor, AnEmptyFutureIsRejectedWithInvalidStateError) {
  auto body = [](double t) -> Task<int> { co_return co_await wait_for(Future<int>(), t); };
  for (double limit : {0.0, 1.0}) {
    SCOPED_TRACE(limit);
    try {
      loop.run_until_complete(body(limit));
      ADD_FAILURE() << "no InvalidStateError";
    } catch (const InvalidStateError& e) {
      EXPECT_STREQ(e.what(), "eddy: a combinator was given an empty Future");
    }
  }
}

// Whatever the timeout (a zero one never starts the Task), an empty Task or
// one that already ran is a mistake that says so, not a TimeoutError.
TEST_F(WaitFor, AnEmptyOrSpentTaskIsRejectedWithInvalidStateError) {
  auto with_empty = [](double t) -> Task<int> { co_return co_await wait_for(Task<int>(), t); };
  auto with_spent = [](double t) -> Task<int> {
    auto one = []() -> Task<int> { co_return 1; };
    Task<int> task = one();
    (void)co_await task;
    co_return co_await wait_for(std::move(task), t);
  };
  for (double limit : {0.0, -1.0, 1.0}) {
    SCOPED_TRACE(limit);
    EXPECT_THROW(loop.run_until_complete(with_empty(limit)), InvalidStateError);
    EXPECT_THROW(loop.run_until_complete(with_spent(limit)), InvalidStateError);
  }
}

TEST_F(WaitFor, WaitsForAFutureFromCreateTask) {
  auto body = []() -> Task<int> { co_return co_await wait_for(create_task(work(1, 11)), 2.0); };
  EXPECT_EQ(loop.run_until_complete(body()), 11);
}

TEST_F(WaitFor, CancelsATaskThatIsLateAndWaitsForItsEnd) {
  std::vector<std::string> log;
  Future<int> inner;
  auto body = [](std::vector<std::string>& out, Future<int>& task) -> Task<double> {
    double start = now();
    task = create_task(slow_cleanup(10, 0.5, out, Counted{}));
    try {
      co_await wait_for(task, 1.0);
    } catch (const TimeoutError&) {
      out.push_back("TimeoutError");
      EXPECT_TRUE(task.cancelled());
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(log, inner)), 1.5);
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up", "TimeoutError"}));
  EXPECT_TRUE(inner.cancelled());
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(WaitFor, ReturnsTheValueOfATaskFutureThatIgnoresTheCancel) {
  auto body = []() -> Task<int> {
    co_return co_await wait_for(create_task(ignore_cancel(10, 9)), 1.0);
  };
  EXPECT_EQ(loop.run_until_complete(body()), 9);
}

// ------------------------------------------------------------------ cancelling the caller

TEST_F(WaitFor, CancellingTheCallerCancelsTheTaskAndThrowsCancelledError) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    try {
      co_await wait_for(slow_cleanup(10, 0.5, out, Counted{}), 5.0);
    } catch (const CancelledError& e) {
      out.push_back("CancelledError: " + e.message());
      throw;
    } catch (const TimeoutError&) {
      out.push_back("TimeoutError");
    }
  };
  Future<void> task = loop.create_task(body(log));
  loop.call_later(1, [&task] { task.cancel("stop"); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up", "CancelledError: stop"}));
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(WaitFor, CancellingTheCallerCancelsTheFutureItWaitsFor) {
  Future<int> f = loop.create_future<int>();
  auto body = [](Future<int> fut) -> Task<int> { co_return co_await wait_for(fut, 5.0); };
  Future<int> task = loop.create_task(body(f));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(task.cancelled());
}

TEST_F(WaitFor, CancellingTheCallerCancelsATaskFutureItWaitsFor) {
  std::vector<std::string> log;
  Future<int> inner;
  auto body = [](std::vector<std::string>& out, Future<int>& t) -> Task<int> {
    t = create_task(slow_cleanup(10, 0.5, out, Counted{}));
    co_return co_await wait_for(t, 5.0);
  };
  Future<int> task = loop.create_task(body(log, inner));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(inner.cancelled());
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up"}));
}

// ------------------------------------------------------------------ asyncio's scenarios

// test_wait_for_self_cancellation: a task cancelled before its first step
// never runs its wait_for; the task it would have waited for runs on.
TEST_F(WaitFor, AWaitForTaskCancelledBeforeItStartsLeavesTheInnerTaskAlone) {
  auto inner = []() -> Task<int> {
    // Holds up two cancels: each one caught starts another 0.3 s sleep.
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        co_await sleep(0.3);
        break;
      } catch (const CancelledError&) {
      }
    }
    co_return 42;
  };
  Future<int> inner_task = loop.create_task(inner());
  Future<int> waiting = loop.create_task(wait_for(inner_task, 0.1));
  EXPECT_TRUE(waiting.cancel());
  EXPECT_THROW(loop.run_until_complete(waiting), CancelledError);
  EXPECT_TRUE(waiting.cancelled());
  EXPECT_EQ(loop.run_until_complete(inner_task), 42);
  EXPECT_DOUBLE_EQ(loop.time(), 0.3);
}

// test_cancel_blocking_wait_for (Python issue #23219): cancelling a wait_for
// without a limit cancels the task it waits for.
TEST_F(WaitFor, CancellingAWaitForWithoutALimitCancelsTheTask) {
  Future<void> never = loop.create_future<void>();
  auto blocking = [&]() -> Task<> { co_await never; };
  Future<void> task = loop.create_task(blocking());
  Future<void> waiting = loop.create_task(wait_for(task, std::nullopt));
  loop.call_soon([waiting]() mutable { waiting.cancel(); });
  EXPECT_THROW(loop.run_until_complete(waiting), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(never.cancelled());
}

// test_wait_for_issue86296: a wait_for that finished leaves no cancellation
// behind, and a later cancel of the caller is delivered at its next await.
TEST_F(WaitFor, ACancelAfterAFinishedWaitForReachesTheNextAwait) {
  bool reached_end = false;
  auto body = [](bool& end) -> Task<> {
    co_await wait_for(work(0, 1), 100.0);
    co_await sleep(1);
    end = true;
  };
  Future<void> task = loop.create_task(body(reached_end));
  loop.run_once();
  EXPECT_FALSE(task.done());
  EXPECT_TRUE(task.cancel());
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_FALSE(reached_end);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_asyncio_wait_for_cancelled: a coroutine run by wait_for that ignores
// every cancel runs to its end; the caller, whose cancel it swallowed, then
// returns normally.
TEST_F(WaitFor, ACancelledCallerWaitsForACoroutineThatIgnoresTheCancel) {
  bool exited = false;
  auto slow = [](bool& flag) -> Task<> {
    double end = now() + 0.2;
    while (now() < end) {
      try {
        co_await sleep(end - now());
      } catch (const CancelledError&) {
      }
    }
    flag = true;
  };
  auto body = [&slow](bool& flag) -> Task<> { co_await wait_for(slow(flag), 0.4); };
  Future<void> task = loop.create_task(body(exited));
  loop.run_once();
  EXPECT_TRUE(task.cancel());
  loop.run_until_complete(task);
  EXPECT_TRUE(exited);
  EXPECT_FALSE(task.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 0.2);
}

// test_wait_for_reraises_exception_during_cancellation, for a task's future:
// the task's exception at the cancel is what wait_for throws.
TEST_F(WaitFor, AnExceptionOfTheTaskFutureDuringTheCancelPropagates) {
  auto inner = []() -> Task<int> {
    try {
      co_await sleep(0.2);
    } catch (const CancelledError&) {
    }
    throw std::runtime_error("foo");
  };
  auto body = [&inner]() -> Task<int> {
    Future<int> inner_task = create_task(inner());
    co_return co_await wait_for(inner_task, 0.0001);
  };
  try {
    loop.run_until_complete(body());
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "foo");
  }
}

// test_wait_for_timeout_less_then_0_or_0, with the task already running and
// a negative timeout: the task is cancelled, its cleanup runs, TimeoutError.
TEST_F(WaitFor, ANegativeTimeoutCancelsARunningTaskAndThrowsTimeoutError) {
  bool running = false;
  auto foo = [](bool& flag) -> Task<int> {
    flag = true;
    try {
      co_await sleep(10);
    } catch (...) {
      flag = false;
      throw;
    }
    co_return 1;
  };
  auto body = [&foo](bool& flag) -> Task<> {
    Future<int> task = create_task(foo(flag));
    co_await sleep(0);
    EXPECT_TRUE(flag);
    EXPECT_THROW(co_await wait_for(task, -1.0), TimeoutError);
    EXPECT_TRUE(task.cancelled());
  };
  loop.run_until_complete(body(running));
  EXPECT_FALSE(running);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// ------------------------------------------------------------------ nesting (the example)

TEST_F(WaitFor, InATaskGroupInACancelledTaskEveryLayerEndsCancelled) {
  // task -> task_group -> wait_for -> inner; the task is cancelled from outside.
  std::vector<std::string> log;
  Future<int> child;
  auto body = [](std::vector<std::string>& out, Future<int>& sibling) -> Task<> {
    try {
      co_await task_group([&](TaskGroup& group) -> Task<> {
        sibling = group.create_task(work(100, 1));
        try {
          co_await wait_for(slow_cleanup(100, 0.5, out, Counted{}), 50.0);
        } catch (const TimeoutError&) {
          out.push_back("wait_for: TimeoutError");
        } catch (const CancelledError& e) {
          out.push_back(e.origin() == nullptr ? "wait_for: the task's cancel" : "wait_for: other");
          throw;
        }
      });
    } catch (const CancelledError& e) {
      out.push_back("task_group: CancelledError " + e.message());
      throw;
    } catch (const TaskGroupError&) {
      out.push_back("task_group: TaskGroupError");
    }
  };
  Future<void> task = loop.create_task(body(log, child));
  loop.call_later(1, [&task] { task.cancel("outside"); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(child.cancelled());
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up", "wait_for: the task's cancel",
                                           "task_group: CancelledError outside"}));
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(WaitFor, TimingOutInsideATaskGroupBlockLeavesTheGroupRunning) {
  auto body = []() -> Task<int> {
    int total = 0;
    co_await task_group([&](TaskGroup& group) -> Task<> {
      Future<int> a = group.create_task(work(3, 10));
      try {
        co_await wait_for(work(100, 1), 1.0);
      } catch (const TimeoutError&) {
        total += 1;
      }
      total += co_await a;
    });
    co_return total;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 11);
}

TEST_F(WaitFor, AChildFailureDuringWaitForInTheBlockIsTheGroupsNotATimeout) {
  const void* seen_origin = nullptr;
  auto failing = []() -> Task<int> {
    co_await sleep(1);
    throw std::runtime_error("child failed");
  };
  auto body = [&failing](const void*& origin) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      group.create_task(failing());
      try {
        co_await wait_for(work(100, 1), 50.0);
      } catch (const TimeoutError&) {
        ADD_FAILURE() << "wait_for converted the group's cancel";
      } catch (const CancelledError& e) {
        origin = e.origin();
        throw;
      }
    });
  };
  try {
    loop.run_until_complete(body(seen_origin));
    ADD_FAILURE() << "no TaskGroupError";
  } catch (const TaskGroupError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(what_of(e.errors()[0]), "child failed");
  }
  EXPECT_NE(seen_origin, nullptr);
}

TEST_F(WaitFor, ATimeoutInAChildIsThatChildsFailure) {
  Future<int> sibling;
  auto late = []() -> Task<int> { co_return co_await wait_for(work(100, 1), 1.0); };
  auto body = [&late](Future<int>& other) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      group.create_task(late());
      other = group.create_task(work(100, 2));
      co_return;
    });
  };
  try {
    loop.run_until_complete(body(sibling));
    ADD_FAILURE() << "no TaskGroupError";
  } catch (const TaskGroupError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_THROW(std::rethrow_exception(e.errors()[0]), TimeoutError);
  }
  EXPECT_TRUE(sibling.cancelled());
}

// asyncio 3.12 wait_for runs `await fut` in a timeout: a future cancelled by
// someone else before the deadline gives CancelledError, not TimeoutError.
TEST_F(WaitFor, AFutureCancelledElsewhereBeforeTheDeadlineGivesCancelledError) {
  Future<int> f = loop.create_future<int>();
  loop.call_later(1, [f]() mutable { f.cancel("elsewhere"); });
  auto body = [](Future<int> fut) -> Task<std::string> {
    try {
      co_await wait_for(fut, 5.0);
    } catch (const CancelledError& e) {
      co_return "CancelledError: " + e.message();
    } catch (const TimeoutError&) {
      co_return "TimeoutError";
    }
    co_return "value";
  };
  EXPECT_EQ(loop.run_until_complete(body(f)), "CancelledError: elsewhere");
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
}

// ------------------------------------------------------------------ asyncio 3.12 details

// asyncio.wait_for (tasks.py) with timeout <= 0 and a pending
// future calls _cancel_and_wait, which awaits a separate `waiter` future ("We
// cannot wait on *fut* directly to make sure _cancel_and_wait itself is
// reliably cancellable"): a cancel of the caller cancels `waiter` and wait_for
// raises CancelledError at once, while the inner task still cleans up.
TEST_F(WaitFor, ATimeoutOfZeroIsCancellableWhileTheTaskCleansUp) {
  std::vector<std::string> log;
  Future<int> inner;
  auto body = [](std::vector<std::string>& out, Future<int>& t) -> Task<int> {
    t = create_task(slow_cleanup(10, 5, out, Counted{}));
    co_await sleep(0);  // it starts and sleeps
    co_return co_await wait_for(t, 0.0);
  };
  Future<int> task = loop.create_task(body(log, inner));
  loop.call_later(1, [&task] { task.cancel("stop"); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);  // asyncio: the caller ends at the cancel
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(log, std::vector<std::string>{"cancelled"});  // the inner one still cleans up
  EXPECT_THROW(loop.run_until_complete(inner), CancelledError);
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "cleaned up"}));
}

// asyncio.wait_for(coro, 0) (tasks.py) wraps the coroutine in a
// task and awaits _cancel_and_wait(fut): the caller suspends on `waiter`, and a
// cancel() of the caller that is pending (here: the task cancelled itself)
// cancels that waiter in Task.__step (_must_cancel), so wait_for raises
// CancelledError and the caller ends cancelled.
TEST_F(WaitFor, ATimeoutOfZeroInATaskThatIsBeingCancelledThrowsCancelledError) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    current_task().cancel("before");
    try {
      co_await wait_for(work(1, 1), 0.0);
    } catch (const CancelledError& e) {
      out.push_back("CancelledError: " + e.message());
      throw;
    } catch (const TimeoutError&) {
      out.push_back("TimeoutError");
      throw;
    }
  };
  Future<void> task = loop.create_task(body(log));
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(log, std::vector<std::string>{"CancelledError: before"});
}

// ------------------------------------------------------------------ lifetimes

TEST_F(WaitFor, TakesAQueuesGetAndPutAsAsyncioTakesAnyAwaitable) {
  auto body = []() -> Task<std::vector<std::string>> {
    std::vector<std::string> log;
    Queue<int> queue(1);
    get_running_loop().call_later(1, [&queue] { queue.put_nowait(7); });
    log.push_back("got " + std::to_string(co_await wait_for(queue.get(), 2.0)));
    co_await wait_for(queue.put(8), 1.0);  // room: does not wait
    try {
      co_await wait_for(queue.put(9), 1.0);  // full
    } catch (const TimeoutError&) {
      log.push_back("put timed out at " + std::to_string(static_cast<int>(now())));
    }
    const std::size_t size = queue.qsize();
    log.push_back("size " + std::to_string(size) + ", holds " + std::to_string(queue.get_nowait()));
    co_return log;
  };
  EXPECT_EQ(loop.run_until_complete(body()),
            (std::vector<std::string>{"got 7", "put timed out at 2", "size 1, holds 8"}));
}

TEST_F(WaitFor, ItsTimeoutErrorNamesWaitForWhicheverWayTheTimeoutPassed) {
  auto message = [](auto awaitable) -> Task<std::string> {
    try {
      co_await std::move(awaitable);
    } catch (const TimeoutError& e) {
      co_return e.what();
    }
    co_return "no TimeoutError";
  };
  auto body = [&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> got;
    Queue<int> queue;
    Future<int> never = get_running_loop().create_future<int>();
    got.push_back(co_await message(wait_for(work(5, 1), 1.0)));
    got.push_back(co_await message(wait_for(queue.get(), 1.0)));
    got.push_back(co_await message(wait_for(never, 1.0)));
    got.push_back(co_await message(wait_for(work(5, 1), 0.0)));
    got.push_back(co_await message(wait_for(get_running_loop().create_future<int>(), 0.0)));
    // A timeout block keeps its own; so does a wait_for inside one.
    got.push_back(co_await message(timeout(1.0, work(5, 1))));
    got.push_back(co_await message(timeout(5.0, wait_for(work(5, 1), 1.0))));
    co_return got;
  };
  const std::string wait_for_message = "eddy::wait_for: the timeout passed";
  const std::string timeout_message = "eddy::timeout: the deadline passed";
  EXPECT_EQ(loop.run_until_complete(body()),
            (std::vector<std::string>{wait_for_message, wait_for_message, wait_for_message,
                                      wait_for_message, wait_for_message, timeout_message,
                                      wait_for_message}));
}

TEST_F(WaitFor, ClosingTheLoopDestroysTasksInWaitForOnceAndCancelsTheirFutures) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out, Counted) -> Task<int> {
    Future<int> other = create_task(slow_cleanup(100, 1, out, Counted{}));
    int a = co_await wait_for(slow_cleanup(100, 1, out, Counted{}), 50.0);
    co_return a + co_await wait_for(other, 50.0);
  };
  Future<int> task = loop.create_task(body(log, Counted{}));
  run_for(1);
  // body: 1; each slow_cleanup: 2; and the argument of the second, which
  // lives until the end of the co_await expression.
  EXPECT_EQ(Counted::alive(), 6);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(log.empty());  // frames are destroyed, not resumed
}

}  // namespace
}  // namespace eddy
