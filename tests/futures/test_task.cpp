// Tests for eddy::Task<T> and the loop's tasks (eddy/task.hpp): laziness,
// inline awaiting, create_task, names, current_task/all_tasks, the task
// factory, cancellation (asyncio's observable rules) and object lifetimes on
// every path. Time runs on the fixture's VirtualClock.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <eddy/concurrent_future.hpp>
#include <eddy/future.hpp>
#include <eddy/gather.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/wait.hpp>

#include "loop_test.hpp"
#include "sanitizers.hpp"

// An operator co_await for a type of another library's (only a using-
// declaration makes it visible), and a type with both a member and a free one.
namespace co_await_lib {
inline auto operator co_await(std::chrono::milliseconds delay) {
  return eddy::sleep(static_cast<double>(delay.count()) / 1000.0, 42);
}
struct Source {
  auto operator co_await() const& { return eddy::sleep(0, 1); }
};
inline auto operator co_await(Source&) {
  return eddy::sleep(0, 2);
}
}  // namespace co_await_lib

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::LoopTest;
using eddy::testing::what_of;

class TaskTest : public LoopTest {
 protected:
  void capture_reports() {
    loop.set_exception_handler(
        [this](Loop&, const ExceptionContext& context) { reports.push_back(context); });
  }
  std::vector<ExceptionContext> reports;
};

Task<int> value_of(int v) {
  co_return v;
}

Task<int> after_sleep(double delay, int v) {
  co_await sleep(delay);
  co_return v;
}

Task<int> throws_after_sleep(double delay) {
  co_await sleep(delay);
  throw std::runtime_error("boom");
}

// ---------------------------------------------------------------- Task<T>

TEST_F(TaskTest, ATaskDoesNotRunUntilItIsAwaitedOrScheduled) {
  bool ran = false;
  auto body = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  Task<> task = body();
  EXPECT_FALSE(ran);
  loop.run_until_complete(std::move(task));
  EXPECT_TRUE(ran);
}

TEST_F(TaskTest, RunUntilCompleteReturnsTheResultOfATask) {
  EXPECT_EQ(loop.run_until_complete(value_of(42)), 42);
}

// asyncio.run_until_complete checks the loop before it wraps the coroutine
// in a task: a refused call leaves nothing scheduled.
TEST_F(TaskTest, RunUntilCompleteRefusedOnARunningLoopSchedulesNothing) {
  bool ran = false;
  auto body = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  auto outer = [&]() -> Task<std::string> {
    try {
      loop.run_until_complete(body());  // this loop runs
    } catch (const LoopRunningError&) {
    }
    Loop other(LoopOptions().use_clock(std::make_shared<VirtualClock>()));
    try {
      other.run_until_complete(body());  // another loop runs on this thread
    } catch (const LoopRunningError&) {
    }
    const bool other_has_tasks = !all_tasks(other).empty();
    other.close();
    co_await sleep(1);
    co_return other_has_tasks ? "scheduled on the other loop" : "nothing scheduled";
  };
  EXPECT_EQ(loop.run_until_complete(outer()), "nothing scheduled");
  EXPECT_FALSE(ran);
}

TEST_F(TaskTest, AwaitingATaskRunsItInlineWithoutAnIterationOfTheLoop) {
  std::vector<std::string> order;
  auto inner = [&]() -> Task<int> {
    order.push_back("inner");
    co_return 1;
  };
  auto outer = [&]() -> Task<int> {
    loop.call_soon([&] { order.push_back("callback"); });
    int v = co_await inner();
    order.push_back("after inner");
    co_return v;
  };
  EXPECT_EQ(loop.run_until_complete(outer()), 1);
  EXPECT_EQ(order, (std::vector<std::string>{"inner", "after inner", "callback"}));
}

