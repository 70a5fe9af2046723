// Tests of eddy::Loop (eddy/loop.hpp): scheduling order, iterations, running
// and stopping, closing, delays, errors, debug mode and embedding. Every rule
// of the header (asyncio's semantics) has its own test. Timer tests run on the
// fixture's VirtualClock and never sleep.
#include <uv.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eddy/loop.hpp>

#include "host_loop.hpp"
#include "loop_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::HostLoop;
using eddy::testing::HostWatchdog;
using eddy::testing::LoopTest;
using namespace std::chrono_literals;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Records every report sent to the loop's exception handler.
struct Reports {
  std::vector<ExceptionContext> contexts;
  void install(Loop& loop) {
    loop.set_exception_handler(
        [this](Loop&, const ExceptionContext& context) { contexts.push_back(context); });
  }
};

using testing::what_of;

// ------------------------------------------------------------------ call_soon order

TEST_F(LoopTest, CallSoonRunsCallbacksInFifoOrder) {
  std::vector<int> order;
  for (int i = 0; i < 2000; ++i)
    loop.call_soon([&order, i] { order.push_back(i); });
  loop.run_once();
  ASSERT_EQ(order.size(), 2000u);
  for (int i = 0; i < 2000; ++i)
    EXPECT_EQ(order[i], i);
}

// The ready queue stores each callback in only the bytes it needs (16 to 32),
// wrapping around its buffer and growing while callbacks run. Order, cancel
// and destruction must not depend on any of that.
TEST_F(LoopTest, CallbacksOfMixedSizesKeepFifoOrderThroughWrapAroundGrowthAndCancel) {
  std::vector<int> ran;
  std::vector<int> expected;
  int next = 0;
  Counted token;
  auto schedule_mix = [&](int count) {
    for (int k = 0; k < count; ++k) {
      int id = next++;
      Handle h;
      switch (id % 5) {
        case 0:
          h = loop.call_soon([&ran, id] { ran.push_back(id); });  // 2 words
          break;
        case 1:
          h = loop.call_soon([&ran, id, token] { ran.push_back(id); });  // 3 words, non-trivial
          break;
        case 2: {
          std::string text(40, 'x');  // too big to store inline: kept on the heap
          h = loop.call_soon(
              [&ran, id, text] { ran.push_back(id + static_cast<int>(text.size()) - 40); });
          break;
        }
        case 3:
          h = loop.call_soon([r = &ran, id] { r->push_back(id); });  // 2 words
          break;
        default:
          h = loop.call_soon([&ran, id, token] { ran.push_back(id); });
          break;
      }
      if (id % 7 == 3) {
        EXPECT_TRUE(h.cancel());
      } else {
        expected.push_back(id);
      }
    }
  };
  // Each pass schedules a growing number of callbacks from inside a running
  // callback, so the buffer wraps, pads its end and grows mid-pass.
  int rounds = 0;
  std::function<void()> driver = [&] {
    schedule_mix(37 + rounds * 211);
    if (++rounds < 40) {
      loop.call_soon([&] { driver(); });
    } else {
      loop.call_soon([&] { loop.stop(); });
    }
  };
  loop.call_soon([&] { driver(); });
  run_until_stopped();
  EXPECT_EQ(ran, expected);
  EXPECT_EQ(Counted::alive(), 1);  // only `token`: every capture copy was destroyed exactly once
}

TEST_F(LoopTest, CallSoonPassesArgumentsByValue) {
  std::vector<std::string> seen;
  std::string text = "hello";
  loop.call_soon(
      [&seen](int n, const std::string& s, double d) {
        seen.push_back(std::to_string(n) + ":" + s + ":" +
                       std::to_string(static_cast<int>(d * 10)));
      },
      42, text, 2.5);
  text = "changed";  // stored by value: the callback still sees "hello"
  loop.run_once();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "42:hello:25");
}

TEST_F(LoopTest, CallSoonAcceptsMoveOnlyArguments) {
  int seen = 0;
  loop.call_soon([&seen](std::unique_ptr<int>& p) { seen = *p; }, std::make_unique<int>(7));
  loop.run_once();
  EXPECT_EQ(seen, 7);
}

TEST_F(LoopTest, OneIterationRunsOnlyTheCallbacksReadyWhenItBegan) {
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] { order.push_back("c"); });
  });
  loop.call_soon([&] { order.push_back("b"); });

  std::uint64_t before = loop.stats().iterations;
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(loop.stats().iterations, before + 1);
  EXPECT_EQ(loop.stats().ready, 1u);

  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(loop.stats().iterations, before + 2);
}

TEST_F(LoopTest, CallbackThatReschedulesItselfRunsOncePerIteration) {
  // Under run_forever too: each pass runs the self-rescheduling callback once.
  int runs = 0;
  std::uint64_t iteration_of_run[5] = {};
  std::function<void()> tick = [&] {
    iteration_of_run[runs] = loop.stats().iterations;
    if (++runs == 5) {
      loop.stop();
    } else {
      loop.call_soon([&] { tick(); });
    }
  };
  loop.call_soon([&] { tick(); });
  loop.run_forever();
  ASSERT_EQ(runs, 5);
  for (int i = 1; i < 5; ++i)
    EXPECT_EQ(iteration_of_run[i], iteration_of_run[i - 1] + 1);
}

// A chain that keeps a few callbacks of 16, 24 and 32 bytes queued goes round
// the ring many times without growing it: pushes cross from one lap of the
// buffer to the next (an entry may straddle the end), and each pass still runs
// exactly what was queued when it began, in order.
TEST_F(LoopTest, AChainGoesRoundTheRingManyTimesInOrder) {
  constexpr int kSteps = 6000;  // 144 kB of entries through a 16 kB ring
  std::vector<int> ran;
  ran.reserve(kSteps);
  std::uint64_t first_iteration = 0;
  struct Next {
    std::function<void(int)> step;
    int value = 0;
  } next;
  next.step = [&](int i) {
    ran.push_back(i);
    if (i == 0) first_iteration = loop.stats().iterations;
    EXPECT_EQ(loop.stats().iterations, first_iteration + static_cast<std::uint64_t>(i));
    if (i + 1 == kSteps) {
      loop.stop();
      return;
    }
    next.value = i + 1;
    const std::uint64_t wide = static_cast<std::uint64_t>(i + 1);
    switch ((i + 1) % 3) {
      case 0:
        loop.call_soon([&next] { next.step(next.value); });  // 16 bytes
        break;
      case 1:
        loop.call_soon([&next, wide] { next.step(static_cast<int>(wide)); });  // 24 bytes
        break;
      case 2:
        loop.call_soon([&next, wide, again = wide] {  // 32 bytes
          next.step(static_cast<int>(wide + again) / 2);
        });
        break;
    }
  };
  loop.call_soon([&] { next.step(0); });
  run_until_stopped();
  ASSERT_EQ(ran.size(), static_cast<std::size_t>(kSteps));
  for (int i = 0; i < kSteps; ++i)
    ASSERT_EQ(ran[i], i);
}

// ------------------------------------------------------------------ timers

TEST_F(LoopTest, TimersFireInDeadlineOrder) {
  std::vector<int> order;
  loop.call_later(3.0, [&] { order.push_back(3); });
  loop.call_later(1.0, [&] { order.push_back(1); });
  loop.call_at(2.0, [&] { order.push_back(2); });
  loop.call_later(std::chrono::milliseconds(500), [&] { order.push_back(0); });
  loop.call_later(4.0, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_DOUBLE_EQ(loop.time(), 4.0);
}

TEST_F(LoopTest, TimersWithEqualDeadlinesFireInSchedulingOrder) {
  std::vector<int> order;
  for (int i = 0; i < 100; ++i)
    loop.call_at(5.0, [&order, i] { order.push_back(i); });
  loop.call_later(1.0, [&] { order.push_back(-1); });
  loop.call_later(5.0, [&] { order.push_back(100); });  // same deadline, scheduled last
  loop.call_later(6.0, [&] { loop.stop(); });
  loop.run_forever();
  ASSERT_EQ(order.size(), 102u);
  EXPECT_EQ(order.front(), -1);
  for (int i = 0; i <= 100; ++i)
    EXPECT_EQ(order[i + 1], i);
}

// Thousands of timers falling due together take eddy's bulk path (partition
// and sort instead of one heap pop each); the order must be the same.
struct Fired {
  double when;
  int scheduled;
};

double burst_deadline(int i) {
  return 1.0 + static_cast<double>((i * 7919) % 1000) * 1e-3;
}

// Schedules `count` timers (1000 distinct deadlines, 10 timers each), cancels
// every 7th; returns how many were cancelled.
int schedule_burst(Loop& loop, std::vector<Fired>& fired, int count) {
  std::vector<TimerHandle> handles;
  for (int i = 0; i < count; ++i) {
    double when = burst_deadline(i);
    handles.push_back(loop.call_at(when, [&fired, when, i] { fired.push_back({when, i}); }));
  }
  int cancelled = 0;
  for (int i = 0; i < count; i += 7)
    cancelled += handles[static_cast<std::size_t>(i)].cancel();
  return cancelled;
}

void expect_in_deadline_then_scheduling_order(const std::vector<Fired>& fired) {
  for (std::size_t k = 1; k < fired.size(); ++k) {
    const Fired& a = fired[k - 1];
    const Fired& b = fired[k];
    ASSERT_TRUE(a.when < b.when || (a.when == b.when && a.scheduled < b.scheduled))
        << "position " << k << ": (" << a.when << ", #" << a.scheduled << ") before (" << b.when
        << ", #" << b.scheduled << ")";
  }
  for (const Fired& f : fired)
    EXPECT_NE(f.scheduled % 7, 0) << "a cancelled timer fired";
}

int due_by(int count, double until) {
  int due = 0;
  for (int i = 0; i < count; ++i)
    due += (i % 7 != 0 && burst_deadline(i) <= until) ? 1 : 0;
  return due;
}

TEST_F(LoopTest, ABurstOfTimersDueTogetherFiresInDeadlineThenSchedulingOrder) {
  std::vector<Fired> fired;
  const int cancelled = schedule_burst(loop, fired, 10000);
  clock->advance_to(Clock::time_point{2s});
  loop.run_once();  // one pass takes every due timer
  EXPECT_EQ(static_cast<int>(fired.size()), 10000 - cancelled);
  expect_in_deadline_then_scheduling_order(fired);
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(LoopTest, APartlyDueBurstOfTimersFiresTheDueOnesAndKeepsTheRestInOrder) {
  std::vector<Fired> fired;
  const int cancelled = schedule_burst(loop, fired, 10000);
  clock->advance_to(Clock::time_point{1333ms});  // about a third is due
  loop.run_once();
  const int due = due_by(10000, 1.333);
  EXPECT_EQ(static_cast<int>(fired.size()), due);
  EXPECT_EQ(loop.stats().timers, static_cast<std::size_t>(10000 - cancelled - due));
  loop.call_at(10.0, [this] { loop.stop(); });
  loop.run_forever();  // the rest fire later, still in order
  EXPECT_EQ(static_cast<int>(fired.size()), 10000 - cancelled);
  expect_in_deadline_then_scheduling_order(fired);
}

TEST_F(LoopTest, TimerFiresAtItsDeadlineOnTheVirtualClock) {
  double fired_at = -1;
  loop.call_later(3600.0, [&] { fired_at = loop.time(); });
  loop.run_once();
  EXPECT_DOUBLE_EQ(fired_at, 3600.0);
}

TEST_F(LoopTest, ReadyCallbackQueuedBeforeADueTimerRunsBeforeItInTheSameIteration) {
  std::vector<std::string> order;
  loop.call_later(1.0, [&] { order.push_back("timer"); });
  clock->advance(2s);  // the timer is due
  loop.call_soon([&] { order.push_back("soon"); });
  std::uint64_t before = loop.stats().iterations;
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"soon", "timer"}));
  EXPECT_EQ(loop.stats().iterations, before + 1);
}

