// Tests for eddy::sleep (eddy/sleep.hpp): asyncio.sleep's rules, in virtual
// time, and the lifetime of what sleeping coroutines hold.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/sleep.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using namespace std::chrono_literals;

class Sleep : public testing::LoopTest {
 protected:
  /// Runs the loop for `seconds` of virtual time.
  void run_for(double seconds) {
    loop.call_later(seconds, [this] { loop.stop(); });
    loop.run_forever();
  }
};

Task<double> sleep_and_report_time(Loop& loop, double delay) {
  co_await sleep(delay);
  co_return loop.time();
}

/// Records "before" (scheduled before the sleep), "resumed", and "after" (a
/// callback scheduled by another callback once the task had yielded).
Task<> yield_between_callbacks(Loop& loop, double delay, std::vector<std::string>& log) {
  loop.call_soon([&log] { log.push_back("before"); });
  co_await sleep(delay);
  log.push_back("resumed");
}

void expect_yields_exactly_once(Loop& loop, double delay) {
  std::vector<std::string> log;
  double start = loop.time();
  Future<void> task = loop.create_task(yield_between_callbacks(loop, delay, log));
  // Runs in the first iteration right after the task's first step, so the
  // callback it schedules is queued after the task's wake-up.
  loop.call_soon([&loop, &log] { loop.call_soon([&log] { log.push_back("after"); }); });
  loop.run_until_complete(task);
  EXPECT_EQ(log, (std::vector<std::string>{"before", "resumed", "after"}));
  EXPECT_EQ(loop.time(), start);
}

// ------------------------------------------------------------------ time

TEST_F(Sleep, ResumesAfterTheDelayInVirtualTime) {
  double start = loop.time();
  bool resumed_early = false;
  Future<double> task = loop.create_task(sleep_and_report_time(loop, 2.5));
  loop.call_later(2.4, [&] { resumed_early = task.done(); });
  double woke = loop.run_until_complete(task);
  EXPECT_FALSE(resumed_early);
  EXPECT_DOUBLE_EQ(woke - start, 2.5);
}

TEST_F(Sleep, TasksWakeInDeadlineOrder) {
  std::vector<int> woke;
  auto sleeper = [](double delay, int id, std::vector<int>& log) -> Task<> {
    co_await sleep(delay);
    log.push_back(id);
  };
  loop.create_task(sleeper(3, 3, woke));
  loop.create_task(sleeper(1, 1, woke));
  Future<void> last = loop.create_task(sleeper(3, 4, woke));  // same deadline: FIFO
  loop.create_task(sleeper(2, 2, woke));
  loop.run_until_complete(last);
  EXPECT_EQ(woke, (std::vector<int>{1, 2, 3, 4}));
}

TEST_F(Sleep, AcceptsChronoDurations) {
  auto body = [](Loop& l) -> Task<double> {
    double start = l.time();
    co_await sleep(1500ms);
    int v = co_await sleep(2s, 7);
    EXPECT_EQ(v, 7);
    co_return l.time() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(loop)), 3.5);
}

TEST_F(Sleep, AcceptsIntegerDelays) {
  auto body = [](Loop& l) -> Task<double> {
    double start = l.time();
    co_await sleep(2);  // eddy's sleep, not POSIX's
    co_return l.time() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(loop)), 2.0);
}

// ------------------------------------------------------------------ zero and negative

TEST_F(Sleep, ZeroYieldsExactlyOnce) {
  expect_yields_exactly_once(loop, 0);
}

TEST_F(Sleep, NegativeDelayActsLikeZero) {
  expect_yields_exactly_once(loop, -5);
}