TEST_F(TaskTest, AnExceptionLeavingAnAwaitedTaskIsRethrownAtTheAwait) {
  auto inner = []() -> Task<int> {
    throw std::runtime_error("inner failed");
    co_return 0;
  };
  auto outer = [&]() -> Task<std::string> {
    try {
      co_await inner();
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(loop.run_until_complete(outer()), "inner failed");
}

TEST_F(TaskTest, ATaskOfAMoveOnlyTypeGivesItsValue) {
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  auto outer = [&]() -> Task<int> {
    std::unique_ptr<int> p = co_await make();
    co_return *p;
  };
  EXPECT_EQ(loop.run_until_complete(outer()), 7);
  std::unique_ptr<int> direct = loop.run_until_complete(make());
  EXPECT_EQ(*direct, 7);
}

// A result that cannot be made: its constructor from an int throws.
struct Refused {
  Refused(int v) : value(v) {  // NOLINT(google-explicit-constructor): co_return v builds it
    if (v < 0) throw std::invalid_argument("refused");
  }
  int value;
};

TEST_F(TaskTest, AResultThatThrowsWhileBeingMadeFailsTheTaskWithThatException) {
  auto make = [](int v) -> Task<Refused> { co_return Refused(v); };
  auto made_in_place = [](int v) -> Task<Refused> { co_return v; };  // built by return_value
  // The root of a task: its future ends failed.
  Future<Refused> root = loop.create_task(made_in_place(-1));
  EXPECT_THROW(loop.run_until_complete(root), std::invalid_argument);
  EXPECT_FALSE(root.cancelled());
  EXPECT_EQ(what_of(root.exception()), "refused");
  // Awaited inline: the exception comes out of the co_await.
  auto outer = [&]() -> Task<std::string> {
    try {
      co_await made_in_place(-2);
    } catch (const std::invalid_argument& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(loop.run_until_complete(outer()), "refused");
  EXPECT_EQ(loop.run_until_complete(make(3)).value, 3);
  EXPECT_EQ(loop.run_until_complete(made_in_place(4)).value, 4);
}

Task<long> chain(long depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await chain(depth - 1);
}

// ThreadSanitizer instruments every function exit, which turns the tail call
// of symmetric transfer into a real call: under TSan the chain is shorter.
#ifdef EDDY_TEST_TSAN
constexpr long kChainDepth = 10'000;
#else
constexpr long kChainDepth = 1'000'000;
#endif

TEST_F(TaskTest, AMillionDeepChainOfAwaitsCompletesWithoutStackOverflow) {
  EXPECT_EQ(loop.run_until_complete(chain(kChainDepth)), kChainDepth);
}

TEST_F(TaskTest, CoAwaitUsesTheOperatorCoAwaitTheLanguagePicks) {
  // eddy's check of each co_await must not change which operator co_await
  // the language finds: one visible at the co_await only (argument-
  // dependent lookup cannot find it), and a free one that matches a
  // non-const lvalue better than a const member.
  auto body = [&]() -> Task<int> {
    using co_await_lib::operator co_await;
    using namespace std::chrono_literals;
    const int by_using = co_await 10ms;
    co_await_lib::Source source;
    const int free_one = co_await source;
    const co_await_lib::Source& as_const = source;
    const int member = co_await as_const;
    co_return by_using * 100 + free_one * 10 + member;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 4221);
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
}

TEST_F(TaskTest, AwaitingAnEmptyTaskThrowsInvalidStateError) {
  auto outer = []() -> Task<int> {
    Task<int> empty;
    co_return co_await empty;
  };
  EXPECT_THROW(loop.run_until_complete(outer()), InvalidStateError);
}

TEST_F(TaskTest, AwaitingAnEmptyFutureThrowsInvalidStateErrorNamingTheAwait) {
  auto outer = []() -> Task<int> { co_return co_await Future<int>(); };
  try {
    loop.run_until_complete(outer());
    ADD_FAILURE() << "no InvalidStateError";
  } catch (const InvalidStateError& e) {
    EXPECT_STREQ(e.what(), "eddy: co_await on an empty Future");
  }
}

TEST_F(TaskTest, AwaitingATaskASecondTimeThrowsInvalidStateError) {
  auto outer = []() -> Task<int> {
    Task<int> once = value_of(1);
    int first = co_await once;
    EXPECT_EQ(first, 1);
    co_return co_await once;
  };
  EXPECT_THROW(loop.run_until_complete(outer()), InvalidStateError);
}

TEST_F(TaskTest, DestroyingATaskThatNeverRanDestroysWhatItsFrameHolds) {
  auto body = [](Counted) -> Task<> { co_return; };
  {
    Task<> task = body(Counted{});
    EXPECT_EQ(Counted::alive(), 1);
  }
  EXPECT_EQ(Counted::alive(), 0);
}

// ---------------------------------------------------------------- awaiting futures

TEST_F(TaskTest, AwaitingAFutureGivesItsResultWhenItIsSet) {
  Future<int> f = loop.create_future<int>();
  loop.call_later(1.0, [f]() mutable { f.set_result(5); });
  auto body = [&]() -> Task<int> { co_return co_await f; };
  EXPECT_EQ(loop.run_until_complete(body()), 5);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
}

TEST_F(TaskTest, AwaitingADoneFutureDoesNotSuspend) {
  Future<int> f = loop.create_future<int>();
  f.set_result(3);
  std::vector<std::string> order;
  auto body = [&]() -> Task<int> {
    loop.call_soon([&] { order.push_back("callback"); });
    int v = co_await f;
    order.push_back("after await");
    co_return v;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 3);
  EXPECT_EQ(order, (std::vector<std::string>{"after await", "callback"}));
}

TEST_F(TaskTest, AwaitingAFailedFutureRethrowsItsException) {
  Future<int> f = loop.create_future<int>();
  f.set_exception(std::runtime_error("failed"));
  auto body = [&]() -> Task<int> { co_return co_await f; };
  EXPECT_THROW(loop.run_until_complete(body()), std::runtime_error);
}

TEST_F(TaskTest, AwaitingACancelledFutureThrowsCancelledErrorWithItsMessage) {
  Future<int> f = loop.create_future<int>();
  loop.call_soon([f]() mutable { f.cancel("gone"); });
  auto body = [&]() -> Task<std::string> {
    try {
      co_await f;
    } catch (const CancelledError& e) {
      co_return e.message();
    }
    co_return "";
  };
  EXPECT_EQ(loop.run_until_complete(body()), "gone");
}

TEST_F(TaskTest, AwaitingAFutureOfAnotherLoopThrowsInvalidArgument) {
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  Future<int> foreign = other.create_future<int>();
  auto body = [&]() -> Task<int> { co_return co_await foreign; };
  EXPECT_THROW(loop.run_until_complete(body()), std::invalid_argument);
}

TEST_F(TaskTest, AwaitingAConcurrentFutureGetsTheResultSetOnAnotherThread) {
  // Real time: the result comes from a thread, through call_soon_threadsafe.
  Loop real;
  ConcurrentFuture<int> cf;
  std::thread producer;
  auto body = [&]() -> Task<int> {
    producer = std::thread([cf]() mutable { cf.set_result(9); });
    co_return co_await cf;
  };
  EXPECT_EQ(real.run_until_complete(body()), 9);
  producer.join();
  real.close();
}

// A coroutine finds its task through the running thread (TaskCore::current),
// not through its frame: a task suspended while the loop ran on one thread
// goes on, inline awaits and all, when the loop is run on another.
Task<int> sum_with_yields(int n) {
  int sum = 0;
  for (int i = 0; i < n; ++i) {
    co_await sleep(0);
    sum += co_await value_of(i);
  }
  co_return sum;
}

TEST_F(TaskTest, ATaskSuspendedOnOneThreadFinishesWhenTheLoopRunsOnAnother) {
  Future<int> sum = loop.create_task(sum_with_yields(10));
  loop.run_once();  // the first step: suspended at the first sleep(0)
  loop.run_once();
  ASSERT_FALSE(sum.done());
  int result = -1;
  std::thread other([&] { result = loop.run_until_complete(sum); });
  other.join();
  EXPECT_EQ(result, 45);
}

// ---------------------------------------------------------------- create_task

TEST_F(TaskTest, CreateTaskRunsTheFirstStepThroughCallSoon) {
  std::vector<std::string> order;
  loop.call_soon([&] { order.push_back("before"); });
  auto body = [&]() -> Task<> {
    order.push_back("task");
    co_return;
  };
  Future<void> f = loop.create_task(body());
  loop.call_soon([&] { order.push_back("after"); });
  EXPECT_TRUE(order.empty());
  loop.run_until_complete(f);
  EXPECT_EQ(order, (std::vector<std::string>{"before", "task", "after"}));
}

TEST_F(TaskTest, TheLoopKeepsATaskAliveWhenItsFutureIsDropped) {
  int finished = 0;
  auto body = [&]() -> Task<> {
    co_await sleep(1.0);
    ++finished;
  };
  (void)loop.create_task(body());
  loop.run_until_complete(after_sleep(2.0, 0));
  EXPECT_EQ(finished, 1);
}

TEST_F(TaskTest, AwaitingATasksFutureGivesItsResult) {
  auto body = [&]() -> Task<int> {
    Future<int> child = loop.create_task(after_sleep(1.0, 8));
    co_return co_await child;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 8);
}

TEST_F(TaskTest, AFailingTaskWhoseExceptionIsNeverRetrievedIsReported) {
  capture_reports();
  (void)loop.create_task(throws_after_sleep(1.0), "failing");
  loop.run_until_complete(after_sleep(2.0, 0));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].message, "Task exception was never retrieved");
  EXPECT_EQ(what_of(reports[0].exception), "boom");
  EXPECT_NE(reports[0].future.find("failing"), std::string::npos);
}

TEST_F(TaskTest, AFailingTaskWhoseExceptionIsRetrievedIsNotReported) {
  capture_reports();
  Future<int> f = loop.create_task(throws_after_sleep(1.0));
  EXPECT_THROW(loop.run_until_complete(f), std::runtime_error);
  f = Future<int>();
  EXPECT_TRUE(reports.empty());
}

TEST_F(TaskTest, SetResultOnATasksFutureThrowsRuntimeError) {
  Future<int> f = loop.create_task(value_of(1));
  EXPECT_THROW(f.set_result(2), RuntimeError);
  EXPECT_THROW(f.set_exception(std::runtime_error("x")), RuntimeError);
  EXPECT_EQ(loop.run_until_complete(f), 1);
}

TEST_F(TaskTest, CreateTaskOfAnEmptyTaskThrowsInvalidStateError) {
  EXPECT_THROW(loop.create_task(Task<int>()), InvalidStateError);
}

TEST_F(TaskTest, CreateTaskOnAClosedLoopThrowsLoopClosedErrorAndDestroysTheFrame) {
  auto body = [](Counted) -> Task<> { co_return; };
  loop.close();
  EXPECT_THROW(loop.create_task(body(Counted{})), LoopClosedError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskTest, CreateTaskOfATaskThatAlreadyRanThrowsInvalidStateError) {
  Task<int> task = value_of(1);
  auto body = [&]() -> Task<int> { co_return co_await task; };
  EXPECT_EQ(loop.run_until_complete(body()), 1);
  EXPECT_THROW(loop.create_task(std::move(task)), InvalidStateError);
}

// ---------------------------------------------------------------- debug mode

// base_events.py _run_once, in debug mode: 'Executing %s took %.3f seconds', where
// _format_handle prints the Task whose step the handle ran (its repr after the step), else the
// handle.

TEST_F(TaskTest, ASlowFirstStepIsReportedWithTheTask) {
  capture_reports();
  loop.set_debug(true);
  auto body = [&]() -> Task<int> {
    clock->advance(std::chrono::milliseconds(200));
    co_await sleep(0);
    co_return 1;
  };
  const int line = __LINE__ + 1;
  Future<int> f = loop.create_task(body(), "slowpoke");
  EXPECT_EQ(loop.run_until_complete(f), 1);
  ASSERT_EQ(reports.size(), 1u);
  const ExceptionContext& report = reports[0];
  EXPECT_EQ(report.future, "Task 'slowpoke' (pending)");  // as it was after the slow step
  EXPECT_EQ(report.message.rfind("Executing Task 'slowpoke' (pending) took 0.200 seconds", 0), 0u)
      << report.message;
  EXPECT_EQ(report.handle.rfind("callback #", 0), 0u) << report.handle;
  EXPECT_EQ(report.source.line, static_cast<std::uint_least32_t>(line));
  EXPECT_FALSE(report.exception);
}

TEST_F(TaskTest, ASlowStepAfterSleepZeroIsReportedWithTheTask) {
  capture_reports();
  loop.set_debug(true);
  auto body = [&]() -> Task<int> {
    co_await sleep(0);
    clock->advance(std::chrono::milliseconds(300));
    co_return 2;
  };
  Future<int> f = loop.create_task(body(), "after-yield");
  EXPECT_EQ(loop.run_until_complete(f), 2);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].future, "Task 'after-yield' (finished)");
  EXPECT_EQ(reports[0].message.rfind("Executing Task 'after-yield' (finished) took 0.300", 0), 0u)
      << reports[0].message;
}

TEST_F(TaskTest, ASlowStepWokenByAFutureIsReportedWithTheTaskItWoke) {
  // The wake-up runs among the done callbacks of the awaited future (asyncio's
  // Task.__wakeup, a method of the task: _format_handle prints the task).
  capture_reports();
  loop.set_debug(true);
  Future<int> gate = loop.create_future<int>();
  bool plain_ran = false;
  gate.add_done_callback([&](Future<int>&) { plain_ran = true; });
  auto body = [&]() -> Task<int> {
    int v = co_await gate;
    clock->advance(std::chrono::milliseconds(150));
    co_return v;
  };
  Future<int> f = loop.create_task(body(), "woken");
  loop.call_soon([&] { gate.set_result(5); });
  EXPECT_EQ(loop.run_until_complete(f), 5);
  EXPECT_TRUE(plain_ran);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].future, "Task 'woken' (finished)");
  EXPECT_NE(reports[0].message.find("took 0.150"), std::string::npos) << reports[0].message;
}