TEST_F(LoopTest, SubMillisecondDeadlinesKeepTheirOrder) {
  std::vector<std::pair<int, double>> fired;
  TimerHandle late = loop.call_later(0.0007, [&] { fired.emplace_back(7, loop.time()); });
  TimerHandle early = loop.call_later(0.0003, [&] { fired.emplace_back(3, loop.time()); });
  EXPECT_NEAR(late.when() - early.when(), 0.0004, 1e-12);
  loop.call_later(0.001, [&] { loop.stop(); });
  loop.run_forever();
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].first, 3);
  EXPECT_EQ(fired[1].first, 7);
  EXPECT_NEAR(fired[0].second, 0.0003, 1e-12);
  EXPECT_NEAR(fired[1].second, 0.0007, 1e-12);
}

TEST_F(LoopTest, TimeHasSubMillisecondResolution) {
  double start = loop.time();
  clock->advance(std::chrono::microseconds(300));
  EXPECT_NEAR(loop.time() - start, 0.0003, 1e-12);
  clock->advance(std::chrono::nanoseconds(1500));
  EXPECT_NEAR(loop.time() - start, 0.0003015, 1e-12);
  EXPECT_EQ(loop.now().time_since_epoch(), std::chrono::nanoseconds(301'500));
}

TEST(LoopRealClock, TimeHasSubMillisecondResolution) {
  // The real clock (uv_hrtime) must not be libuv's millisecond loop time: the
  // first change of time() observed by busy reading is far below 1 ms.
  Loop loop;
  double first = loop.time();
  double next = first;
  for (int i = 0; i < 100'000'000 && next == first; ++i)
    next = loop.time();
  ASSERT_GT(next, first);
  EXPECT_LT(next - first, 0.0005);
  loop.close();
}

TEST(LoopRealClock, SubMillisecondTimersFireInDeadlineOrder) {
  // On the real clock libuv's timer has millisecond granularity; eddy's own
  // nanosecond deadlines must still order the timers. Deadlines come from
  // one reading of the clock (call_at): call_later reads it afresh each time,
  // and a slow build (ThreadSanitizer) may take 0.2 ms between two calls.
  Loop loop;
  std::vector<int> order;
  const double now = loop.time();
  loop.call_at(now + 0.0007, [&] { order.push_back(7); });
  loop.call_at(now + 0.0003, [&] { order.push_back(3); });
  loop.call_at(now + 0.0005, [&] { order.push_back(5); });
  loop.call_at(now + 0.002, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{3, 5, 7}));
  loop.close();
}

// A timer scheduled by a callback while other callbacks stay ready is armed
// with libuv too: once the callbacks are done, the loop sleeps until it fires.
TEST(LoopRealClock, TimerScheduledWhileCallbacksStayReadyWakesTheLoop) {
  Loop loop(LoopOptions().debug(false));
  bool fired = false;
  loop.call_later(30.0, [&] {  // only if the timer below was never armed
    ADD_FAILURE() << "the loop slept past the timer";
    loop.stop();
  });
  int steps = 0;
  std::function<void()> step = [&] {
    if (steps == 0) {
      loop.call_later(0.001, [&] {
        fired = true;
        loop.stop();
      });
    }
    if (++steps < 50) loop.call_soon([&] { step(); });
  };
  loop.call_soon([&] { step(); });
  loop.run_forever();
  EXPECT_TRUE(fired);
  EXPECT_EQ(steps, 50);
  loop.close();
}

// ------------------------------------------------------------------ stop / run_forever

TEST_F(LoopTest, StopLetsTheCurrentIterationFinishThenRunForeverReturns) {
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.stop();
    loop.call_soon([&] { order.push_back("c"); });  // queued meanwhile
  });
  loop.call_soon([&] { order.push_back("b"); });  // same iteration as a
  loop.run_forever();
  EXPECT_FALSE(loop.is_running());
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));

  // The callback queued meanwhile runs first on the next run.
  loop.call_soon([&] {
    order.push_back("d");
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST_F(LoopTest, StopDoesNotLetATimerDueLaterFire) {
  bool fired = false;
  loop.call_later(10.0, [&] { fired = true; });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  EXPECT_EQ(loop.stats().timers, 1u);
}

TEST_F(LoopTest, StopBeforeRunForeverRunsExactlyOneIteration) {
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] { order.push_back("next"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.stop();
  std::uint64_t before = loop.stats().iterations;
  loop.run_forever();
  EXPECT_EQ(loop.stats().iterations, before + 1);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(loop.is_running());

  // The stop request was consumed: the next run_forever runs until stopped again.
  loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "next"}));
  EXPECT_EQ(loop.stats().iterations, before + 3);
}

TEST_F(LoopTest, RunForeverWithNothingScheduledBlocksUntilAThreadsafeCallArrives) {
  std::atomic<bool> running{false};
  loop.call_soon([&] { running = true; });
  std::thread waker([&] {
    while (!running)
      std::this_thread::yield();
    // Leave the loop idle long enough that a loop that spins would count
    // thousands of iterations.
    std::this_thread::sleep_for(50ms);
    loop.call_soon_threadsafe([&] { loop.stop(); });
  });
  loop.run_forever();
  waker.join();
  EXPECT_TRUE(running);
  EXPECT_LE(loop.stats().iterations, 4u);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);  // no timer: the virtual clock did not move
}

TEST(LoopRealClock, RunForeverWithNothingScheduledBlocksUntilAThreadsafeCallArrives) {
  Loop loop;
  std::atomic<bool> running{false};
  loop.call_soon([&] { running = true; });
  std::thread waker([&] {
    while (!running)
      std::this_thread::yield();
    std::this_thread::sleep_for(50ms);
    loop.call_soon_threadsafe([&] { loop.stop(); });
  });
  loop.run_forever();
  waker.join();
  EXPECT_LE(loop.stats().iterations, 4u);
  loop.close();
}

// ------------------------------------------------------------------ running errors

TEST_F(LoopTest, RunningARunningLoopIsAnError) {
  std::optional<std::string> forever_error, once_error;
  loop.call_soon([&] {
    try {
      loop.run_forever();
    } catch (const LoopRunningError& e) {
      forever_error = e.what();
    }
    try {
      loop.run_once();
    } catch (const LoopRunningError& e) {
      once_error = e.what();
    }
    EXPECT_TRUE(loop.is_running());
    loop.stop();
  });
  loop.run_forever();
  ASSERT_TRUE(forever_error.has_value());
  ASSERT_TRUE(once_error.has_value());
  EXPECT_NE(forever_error->find("already running"), std::string::npos) << *forever_error;
  EXPECT_FALSE(loop.is_running());
}

TEST_F(LoopTest, RunningASecondLoopOnTheSameThreadFromACallbackIsAnError) {
  Loop other(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  bool other_ran = false;
  other.call_soon([&] { other_ran = true; });
  std::optional<std::string> forever_error, once_error;
  loop.call_soon([&] {
    try {
      other.run_forever();
    } catch (const LoopRunningError& e) {
      forever_error = e.what();
    }
    try {
      other.run_once();
    } catch (const LoopRunningError& e) {
      once_error = e.what();
    }
    EXPECT_FALSE(other.is_running());
    EXPECT_EQ(&get_running_loop(), &loop);
  });
  loop.run_once();
  ASSERT_TRUE(forever_error.has_value());
  ASSERT_TRUE(once_error.has_value());
  EXPECT_NE(forever_error->find("another loop"), std::string::npos) << *forever_error;
  EXPECT_FALSE(other_ran);

  // Once the first loop returned, the second one runs normally.
  other.run_once();
  EXPECT_TRUE(other_ran);
  other.close();
}

TEST_F(LoopTest, CloseWhileRunningIsAnError) {
  std::optional<std::string> error;
  bool later_ran = false;
  loop.call_soon([&] {
    try {
      loop.close();
    } catch (const LoopRunningError& e) {
      error = e.what();
    }
    loop.call_soon([&] { later_ran = true; });
  });
  loop.run_once();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("close"), std::string::npos) << *error;
  EXPECT_FALSE(loop.is_closed());
  loop.run_once();
  EXPECT_TRUE(later_ran);  // the loop is still usable
}

// ------------------------------------------------------------------ close

TEST_F(LoopTest, AfterCloseEverySchedulingCallThrowsLoopClosedError) {
  loop.close();
  ASSERT_TRUE(loop.is_closed());
  int runs = 0;
  auto cb = [&runs] { ++runs; };
  EXPECT_THROW(loop.call_soon(cb), LoopClosedError);
  EXPECT_THROW(loop.call_soon([](int) {}, 1), LoopClosedError);
  EXPECT_THROW(loop.call_later(1.0, cb), LoopClosedError);
  EXPECT_THROW(loop.call_later(1s, cb), LoopClosedError);
  EXPECT_THROW(loop.call_at(1.0, cb), LoopClosedError);
  EXPECT_THROW(loop.call_at(loop.now(), cb), LoopClosedError);
  EXPECT_THROW(loop.call_soon_threadsafe(cb), LoopClosedError);
  EXPECT_THROW(loop.run_forever(), LoopClosedError);
  EXPECT_THROW(loop.run_once(), LoopClosedError);
  EXPECT_EQ(runs, 0);
}