TEST_F(Sleep, ZeroLetsAnotherTaskRunBetweenSteps) {
  std::vector<std::string> log;
  auto worker = [](std::string name, std::vector<std::string>& out) -> Task<> {
    for (int i = 0; i < 3; ++i) {
      out.push_back(name + std::to_string(i));
      co_await sleep(0);
    }
  };
  loop.create_task(worker("a", log));
  Future<void> b = loop.create_task(worker("b", log));
  loop.run_until_complete(b);
  EXPECT_EQ(log, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"}));
}

// ------------------------------------------------------------------ values

TEST_F(Sleep, ReturnsTheGivenValue) {
  auto body = []() -> Task<std::string> {
    int n = co_await sleep(1, 42);
    std::string zero = co_await sleep(0, std::string("now"));
    co_return std::to_string(n) + zero;
  };
  EXPECT_EQ(loop.run_until_complete(body()), "42now");
}

TEST_F(Sleep, ReturnsAMoveOnlyValue) {
  auto body = []() -> Task<std::unique_ptr<int>> {
    std::unique_ptr<int> p = co_await sleep(1, std::make_unique<int>(7));
    co_return p;
  };
  std::unique_ptr<int> p = loop.run_until_complete(body());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST_F(Sleep, TheValueIsDestroyedOnceWhetherOrNotTheSleepEnds) {
  auto body = []() -> Task<> {
    Counted c = co_await sleep(1, Counted{});
    EXPECT_GE(Counted::alive(), 1);
  };
  loop.run_until_complete(body());
  EXPECT_EQ(Counted::alive(), 0);

  auto cancelled = []() -> Task<> { co_await sleep(10, Counted{}); };
  Future<void> task = loop.create_task(cancelled());
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_GT(Counted::constructed, 0);
}

// ------------------------------------------------------------------ invalid delays

TEST_F(Sleep, NaNDelayThrowsInvalidArgument) {
  auto body = [](Loop& l) -> Task<double> {
    double start = l.time();
    EXPECT_THROW(co_await sleep(std::nan("")), std::invalid_argument);
    EXPECT_THROW(co_await sleep(std::nan(""), 1), std::invalid_argument);
    co_await sleep(1);  // the task can go on sleeping
    co_return l.time() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(loop)), 1.0);
}

TEST_F(Sleep, AnInfiniteDelaySleepsUntilCancelledWithoutATimer) {
  // asyncio.sleep(math.inf): only a cancel ends it. No timer is set, so the
  // virtual clock does not jump to one: other timers run at their times.
  constexpr double kForever = std::numeric_limits<double>::infinity();
  std::vector<std::string> log;
  auto sleeper = [](std::vector<std::string>& out, Loop& l) -> Task<int> {
    try {
      co_await sleep(kForever);
    } catch (const CancelledError& e) {
      out.push_back("woke at " + std::to_string(static_cast<int>(l.time())) + ": " + e.message());
      throw;
    }
    co_return 1;
  };
  Future<int> task = loop.create_task(sleeper(log, loop));
  loop.call_later(5, [&task] {
    EXPECT_TRUE(task.cancel("enough"));
    EXPECT_TRUE(task.cancel("again"));  // one wake-up all the same
  });
  const double start = loop.time();
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 5.0);
  EXPECT_EQ(log, (std::vector<std::string>{
                     "woke at " + std::to_string(static_cast<int>(start + 5)) + ": enough"}));
}

TEST_F(Sleep, AnInfiniteSleepWithACancelPendingThrowsAtOnce) {
  auto body = []() -> Task<std::string> {
    TaskRef self = current_task();
    self.cancel("early");
    try {
      co_await sleep(std::numeric_limits<double>::infinity(), 1);
    } catch (const CancelledError& e) {
      co_return e.message();
    }
    co_return "not cancelled";
  };
  EXPECT_EQ(loop.run_until_complete(body()), "early");
}

TEST_F(Sleep, NegativeInfinityIsSleepZero) {
  auto body = [](Loop& l) -> Task<double> {
    const double start = l.time();
    EXPECT_EQ(co_await sleep(-std::numeric_limits<double>::infinity(), 3), 3);
    co_return l.time() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(loop)), 0.0);
}

// ------------------------------------------------------------------ cancellation