TEST_F(TaskTest, ASlowPlainCallbackIsStillReportedByItsNumber) {
  capture_reports();
  loop.set_debug(true);
  Future<int> f = loop.create_task(value_of(1));  // the task extension exists
  loop.call_soon([&] { clock->advance(std::chrono::milliseconds(200)); });
  EXPECT_EQ(loop.run_until_complete(f), 1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].future.empty()) << reports[0].future;
  EXPECT_EQ(reports[0].message.rfind("Executing callback #", 0), 0u) << reports[0].message;
}

TEST_F(TaskTest, ASlowLastStepOfAFailedTaskIsReportedBeforeItsUnretrievedException) {
  // The report holds the task until it is written: the task, failed and dropped, is then
  // reported as never retrieved (asyncio: the handle holds the task until _run_once is done
  // with it, and the task's __del__ logs).
  capture_reports();
  loop.set_debug(true);
  auto body = [&]() -> Task<int> {
    co_await sleep(0);
    clock->advance(std::chrono::milliseconds(200));
    throw std::runtime_error("late and broken");
  };
  (void)loop.create_task(body(), "dropped");
  loop.run_until_complete(after_sleep(1.0, 0));
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].message.rfind("Executing Task 'dropped' (finished with an exception)", 0),
            0u)
      << reports[0].message;
  EXPECT_EQ(reports[1].message, "Task exception was never retrieved");
  EXPECT_EQ(what_of(reports[1].exception), "late and broken");
}

TEST_F(TaskTest, WithoutDebugModeASlowStepIsNotReported) {
  capture_reports();
  auto body = [&]() -> Task<int> {
    clock->advance(std::chrono::milliseconds(500));
    co_return 3;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 3);
  EXPECT_TRUE(reports.empty());
}

// ---------------------------------------------------------------- names, current_task, all_tasks

// The number after "Task-" in `name`, or 0.
std::uint64_t task_number(const std::string& name) {
  if (name.rfind("Task-", 0) != 0) return 0;
  return std::stoull(name.substr(5));
}

TEST_F(TaskTest, TasksAreNamedTaskNInCreationOrderUnlessNamed) {
  Future<int> a = loop.create_task(value_of(1));
  Future<int> b = loop.create_task(value_of(2), "worker");
  Future<int> c = loop.create_task(value_of(3));
  std::vector<TaskRef> tasks = all_tasks(loop);
  ASSERT_EQ(tasks.size(), 3u);
  const std::uint64_t first = task_number(tasks[0].name());
  EXPECT_GT(first, 0u) << tasks[0].name();
  EXPECT_EQ(tasks[1].name(), "worker");
  // A named task takes a number too (asyncio's does not): the next is +2.
  EXPECT_EQ(tasks[2].name(), "Task-" + std::to_string(first + 2));
  tasks[0].set_name("renamed");
  EXPECT_EQ(all_tasks(loop)[0].name(), "renamed");
  loop.run_until_complete(c);
  loop.run_until_complete(b);
  loop.run_until_complete(a);
}

TEST_F(TaskTest, AnEmptyNameGivesTheTaskItsDefaultName) {
  Future<int> a = loop.create_task(value_of(1), "");
  Future<int> b = loop.create_task(value_of(2), std::string());
  std::vector<TaskRef> tasks = all_tasks(loop);
  ASSERT_EQ(tasks.size(), 2u);
  const std::uint64_t first = task_number(tasks[0].name());
  EXPECT_EQ(tasks[0].name(), "Task-" + std::to_string(first));
  EXPECT_EQ(tasks[1].name(), "Task-" + std::to_string(first + 1));
  loop.run_until_complete(b);
  loop.run_until_complete(a);
}

TEST_F(TaskTest, CurrentTaskIsTheRunningTaskAndEmptyOutsideTasks) {
  EXPECT_FALSE(current_task());
  std::string seen;
  auto body = [&]() -> Task<> {
    seen = current_task().name();
    co_await sleep(1.0);
    EXPECT_EQ(current_task().name(), "me");
  };
  loop.run_until_complete(loop.create_task(body(), "me"));
  EXPECT_EQ(seen, "me");
  EXPECT_FALSE(current_task());
}

TEST_F(TaskTest, AllTasksListsTheTasksThatAreNotDone) {
  Future<int> quick = loop.create_task(value_of(1), "quick");
  Future<int> slow = loop.create_task(after_sleep(5.0, 2), "slow");
  EXPECT_EQ(all_tasks(loop).size(), 2u);
  loop.run_until_complete(quick);
  std::vector<TaskRef> left = all_tasks(loop);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].name(), "slow");
  EXPECT_FALSE(left[0].done());
  loop.run_until_complete(slow);
  EXPECT_TRUE(all_tasks(loop).empty());
  EXPECT_TRUE(left[0].done());
}

TEST_F(TaskTest, AllTasksKeepsCreationOrderWhileEndedTasksLeaveGapsThatNewTasksFill) {
  // More tasks than the registry's first table holds; every other one ends,
  // and the tasks made after reuse their places.
  std::vector<Future<int>> first;
  for (int i = 0; i < 100; ++i)
    first.push_back(loop.create_task(after_sleep(i % 2 == 0 ? 1.0 : 5.0, i),
                                     std::string("a").append(std::to_string(i))));
  loop.run_until_complete(first[98]);
  std::vector<Future<int>> second;
  for (int i = 0; i < 70; ++i)
    second.push_back(
        loop.create_task(after_sleep(2.0, i), std::string("b").append(std::to_string(i))));
  std::vector<std::string> expected;
  for (int i = 1; i < 100; i += 2)
    expected.push_back(std::string("a").append(std::to_string(i)));
  for (int i = 0; i < 70; ++i)
    expected.push_back(std::string("b").append(std::to_string(i)));
  std::vector<std::string> names;
  for (const TaskRef& task : all_tasks(loop))
    names.push_back(task.name());
  EXPECT_EQ(names, expected);
  loop.run_until_complete(gather(std::move(second)));
  EXPECT_EQ(all_tasks(loop).size(), 50u);
  loop.run_until_complete(gather(std::move(first)));
  EXPECT_TRUE(all_tasks(loop).empty());
}