TEST_F(LoopTest, CallableRejectedByAClosedLoopIsDestroyed) {
  loop.close();
  {
    Counted c;
    EXPECT_THROW(loop.call_soon_threadsafe([c] {}), LoopClosedError);
    EXPECT_THROW(loop.call_soon([c] {}), LoopClosedError);
    EXPECT_THROW(loop.call_later(1.0, [c] {}), LoopClosedError);
  }
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(LoopTest, CloseDestroysPendingCallbacksExactlyOnceWithoutRunningThem) {
  int runs = 0;
  {
    Counted c;
    loop.call_soon([c, &runs] { ++runs; });
    loop.call_soon([&runs](const Counted&) { ++runs; }, c);
    loop.call_later(1.0, [c, &runs] { ++runs; });
    loop.call_at(2.0, [c, &runs] { ++runs; });
    loop.call_soon_threadsafe([c, &runs] { ++runs; });
  }
  EXPECT_EQ(Counted::alive(), 5);
  loop.close();
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(Counted::alive(), 0);  // < 0 would mean destroyed twice
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
  EXPECT_EQ(loop.stats().ready, 0u);
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(LoopTest, CloseDestroysCallbacksQueuedByDestructorsOfPendingCallbacks) {
  // A captured object whose destructor schedules again while the loop closes:
  // that callback is destroyed too, never run, never leaked.
  struct Reschedules {
    Loop* loop;
    int* runs;
    bool armed = true;
    Reschedules(Loop* l, int* r) : loop(l), runs(r) {}
    Reschedules(Reschedules&& o) noexcept : loop(o.loop), runs(o.runs), armed(o.armed) {
      o.armed = false;
    }
    ~Reschedules() {
      if (armed && !loop->is_closed()) {
        Counted c;
        int* r = runs;
        loop->call_soon([c, r] { ++*r; });
      }
    }
  };
  int runs = 0;
  loop.call_soon([guard = Reschedules(&loop, &runs)] {});
  loop.close();
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_GE(Counted::constructed, 1);
}

TEST_F(LoopTest, CloseIsIdempotent) {
  Counted c;
  loop.call_soon([c] {});
  loop.close();
  EXPECT_TRUE(loop.is_closed());
  EXPECT_NO_THROW(loop.close());
  EXPECT_NO_THROW(loop.close());
  EXPECT_TRUE(loop.is_closed());
  EXPECT_EQ(Counted::alive(), 1);  // only `c` itself
}

TEST_F(LoopTest, EmptyCallablesAreRefusedWhenScheduledWithInvalidArgument) {
  // A null function pointer would crash the loop when run, an empty
  // std::function would fail there: both are refused at once, naming the call
  // (asyncio's debug mode refuses None the same way), and nothing is queued.
  void (*null_fn)() = nullptr;
  void (*null_fn_int)(int) = nullptr;
  const std::function<void()> empty;
  auto message_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_EQ(message_of([&] { loop.call_soon(null_fn); }),
            "eddy::Loop::call_soon: the callable is empty (a null function pointer or an empty "
            "std::function)");
  EXPECT_NE(message_of([&] { loop.call_soon(null_fn_int, 1); }).find("eddy::Loop::call_soon:"),
            std::string::npos);
  EXPECT_NE(message_of([&] { loop.call_soon(empty); }).find("eddy::Loop::call_soon:"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              loop.call_soon_threadsafe(null_fn);
            }).find("eddy::Loop::call_soon_threadsafe:"),
            std::string::npos);
  EXPECT_NE(message_of([&] { loop.call_later(1.0, empty); }).find("eddy::Loop::call_later:"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              loop.call_later(std::chrono::seconds(1), null_fn);
            }).find("eddy::Loop::call_later:"),
            std::string::npos);
  EXPECT_NE(message_of([&] { loop.call_at(1.0, null_fn); }).find("eddy::Loop::call_at:"),
            std::string::npos);
  EXPECT_NE(message_of([&] { loop.call_at(loop.now(), empty); }).find("eddy::Loop::call_at:"),
            std::string::npos);
  EXPECT_EQ(loop.stats().ready, 0u);
  EXPECT_EQ(loop.stats().timers, 0u);
  // Non-empty ones of the same types are taken as before.
  static int runs;
  runs = 0;
  void (*fn)() = [] { ++runs; };
  loop.call_soon(fn);
  loop.call_soon(std::function<void()>(fn));
  loop.run_once();
  EXPECT_EQ(runs, 2);
}

TEST_F(LoopTest, CloseCalledAgainByADestructorThatCloseRunsReturnsAndTheOuterCloseFinishes) {
  // asyncio marks the loop closed before clearing its queues, so the inner
  // close() returns at once; so does eddy's, and the outer one finishes.
  struct ClosesTheLoop {
    Loop* loop;
    int* inner_calls;
    explicit ClosesTheLoop(Loop* l, int* calls) : loop(l), inner_calls(calls) {}
    ClosesTheLoop(ClosesTheLoop&& o) noexcept
        : loop(std::exchange(o.loop, nullptr)), inner_calls(o.inner_calls) {}
    ~ClosesTheLoop() {
      if (loop == nullptr) return;
      ++*inner_calls;
      loop->close();
      // Nor can it run again while it closes.
      EXPECT_THROW(loop->run_once(), LoopClosedError);
    }
  };
  int inner_calls = 0;
  Counted c;
  loop.call_soon([guard = ClosesTheLoop(&loop, &inner_calls)] {});
  loop.call_later(10.0, [c] {});
  loop.call_soon_threadsafe([c] {});
  loop.close();
  EXPECT_EQ(inner_calls, 1);
  EXPECT_TRUE(loop.is_closed());
  EXPECT_EQ(Counted::alive(), 1);  // only `c`: the queued copies were destroyed
}

TEST(LoopLifetime, DestroyingAnUnclosedLoopDestroysItsPendingCallbacks) {
  Counted::reset();
  {
    Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
    Counted c;
    loop.call_soon([c] {});
    loop.call_later(5.0, [c] {});
  }
  EXPECT_EQ(Counted::alive(), 0);
}

// ------------------------------------------------------------------ delays

TEST_F(LoopTest, NegativeDelayMeansNow) {
  clock->advance(10s);
  std::vector<std::string> order;
  TimerHandle h = loop.call_later(-5.0, [&] { order.push_back("later -5"); });
  EXPECT_LE(h.when(), loop.time());
  loop.call_later(-1s, [&] { order.push_back("later -1s"); });
  loop.call_at(loop.time() - 100.0, [&] { order.push_back("at past"); });
  loop.run_once();
  EXPECT_EQ(order.size(), 3u);
  EXPECT_DOUBLE_EQ(loop.time(), 10.0);  // nothing jumped
}

TEST_F(LoopTest, NegativeDelayScheduledInACallbackFiresOnTheNextIteration) {
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_later(-1.0, [&] { order.push_back("timer"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "timer"}));
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

TEST(LoopRealClock, NegativeDelayFiresOnTheNextIterationWithoutWaiting) {
  Loop loop;
  bool fired = false;
  loop.call_later(-0.5, [&] { fired = true; });
  loop.run_once();
  EXPECT_TRUE(fired);
  loop.close();
}

TEST_F(LoopTest, NanAndInfiniteDelaysAreRejectedAndNothingIsScheduled) {
  int runs = 0;
  auto cb = [&runs] { ++runs; };
  for (double bad : {kNaN, kInf, -kInf}) {
    Counted c;
    EXPECT_THROW(loop.call_later(bad, [c, &runs] { ++runs; }), std::invalid_argument) << bad;
    EXPECT_THROW(loop.call_at(bad, cb), std::invalid_argument) << bad;
    EXPECT_THROW(loop.call_later(std::chrono::duration<double>(bad), cb), std::invalid_argument)
        << bad;
    EXPECT_THROW(loop.call_later(std::chrono::duration<double, std::milli>(bad), cb),
                 std::invalid_argument)
        << bad;
  }
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(loop.stats().timers, 0u);
  EXPECT_EQ(loop.stats().ready, 0u);
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(runs, 0);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

TEST_F(LoopTest, InvalidDelayMessageNamesTheMethod) {
  try {
    loop.call_later(kNaN, [] {});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("call_later"), std::string::npos) << e.what();
  }
  try {
    loop.call_at(kInf, [] {});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("call_at"), std::string::npos) << e.what();
  }
}

TEST_F(LoopTest, HugeDelaysNeitherFireNorOverflow) {
  clock->advance(1000s);
  bool fired = false;
  TimerHandle seconds = loop.call_later(1e300, [&] { fired = true; });
  TimerHandle hours = loop.call_later(std::chrono::hours::max(), [&] { fired = true; });
  TimerHandle at = loop.call_at(1e300, [&] { fired = true; });
  TimerHandle nanos = loop.call_later(std::chrono::nanoseconds::max(), [&] { fired = true; });
  for (const TimerHandle* h : {&seconds, &hours, &at, &nanos}) {
    EXPECT_GT(h->when(), 1e9);  // large and positive: no wrap-around
    EXPECT_GT(h->deadline(), loop.now());
  }
  EXPECT_EQ(loop.stats().timers, 4u);
  // With nothing else to do the virtual clock does not jump to "never".
  for (int i = 0; i < 3; ++i)
    loop.run_once();
  EXPECT_FALSE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 1000.0);
  // A real timer behind them still fires at its own time.
  double fired_at = -1;
  loop.call_later(5.0, [&] { fired_at = loop.time(); });
  loop.run_once();
  EXPECT_DOUBLE_EQ(fired_at, 1005.0);
  EXPECT_FALSE(fired);
}

TEST_F(LoopTest, HugeUnsignedAndCoarseChronoValuesSaturateInsteadOfWrapping) {
  // An unsigned count of 2^63 nanoseconds or more, or a time point in hours
  // near its maximum, is beyond int64 nanoseconds: "never", not negative.
  clock->advance(1000s);
  bool fired = false;
  using UnsignedNanos = std::chrono::duration<std::uint64_t, std::nano>;
  using UnsignedSeconds = std::chrono::duration<std::uint64_t>;
  std::vector<TimerHandle> never;
  never.push_back(loop.call_later(UnsignedNanos(std::numeric_limits<std::uint64_t>::max()),
                                  [&] { fired = true; }));
  never.push_back(loop.call_later(UnsignedNanos(std::uint64_t{1} << 63), [&] { fired = true; }));
  never.push_back(loop.call_later(UnsignedSeconds(std::numeric_limits<std::uint64_t>::max()),
                                  [&] { fired = true; }));
  never.push_back(loop.call_at(std::chrono::time_point<Clock, std::chrono::hours>::max(),
                               [&] { fired = true; }));
  never.push_back(loop.call_at(
      std::chrono::time_point<Clock, UnsignedSeconds>(UnsignedSeconds(std::uint64_t{1} << 63)),
      [&] { fired = true; }));
  for (const TimerHandle& h : never)
    EXPECT_EQ(h.deadline(), Clock::time_point::max());
  for (int i = 0; i < 3; ++i)
    loop.run_once();
  EXPECT_FALSE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 1000.0);

  // Below the limit, unsigned counts and coarse time points are exact.
  std::vector<Clock::time_point> fired_at;
  TimerHandle days = loop.call_later(
      std::chrono::duration<std::uint32_t, std::milli>(std::numeric_limits<std::uint32_t>::max()),
      [&] { fired_at.push_back(loop.now()); });
  EXPECT_EQ(days.deadline().time_since_epoch(), 1000s + 4'294'967'295ms);
  TimerHandle hours = loop.call_at(std::chrono::time_point<Clock, std::chrono::hours>(2h),
                                   [&] { fired_at.push_back(loop.now()); });
  EXPECT_EQ(hours.deadline().time_since_epoch(), 2h);
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(fired_at, (std::vector<Clock::time_point>{Clock::time_point(2h),
                                                      Clock::time_point(1000s + 4'294'967'295ms)}));
  EXPECT_FALSE(fired);
}

TEST_F(LoopTest, TimePointsInCoarseUnitsFarInThePastAreDueNow) {
  clock->advance(1000s);
  std::vector<std::string> order;
  loop.call_at(std::chrono::time_point<Clock, std::chrono::hours>::min(),
               [&] { order.push_back("hours min"); });
  loop.call_later(std::chrono::duration<std::int64_t, std::milli>::min(),
                  [&] { order.push_back("ms min"); });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"hours min", "ms min"}));
  EXPECT_DOUBLE_EQ(loop.time(), 1000.0);
}

TEST_F(LoopTest, ChronoDelaysOfAnyPeriodConvertExactly) {
  // A third of a second is 333333333.3 ns: truncated towards zero, as by
  // duration_cast; three of them are exactly one second.
  using Thirds = std::chrono::duration<std::int64_t, std::ratio<1, 3>>;
  EXPECT_EQ(loop.call_later(Thirds(3), [] {}).deadline().time_since_epoch(), 1s);
  EXPECT_EQ(loop.call_later(Thirds(1), [] {}).deadline().time_since_epoch(), 333'333'333ns);
  EXPECT_EQ(loop.call_later(Thirds(-1), [] {}).deadline().time_since_epoch(), -333'333'333ns);
  EXPECT_EQ(loop.call_later(Thirds::max(), [] {}).deadline(), Clock::time_point::max());
  using Weeks = std::chrono::duration<std::uint16_t, std::ratio<604800>>;
  EXPECT_EQ(loop.call_later(Weeks(10000), [] {}).deadline().time_since_epoch(),
            std::chrono::seconds(std::int64_t{10000} * 604800));  // 191 years
  EXPECT_EQ(loop.call_later(Weeks(65535), [] {}).deadline(), Clock::time_point::max());
  loop.close();
}

TEST(LoopRealClock, HugeDelayDoesNotFireAndRunOnceDoesNotBlock) {
  Loop loop;
  bool fired = false;
  TimerHandle h = loop.call_later(1e300, [&] { fired = true; });
  EXPECT_GT(h.when(), loop.time() + 1e9);
  auto start = std::chrono::steady_clock::now();
  loop.run_once();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_FALSE(fired);
  loop.close();
}

// A deadline over 292 years in the past is as due as one a second ago. On the
// real clock the loop arms libuv's timer for it: its distance from now does
// not fit in int64 nanoseconds, and must not turn into "292 years ahead",
// which would leave libuv asleep and hold back every later timer too.
TEST(LoopRealClock, TimersDueCenturiesAgoRunAtOnceInDeadlineOrder) {
  Loop loop(LoopOptions().debug(false));
  std::vector<std::string> order;
  const Clock::time_point start = loop.now();
  loop.call_at(start - 1s, [&] { order.push_back("at 1s ago"); });
  loop.call_later(std::chrono::nanoseconds::min(), [&] { order.push_back("later ns::min"); });
  loop.call_at(-1e300, [&] { order.push_back("at -1e300"); });
  loop.call_at(Clock::time_point::min(), [&] { order.push_back("at time_point::min"); });
  loop.call_later(-1e300, [&] { order.push_back("later -1e300"); });
  loop.call_later(std::chrono::duration<double>(-1e300), [&] { order.push_back("later -1e300s"); });
  loop.call_later(0.001, [&] {
    order.push_back("later 1ms");
    loop.stop();
  });
  // libuv must not sleep: a loop that would is a loop that hangs here.
  ASSERT_EQ(loop.backend_timeout(), 0);
  loop.run_forever();
  EXPECT_EQ(order,
            (std::vector<std::string>{"at time_point::min", "at -1e300", "later ns::min",
                                      "later -1e300", "later -1e300s", "at 1s ago", "later 1ms"}));
  loop.close();
}

// ------------------------------------------------------------------ exception handler

TEST_F(LoopTest, ThrowingCallbackGoesToTheExceptionHandlerAndTheLoopContinues) {
  Reports reports;
  reports.install(loop);
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    throw std::runtime_error("boom");
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.call_later(1.0, [] { throw std::logic_error("timer boom"); });
  loop.call_later(2.0, [&] { order.push_back("after timer"); });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(reports.contexts.size(), 1u);
  const ExceptionContext& first = reports.contexts[0];
  EXPECT_FALSE(first.message.empty());
  ASSERT_TRUE(first.exception);
  EXPECT_EQ(what_of(first.exception), "boom");
  EXPECT_THROW(std::rethrow_exception(first.exception), std::runtime_error);
  EXPECT_FALSE(first.handle.empty());
  EXPECT_EQ(loop.stats().callback_errors, 1u);

  loop.run_once();  // the throwing timer
  loop.run_once();  // the next one still fires
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "after timer"}));
  ASSERT_EQ(reports.contexts.size(), 2u);
  EXPECT_EQ(what_of(reports.contexts[1].exception), "timer boom");
  EXPECT_NE(reports.contexts[1].handle.find("timer"), std::string::npos)
      << reports.contexts[1].handle;
  EXPECT_EQ(loop.stats().callback_errors, 2u);
}

