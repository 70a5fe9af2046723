// The loop when memory runs out: every allocation a call makes is made to
// fail in turn (FailingAllocator), and the call either succeeds or throws
// std::bad_alloc, leaving nothing lost and nothing leaked.
#include <gtest/gtest.h>

#include <dirent.h>

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <eddy/clock.hpp>
#include <eddy/loop.hpp>

#include "failing_allocator.hpp"

namespace eddy {
namespace {

using testing::DisarmAtExit;
using testing::FailingAllocator;

/// The file descriptors this process has open.
int open_fds() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr)
      ++count;
    closedir(dir);
  }
  return count;
}

TEST(LoopOutOfMemory, AConstructorThatRunsOutOfMemoryThrowsAndLeavesNoLibuvLoopBehind) {
  const int fds_before = open_fds();
  long failures = 0;
  for (long k = 1;; ++k) {
    DisarmAtExit disarm;
    std::unique_ptr<Loop> loop;
    FailingAllocator::arm(k);
    try {
      loop = std::make_unique<Loop>();
    } catch (const std::bad_alloc&) {
      ++failures;
    }
    const bool fired = FailingAllocator::fired();
    FailingAllocator::disarm();
    if (!fired) {
      ASSERT_NE(loop, nullptr);
      break;
    }
    EXPECT_EQ(loop, nullptr) << "allocation " << k << " failed, and the constructor went on";
    // A uv_loop_t left initialized keeps its epoll and eventfd descriptors
    // open (LeakSanitizer reports its memory).
    EXPECT_EQ(open_fds(), fds_before) << "after allocation " << k << " failed";
  }
  EXPECT_GT(failures, 1);  // at least the uv_loop_t and the handles' block
}

/// Schedules `n` timers due in 1 s on a fresh loop, makes allocation k of
/// the pass that finds them due fail, then runs them all. Returns whether
/// allocation k was reached.
bool due_timers_with_failure(int n, long k) {
  auto clock = std::make_shared<VirtualClock>();
  Loop loop{LoopOptions().use_clock(clock).debug(false)};
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  std::vector<int> fired(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < n; ++i)
    loop.call_later(1.0, [&fired, i] { ++fired[static_cast<std::size_t>(i)]; });

  DisarmAtExit disarm;
  FailingAllocator::arm(k);
  EXPECT_NO_THROW(loop.run_once()) << "allocation " << k;  // jumps to 1 s: all due
  const bool reached = FailingAllocator::fired();
  FailingAllocator::disarm();
  if (reached) {
    EXPECT_EQ(reports.size(), 1u) << "allocation " << k;
    if (!reports.empty()) {
      EXPECT_NE(reports[0].find("Due timers could not be queued"), std::string::npos);
    }
  }

  // Whatever failed runs on the next passes, each timer exactly once, and
  // the loop still keeps time: a later timer stops it.
  loop.call_later(5.0, [&loop] { loop.stop(); });
  loop.run_forever();
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(fired[static_cast<std::size_t>(i)], 1) << "timer " << i << ", allocation " << k;
  EXPECT_EQ(clock->now(), Clock::time_point{} + std::chrono::seconds(6));
  loop.close();
  return reached;
}

TEST(LoopOutOfMemory, DueTimersTheReadyQueueCannotTakeStayScheduledAndRunOnALaterPass) {
  long k = 1;
  while (due_timers_with_failure(10, k))
    ++k;
  EXPECT_GT(k, 1);  // the ready queue had to grow at least once
}

TEST(LoopOutOfMemory, ABurstOfDueTimersTheReadyQueueCannotTakeStaysScheduled) {
  // Enough timers due at once for the bulk path (a share of a large heap
  // sorted out at once), and for the ready queue to grow several times.
  long k = 1;
  while (due_timers_with_failure(5000, k))
    ++k;
  EXPECT_GT(k, 2);
}

}  // namespace
}  // namespace eddy