TEST_F(TaskTest, AllTasksWithoutARunningLoopThrowsNoRunningLoopError) {
  EXPECT_THROW(all_tasks(), NoRunningLoopError);
}

TEST_F(TaskTest, AllTasksAndGetTaskFactoryFromAnotherThreadWhileTheLoopRunsThrowWrongThreadError) {
  // A TaskRef's reference count belongs to the loop's thread: listing the
  // tasks from elsewhere raced with the loop (TSan; a crash in the plain
  // build). It is refused, as every method but call_soon_threadsafe.
  auto probe = [&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> seen;
    std::thread other([&] {
      try {
        (void)all_tasks(loop);
        seen.push_back("all_tasks: no error");
      } catch (const WrongThreadError& e) {
        seen.push_back(e.what());
      }
      try {
        (void)loop.get_task_factory();
        seen.push_back("get_task_factory: no error");
      } catch (const WrongThreadError& e) {
        seen.push_back(e.what());
      }
    });
    other.join();
    co_return seen;
  };
  std::vector<std::string> seen = loop.run_until_complete(loop.create_task(probe()));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].find("eddy::all_tasks"), std::string::npos) << seen[0];
  EXPECT_NE(seen[1].find("eddy::Loop::get_task_factory"), std::string::npos) << seen[1];
  // A loop that is not running may still be asked from any one thread.
  std::size_t listed = 99;
  std::thread([&] { listed = all_tasks(loop).size(); }).join();
  EXPECT_EQ(listed, 0u);
}

TEST_F(TaskTest, AnEmptyTaskRefThrowsInvalidStateError) {
  TaskRef none;
  EXPECT_THROW(none.name(), InvalidStateError);
  EXPECT_THROW(none.cancel(), InvalidStateError);
}

TEST_F(TaskTest, TheTaskFactorySeesEveryNewTaskAndMayNameIt) {
  std::vector<std::string> seen;
  loop.set_task_factory([&](TaskRef task) {
    seen.push_back(task.name());
    task.set_name("factory-" + task.name());
  });
  EXPECT_TRUE(static_cast<bool>(loop.get_task_factory()));
  Future<int> f = loop.create_task(value_of(1));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_GT(task_number(seen[0]), 0u) << seen[0];
  EXPECT_EQ(all_tasks(loop)[0].name(), "factory-" + seen[0]);
  loop.run_until_complete(f);
  EXPECT_EQ(seen.size(), 1u);
  loop.set_task_factory(nullptr);
  EXPECT_FALSE(static_cast<bool>(loop.get_task_factory()));
}

TEST_F(TaskTest, ATaskFactoryThatCancelsMeansTheBodyNeverRuns) {
  bool ran = false;
  auto body = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  loop.set_task_factory([](TaskRef task) { task.cancel("refused"); });
  Future<void> f = loop.create_task(body());
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_FALSE(ran);
}

// ---------------------------------------------------------------- cancellation

TEST_F(TaskTest, CancellingASuspendedTaskThrowsCancelledErrorAtItsAwaitWithTheMessage) {
  std::string seen;
  auto body = [&]() -> Task<> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError& e) {
      seen = e.message();
      throw;
    }
  };
  Future<void> f = loop.create_task(body());
  loop.call_later(1.0, [f]() mutable { EXPECT_TRUE(f.cancel("stop")); });
  try {
    loop.run_until_complete(f);
    FAIL() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "stop");
  }
  EXPECT_EQ(seen, "stop");
  EXPECT_TRUE(f.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);  // the sleep ended at the cancel
}

TEST_F(TaskTest, ATaskThatCatchesCancelledErrorMayGoOnAndReturnAValue) {
  auto body = [&]() -> Task<int> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError&) {
    }
    co_await sleep(1.0);  // each cancel is delivered once: this sleep is not cut short
    co_return 5;
  };
  Future<int> f = loop.create_task(body());
  loop.call_later(1.0, [f]() mutable { f.cancel(); });
  EXPECT_EQ(loop.run_until_complete(f), 5);
  EXPECT_FALSE(f.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
}

TEST_F(TaskTest, CancellingADoneTaskReturnsFalse) {
  Future<int> f = loop.create_task(value_of(1));
  loop.run_until_complete(f);
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.result(), 1);
}

TEST_F(TaskTest, ATaskCancelledBeforeItStartsNeverRunsItsBody) {
  bool ran = false;
  auto body = [&](Counted) -> Task<> {
    ran = true;
    co_return;
  };
  Future<void> f = loop.create_task(body(Counted{}));
  EXPECT_TRUE(f.cancel("early"));
  EXPECT_FALSE(f.done());  // a request, as asyncio: done once the loop ran the step
  try {
    loop.run_until_complete(f);
    FAIL() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "early");
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskTest, CancellingATaskTwiceDeliversOneCancelledError) {
  int caught = 0;
  auto body = [&]() -> Task<int> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError&) {
      ++caught;
    }
    co_await sleep(1.0);
    co_return caught;
  };
  Future<int> f = loop.create_task(body());
  loop.call_later(1.0, [f]() mutable {
    f.cancel();
    f.cancel();
  });
  EXPECT_EQ(loop.run_until_complete(f), 1);
}

TEST_F(TaskTest, CancellingATaskCancelsTheTaskItAwaits) {
  bool child_cancelled = false;
  auto child = [&]() -> Task<int> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError&) {
      child_cancelled = true;
      throw;
    }
    co_return 1;
  };
  auto parent = [&]() -> Task<int> { co_return co_await loop.create_task(child()); };
  Future<int> f = loop.create_task(parent());
  loop.call_later(1.0, [f]() mutable { f.cancel(); });
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_TRUE(child_cancelled);
}

TEST_F(TaskTest, WhenTheAwaitedTaskIgnoresTheCancelItsResultReachesTheAwaiter) {
  auto stubborn = [&]() -> Task<int> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError&) {
    }
    co_return 7;
  };
  auto parent = [&]() -> Task<int> { co_return co_await loop.create_task(stubborn()); };
  Future<int> f = loop.create_task(parent());
  loop.call_later(1.0, [f]() mutable { f.cancel(); });
  EXPECT_EQ(loop.run_until_complete(f), 7);
}

TEST_F(TaskTest, AnAwaitedTaskThatEndsWithAnotherCancelledErrorPassesItOn) {
  // The parent's cancel("a") is passed on to the child it awaits, which
  // catches it and then ends with another CancelledError: its own, or that
  // of a third party's cancel("c"). The parent's await rethrows the child's,
  // as asyncio's Task.__step rethrows the awaited future's CancelledError.
  for (const bool own : {true, false}) {
    std::vector<std::string> log;
    Future<int> child_future;
    auto child = [&]() -> Task<int> {
      try {
        co_await sleep(10.0);
      } catch (const CancelledError& e) {
        log.push_back("child caught " + e.message());
      }
      if (own) throw CancelledError("own");
      co_await sleep(10.0);
      co_return 1;
    };
    auto parent = [&]() -> Task<int> {
      child_future = loop.create_task(child());
      try {
        co_return co_await child_future;
      } catch (const CancelledError& e) {
        log.push_back("parent caught " + e.message());
        throw;
      }
    };
    Future<int> f = loop.create_task(parent());
    loop.call_later(1.0, [f]() mutable { f.cancel("a"); });
    if (!own) loop.call_later(2.0, [&child_future] { child_future.cancel("c"); });
    try {
      loop.run_until_complete(f);
      ADD_FAILURE() << "the parent was not cancelled";
    } catch (const CancelledError& e) {
      log.push_back("parent ended " + e.message());
    }
    const std::string second = own ? "own" : "c";
    EXPECT_EQ(log, (std::vector<std::string>{"child caught a", "parent caught " + second,
                                             "parent ended " + second}));
  }
}