// The callback that threw (and what it captured) is destroyed after the
// handler saw the exception, even when the callback grew the ready queue first
// (it then runs from the buffer the queue left behind).
TEST_F(LoopTest, ThrowingCallbackIsDestroyedAfterTheHandlerRan) {
  std::vector<std::string> events;
  loop.set_exception_handler([&](Loop&, const ExceptionContext& context) {
    events.push_back("handled " + what_of(context.exception));
  });
  struct Witness {
    std::vector<std::string>* events;
    const char* name;
    Witness(std::vector<std::string>* e, const char* n) : events(e), name(n) {}
    Witness(Witness&& other) noexcept : events(other.events), name(other.name) {
      other.events = nullptr;
    }
    Witness(const Witness&) = delete;
    ~Witness() {
      if (events != nullptr) events->push_back(std::string("destroyed ") + name);
    }
  };
  int filler_runs = 0;
  loop.call_soon([w = Witness(&events, "small")] { throw std::runtime_error("small"); });
  loop.call_soon([w = Witness(&events, "growing"), this, &filler_runs] {
    for (int i = 0; i < 5000; ++i)  // 80 kB: the ring grows while this runs
      loop.call_soon([&filler_runs] { ++filler_runs; });
    throw std::runtime_error("growing");
  });
  loop.run_once();
  EXPECT_EQ(events, (std::vector<std::string>{"handled small", "destroyed small", "handled growing",
                                              "destroyed growing"}));
  loop.run_once();
  EXPECT_EQ(filler_runs, 5000);
  EXPECT_EQ(loop.stats().callback_errors, 2u);
}

TEST_F(LoopTest, ThrowingTimerCallbackIsDestroyedAfterTheHandlerRan) {
  // As a ready callback (above) and as asyncio, whose context["handle"] holds
  // the timer's callback while the handler runs; in and out of debug mode.
  for (const bool debug : {false, true}) {
    loop.set_debug(debug);
    std::vector<std::string> events;
    auto alive = std::make_shared<int>(0);
    loop.call_later(0.5, [alive, &events] {
      events.push_back("ran");
      throw std::runtime_error("timer");
    });
    std::weak_ptr<int> watch = alive;
    alive.reset();
    loop.set_exception_handler([&](Loop&, const ExceptionContext& context) {
      events.push_back("handled " + what_of(context.exception) +
                       (watch.expired() ? " (callback gone)" : " (callback alive)"));
    });
    clock->advance(std::chrono::seconds(1));
    loop.run_once();
    EXPECT_EQ(events, (std::vector<std::string>{"ran", "handled timer (callback alive)"}))
        << "debug " << debug;
    EXPECT_TRUE(watch.expired()) << "debug " << debug;  // destroyed right after the report
  }
}

TEST_F(LoopTest, AnExceptionHandlerMayReplaceItselfWhileItRuns) {
  // asyncio allows it; the running handler must not be destroyed under itself
  // (its captures are still read after the replacement).
  std::vector<std::string> seen;
  const std::string tag(64, 'h');  // long enough to live on the heap
  loop.set_exception_handler([tag, &seen](Loop& l, const ExceptionContext& context) {
    l.set_exception_handler([&seen](Loop&, const ExceptionContext& c) {
      seen.push_back("second: " + what_of(c.exception));
    });
    seen.push_back(tag.substr(0, 1) + ": " + what_of(context.exception) + " " +
                   std::to_string(tag.size()));
  });
  loop.call_soon([] { throw std::runtime_error("one"); });
  loop.call_soon([] { throw std::runtime_error("two"); });
  loop.run_once();
  EXPECT_EQ(seen, (std::vector<std::string>{"h: one 64", "second: two"}));
}

TEST_F(LoopTest, AHandlerThatChainsThePreviousOneKeepsItAcrossSetExceptionHandler) {
  std::vector<std::string> seen;
  const std::string tag(64, 'p');  // on the heap
  loop.set_exception_handler([tag, &seen](Loop&, const ExceptionContext& context) {
    seen.push_back("previous " + std::to_string(tag.size()) + ": " + what_of(context.exception));
  });
  const auto previous = loop.get_exception_handler();
  loop.set_exception_handler([previous, &seen](Loop& l, const ExceptionContext& context) {
    seen.push_back("new");
    previous(l, context);
  });
  loop.call_soon([] { throw std::runtime_error("chained"); });
  loop.run_once();
  EXPECT_EQ(seen, (std::vector<std::string>{"new", "previous 64: chained"}));
  // What get_exception_handler gave stays that handler, as asyncio's object
  // does, even bound to a reference and after the handler is replaced.
  const Loop::ExceptionHandler& held = loop.get_exception_handler();
  loop.set_exception_handler(nullptr);
  ASSERT_TRUE(static_cast<bool>(held));
  ExceptionContext again;
  again.exception = std::make_exception_ptr(std::runtime_error("again"));
  held(loop, again);
  EXPECT_EQ(seen,
            (std::vector<std::string>{"new", "previous 64: chained", "new", "previous 64: again"}));
}

