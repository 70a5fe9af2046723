// Tests of eddy::Clock, VirtualClock and MonotonicClock (eddy/clock.hpp), and
// of how a loop on a VirtualClock moves time.
#include <uv.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <eddy/clock.hpp>
#include <eddy/loop.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using eddy::testing::LoopTest;
using namespace std::chrono_literals;

TEST(VirtualClock, StartsWhereToldAndStandsStill) {
  VirtualClock at_zero;
  EXPECT_EQ(at_zero.now().time_since_epoch(), 0ns);
  VirtualClock later(Clock::time_point{5s});
  EXPECT_EQ(later.now().time_since_epoch(), 5s);
  EXPECT_EQ(later.now(), later.now());
}

TEST(VirtualClock, AdvanceMovesTimeForward) {
  VirtualClock clock;
  clock.advance(1500ms);
  EXPECT_EQ(clock.now().time_since_epoch(), 1500ms);
  clock.advance(1ns);
  EXPECT_EQ(clock.now().time_since_epoch(), 1500ms + 1ns);
}

TEST(VirtualClock, AdvanceIgnoresNegativeDurations) {
  VirtualClock clock(Clock::time_point{10s});
  clock.advance(-3s);
  EXPECT_EQ(clock.now().time_since_epoch(), 10s);
  clock.advance(0ns);
  EXPECT_EQ(clock.now().time_since_epoch(), 10s);
}

TEST(VirtualClock, AdvanceSaturatesAtTheLatestTimeInsteadOfWrapping) {
  constexpr auto latest = std::chrono::nanoseconds::max();  // time_point::max()
  VirtualClock clock;
  clock.advance(latest);
  EXPECT_EQ(clock.now().time_since_epoch(), latest);
  clock.advance(1ns);
  EXPECT_EQ(clock.now().time_since_epoch(), latest);
  VirtualClock later(Clock::time_point{5s});
  later.advance(latest - 1s);
  EXPECT_EQ(later.now().time_since_epoch(), latest);
  later.advance(latest);
  EXPECT_EQ(later.now().time_since_epoch(), latest);
}

TEST(VirtualClock, AdvanceInCoarseUnitsSaturatesInsteadOfOverflowing) {
  // hours::max() in nanoseconds does not fit in int64: no implicit
  // conversion (which would overflow) happens on the way in.
  VirtualClock clock;
  clock.advance(2s);
  EXPECT_EQ(clock.now().time_since_epoch(), 2s);
  clock.advance(std::chrono::duration<double>(0.5));
  EXPECT_EQ(clock.now().time_since_epoch(), 2500ms);
  clock.advance(-1h);  // ignored, as a negative nanoseconds count is
  EXPECT_EQ(clock.now().time_since_epoch(), 2500ms);
  clock.advance(std::chrono::hours::max());
  EXPECT_EQ(clock.now().time_since_epoch(), std::chrono::nanoseconds::max());
}

TEST(VirtualClock, AdvanceToNeverGoesBack) {
  VirtualClock clock;
  clock.advance_to(Clock::time_point{7s});
  EXPECT_EQ(clock.now().time_since_epoch(), 7s);
  clock.advance_to(Clock::time_point{3s});
  EXPECT_EQ(clock.now().time_since_epoch(), 7s);
  clock.advance_to(Clock::time_point{7s});
  EXPECT_EQ(clock.now().time_since_epoch(), 7s);
  clock.advance_to(Clock::time_point{8s});
  EXPECT_EQ(clock.now().time_since_epoch(), 8s);
}

TEST(VirtualClock, AdvanceToInCoarseUnitsSaturatesInsteadOfOverflowing) {
  using Seconds = std::chrono::time_point<Clock, std::chrono::seconds>;
  using Hours = std::chrono::time_point<Clock, std::chrono::hours>;
  using DoubleSeconds = std::chrono::time_point<Clock, std::chrono::duration<double>>;
  VirtualClock clock;
  clock.advance_to(Seconds{3s});
  EXPECT_EQ(clock.now().time_since_epoch(), 3s);
  clock.advance_to(DoubleSeconds{std::chrono::duration<double>(3.25)});
  EXPECT_EQ(clock.now().time_since_epoch(), 3250ms);
  clock.advance_to(Hours{std::chrono::hours::min()});  // the far past: nothing moves
  EXPECT_EQ(clock.now().time_since_epoch(), 3250ms);
  clock.advance_to(DoubleSeconds{std::chrono::duration<double>(std::nan(""))});
  EXPECT_EQ(clock.now().time_since_epoch(), 3250ms);
  // hours::max() in nanoseconds does not fit in int64: as far as time goes.
  clock.advance_to(Hours{std::chrono::hours::max()});
  EXPECT_EQ(clock.now().time_since_epoch(), std::chrono::nanoseconds::max());
}