TEST_F(TaskTest, CancellingAnInlineAwaitReachesTheInnermostAwait) {
  std::vector<std::string> order;
  auto inner = [&]() -> Task<> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError&) {
      order.push_back("inner");
      throw;
    }
  };
  auto outer = [&]() -> Task<> {
    try {
      co_await inner();
    } catch (const CancelledError&) {
      order.push_back("outer");
      throw;
    }
  };
  Future<void> f = loop.create_task(outer());
  loop.call_later(1.0, [f]() mutable { f.cancel(); });
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_EQ(order, (std::vector<std::string>{"inner", "outer"}));
}

TEST_F(TaskTest, ATaskThatCancelsItselfGetsCancelledErrorAtItsNextSuspension) {
  std::vector<std::string> order;
  auto body = [&]() -> Task<> {
    current_task().cancel("self");
    order.push_back("still running");
    try {
      co_await sleep(10.0);
    } catch (const CancelledError& e) {
      order.push_back("cancelled: " + e.message());
      throw;
    }
  };
  Future<void> f = loop.create_task(body());
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_EQ(order, (std::vector<std::string>{"still running", "cancelled: self"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);  // the sleep never waited
}

// asyncio's Task.__step: a coroutine that returns while a cancel() it has
// not seen yet is pending ends the task cancelled, not with its value.
TEST_F(TaskTest, ATaskThatReturnsWithACancelPendingEndsCancelledWithItsMessage) {
  auto body = []() -> Task<int> {
    current_task().cancel("too late");
    co_return 5;
  };
  Future<int> f = loop.create_task(body());
  try {
    loop.run_until_complete(f);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "too late");
  }
  EXPECT_TRUE(f.cancelled());
  // The value it returned is destroyed, once.
  auto counted = []() -> Task<Counted> {
    current_task().cancel();
    co_return Counted();
  };
  Future<Counted> c = loop.create_task(counted());
  EXPECT_THROW(loop.run_until_complete(c), CancelledError);
  EXPECT_EQ(Counted::alive(), 0);
  // One that fails instead ends with its exception (asyncio: set_exception).
  auto fails = []() -> Task<int> {
    current_task().cancel();
    throw std::runtime_error("failed anyway");
    co_return 0;
  };
  Future<int> g = loop.create_task(fails());
  EXPECT_THROW(loop.run_until_complete(g), std::runtime_error);
  EXPECT_FALSE(g.cancelled());
  // A cancel that was delivered (and caught) no longer counts.
  auto caught = []() -> Task<int> {
    current_task().cancel();
    try {
      co_await sleep(1.0);
    } catch (const CancelledError&) {
    }
    co_return 7;
  };
  EXPECT_EQ(loop.run_until_complete(caught()), 7);
}

TEST_F(TaskTest, ACancelDuringSleepZeroIsDeliveredWhenTheTaskResumes) {
  auto body = [&]() -> Task<> { co_await sleep(0); };
  Future<void> f = loop.create_task(body());
  // The task suspends in sleep(0) on its first step; this callback runs in
  // the same iteration, before the task resumes in the next one.
  loop.call_soon([f]() mutable { EXPECT_TRUE(f.cancel()); });
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
}

TEST_F(TaskTest, ACancelledErrorFromAnAwaitedFutureEndsTheTaskCancelled) {
  Future<int> f = loop.create_future<int>();
  auto body = [&]() -> Task<int> { co_return co_await f; };
  Future<int> t = loop.create_task(body());
  loop.call_later(1.0, [f]() mutable { f.cancel("from the future"); });
  EXPECT_THROW(loop.run_until_complete(t), CancelledError);
  EXPECT_TRUE(t.cancelled());
}

// ---------------------------------------------------------------- cancellation, asyncio's
// scenarios

// test_cancel, test_cancelling: cancel() is true while the task is pending
// (each time: 3.12 counts requests), false once it is done.
TEST_F(TaskTest, CancelReturnsTrueWhilePendingEvenTwiceAndFalseOnceDone) {
  auto body = []() -> Task<int> {
    co_await sleep(10.0);
    co_return 12;
  };
  Future<int> f = loop.create_task(body());
  loop.run_once();  // the task sleeps
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_FALSE(f.cancel());
}

// test_cancel_yield: a task between two sleep(0) is cancelled at the next one.
TEST_F(TaskTest, ATaskCancelledBetweenTwoSleepZeroEndsCancelled) {
  int steps = 0;
  auto body = [&]() -> Task<int> {
    ++steps;
    co_await sleep(0);
    ++steps;
    co_await sleep(0);
    ++steps;
    co_return 12;
  };
  Future<int> f = loop.create_task(body());
  loop.run_once();  // start the coroutine: it yields in the first sleep(0)
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_TRUE(f.cancelled());
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(steps, 1);
}

// Task.__step: a cancel() that finds the awaited future already done (its
// wake-up is scheduled) sets _must_cancel, and the task's next step throws
// CancelledError into the coroutine at that await; the result is not seen.
TEST_F(TaskTest, ACancelAfterTheAwaitedFutureIsDoneThrowsAtThatAwait) {
  Future<int> f = loop.create_future<int>();
  std::vector<std::string> log;
  auto body = [&]() -> Task<int> {
    try {
      int v = co_await f;
      log.push_back("value " + std::to_string(v));
    } catch (const CancelledError& e) {
      log.push_back("cancelled: " + e.message());
      throw;
    }
    co_return 0;
  };
  Future<int> t = loop.create_task(body());
  loop.run_once();  // the task waits on f
  f.set_result(1);  // its wake-up is scheduled
  EXPECT_TRUE(t.cancel("late"));
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW(loop.run_until_complete(t), CancelledError);
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled: late"}));
}

// test_cancel_both_task_and_inner_future
TEST_F(TaskTest, CancellingTheAwaitedFutureAndThenTheTaskEndsTheTaskCancelled) {
  Future<int> f = loop.create_future<int>();
  auto body = [&]() -> Task<int> {
    co_await f;
    co_return 12;
  };
  Future<int> t = loop.create_task(body());
  loop.run_once();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(t.cancel());
  EXPECT_THROW(loop.run_until_complete(t), CancelledError);
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(t.cancelled());
}

// test_cancel_task_catching: the cancel cancels the awaited future; the
// coroutine catches it and returns: the task ends with that value.
TEST_F(TaskTest, ATaskThatCatchesTheCancelOfItsFutureAndReturnsEndsWithTheValue) {
  Future<void> fut1 = loop.create_future<void>();
  Future<void> fut2 = loop.create_future<void>();
  auto body = [&]() -> Task<int> {
    co_await fut1;
    try {
      co_await fut2;
    } catch (const CancelledError&) {
      co_return 42;
    }
    co_return 0;
  };
  Future<int> t = loop.create_task(body());
  loop.run_once();
  fut1.set_result();
  loop.run_once();  // the task now waits on fut2
  EXPECT_TRUE(t.cancel());
  EXPECT_TRUE(fut2.cancelled());  // at once, as asyncio's Task.cancel does
  EXPECT_EQ(loop.run_until_complete(t), 42);
  EXPECT_FALSE(t.cancelled());
}

// test_cancel_task_ignoring: after catching the cancel, the next future it
// awaits is not cancelled, and its result is the task's.
TEST_F(TaskTest, ATaskThatIgnoresTheCancelAwaitsTheNextFutureUndisturbed) {
  Future<void> fut1 = loop.create_future<void>();
  Future<void> fut2 = loop.create_future<void>();
  Future<int> fut3 = loop.create_future<int>();
  auto body = [&]() -> Task<int> {
    co_await fut1;
    try {
      co_await fut2;
    } catch (const CancelledError&) {
    }
    co_return co_await fut3;
  };
  Future<int> t = loop.create_task(body());
  loop.run_once();
  fut1.set_result();
  loop.run_once();
  EXPECT_TRUE(t.cancel());
  EXPECT_TRUE(fut2.cancelled());
  loop.run_once();  // the task now waits on fut3
  EXPECT_FALSE(t.done());
  fut3.set_result(42);
  EXPECT_EQ(loop.run_until_complete(t), 42);
  EXPECT_FALSE(fut3.cancelled());
  EXPECT_FALSE(t.cancelled());
}

// test_cancel_awaited_task (bpo-34872): a task that cancelled itself and then
// awaits another task cancels that task at once, and what it awaits.
TEST_F(TaskTest, ATaskThatCancelledItselfCancelsTheTaskItThenAwaits) {
  Future<void> fut = loop.create_future<void>();
  Future<void> nested;
  auto nested_body = [&]() -> Task<> { co_await fut; };
  auto body = [&]() -> Task<> {
    nested = loop.create_task(nested_body());
    co_await sleep(0);  // the nested task starts and waits on fut
    current_task().cancel();
    co_await nested;
  };
  Future<void> task = loop.create_task(body());
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(nested.cancelled());
  EXPECT_TRUE(fut.cancelled());
}

// test_cancel_with_message_then_future_result: the message given to cancel()
// comes out of result() of the cancelled task, and through the task that
// called result() (it ends cancelled with the same message).
TEST_F(TaskTest, TheCancelMessageComesOutOfResultAndThroughTheCaller) {
  auto sleeper = []() -> Task<> { co_await sleep(10.0); };
  auto body = [&]() -> Task<> {
    Future<void> inner = loop.create_task(sleeper());
    co_await sleep(0);
    inner.cancel("my message");
    std::vector<Future<void>> fs;
    fs.push_back(inner);
    co_await wait(std::move(fs));
    inner.result();
  };
  Future<void> outer = loop.create_task(body());
  try {
    loop.run_until_complete(outer);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "my message");
  }
  EXPECT_TRUE(outer.cancelled());
}