TEST_F(LoopTest, AnExceptionHandlerMayUninstallItselfWhileItRuns) {
  const std::string tag(64, 'u');
  int calls = 0;
  loop.set_exception_handler([tag, &calls](Loop& l, const ExceptionContext&) {
    l.set_exception_handler(nullptr);
    calls += static_cast<int>(tag.size());  // a capture, read after uninstalling
  });
  loop.call_soon([] { throw std::runtime_error("to the custom handler"); });
  loop.call_soon([] { throw std::runtime_error("to the default handler"); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 64);
  EXPECT_FALSE(loop.get_exception_handler());
  EXPECT_EQ(err.find("to the custom handler"), std::string::npos) << err;
  EXPECT_NE(err.find("to the default handler"), std::string::npos) << err;
}

TEST_F(LoopTest, NonStandardExceptionFromACallbackIsReported) {
  Reports reports;
  reports.install(loop);
  loop.call_soon([] { throw 42; });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  try {
    std::rethrow_exception(reports.contexts[0].exception);
  } catch (int value) {
    EXPECT_EQ(value, 42);
  }
}

TEST_F(LoopTest, ThrowingExceptionHandlerFallsBackToTheDefaultOne) {
  int handler_calls = 0;
  loop.set_exception_handler([&](Loop&, const ExceptionContext&) {
    ++handler_calls;
    throw std::runtime_error("handler broke");
  });
  bool next_ran = false;
  loop.call_soon([] { throw std::runtime_error("original failure"); });
  loop.call_soon([&] { next_ran = true; });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(handler_calls, 1);
  EXPECT_TRUE(next_ran);
  EXPECT_NE(err.find("handler broke"), std::string::npos) << err;
  EXPECT_NE(err.find("original failure"), std::string::npos) << err;
}

TEST_F(LoopTest, DefaultExceptionHandlerWritesToStderrNeverStdout) {
  loop.call_soon([] { throw std::runtime_error("default handler test"); });
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(err.find("default handler test"), std::string::npos) << err;
  EXPECT_EQ(out, "");
}

TEST_F(LoopTest, DefaultExceptionHandlerReportsAnExceptionWhoseWhatIsNull) {
  // asyncio prints "<exception str() failed>" and the rest of the report.
  struct NoText : std::exception {
    const char* what() const noexcept override { return nullptr; }
  };
  loop.call_soon([] { throw NoText(); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Exception in callback #"), std::string::npos) << err;
  EXPECT_NE(err.find("exception: (what() returned a null pointer)"), std::string::npos) << err;
  EXPECT_EQ(err.find("could not be described"), std::string::npos) << err;
}

TEST_F(LoopTest, GetAndSetExceptionHandler) {
  EXPECT_FALSE(loop.get_exception_handler());  // the default is in use
  int calls = 0;
  loop.set_exception_handler([&](Loop& l, const ExceptionContext&) {
    EXPECT_EQ(&l, &loop);
    ++calls;
  });
  EXPECT_TRUE(loop.get_exception_handler());
  loop.call_soon([] { throw std::runtime_error("x"); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(calls, 1);

  // An empty handler restores the default one.
  loop.set_exception_handler({});
  EXPECT_FALSE(loop.get_exception_handler());
  loop.call_soon([] { throw std::runtime_error("back to default"); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 1);
  EXPECT_NE(err.find("back to default"), std::string::npos) << err;
}

TEST_F(LoopTest, CallExceptionHandlerPassesTheContextThrough) {
  Reports reports;
  reports.install(loop);
  ExceptionContext context;
  context.message = "custom report";
  context.future = "Future #1";
  loop.call_exception_handler(context);
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_EQ(reports.contexts[0].message, "custom report");
  EXPECT_EQ(reports.contexts[0].future, "Future #1");
}

// ------------------------------------------------------------------ running loop

TEST_F(LoopTest, GetRunningLoopInsideACallbackReturnsTheLoop) {
  Loop* seen = nullptr;
  Loop* seen_by_try = nullptr;
  loop.call_soon([&] {
    seen = &get_running_loop();
    seen_by_try = try_get_running_loop();
  });
  loop.call_later(1.0, [&] { EXPECT_EQ(&get_running_loop(), &loop); });
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(seen, &loop);
  EXPECT_EQ(seen_by_try, &loop);
}

TEST_F(LoopTest, GetRunningLoopOutsideACallbackThrowsNoRunningLoopError) {
  EXPECT_THROW(get_running_loop(), NoRunningLoopError);
  EXPECT_EQ(try_get_running_loop(), nullptr);
  loop.call_soon([] {});
  loop.run_once();
  // Not even after the loop ran.
  EXPECT_THROW(get_running_loop(), NoRunningLoopError);
  EXPECT_EQ(try_get_running_loop(), nullptr);
  EXPECT_FALSE(loop.is_running());
}

TEST_F(LoopTest, TryGetRunningLoopIsNullOnAnotherThreadWhileTheLoopRuns) {
  Loop* seen_elsewhere = &loop;
  bool threw_elsewhere = false;
  loop.call_soon([&] {
    std::thread other([&] {
      seen_elsewhere = try_get_running_loop();
      try {
        get_running_loop();
      } catch (const NoRunningLoopError&) {
        threw_elsewhere = true;
      }
    });
    other.join();
  });
  loop.run_once();
  EXPECT_EQ(seen_elsewhere, nullptr);
  EXPECT_TRUE(threw_elsewhere);
}

TEST_F(LoopTest, IsRunningIsTrueOnlyInsideTheLoop) {
  EXPECT_FALSE(loop.is_running());
  bool inside = false;
  loop.call_soon([&] { inside = loop.is_running(); });
  loop.run_once();
  EXPECT_TRUE(inside);
  EXPECT_FALSE(loop.is_running());
}

// ------------------------------------------------------------------ threads

TEST_F(LoopTest, CallSoonFromAnotherThreadWhileTheLoopRunsThrowsWrongThreadError) {
  std::optional<std::string> call_soon_error;
  bool call_later_threw = false, stop_threw = false, cancel_threw = false;
  bool threadsafe_ok = false;
  int runs = 0;
  loop.call_soon([&] {
    Handle mine = loop.call_soon([&] { ++runs; });
    std::thread other([&] {
      try {
        loop.call_soon([&] { ++runs; });
      } catch (const WrongThreadError& e) {
        call_soon_error = e.what();
      }
      try {
        loop.call_later(1.0, [&] { ++runs; });
      } catch (const WrongThreadError&) {
        call_later_threw = true;
      }
      try {
        loop.stop();
      } catch (const WrongThreadError&) {
        stop_threw = true;
      }
      try {
        mine.cancel();
      } catch (const WrongThreadError&) {
        cancel_threw = true;
      }
      loop.call_soon_threadsafe([&] { threadsafe_ok = true; });
    });
    other.join();
  });
  loop.run_once();
  loop.run_once();
  ASSERT_TRUE(call_soon_error.has_value());
  EXPECT_NE(call_soon_error->find("call_soon"), std::string::npos) << *call_soon_error;
  EXPECT_TRUE(call_later_threw);
  EXPECT_TRUE(stop_threw);
  EXPECT_TRUE(cancel_threw);
  EXPECT_TRUE(threadsafe_ok);
  EXPECT_EQ(runs, 1);  // only the callback scheduled on the loop's thread
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(LoopTest, TheLoopsSettersFromAnotherThreadThrowWrongThreadErrorAndChangeNothing) {
  std::vector<std::string> errors;
  loop.set_debug(false);
  loop.call_soon([&] {
    std::thread other([&] {
      auto expect_refused = [&](const char* name, auto&& call) {
        try {
          call();
          errors.push_back(std::string(name) + ": accepted");
        } catch (const WrongThreadError& e) {
          errors.push_back(e.what());
        }
      };
      expect_refused("set_exception_handler",
                     [&] { loop.set_exception_handler([](Loop&, const ExceptionContext&) {}); });
      expect_refused("get_exception_handler", [&] { (void)loop.get_exception_handler(); });
      expect_refused("set_debug", [&] { loop.set_debug(true); });
      expect_refused("set_slow_callback_duration", [&] { loop.set_slow_callback_duration(5.0); });
    });
    other.join();
  });
  loop.run_once();
  ASSERT_EQ(errors.size(), 4u);
  const char* names[] = {"eddy::Loop::set_exception_handler", "eddy::Loop::get_exception_handler",
                         "eddy::Loop::set_debug", "eddy::Loop::set_slow_callback_duration"};
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(errors[i].rfind(names[i], 0), 0u) << errors[i];
  EXPECT_FALSE(loop.get_exception_handler());
  EXPECT_FALSE(loop.get_debug());
  EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.1);
}

TEST_F(LoopTest, CallSoonThreadsafeFromAnotherThreadRunsOnTheLoopThread) {
  std::thread::id ran_on;
  std::atomic<bool> running{false};
  loop.call_soon([&] { running = true; });
  std::thread producer([&] {
    while (!running)
      std::this_thread::yield();
    loop.call_soon_threadsafe([&] {
      ran_on = std::this_thread::get_id();
      loop.stop();
    });
  });
  loop.run_forever();
  producer.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(LoopThreads, LoopThatIsNotRunningMayBePreparedFromAnotherThread) {
  Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  int runs = 0;
  std::thread preparer([&] {
    loop.call_soon([&] { ++runs; });
    loop.call_later(1.0, [&] { ++runs; });
  });
  preparer.join();
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(runs, 2);
  loop.close();
}

// ------------------------------------------------------------------ debug mode

TEST_F(LoopTest, DebugModeReportsASlowCallback) {
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  ASSERT_TRUE(loop.get_debug());
  loop.call_soon([&] { clock->advance(200ms); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  const ExceptionContext& report = reports.contexts[0];
  EXPECT_NE(report.message.find("took"), std::string::npos) << report.message;
  EXPECT_NE(report.message.find("0.200"), std::string::npos) << report.message;
  EXPECT_FALSE(report.exception);
  EXPECT_FALSE(report.handle.empty());
}

TEST_F(LoopTest, DebugModeReportsASlowTimerCallback) {
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  loop.call_later(1.0, [&] { clock->advance(150ms); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_NE(reports.contexts[0].message.find("took"), std::string::npos);
}

TEST_F(LoopTest, DebugModeDoesNotReportACancelledCallback) {
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  loop.set_slow_callback_duration(0);  // every callback that runs is "slow"
  loop.call_soon([] {});
  Handle cancelled = loop.call_soon([] {});
  loop.call_soon([] {});
  cancelled.cancel();
  loop.run_once();
  EXPECT_EQ(reports.contexts.size(), 2u);
  EXPECT_EQ(loop.stats().callbacks_run, 2u);
}

TEST_F(LoopTest, DebugModeDoesNotReportACallbackUnderTheThreshold) {
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  loop.call_soon([&] { clock->advance(50ms); });
  loop.call_soon([&] { clock->advance(99ms); });
  loop.run_once();
  EXPECT_TRUE(reports.contexts.empty());
}

TEST_F(LoopTest, SlowCallbacksAreNotReportedWithoutDebugMode) {
  Reports reports;
  reports.install(loop);
  ASSERT_FALSE(loop.get_debug());
  loop.call_soon([&] { clock->advance(500ms); });
  loop.run_once();
  EXPECT_TRUE(reports.contexts.empty());
}

TEST_F(LoopTest, SetSlowCallbackDurationChangesTheThreshold) {
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.1);
  loop.set_slow_callback_duration(0.01);
  EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.01);
  loop.call_soon([&] { clock->advance(5ms); });
  loop.call_soon([&] { clock->advance(12ms); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_NE(reports.contexts[0].message.find("took"), std::string::npos);
}

TEST_F(LoopTest, SetSlowCallbackDurationValidatesItsInput) {
  EXPECT_THROW(loop.set_slow_callback_duration(-0.001), std::invalid_argument);
  EXPECT_THROW(loop.set_slow_callback_duration(kNaN), std::invalid_argument);
  EXPECT_THROW(loop.set_slow_callback_duration(kInf), std::invalid_argument);
  EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.1);  // unchanged
  EXPECT_NO_THROW(loop.set_slow_callback_duration(0.0));
  EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.0);
  EXPECT_NO_THROW(loop.set_slow_callback_duration(2.5));
  EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 2.5);
}

TEST_F(LoopTest, SlowCallbackDurationBeyondTheClocksRangeReportsNothing) {
  // 1e10 seconds is more nanoseconds than int64 holds: the threshold
  // saturates instead of wrapping negative (which made every callback slow).
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  for (double huge : {1e10, 1e300, std::numeric_limits<double>::max()}) {
    loop.set_slow_callback_duration(huge);
    EXPECT_EQ(loop.slow_callback_duration(), huge);  // the value set, as asyncio keeps it
    loop.call_soon([] {});
    loop.call_soon([&] { clock->advance(24h * 365 * 10); });  // a decade
    loop.run_once();
  }
  EXPECT_TRUE(reports.contexts.empty());
}

// Sets an environment variable for the lifetime of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(LoopDebug, EddyDebugEnvironmentVariableTurnsDebugOn) {
  {
    ScopedEnv env("EDDY_DEBUG", "1");
    Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()));
    EXPECT_TRUE(loop.get_debug());
    Loop explicit_off(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
    EXPECT_FALSE(explicit_off.get_debug());  // an explicit choice wins
    Loop plain;
    EXPECT_TRUE(plain.get_debug());
  }
  {
    ScopedEnv env("EDDY_DEBUG", "0");
    Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()));
    EXPECT_FALSE(loop.get_debug());
  }
  {
    ScopedEnv env("EDDY_DEBUG", nullptr);
    Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()));
    EXPECT_FALSE(loop.get_debug());
    Loop explicit_on(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(true));
    EXPECT_TRUE(explicit_on.get_debug());
  }
}

TEST(LoopDebug, EddyDebugEnvironmentVariableEnablesSlowCallbackReports) {
  ScopedEnv env("EDDY_DEBUG", "1");
  auto clock = std::make_shared<VirtualClock>();
  Loop loop(LoopOptions().use_clock(clock));
  Reports reports;
  reports.install(loop);
  loop.call_soon([&] { clock->advance(200ms); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_NE(reports.contexts[0].message.find("took"), std::string::npos);
  loop.close();
}

// ------------------------------------------------------------------ embedding

// HostLoop (support/host_loop.hpp): a uv_loop_t owned by the test, closed
// (and checked) at the end.
TEST_F(HostLoop, AttachedLoopRunsCallbacksAndTimersInsideTheHostsUvRun) {
  auto clock = std::make_shared<VirtualClock>();
  Loop loop(LoopOptions().attach_to(&uv).use_clock(clock).debug(false));
  EXPECT_EQ(loop.uv_loop(), &uv);
  std::vector<std::string> order;
  loop.call_later(2.0, [&] { order.push_back("timer 2"); });
  loop.call_soon([&] {
    order.push_back("soon");
    EXPECT_EQ(try_get_running_loop(), &loop);
    loop.call_soon([&] { order.push_back("soon again"); });
  });
  loop.call_later(1.0, [&] { order.push_back("timer 1"); });
  {
    HostWatchdog watchdog(&uv, 5000);
    EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);  // returns: eddy has no more work
    EXPECT_FALSE(watchdog.fired);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"soon", "soon again", "timer 1", "timer 2"}));
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
  EXPECT_FALSE(loop.is_running());
  EXPECT_EQ(try_get_running_loop(), nullptr);

  // Work scheduled after uv_run returned runs on the host's next uv_run.
  loop.call_soon([&] { order.push_back("second run"); });
  EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
  EXPECT_EQ(order.back(), "second run");
  loop.close();
}

TEST_F(HostLoop, AttachedLoopOnTheRealClockRunsItsTimer) {
  Loop loop(LoopOptions().attach_to(&uv));
  bool fired = false;
  double scheduled_at = loop.time();
  double fired_at = 0;
  loop.call_later(0.002, [&] {
    fired = true;
    fired_at = loop.time();
  });
  {
    HostWatchdog watchdog(&uv, 5000);
    uv_run(&uv, UV_RUN_DEFAULT);
    EXPECT_FALSE(watchdog.fired);
  }
  EXPECT_TRUE(fired);
  EXPECT_GE(fired_at - scheduled_at, 0.002);
  loop.close();
}

TEST_F(HostLoop, ClosingAnAttachedLoopLeavesTheHostLoopUsable) {
  auto loop = std::make_unique<Loop>(LoopOptions().attach_to(&uv));
  int runs = 0;
  {
    Counted c;
    loop->call_soon([c, &runs] { ++runs; });
    loop->call_later(1.0, [c, &runs] { ++runs; });
  }
  loop->close();
  EXPECT_TRUE(loop->is_closed());
  EXPECT_EQ(Counted::alive(), 0);
  loop.reset();  // the Loop object may go before the host runs again

  // The host loop still works: its own timer fires, and uv_run returns.
  uv_timer_t host_timer;
  ASSERT_EQ(uv_timer_init(&uv, &host_timer), 0);
  static bool host_timer_fired;
  host_timer_fired = false;
  uv_timer_start(
      &host_timer, [](uv_timer_t*) { host_timer_fired = true; }, 0, 0);
  EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
  EXPECT_TRUE(host_timer_fired);
  EXPECT_EQ(runs, 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&host_timer), nullptr);
  EXPECT_EQ(uv_run(&uv, UV_RUN_DEFAULT), 0);
  EXPECT_EQ(uv_loop_close(&uv), 0);
  ASSERT_EQ(uv_loop_init(&uv), 0);  // for TearDown
}