TEST_F(Sleep, CancelEndsTheSleepAtOnceWithTheMessage) {
  double start = loop.time();
  std::string message;
  double woke = -1;
  auto body = [](Loop& l, std::string& msg, double& at) -> Task<> {
    try {
      co_await sleep(100);
    } catch (const CancelledError& e) {
      msg = e.message();
      at = l.time();
      throw;
    }
  };
  Future<void> task = loop.create_task(body(loop, message, woke));
  loop.call_later(1, [&task] { EXPECT_TRUE(task.cancel("stop")); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(message, "stop");
  EXPECT_DOUBLE_EQ(woke - start, 1.0);
  EXPECT_EQ(loop.stats().timers, 0u);  // the sleep's timer went with it
}

TEST_F(Sleep, ATaskThatCatchesTheCancelCanSleepAgain) {
  auto body = [](Loop& l) -> Task<double> {
    double start = l.time();
    try {
      co_await sleep(100);
    } catch (const CancelledError&) {
    }
    co_await sleep(5);  // the request was delivered once: this sleep is whole
    co_return l.time() - start;
  };
  Future<double> task = loop.create_task(body(loop));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_DOUBLE_EQ(loop.run_until_complete(task), 6.0);
}

TEST_F(Sleep, CancelDuringZeroSleepIsThrownWhenTheTaskResumes) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    try {
      co_await sleep(0);
      out.push_back("not cancelled");
    } catch (const CancelledError& e) {
      out.push_back("cancelled: " + e.message());
      throw;
    }
  };
  Future<void> task = loop.create_task(body(log));
  // After the first step: the task is in sleep(0), which a cancel cannot cut short.
  loop.call_soon([&task] { EXPECT_TRUE(task.cancel("now")); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled: now"}));
}

TEST_F(Sleep, ATaskCancelledBeforeItStartsNeverSleeps) {
  bool ran = false;
  auto body = [](bool& flag, Counted) -> Task<> {
    flag = true;
    co_await sleep(1);
  };
  Future<void> task = loop.create_task(body(ran, Counted{}));
  EXPECT_TRUE(task.cancel());
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
}

// test_task_cancel_sleeping_task: a task awaiting a sleeping task that a
// timer cancels gets CancelledError at that moment.
TEST_F(Sleep, AwaitingASleepingTaskThatIsCancelledThrowsCancelledErrorThen) {
  auto doit = [](Loop& l) -> Task<std::string> {
    Future<void> sleeper = l.create_task([]() -> Task<> { co_await sleep(5000); }());
    l.call_later(0.1, [sleeper]() mutable { sleeper.cancel(); });
    try {
      co_await sleeper;
    } catch (const CancelledError&) {
      co_return "cancelled";
    }
    co_return "slept in";
  };
  EXPECT_EQ(loop.run_until_complete(doit(loop)), "cancelled");
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
  EXPECT_EQ(loop.stats().timers, 0u);
}

// ------------------------------------------------------------------ asyncio 3.12 details

// asyncio.sleep(d > 0) (tasks.py) awaits a future that a
// call_later handle completes (futures._set_result_unless_cancelled); the
// task's __wakeup then runs one iteration later, through call_soon. A timer due
// at the same moment, scheduled after the sleep's, runs before the task
// resumes.
TEST_F(Sleep, ATimerDueWithTheSleepRunsBeforeTheTaskResumes) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    co_await sleep(1);
    out.push_back("task resumed");
  };
  Future<void> task = loop.create_task(body(log));
  loop.run_once();  // the sleep's timer is scheduled
  loop.call_later(1, [&log] { log.push_back("timer"); });
  loop.run_until_complete(task);
  EXPECT_EQ(log, (std::vector<std::string>{"timer", "task resumed"}));
}

// The same, with a cancel: in asyncio the cancel() finds the
// sleep's future already done (Task.cancel sets _must_cancel) and Task.__step
// throws CancelledError into the coroutine at the sleep: the code after the
// sleep never runs.
TEST_F(Sleep, ACancelDueWithTheEndOfTheSleepIsThrownAtTheSleep) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    try {
      co_await sleep(1);
    } catch (const CancelledError&) {
      out.push_back("cancelled at the sleep");
      throw;
    }
    out.push_back("went past the sleep");
    co_await sleep(1);
  };
  Future<void> task = loop.create_task(body(log));
  loop.run_once();  // the sleep's timer is scheduled
  loop.call_later(1, [task]() mutable { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(log, std::vector<std::string>{"cancelled at the sleep"});
}

// ------------------------------------------------------------------ lifetimes

Task<int> sleep_holding(Counted, double delay, bool fail) {
  Counted local;
  co_await sleep(delay);
  if (fail) throw std::runtime_error("failed after sleeping");
  co_return 1;
}

TEST_F(Sleep, FramesAreDestroyedOnceOnSuccess) {
  Future<int> task = loop.create_task(sleep_holding(Counted{}, 1, false));
  loop.run_until_complete(sleep_and_report_time(loop, 0.5));
  EXPECT_EQ(Counted::alive(), 2);  // the parameter and the local, in the frame
  EXPECT_EQ(loop.run_until_complete(task), 1);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(Sleep, FramesAreDestroyedOnceOnException) {
  Future<int> task = loop.create_task(sleep_holding(Counted{}, 1, true));
  EXPECT_THROW(loop.run_until_complete(task), std::runtime_error);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(Sleep, FramesAreDestroyedOnceOnCancel) {
  Future<int> task = loop.create_task(sleep_holding(Counted{}, 10, false));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(Sleep, ClosingTheLoopDestroysSleepingTasksOnceAndCancelsTheirFutures) {
  std::vector<Future<int>> tasks;
  for (double delay : {10.0, 20.0, 0.0}) {
    tasks.push_back(loop.create_task(sleep_holding(Counted{}, delay, false)));
  }
  run_for(1);  // the third one finished; two sleep on
  EXPECT_EQ(tasks[2].result(), 1);
  EXPECT_EQ(Counted::alive(), 4);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(tasks[i].cancelled());
    EXPECT_THROW(tasks[i].result(), CancelledError);
  }
}

}  // namespace
}  // namespace eddy