// test_cancellation_exception_context: awaiting a task that another callback
// cancels with a message throws CancelledError with that message.
TEST_F(TaskTest, AwaitingATaskCancelledWithAMessageThrowsThatMessage) {
  Future<void> started = loop.create_future<void>();
  auto sleeper = [&]() -> Task<> {
    started.set_result();
    co_await sleep(10.0);
  };
  auto body = [&]() -> Task<std::string> {
    Future<void> inner = loop.create_task(sleeper());
    co_await started;
    loop.call_soon([inner]() mutable { inner.cancel("msg"); });
    try {
      co_await inner;
    } catch (const CancelledError& e) {
      co_return "caught: " + e.message();
    }
    co_return "not cancelled";
  };
  EXPECT_EQ(loop.run_until_complete(body()), "caught: msg");
}

// test_baseexception_during_cancel: a coroutine that answers the cancel with
// another exception ends the task with that exception, not cancelled.
TEST_F(TaskTest, ATaskThatThrowsAnotherExceptionWhenCancelledEndsWithThatException) {
  auto sleeper = []() -> Task<> { co_await sleep(10.0); };
  auto body = [&]() -> Task<> {
    try {
      co_await sleeper();
    } catch (const CancelledError&) {
      throw std::logic_error("instead");
    }
  };
  Future<void> t = loop.create_task(body());
  loop.run_once();
  EXPECT_TRUE(t.cancel());
  EXPECT_FALSE(t.done());
  EXPECT_THROW(loop.run_until_complete(t), std::logic_error);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(what_of(t.exception()), "instead");
}

// test_yield_future_passes_cancel: the cancel reaches the future awaited
// inline, the inner coroutine rethrows, the outer catches: the task ends
// normally.
TEST_F(TaskTest, ATaskThatCatchesTheCancelOfAnInlineAwaitEndsNormally) {
  int proof = 0;
  Future<void> waiter = loop.create_future<void>();
  auto inner = [&]() -> Task<> {
    try {
      co_await waiter;
    } catch (const CancelledError&) {
      proof += 1;
      throw;
    }
    ADD_FAILURE() << "got past the await in inner";
  };
  auto outer = [&]() -> Task<> {
    try {
      co_await inner();
    } catch (const CancelledError&) {
      proof += 100;
      co_return;
    }
    proof += 10;
  };
  Future<void> f = loop.create_task(outer());
  loop.run_once();
  f.cancel();
  loop.run_until_complete(f);
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(proof, 101);
  EXPECT_TRUE(waiter.cancelled());
}

// test_current_task_with_interleaving_tasks
TEST_F(TaskTest, CurrentTaskFollowsInterleavedTasks) {
  Future<void> fut1 = loop.create_future<void>();
  Future<void> fut2 = loop.create_future<void>();
  Future<void> task1, task2;
  auto coro1 = [&]() -> Task<> {
    EXPECT_EQ(current_task().name(), "first");
    co_await fut1;
    EXPECT_EQ(current_task().name(), "first");
    fut2.set_result();
  };
  auto coro2 = [&]() -> Task<> {
    EXPECT_EQ(current_task().name(), "second");
    fut1.set_result();
    co_await fut2;
    EXPECT_EQ(current_task().name(), "second");
  };
  task1 = loop.create_task(coro1(), "first");
  task2 = loop.create_task(coro2(), "second");
  loop.run_until_complete(task2);
  loop.run_until_complete(task1);
  EXPECT_FALSE(current_task());
}

// Task.cancel before the first step only records the message: the last one wins.
TEST_F(TaskTest, CancellingTwiceBeforeTheStartKeepsTheLastMessage) {
  bool ran = false;
  auto body = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  Future<void> f = loop.create_task(body());
  EXPECT_TRUE(f.cancel("first"));
  EXPECT_TRUE(f.cancel("second"));
  try {
    loop.run_until_complete(f);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "second");
  }
  EXPECT_FALSE(ran);
}

// Task.cancel passes its message to the task it awaits (fut_waiter.cancel(msg)),
// down a chain of tasks; each ends cancelled with that message.
TEST_F(TaskTest, TheCancelMessageTravelsDownAChainOfAwaitedTasks) {
  std::vector<std::string> seen;
  auto leaf = [&]() -> Task<> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError& e) {
      seen.push_back("leaf: " + e.message());
      throw;
    }
  };
  Future<void> leaf_task, middle_task;
  auto middle = [&]() -> Task<> {
    leaf_task = loop.create_task(leaf());
    try {
      co_await leaf_task;
    } catch (const CancelledError& e) {
      seen.push_back("middle: " + e.message());
      throw;
    }
  };
  auto top = [&]() -> Task<> {
    middle_task = loop.create_task(middle());
    co_await middle_task;
  };
  Future<void> t = loop.create_task(top());
  loop.call_later(1.0, [t]() mutable { t.cancel("deep"); });
  try {
    loop.run_until_complete(t);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "deep");
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"leaf: deep", "middle: deep"}));
  EXPECT_TRUE(leaf_task.cancelled());
  EXPECT_TRUE(middle_task.cancelled());
}

Task<int> await_future(Future<int> next) {
  co_return co_await next;
}

// A cancel passed down a chain of tasks, each awaiting the next one's future,
// goes on from the next iteration past a certain depth: however long the
// chain, it never overflows the stack (asyncio raises RecursionError at
// about 1000), and every task ends cancelled with the message.
TEST_F(TaskTest, CancellingTheHeadOfAVeryLongChainOfAwaitingTasksCancelsThemAll) {
  constexpr int kTasks = 100'000;
  std::vector<Future<int>> chain(kTasks);
  chain[kTasks - 1] = loop.create_task(after_sleep(1e9, 0));
  for (int i = kTasks - 2; i >= 0; --i)
    chain[static_cast<std::size_t>(i)] =
        loop.create_task(await_future(chain[static_cast<std::size_t>(i) + 1]));
  loop.run_once();  // every task has started and waits
  EXPECT_TRUE(chain[0].cancel("down the chain"));
  try {
    loop.run_until_complete(chain[0]);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "down the chain");
  }
  // The head ends last: each task ends when the one it awaits has.
  const auto cancelled =
      std::count_if(chain.begin(), chain.end(), [](Future<int>& f) { return f.cancelled(); });
  EXPECT_EQ(cancelled, kTasks);
}