TEST_F(HostLoop, AttachedLoopWithOnlyACancelledTimerLetsTheHostsUvRunReturn) {
  Loop loop(LoopOptions().attach_to(&uv));
  bool fired = false;
  TimerHandle h = loop.call_later(3600.0, [&] { fired = true; });
  ASSERT_TRUE(h.cancel());
  {
    HostWatchdog watchdog(&uv, 2000);
    uv_run(&uv, UV_RUN_DEFAULT);
    EXPECT_FALSE(watchdog.fired) << "uv_run waited for a cancelled timer";
  }
  EXPECT_FALSE(fired);
  loop.close();
}

TEST_F(HostLoop, ATimerThatNeverFiresDoesNotKeepTheHostsUvRunAlive) {
  Loop loop(LoopOptions().attach_to(&uv).debug(false));
  bool never_fired = false;
  TimerHandle armed = loop.call_later(3600.0, [] {});   // libuv's timer is armed for it...
  loop.call_later(1e300, [&] { never_fired = true; });  // ..."never" stays behind
  loop.call_soon([&] { armed.cancel(); });              // cancelled inside a pass
  {
    HostWatchdog watchdog(&uv, 5000);
    uv_run(&uv, UV_RUN_DEFAULT);
    EXPECT_FALSE(watchdog.fired) << "uv_run waited for a timer that never fires";
  }
  EXPECT_FALSE(never_fired);
  EXPECT_EQ(loop.stats().timers, 1u);
  loop.close();
}

TEST_F(HostLoop, StopInsideAHostDrivenPassDoesNotKeepTheHostSpinning) {
  // stop() only concerns run_forever; a host's uv_run must go back to sleep.
  Loop loop(LoopOptions().attach_to(&uv).debug(false));
  loop.call_soon([&] { loop.stop(); });
  {
    HostWatchdog watchdog(&uv, 5000);
    uv_run(&uv, UV_RUN_DEFAULT);
    EXPECT_FALSE(watchdog.fired) << "uv_run kept running after stop()";
  }
  EXPECT_LE(loop.stats().iterations, 2u);
  loop.close();
}

TEST_F(HostLoop, StopInsideAHostDrivenPassDoesNotFreezeVirtualTime) {
  // On a virtual clock the host-driven passes jump time to the next deadline;
  // a stop() (which concerns only the next run_forever) must not stop that,
  // or the host's uv_run spins and the timer never fires.
  auto clock = std::make_shared<VirtualClock>();
  Loop loop(LoopOptions().attach_to(&uv).use_clock(clock).debug(false));
  bool fired = false;
  loop.call_soon([&] { loop.stop(); });
  loop.call_later(5.0, [&] { fired = true; });
  {
    HostWatchdog watchdog(&uv, 5000);
    uv_run(&uv, UV_RUN_DEFAULT);
    EXPECT_FALSE(watchdog.fired) << "uv_run kept running after stop()";
  }
  EXPECT_TRUE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 5.0);
  EXPECT_LE(loop.stats().iterations, 3u);
  loop.close();
}

TEST_F(HostLoop, AttachedLoopDoesNotKeepTheHostsUvRunAliveWithoutWork) {
  Loop loop(LoopOptions().attach_to(&uv).use_clock(std::make_shared<VirtualClock>()).debug(false));
  {
    HostWatchdog watchdog(&uv, 5000);
    uv_run(&uv, UV_RUN_DEFAULT);  // returns at once
    EXPECT_FALSE(watchdog.fired);
  }
  EXPECT_EQ(loop.stats().iterations, 0u);
  loop.close();
}

TEST_F(LoopTest, OwnedLoopWithAForeignOpenHandleRefusesClose) {
  uv_timer_t foreign;
  ASSERT_EQ(uv_timer_init(loop.uv_loop(), &foreign), 0);
  Counted c;
  int runs = 0;
  loop.call_soon([c, &runs] { ++runs; });

  try {
    loop.close();
    FAIL() << "close() succeeded with a foreign handle open";
  } catch (const LoopClosedError&) {
    FAIL() << "wrong error type";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("close"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("handle"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(loop.is_closed());
  EXPECT_EQ(Counted::alive(), 2);  // nothing was destroyed by the refusal

  // Still usable.
  loop.run_once();
  EXPECT_EQ(runs, 1);

  uv_close(reinterpret_cast<uv_handle_t*>(&foreign), nullptr);
  EXPECT_NO_THROW(loop.close());
  EXPECT_TRUE(loop.is_closed());
}

TEST_F(LoopTest, BackendFdIsValid) {
  EXPECT_GE(loop.backend_fd(), 0);
}

TEST_F(LoopTest, BackendTimeoutIsZeroWithCallbacksReady) {
  loop.call_soon([] {});
  EXPECT_EQ(loop.backend_timeout(), 0);
  loop.run_once();
  EXPECT_EQ(loop.backend_timeout(), -1);
}

TEST_F(LoopTest, BackendTimeoutIgnoresAStopMeantForRunForever) {
  loop.call_soon([&] { loop.stop(); });
  loop.run_once();                        // a foreign main loop's step calls stop()
  EXPECT_EQ(loop.backend_timeout(), -1);  // nothing scheduled: wait, do not spin
  loop.call_soon([] {});
  EXPECT_EQ(loop.backend_timeout(), 0);
  loop.run_once();
}

TEST_F(LoopTest, RunOnceAfterAStopMeantForRunForeverStillJumpsVirtualTime) {
  // A foreign main loop's step calls stop(); later steps must still reach the
  // next deadline (a step that waits for nothing is run_forever's, after
  // stop(), only), and backend_timeout() must not stay at 0.
  bool fired = false;
  loop.call_soon([&] { loop.stop(); });
  loop.call_later(5.0, [&] { fired = true; });
  for (int i = 0; i < 10 && !fired; ++i)
    loop.run_once();
  EXPECT_TRUE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 5.0);
  EXPECT_EQ(loop.backend_timeout(), -1);
  // The stop() still concerns the next run_forever: one iteration, which
  // waits for nothing (a pending timer neither fires nor makes time jump).
  bool later = false;
  loop.call_later(1.0, [&] { later = true; });
  loop.run_forever();
  EXPECT_FALSE(later);
  EXPECT_DOUBLE_EQ(loop.time(), 5.0);
}

TEST_F(LoopTest, BackendTimeoutIsMinusOneWithNothingScheduled) {
  EXPECT_EQ(loop.backend_timeout(), -1);
}

TEST(LoopRealClock, BackendTimeoutWaitsForTheNextTimer) {
  Loop loop;
  EXPECT_EQ(loop.backend_timeout(), -1);
  TimerHandle h = loop.call_later(10.0, [] {});
  int timeout = loop.backend_timeout();
  EXPECT_GT(timeout, 9000);
  EXPECT_LE(timeout, 10000);
  h.cancel();
  EXPECT_EQ(loop.backend_timeout(), -1);  // nothing left to wake up for
  loop.close();
}

TEST(LoopRealClock, BackendTimeoutCountsFromNowNotFromTheLastPoll) {
  // A foreign main loop that works between two waits: backend_timeout() is
  // what is left of the delay, not the whole delay again (libuv's cached
  // time goes stale when run_once finds nothing ready).
  Loop loop;
  bool fired = false;
  loop.call_later(0.2, [&] { fired = true; });
  loop.run_once();
  std::this_thread::sleep_for(std::chrono::milliseconds(120));  // the host's own work
  loop.run_once();
  EXPECT_FALSE(fired);
  const int timeout = loop.backend_timeout();
  EXPECT_LE(timeout, 81);  // at least 120 of the 200 ms have passed
  EXPECT_GE(timeout, 0);
  loop.close();
}

TEST(LoopRealClock, ForeignMainLoopDrivesTheLoopWithRunOnce) {
  // What a GUI main loop does: wait on backend_fd() for backend_timeout()
  // milliseconds (here: just check the values), then call run_once().
  Loop loop;
  ASSERT_GE(loop.backend_fd(), 0);
  std::atomic<bool> done{false};
  std::thread producer([&] { loop.call_soon_threadsafe([&] { done = true; }); });
  producer.join();
  for (int i = 0; i < 100 && !done; ++i)
    loop.run_once();
  EXPECT_TRUE(done);
  loop.close();
}

// While libuv holds only eddy's handles, eddy's zero-timeout poll peeks at
// libuv's epoll set and skips uv_run when nothing is ready. These three hold
// whether it does or not.

TEST(LoopRealClock, AThreadsafeCallRunsWhileCallbacksKeepEveryPassDue) {
  // A callback that reschedules itself keeps every iteration's poll at a zero
  // timeout; a threadsafe call from another thread must still be drained.
  Loop loop;
  std::atomic<bool> started{false};
  bool arrived = false;
  long iterations = 0;
  constexpr long kGiveUp = 50'000'000;
  std::function<void()> step = [&] {
    started = true;
    if (arrived || ++iterations == kGiveUp) return loop.stop();
    loop.call_soon(step);
  };
  loop.call_soon(step);
  std::thread producer([&] {
    while (!started)
      std::this_thread::yield();
    loop.call_soon_threadsafe([&] { arrived = true; });
  });
  loop.run_forever();
  producer.join();
  EXPECT_TRUE(arrived) << "the chain ran " << iterations << " iterations without it";
  loop.close();
}

TEST(LoopRealClock, ATimerFiresWhileCallbacksKeepEveryPassDue) {
  Loop loop;
  bool fired = false;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  std::function<void()> step = [&] {
    if (fired || std::chrono::steady_clock::now() > give_up) return loop.stop();
    loop.call_soon(step);
  };
  loop.call_later(0.002, [&] { fired = true; });
  loop.call_soon(step);
  loop.run_forever();
  EXPECT_TRUE(fired);
  loop.close();
}

TEST_F(LoopTest, AForeignHandleOnTheOwnedUvLoopRunsInEveryIteration) {
  // Once the program has the uv_loop_t, its handles run as libuv promises: a
  // check handle once per iteration, also while every poll is non-blocking.
  uv_check_t check;
  ASSERT_EQ(uv_check_init(loop.uv_loop(), &check), 0);
  int checks = 0;
  check.data = &checks;
  ASSERT_EQ(uv_check_start(&check, [](uv_check_t* c) { ++*static_cast<int*>(c->data); }), 0);
  int steps = 0;
  std::function<void()> step = [&] {
    if (++steps == 100) return loop.stop();
    loop.call_soon(step);
  };
  loop.call_soon(step);
  loop.run_forever();
  EXPECT_EQ(steps, 100);
  EXPECT_EQ(checks, 100);
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  loop.close();
}

TEST_F(LoopTest, RunOnceRunsOneStepWithoutBlocking) {
  // Nothing scheduled: returns at once, no iteration of eddy's.
  loop.run_once();
  EXPECT_EQ(loop.stats().iterations, 0u);

  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] { order.push_back("b"); });
  });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a"}));
  EXPECT_FALSE(loop.is_running());
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
}