TEST(VirtualClock, IsUsableThroughTheClockInterface) {
  auto clock = std::make_shared<VirtualClock>();
  std::shared_ptr<Clock> base = clock;
  clock->advance(2s);
  EXPECT_EQ(base->now().time_since_epoch(), 2s);
  EXPECT_TRUE(Clock::is_steady);
}

TEST(MonotonicClock, NeverGoesBackwardsAndAdvances) {
  MonotonicClock clock;
  Clock::time_point first = clock.now();
  Clock::time_point previous = first;
  for (int i = 0; i < 100'000; ++i) {
    Clock::time_point t = clock.now();
    ASSERT_GE(t, previous);
    previous = t;
  }
  // It moves (a stuck clock would be monotonic too).
  for (int i = 0; i < 100'000'000 && clock.now() == first; ++i) {
  }
  EXPECT_GT(clock.now(), first);
}

TEST(MonotonicClock, IsLibuvsHighResolutionTime) {
  MonotonicClock clock;
  auto before = static_cast<std::int64_t>(uv_hrtime());
  std::int64_t now = clock.now().time_since_epoch().count();
  auto after = static_cast<std::int64_t>(uv_hrtime());
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

TEST(MonotonicClock, LoopOnAnExplicitMonotonicClockKeepsTheSameTimeLine) {
  Loop loop(LoopOptions().use_clock(std::make_shared<MonotonicClock>()));
  double before = static_cast<double>(uv_hrtime()) * 1e-9;
  double t = loop.time();
  double after = static_cast<double>(uv_hrtime()) * 1e-9;
  EXPECT_LE(before, t);
  EXPECT_LE(t, after);
  // And its timers work (due now, so nothing waits).
  bool fired = false;
  loop.call_later(0.0, [&] { fired = true; });
  for (int i = 0; i < 10 && !fired; ++i)
    loop.run_once();
  EXPECT_TRUE(fired);
  loop.close();
}

TEST_F(LoopTest, LoopTimeFollowsTheVirtualClock) {
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  clock->advance(2500ms);
  EXPECT_DOUBLE_EQ(loop.time(), 2.5);
  EXPECT_EQ(loop.now(), clock->now());
}

TEST_F(LoopTest, LoopTimeJumpsToTheNextDeadlineWhenNothingIsReady) {
  double fired_at = -1;
  loop.call_later(30.0, [&] { fired_at = loop.time(); });
  loop.call_later(60.0, [] {});
  loop.run_once();
  EXPECT_DOUBLE_EQ(fired_at, 30.0);
  EXPECT_DOUBLE_EQ(loop.time(), 30.0);  // to the earliest deadline, not beyond
  EXPECT_EQ(clock->now().time_since_epoch(), 30s);
}

TEST_F(LoopTest, LoopTimeDoesNotJumpWhileCallbacksAreReady) {
  std::vector<std::string> order;
  loop.call_later(10.0, [&] { order.push_back("timer"); });
  loop.call_soon([&] {
    order.push_back("soon");
    loop.call_soon([&] { order.push_back("soon again"); });
  });
  loop.run_once();
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  EXPECT_EQ(order, (std::vector<std::string>{"soon"}));
  loop.run_once();  // still something ready: no jump
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
  EXPECT_EQ(order, (std::vector<std::string>{"soon", "soon again"}));
  loop.run_once();  // nothing ready: jump
  EXPECT_DOUBLE_EQ(loop.time(), 10.0);
  EXPECT_EQ(order, (std::vector<std::string>{"soon", "soon again", "timer"}));
}

TEST_F(LoopTest, LoopTimeDoesNotJumpWithoutTimers) {
  loop.call_soon([] {});
  loop.run_once();
  loop.run_once();
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

TEST_F(LoopTest, LoopTimeDoesNotJumpToACancelledTimer) {
  TimerHandle cancelled = loop.call_later(5.0, [] {});
  double fired_at = -1;
  loop.call_later(20.0, [&] { fired_at = loop.time(); });
  cancelled.cancel();
  loop.run_once();
  EXPECT_DOUBLE_EQ(fired_at, 20.0);
}

TEST_F(LoopTest, VirtualTimeRunsAnHourOfTimersInstantly) {
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks == 3600) {
      loop.stop();
    } else {
      loop.call_later(1.0, tick);
    }
  };
  loop.call_later(1.0, tick);
  auto start = std::chrono::steady_clock::now();
  loop.run_forever();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(ticks, 3600);
  EXPECT_DOUBLE_EQ(loop.time(), 3600.0);
}

TEST_F(LoopTest, ManualAdvanceMakesATimerDue) {
  bool fired = false;
  loop.call_later(1.0, [&] { fired = true; });
  loop.call_soon([] {});  // keeps the loop from jumping in this step
  clock->advance(1s);
  loop.run_once();
  EXPECT_TRUE(fired);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
}

}  // namespace
}  // namespace eddy