// Tasks that await each other (a deadlock): no cancellation can end them.
// asyncio's cancel() recurses until RecursionError; eddy's throws
// RuntimeError when the request comes back round, having changed nothing,
// and closing the loop ends both tasks, their frames destroyed once.
TEST_F(TaskTest, CancellingATaskInACycleOfAwaitingTasksThrowsRuntimeErrorAndChangesNothing) {
  Future<int> a, b;
  auto awaits = [](Future<int>& other, Counted) -> Task<int> { co_return co_await other; };
  a = loop.create_task(awaits(b, Counted()));
  b = loop.create_task(awaits(a, Counted()));
  loop.run_once();
  try {
    a.cancel("round");
    ADD_FAILURE() << "no RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  EXPECT_THROW(b.cancel("again"), RuntimeError);
  for (int i = 0; i < 5; ++i)
    loop.run_once();
  EXPECT_FALSE(a.done());
  EXPECT_FALSE(b.done());
  EXPECT_EQ(Counted::alive(), 2);
  loop.close();
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
  EXPECT_EQ(Counted::alive(), 0);
}

// A task that awaits the future of task `next` of `all` (filled in later).
Task<int> await_slot(std::vector<Future<int>>& all, std::size_t next) {
  co_return co_await all[next];
}
// The same through a gather of that one future.
Task<int> await_slot_gathered(std::vector<Future<int>>& all, std::size_t next) {
  std::vector<Future<int>> one{all[next]};
  co_return (co_await gather(std::move(one)))[0];
}

// A cycle much longer than one pass of the cancellation, and a long chain
// that ends in a short cycle, are found by following the chain first:
// cancel() throws, and no task of them changed.
TEST_F(TaskTest, CancellingALongCycleOrAChainIntoACycleThrowsRuntimeError) {
  std::vector<Future<int>> ring(1000), chain(1002);
  for (std::size_t i = 0; i < ring.size(); ++i)
    ring[i] = loop.create_task(await_slot(ring, (i + 1) % ring.size()));
  for (std::size_t i = 0; i < 1000; ++i)
    chain[i] = loop.create_task(await_slot(chain, i + 1));
  chain[1000] = loop.create_task(await_slot(chain, 1001));
  chain[1001] = loop.create_task(await_slot(chain, 1000));
  loop.run_once();
  EXPECT_THROW(ring[500].cancel(), RuntimeError);
  EXPECT_THROW(chain[0].cancel(), RuntimeError);
  for (int i = 0; i < 5; ++i)
    loop.run_once();
  EXPECT_EQ(std::count_if(ring.begin(), ring.end(), [](Future<int>& f) { return f.done(); }), 0);
  EXPECT_EQ(std::count_if(chain.begin(), chain.end(), [](Future<int>& f) { return f.done(); }), 0);
  loop.close();  // ends them all cancelled
}

// Two tasks awaiting one task (a diamond below a gather) are no cycle: the
// cancellation reaches the shared task twice, as asyncio's does.
TEST_F(TaskTest, TwoTasksAwaitingOneTaskAreNoCycle) {
  std::vector<Future<int>> all(4);
  all[3] = loop.create_task(after_sleep(1e9, 0));
  all[1] = loop.create_task(await_slot(all, 3));
  all[2] = loop.create_task(await_slot(all, 3));
  auto both = [&]() -> Task<int> {
    auto [a, b] = co_await gather(all[1], all[2]);
    co_return a + b;
  };
  all[0] = loop.create_task(both());
  loop.run_once();
  EXPECT_TRUE(all[0].cancel());
  EXPECT_THROW(loop.run_until_complete(all[0]), CancelledError);
  for (Future<int>& f : all)
    EXPECT_TRUE(f.cancelled());
}

// A cycle through two gathers, longer than one pass: its cancel() returns
// (the pass cannot see the cycle), and the passes that follow stop once they
// have gone through more tasks than the loop ever held, reporting the
// RuntimeError to the exception handler instead of going round forever.
// A cancel() that the exception handler makes then is no part of that
// cancellation: a long chain it cancels is no cycle.
TEST_F(TaskTest, ACycleThroughTwoGathersLongerThanAPassIsReportedNotSpunForever) {
  constexpr std::size_t kTasks = 600;
  std::vector<Future<int>> ring(kTasks), chain(400);
  for (std::size_t i = 0; i < kTasks; ++i) {
    const std::size_t next = (i + 1) % kTasks;
    ring[i] =
        loop.create_task(i % 300 == 0 ? await_slot_gathered(ring, next) : await_slot(ring, next));
  }
  chain.back() = loop.create_task(after_sleep(1e9, 0));
  for (std::size_t i = 0; i + 1 < chain.size(); ++i)
    chain[i] = loop.create_task(await_slot(chain, i + 1));
  loop.set_exception_handler([&](Loop&, const ExceptionContext& context) {
    reports.push_back(context);
    EXPECT_NO_THROW(chain[0].cancel());
  });
  loop.run_once();
  EXPECT_TRUE(ring[1].cancel());
  for (int i = 0; i < 20; ++i)
    loop.run_once();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(what_of(reports[0].exception).find("cycle"), std::string::npos);
  EXPECT_TRUE(chain.back().cancelled());
  loop.run_until_complete(loop.create_task([](Future<int> head) -> Task<int> {
    try {
      co_await head;
    } catch (const CancelledError&) {
    }
    co_return 0;
  }(chain[0])));
  const std::uint64_t before = loop.stats().callbacks_run;
  for (int i = 0; i < 5; ++i)
    loop.run_once();
  EXPECT_EQ(loop.stats().callbacks_run, before);  // nothing goes round any more
  loop.close();
}

// test_cancel_gather_2: a task cancelled with a message while it awaits a
// gather (return_exceptions=True) ends cancelled with that message.
TEST_F(TaskTest, ATaskCancelledWhileAwaitingASettledGatherEndsWithTheMessage) {
  auto test = []() -> Task<> {
    double time = 0;
    while (true) {
      time += 0.05;
      co_await gather_settled([]() -> Task<> { co_await sleep(0.05); }());
      if (time > 1) co_return;
    }
  };
  auto main = [&]() -> Task<> {
    Future<void> qwe = loop.create_task(test());
    co_await sleep(0.2);
    qwe.cancel("my message");
    co_await qwe;
  };
  try {
    loop.run_until_complete(main());
    ADD_FAILURE() << "gather did not propagate the CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "my message");
  }
}

// _register_task / Task.cancel: a task cancelled before its first step is not
// done yet; all_tasks lists it until its step has run.
TEST_F(TaskTest, ATaskCancelledBeforeItStartsIsInAllTasksUntilItsStepRuns) {
  Future<int> f = loop.create_task(value_of(1), "doomed");
  EXPECT_TRUE(f.cancel());
  std::vector<TaskRef> tasks = all_tasks(loop);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].name(), "doomed");
  EXPECT_FALSE(tasks[0].done());
  loop.run_once();
  EXPECT_TRUE(all_tasks(loop).empty());
  EXPECT_TRUE(tasks[0].cancelled());
}

// Task.cancel keeps _fut_waiter ("it may be a Task that catches and ignores
// the cancellation so we may have to cancel it again later"): a second
// cancel of the awaiter reaches the awaited task again.
TEST_F(TaskTest, CancellingTheAwaiterAgainCancelsTheAwaitedTaskAgain) {
  std::vector<double> cancels;
  auto stubborn = [&]() -> Task<int> {
    for (int i = 0; i < 3; ++i) {
      try {
        co_await sleep(5.0);
      } catch (const CancelledError&) {
        cancels.push_back(get_running_loop().time());
      }
    }
    co_return 7;
  };
  auto parent = [&]() -> Task<int> { co_return co_await loop.create_task(stubborn()); };
  Future<int> f = loop.create_task(parent());
  loop.call_later(1.0, [f]() mutable { EXPECT_TRUE(f.cancel()); });
  loop.call_later(2.0, [f]() mutable { EXPECT_TRUE(f.cancel()); });
  EXPECT_EQ(loop.run_until_complete(f), 7);
  EXPECT_EQ(cancels, (std::vector<double>{1.0, 2.0}));
  EXPECT_DOUBLE_EQ(loop.time(), 7.0);
}