TEST(LoopRealClock, ALibuvCallbackThatSchedulesOnTheLoopDoesNotLeaveItBlockedInThePoll) {
  // eddy runs its pass after each libuv iteration. A libuv timer of the
  // program's own on the loop's uv_loop fires in that iteration's timers
  // phase, before its poll, and calls call_soon: the poll must not block.
  Loop loop;
  struct State {
    Loop* loop;
    bool ran = false;
    bool watchdog_fired = false;
  } state{&loop};
  uv_timer_t schedules;  // due at once: fires in the first iteration
  uv_timer_t watchdog;   // ends a run that would otherwise hang
  uv_timer_init(loop.uv_loop(), &schedules);
  uv_timer_init(loop.uv_loop(), &watchdog);
  schedules.data = watchdog.data = &state;
  uv_timer_start(
      &schedules,
      [](uv_timer_t* t) {
        auto* s = static_cast<State*>(t->data);
        s->loop->call_soon([s] {
          s->ran = true;
          s->loop->stop();
        });
      },
      0, 0);
  uv_timer_start(
      &watchdog,
      [](uv_timer_t* t) {
        auto* s = static_cast<State*>(t->data);
        s->watchdog_fired = true;
        s->loop->stop();
      },
      10000, 0);
  loop.run_forever();
  EXPECT_TRUE(state.ran);
  EXPECT_FALSE(state.watchdog_fired) << "the poll blocked with a pass due";
  uv_close(reinterpret_cast<uv_handle_t*>(&schedules), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
  loop.close();  // runs the close callbacks
}

TEST(LoopRealClock, RunOnceDoesNotWaitForAFutureTimer) {
  Loop loop;
  bool fired = false;
  loop.call_later(3600.0, [&] { fired = true; });
  auto start = std::chrono::steady_clock::now();
  loop.run_once();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_FALSE(fired);
  loop.close();
}

// ------------------------------------------------------------------ stats

TEST_F(LoopTest, StatsCountCallbacksAndErrors) {
  Reports reports;
  reports.install(loop);
  loop.call_soon([] {});
  Handle cancelled = loop.call_soon([] {});
  loop.call_soon([] { throw std::runtime_error("x"); });
  loop.call_later(1.0, [] {});
  TimerHandle cancelled_timer = loop.call_later(2.0, [] {});
  loop.call_later(3.0, [] {});
  LoopStats before = loop.stats();
  EXPECT_EQ(before.ready, 3u);
  EXPECT_EQ(before.timers, 3u);
  EXPECT_GT(before.bytes_per_timer, 0u);
  cancelled.cancel();
  cancelled_timer.cancel();
  loop.run_once();
  LoopStats after = loop.stats();
  EXPECT_EQ(after.callbacks_run, 2u);  // the cancelled one does not count
  EXPECT_EQ(after.callback_errors, 1u);
  EXPECT_EQ(after.ready, 0u);
  EXPECT_EQ(after.timers, 2u);
}

TEST_F(LoopTest, StatsNeverCountCancelledCallbacksQueuedRunOrClosed) {
  loop.call_soon([] {});
  Handle cancelled = loop.call_soon([] {});
  cancelled.cancel();
  EXPECT_EQ(loop.stats().callbacks_run, 0u);  // nothing ran yet
  EXPECT_EQ(loop.stats().ready, 1u);
  loop.call_soon([] {});
  loop.run_once();
  EXPECT_EQ(loop.stats().callbacks_run, 2u);
  Handle later = loop.call_soon([] {});
  later.cancel();
  loop.call_soon([] {});  // destroyed by close, never run
  loop.close();
  EXPECT_EQ(loop.stats().callbacks_run, 2u);
}

// ------------------------------------------------------------ extensions

struct RecordingExtension : detail::LoopExtension {
  RecordingExtension(std::vector<std::string>& into, Loop& of) : log(into), loop(of) {}
  ~RecordingExtension() override { log.push_back("destroyed"); }
  bool loop_closing() noexcept override {
    log.push_back(loop.is_closed() ? "closing after close" : "closing");
    return false;
  }
  std::vector<std::string>& log;
  Loop& loop;
};

TEST_F(LoopTest, ExtensionIsToldOfCloseBeforeTheLoopIsClosedAndDestroyedWithTheLoop) {
  std::vector<std::string> log;
  {
    Loop other{LoopOptions().use_clock(clock).debug(false)};
    detail::LoopExtensions::set(other, detail::ExtensionSlot::tasks,
                                std::make_unique<RecordingExtension>(log, other), "test");
    EXPECT_NE(detail::LoopExtensions::get(other, detail::ExtensionSlot::tasks), nullptr);
    EXPECT_EQ(detail::LoopExtensions::get(other, detail::ExtensionSlot::executor), nullptr);
    other.close();
    EXPECT_EQ(log, (std::vector<std::string>{"closing"}));
  }
  EXPECT_EQ(log, (std::vector<std::string>{"closing", "destroyed"}));
}

TEST_F(LoopTest, ExtensionSlotTakesOneExtensionAndNoneOnAClosedLoop) {
  std::vector<std::string> log;
  Loop other{LoopOptions().use_clock(clock).debug(false)};
  detail::LoopExtensions::set(other, detail::ExtensionSlot::tasks,
                              std::make_unique<RecordingExtension>(log, other), "test");
  EXPECT_THROW(
      detail::LoopExtensions::set(other, detail::ExtensionSlot::tasks,
                                  std::make_unique<RecordingExtension>(log, other), "test"),
      RuntimeError);
  other.close();
  EXPECT_THROW(
      detail::LoopExtensions::set(other, detail::ExtensionSlot::executor,
                                  std::make_unique<RecordingExtension>(log, other), "test"),
      LoopClosedError);
}

// ------------------------------------------------------------------ asyncio's own scenarios
// Each test below follows a test of CPython 3.12's Lib/test/test_asyncio
// (test_base_events.py, test_events.py), named in its first comment line.

TEST_F(LoopTest, NegativeDelaysFireInTheOrderOfTheirDeadlines) {
  // test_base_events.py BaseEventLoopTests.test_call_later_negative_delays.
  std::vector<std::string> calls;
  TimerHandle a = loop.call_later(-1.0, [&] { calls.push_back("a"); });
  TimerHandle b = loop.call_later(-2.0, [&] { calls.push_back("b"); });
  EXPECT_DOUBLE_EQ(a.when(), loop.time() - 1.0);  // when = time() + delay
  EXPECT_DOUBLE_EQ(b.when(), loop.time() - 2.0);
  loop.run_once();
  EXPECT_EQ(calls, (std::vector<std::string>{"b", "a"}));
}

TEST(LoopRealClock, StopBeforeRunForeverDoesNotWaitForAPendingTimer) {
  // test_base_events.py BaseEventLoopTests.test_run_forever_pre_stopped:
  // the one iteration polls with a zero timeout.
  Loop loop;
  bool fired = false;
  loop.call_later(5.0, [&] { fired = true; });
  loop.stop();
  auto start = std::chrono::steady_clock::now();
  loop.run_forever();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_FALSE(fired);
  loop.close();
}

TEST_F(LoopTest, StopCalledFromTheFirstCallbackRunsTheRestOfItsIterationOnly) {
  // test_base_events.py BaseEventLoopTests.test_run_once (the idiom
  // `call_soon(loop.stop); run_forever()` runs one iteration).
  int count = 0;
  loop.call_soon([&] { ++count; });
  loop.call_soon([&] { loop.stop(); });
  loop.call_soon([&] { ++count; });
  loop.call_later(0.0, [&] { ++count; });  // due now: joins this iteration
  loop.run_forever();
  EXPECT_EQ(count, 3);
}

TEST_F(LoopTest, AThrowingCallSoonCallbackIsReportedAsAnExceptionInCallback) {
  // test_events.py HandleTests.test_callback_with_exception: the context's
  // message matches 'Exception in callback.*', and carries the exception
  // and the handle.
  Reports reports;
  reports.install(loop);
  loop.call_soon([] { throw std::invalid_argument("bad"); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_EQ(reports.contexts[0].message.rfind("Exception in callback", 0), 0u)
      << reports.contexts[0].message;
  EXPECT_THROW(std::rethrow_exception(reports.contexts[0].exception), std::invalid_argument);
  EXPECT_FALSE(reports.contexts[0].handle.empty());
}

TEST_F(LoopTest, AClosedLoopRefusesToRunAndCloseMayBeCalledAgain) {
  // test_events.py EventLoopTestsMixin.test_close.
  EXPECT_FALSE(loop.is_closed());
  loop.close();
  EXPECT_TRUE(loop.is_closed());
  loop.close();
  loop.close();
  EXPECT_THROW(loop.run_forever(), LoopClosedError);
  EXPECT_THROW(loop.run_once(), LoopClosedError);
}

TEST_F(LoopTest, ACallLaterZeroScheduledBeforeACallSoonRunsAfterIt) {
  // base_events.BaseEventLoop._run_once: due timers are appended to _ready
  // behind the callbacks already there (test__run_once_schedule_handle).
  std::vector<std::string> order;
  loop.call_later(0.0, [&] { order.push_back("timer"); });
  loop.call_soon([&] { order.push_back("soon"); });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"soon", "timer"}));
}

TEST_F(LoopTest, ACallSoonThreadsafeMadeInACallbackRunsInTheNextIteration) {
  // base_events.BaseEventLoop._run_once runs only the ntodo handles ready
  // when it began (test_call_soon_threadsafe_same_thread's callbacks).
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon_threadsafe([&] { order.push_back("threadsafe"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "threadsafe"}));
}

// ------------------------------------------------------------ asyncio's exception-handler and
// debug scenarios: each test names the CPython 3.12 test or function it follows.

TEST_F(LoopTest, ABrokenExceptionHandlerIsReportedAsAnUnhandledErrorInExceptionHandler) {
  // test_base_events.py BaseEventLoopTests.test_set_exc_handler_broken: the default handler logs
  // 'Unhandled error in exception handler' with the handler's exception.
  loop.set_exception_handler(
      [](Loop&, const ExceptionContext&) { throw std::runtime_error("handler broke"); });
  loop.call_soon([] { throw std::runtime_error("original"); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Unhandled error in exception handler"), std::string::npos) << err;
  EXPECT_NE(err.find("handler broke"), std::string::npos) << err;
}

TEST_F(LoopTest, ACustomHandlerMayDeferToTheDefaultExceptionHandler) {
  // base_events.py BaseEventLoop.default_exception_handler: "can be called by a custom exception
  // handler that wants to defer to the default behavior".
  int calls = 0;
  loop.set_exception_handler([&](Loop& l, const ExceptionContext& context) {
    ++calls;
    l.default_exception_handler(context);
  });
  loop.call_soon([] { throw std::runtime_error("deferred"); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 1);
  EXPECT_NE(err.find("deferred"), std::string::npos) << err;
  EXPECT_NE(err.find("Exception in callback"), std::string::npos) << err;
}

TEST_F(LoopTest, TheDefaultHandlerSaysWhereOrByWhatTheObjectWasMade) {
  auto printed = [this](SourceLocation source) {
    ExceptionContext context;
    context.message = "Future exception was never retrieved";
    context.source = source;
    ::testing::internal::CaptureStderr();
    loop.default_exception_handler(context);
    return ::testing::internal::GetCapturedStderr();
  };
  const std::string at = printed(SourceLocation{"app.cpp", "main", 12});
  EXPECT_NE(at.find("  created at: app.cpp:12 (main)\n"), std::string::npos) << at;
  const std::string by = printed(SourceLocation::made_by("eddy::gather"));
  EXPECT_NE(by.find("  created by: eddy::gather\n"), std::string::npos) << by;
  EXPECT_EQ(by.find("created at"), std::string::npos) << by;
  const std::string unknown = printed(SourceLocation{});
  EXPECT_EQ(unknown.find("created"), std::string::npos) << unknown;
}

TEST_F(LoopTest, AnExceptionHandlerThatThrowsANonStandardExceptionStillFallsBack) {
  // base_events.py BaseEventLoop.call_exception_handler: `except BaseException` around the
  // custom handler; the loop goes on.
  loop.set_exception_handler([](Loop&, const ExceptionContext&) { throw 17; });
  bool next_ran = false;
  loop.call_soon([] { throw std::runtime_error("first"); });
  loop.call_soon([&] { next_ran = true; });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(next_ran);
  EXPECT_NE(err.find("Unhandled error in exception handler"), std::string::npos) << err;
}

TEST_F(LoopTest, DebugModeReportsACallbackThatTakesExactlyTheThreshold) {
  // base_events.py BaseEventLoop._run_once: `if dt >= self.slow_callback_duration`.
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  loop.call_soon([&] { clock->advance(100ms); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_NE(reports.contexts[0].message.find("took 0.100"), std::string::npos)
      << reports.contexts[0].message;
}

TEST_F(LoopTest, DebugModeReportsASlowCallbackThatThrowsAfterItsException) {
  // events.py Handle._run reports the exception inside handle._run(); _run_once then times the
  // same handle and warns that it was slow.
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  loop.call_soon([&] {
    clock->advance(200ms);
    throw std::runtime_error("slow and broken");
  });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 2u);
  EXPECT_EQ(reports.contexts[0].message.rfind("Exception in callback", 0), 0u);
  EXPECT_EQ(what_of(reports.contexts[0].exception), "slow and broken");
  EXPECT_NE(reports.contexts[1].message.find("took 0.200"), std::string::npos)
      << reports.contexts[1].message;
  EXPECT_FALSE(reports.contexts[1].exception);
  EXPECT_EQ(reports.contexts[0].handle, reports.contexts[1].handle);
}

TEST_F(LoopTest, ASlowCallbackReportGoesToTheCustomHandler) {
  // base_events.py _run_once logs slow callbacks; eddy sends them to the exception handler (a
  // documented difference). With the default handler they are written to stderr.
  loop.set_debug(true);
  loop.call_soon([&] { clock->advance(300ms); });
  ::testing::internal::CaptureStderr();
  loop.run_once();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Executing"), std::string::npos) << err;
  EXPECT_NE(err.find("took 0.300 seconds"), std::string::npos) << err;
}

// ------------------------------------------------------------ asyncio 3.12 details

TEST_F(LoopTest, StopBeforeRunForeverDoesNotWaitForAPendingTimerOnTheVirtualClock) {
  // test_base_events.py BaseEventLoopTests.test_run_forever_pre_stopped.
  // As in asyncio: its _run_once polls with a zero timeout when _stopping is set (`if
  // self._ready or self._stopping: timeout = 0`), so a pre-stopped run_forever() never waits for,
  // nor runs, a timer that is not yet due.
  bool fired = false;
  loop.call_later(10.0, [&] { fired = true; });
  loop.stop();
  loop.run_forever();
  EXPECT_FALSE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0) << "the virtual clock jumped: the loop waited";
  EXPECT_EQ(loop.stats().timers, 1u);
}

TEST_F(LoopTest, AThreadsafeCallMadeBeforeTheLoopRunsRunsInItsFirstIteration) {
  // asyncio's call_soon_threadsafe appends to the ready queue at once, so a
  // stop()-before-run_forever iteration runs it. eddy's goes through the
  // inbox, which the iteration's poll drains before its callbacks run.
  std::vector<std::string> order;
  loop.call_soon_threadsafe([&] { order.push_back("threadsafe"); });
  loop.call_soon([&] { order.push_back("soon"); });
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"soon", "threadsafe"}));
  EXPECT_EQ(loop.stats().iterations, 1u);
}

TEST_F(LoopTest, RunOnceRunsTheThreadsafeCallsItsPollDrained) {
  std::vector<std::string> order;
  std::thread([&] { loop.call_soon_threadsafe([&] { order.push_back("threadsafe"); }); }).join();
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"threadsafe"}));
}

TEST_F(LoopTest, CallSoonThreadsafeOnTheLoopThreadKeepsFifoOrderWithCallSoon) {
  // test_events.py test_call_soon_threadsafe_same_thread: asyncio's
  // call_soon_threadsafe appends to the same ready queue as call_soon, so
  // callbacks scheduled either way run in the order they were scheduled.
  // eddy does so on the running loop's thread (before the loop runs, any
  // thread may be the caller: the call goes through the inbox).
  std::vector<std::string> results;
  auto callback = [&](std::string arg) {
    results.push_back(std::move(arg));
    if (results.size() >= 2) loop.stop();
  };
  loop.call_soon([&] {
    loop.call_soon_threadsafe(callback, std::string("hello"));
    loop.call_soon(callback, std::string("world"));
  });
  run_until_stopped();
  EXPECT_EQ(results, (std::vector<std::string>{"hello", "world"}));
}

TEST_F(LoopTest, CallSoonThreadsafeOnTheLoopThreadStaysFifoWithCallSoonWhenOtherThreadsSentSome) {
  // Another thread's callback waits in the inbox; the loop thread then calls
  // call_soon_threadsafe and call_soon. asyncio: x (the other thread's,
  // already in its ready queue), z, y. eddy: the same, the inbox joining the
  // ready queue first.
  std::vector<std::string> order;
  loop.call_soon([&] {
    std::thread other([&] { loop.call_soon_threadsafe([&] { order.push_back("x"); }); });
    other.join();
    loop.call_soon_threadsafe([&] { order.push_back("z"); });
    loop.call_soon([&] { order.push_back("y"); });
  });
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"x", "z", "y"}));
}

TEST_F(LoopTest, HandlesOfEveryDrainedBatchStayCancellableUntilTheirCallbacksRun) {
  // The loop thread drains the inbox itself (a call_soon_threadsafe of its
  // own); the next poll drains another batch before the first one has run.
  // A callback queued before both then cancels one callback of each batch.
  std::vector<std::string> order;
  Handle first, second;
  loop.call_soon([&] {
    loop.call_soon([&] {  // runs first in the next pass
      EXPECT_TRUE(first.cancel());
      EXPECT_TRUE(second.cancel());
      EXPECT_TRUE(first.cancelled());
      EXPECT_TRUE(second.cancelled());
    });
    std::thread([&] {
      first = loop.call_soon_threadsafe([&] { order.push_back("first"); });
    }).join();
    loop.call_soon_threadsafe([&] { order.push_back("own"); });  // drains `first`'s batch
    std::thread([&] {
      second = loop.call_soon_threadsafe([&] { order.push_back("second"); });
    }).join();
  });
  loop.run_once();  // the callback above
  loop.run_once();  // the poll drains `second`'s batch; then the pass
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"own"}));
}

TEST_F(LoopTest, ATimerCallbackThatThrowsIsReportedAsAnExceptionInCallback) {
  // test_base_events.py BaseEventLoopTests.test_default_exc_handler_callback (its call_later part).
  // asyncio's message matches 'Exception in callback.*' for a TimerHandle too
  // (events.Handle._run builds it and TimerHandle inherits _run).
  Reports reports;
  reports.install(loop);
  loop.call_later(0.01, [] { throw std::runtime_error("zero"); });
  loop.run_once();
  ASSERT_EQ(reports.contexts.size(), 1u);
  EXPECT_EQ(reports.contexts[0].message.rfind("Exception in callback", 0), 0u)
      << reports.contexts[0].message;
  EXPECT_EQ(what_of(reports.contexts[0].exception), "zero");
}

TEST_F(LoopTest, TheDefaultHandlerSaysUnhandledExceptionInEventLoopForAContextWithoutAMessage) {
  // base_events.py BaseEventLoop.default_exception_handler: `if not message: message =
  // 'Unhandled exception in event loop'`.
  ExceptionContext context;
  context.exception = std::make_exception_ptr(std::runtime_error("no message given"));
  ::testing::internal::CaptureStderr();
  loop.call_exception_handler(context);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Unhandled exception in event loop"), std::string::npos) << err;
  EXPECT_NE(err.find("no message given"), std::string::npos) << err;
}

TEST_F(LoopTest, SetDebugInACallbackTimesCallbacksFromTheNextIterationOn) {
  // base_events.py BaseEventLoop._run_once tests `if self._debug:` for every handle it runs, so
  // asyncio times the very next callback. eddy decides whether a pass is timed when it begins
  // (the untimed pass is its fast path): documented at Loop::set_debug.
  Reports reports;
  reports.install(loop);
  ASSERT_FALSE(loop.get_debug());
  loop.call_soon([&] { loop.set_debug(true); });
  loop.call_soon([&] { clock->advance(200ms); });
  loop.run_once();
  EXPECT_TRUE(reports.contexts.empty());
  loop.call_soon([&] { clock->advance(200ms); });
  loop.run_once();
  EXPECT_EQ(reports.contexts.size(), 1u);
}

TEST_F(LoopTest, SetDebugFalseInACallbackStopsTimingTheNextCallbackOfTheSameIteration) {
  // base_events.py BaseEventLoop._run_once tests `if self._debug:` for every handle it runs.
  Reports reports;
  reports.install(loop);
  loop.set_debug(true);
  loop.call_soon([&] { loop.set_debug(false); });
  loop.call_soon([&] { clock->advance(200ms); });
  loop.run_once();
  EXPECT_TRUE(reports.contexts.empty());
}

}  // namespace
}  // namespace eddy