// test_current_task_no_running_loop / BaseCurrentLoopTests: a callback of the
// loop, such as a task's done callback, runs outside any task.
TEST_F(TaskTest, ADoneCallbackOfATaskRunsWithNoCurrentTask) {
  bool checked = false;
  Future<int> f = loop.create_task(value_of(1));
  f.add_done_callback([&checked](Future<int>&) {
    EXPECT_FALSE(current_task());
    checked = true;
  });
  loop.run_until_complete(f);
  loop.run_once();
  EXPECT_TRUE(checked);
}

// ------------------------------------------------------------------ asyncio 3.12 details

// test_task_default_name_counter: Task.__init__ names an unnamed task
// f'Task-{_task_name_counter()}' with one module-level counter, so default
// names are unique in the process, across loops.
TEST_F(TaskTest, DefaultTaskNamesAreUniqueAcrossLoops) {
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  Future<int> a = loop.create_task(value_of(1));
  Future<int> b = other.create_task(value_of(2));
  EXPECT_NE(all_tasks(loop)[0].name(), all_tasks(other)[0].name());
  loop.run_until_complete(a);
  other.run_until_complete(b);
  other.close();
}

// As in asyncio (test_tb_logger_not_called_after_cancel). Task.cancel (and
// Future.cancel) set _log_traceback = False before the done() check, so
// cancel() on a task that already failed returns False but silences the
// "exception was never retrieved" report.
TEST_F(TaskTest, CancellingAFailedTaskSilencesItsUnretrievedException) {
  capture_reports();
  auto fails = []() -> Task<int> {
    throw std::runtime_error("type error");
    co_return 0;
  };
  auto runner = [&]() -> Task<> {
    Future<int> task = loop.create_task(fails());
    co_await sleep(0.05);
    EXPECT_TRUE(task.done());
    EXPECT_FALSE(task.cancel());
  };
  loop.run_until_complete(runner());
  EXPECT_TRUE(reports.empty()) << reports.size() << " report(s): " << reports[0].message;
}

// asyncio's Task.cancel: the first cancel() cancels the awaited future
// with its message; the second finds that future done and only sets
// _must_cancel and _cancel_message. Task.__step(exc) keeps `exc` when it is
// already a CancelledError (the awaited future's, from __wakeup), so the
// coroutine and the task's result see the first message.
TEST_F(TaskTest, CancellingTwiceWithDifferentMessagesDeliversTheFirstMessage) {
  std::vector<std::string> seen;
  auto body = [&]() -> Task<> {
    try {
      co_await sleep(10.0);
    } catch (const CancelledError& e) {
      seen.push_back(e.message());
      throw;
    }
  };
  Future<void> f = loop.create_task(body());
  loop.run_once();
  EXPECT_TRUE(f.cancel("first"));
  EXPECT_TRUE(f.cancel("second"));
  try {
    loop.run_until_complete(f);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "first");
  }
  EXPECT_EQ(seen, std::vector<std::string>{"first"});
}

// As in asyncio (test_cancel_both_task_and_inner_future, with messages: the
// awaited future is cancelled first ("future"), then the task ("task", which
// only sets _must_cancel since the future is done)). Task.__step keeps the
// CancelledError that __wakeup passes in (the future's), so the coroutine sees
// "future".
TEST_F(TaskTest, WhenTheAwaitedFutureWasCancelledFirstItsMessageIsTheOneThrown) {
  Future<int> f = loop.create_future<int>();
  auto body = [&]() -> Task<std::string> {
    try {
      co_await f;
    } catch (const CancelledError& e) {
      co_return e.message();
    }
    co_return "";
  };
  Future<std::string> t = loop.create_task(body());
  loop.run_once();
  EXPECT_TRUE(f.cancel("future"));
  EXPECT_TRUE(t.cancel("task"));
  EXPECT_EQ(loop.run_until_complete(t), "future");
}

// As in asyncio (test_task_awaits_on_itself). Task.__step_run_and_handle_result
// checks `result is self` and throws RuntimeError('Task cannot await on
// itself') into the coroutine at that await.
TEST_F(TaskTest, ATaskThatAwaitsItsOwnFutureGetsAnErrorAtThatAwait) {
  Future<void> self;
  bool threw = false;
  auto body = [&]() -> Task<> {
    co_await sleep(0);
    try {
      co_await self;
    } catch (const CancelledError&) {
      throw;
    } catch (...) {
      threw = true;
      throw;
    }
  };
  self = loop.create_task(body());
  auto guard = loop.call_later(1e6, [this] { loop.stop(); });
  try {
    loop.run_until_complete(self);
  } catch (...) {
  }
  guard.cancel();
  EXPECT_TRUE(self.done());
  EXPECT_TRUE(threw);
}

// ---------------------------------------------------------------- lifetimes

TEST_F(TaskTest, FramesAndCapturesAreDestroyedOnceOnSuccess) {
  auto body = [](Counted held) -> Task<int> {
    Counted local;
    co_await sleep(1.0);
    (void)held;
    co_return 1;
  };
  EXPECT_EQ(loop.run_until_complete(body(Counted{})), 1);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskTest, ARootFrameIsGoneBeforeTheTasksDoneCallbacksRun) {
  auto body = [](Counted held) -> Task<int> {
    co_await sleep(0);
    (void)held;
    co_return 7;
  };
  Future<int> f = loop.create_task(body(Counted{}));
  int alive_in_callback = -1;
  f.add_done_callback([&alive_in_callback] { alive_in_callback = Counted::alive(); });
  EXPECT_EQ(loop.run_until_complete(f), 7);
  EXPECT_EQ(alive_in_callback, 0);
}

TEST_F(TaskTest, FramesAndCapturesAreDestroyedOnceOnException) {
  auto body = [](Counted) -> Task<int> {
    Counted local;
    co_await sleep(1.0);
    throw std::runtime_error("x");
  };
  EXPECT_THROW(loop.run_until_complete(body(Counted{})), std::runtime_error);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskTest, FramesAndCapturesAreDestroyedOnceOnCancel) {
  auto inner = [](Counted) -> Task<> {
    Counted local;
    co_await sleep(10.0);
  };
  auto body = [&](Counted) -> Task<> { co_await inner(Counted{}); };
  Future<void> f = loop.create_task(body(Counted{}));
  loop.call_later(1.0, [f]() mutable { f.cancel(); });
  EXPECT_THROW(loop.run_until_complete(f), CancelledError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskTest, ClosingTheLoopWithPendingTasksDestroysTheirFramesOnceAndCancelsThem) {
  auto inner = [](Counted) -> Task<> {
    Counted local;
    co_await sleep(10.0);
  };
  auto body = [&](Counted) -> Task<> { co_await inner(Counted{}); };
  Future<void> sleeping = loop.create_task(body(Counted{}));
  Future<void> unstarted;
  loop.run_until_complete(after_sleep(1.0, 0));
  unstarted = loop.create_task(body(Counted{}));
  EXPECT_GT(Counted::alive(), 0);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(sleeping.cancelled());
  EXPECT_TRUE(unstarted.cancelled());
  try {
    sleeping.result();
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "the loop was closed");
  }
}

TEST_F(TaskTest, ATaskAwaitingAFutureThatOutlivesTheLoopIsReleasedAtClose) {
  auto body = [](Future<int> f, Counted) -> Task<int> { co_return co_await f; };
  {
    Loop other{LoopOptions().use_clock(clock).debug(false)};
    Future<int> never = other.create_future<int>();
    Future<int> task = other.create_task(body(never, Counted{}));
    other.run_once();  // the task suspends on `never`
    EXPECT_EQ(Counted::alive(), 1);
    other.close();
    EXPECT_EQ(Counted::alive(), 0);
    EXPECT_TRUE(task.cancelled());
  }
}

}  // namespace
}  // namespace eddy
