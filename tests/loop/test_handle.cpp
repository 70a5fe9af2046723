// Tests of eddy::Handle and eddy::TimerHandle (eddy/handle.hpp): cancelling
// before and after the run, what cancelled() reports, when()/deadline().
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <eddy/handle.hpp>
#include <eddy/loop.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::LoopTest;
using namespace std::chrono_literals;

TEST(Handle, DefaultHandleRefersToNothing) {
  Handle h;
  EXPECT_FALSE(h.cancelled());
  EXPECT_FALSE(h.cancel());
  TimerHandle t;
  EXPECT_FALSE(t.cancel());
  EXPECT_DOUBLE_EQ(t.when(), 0.0);
}

TEST_F(LoopTest, CancelBeforeRunPreventsACallSoonCallbackAndDestroysItsCapturesAtOnce) {
  int runs = 0;
  Handle h;
  {
    Counted c;
    h = loop.call_soon([c, &runs] { ++runs; });
  }
  loop.call_soon([&runs] { runs += 10; });
  EXPECT_EQ(Counted::alive(), 1);
  EXPECT_TRUE(h.cancel());
  EXPECT_EQ(Counted::alive(), 0);  // at once, not when the loop reaches it
  EXPECT_TRUE(h.cancelled());
  loop.run_once();
  EXPECT_EQ(runs, 10);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
}

TEST_F(LoopTest, CancelBeforeRunPreventsATimerAndDestroysItsCapturesAtOnce) {
  int runs = 0;
  TimerHandle h;
  {
    Counted c;
    h = loop.call_later(1.0, [c, &runs] { ++runs; });
  }
  EXPECT_EQ(Counted::alive(), 1);
  EXPECT_TRUE(h.cancel());
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(h.cancelled());
  EXPECT_EQ(loop.stats().timers, 0u);
  loop.call_later(2.0, [&runs] { runs += 10; });
  loop.run_once();
  EXPECT_EQ(runs, 10);
  EXPECT_EQ(Counted::destroyed, Counted::constructed);
}

TEST_F(LoopTest, CancelFromAnEarlierCallbackInTheSameIterationPreventsTheRun) {
  std::vector<std::string> order;
  Handle victim;
  loop.call_soon([&] {
    order.push_back("canceller");
    EXPECT_TRUE(victim.cancel());
  });
  {
    Counted c;
    victim = loop.call_soon([&order, c] { order.push_back("victim"); });
  }
  loop.call_soon([&] { order.push_back("after"); });
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"canceller", "after"}));
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(LoopTest, CancelAfterRunIsANoOpReturningFalse) {
  int runs = 0;
  Handle soon = loop.call_soon([&runs] { ++runs; });
  TimerHandle timer = loop.call_later(1.0, [&runs] { ++runs; });
  loop.run_once();
  loop.run_once();
  ASSERT_EQ(runs, 2);
  EXPECT_FALSE(soon.cancelled());  // running is not cancelling
  EXPECT_FALSE(timer.cancelled());
  EXPECT_FALSE(soon.cancel());
  EXPECT_FALSE(timer.cancel());
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(runs, 2);  // nothing ran again
}

TEST_F(LoopTest, CancelAfterRunDoesNotTouchALaterCallback) {
  // Sequence numbers and timer slots are reused or adjacent: a stale handle
  // must not cancel whatever now sits where its callback was.
  int runs = 0;
  TimerHandle old_timer = loop.call_later(1.0, [&runs] { ++runs; });
  Handle old_soon = loop.call_soon([&runs] { ++runs; });
  loop.run_once();
  loop.run_once();
  ASSERT_EQ(runs, 2);
  TimerHandle new_timer = loop.call_later(1.0, [&runs] { runs += 10; });
  Handle new_soon = loop.call_soon([&runs] { runs += 100; });
  EXPECT_FALSE(old_timer.cancel());
  EXPECT_FALSE(old_soon.cancel());
  EXPECT_FALSE(new_timer.cancelled());
  EXPECT_FALSE(new_soon.cancelled());
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(runs, 112);
}

TEST_F(LoopTest, SecondCancelReturnsFalse) {
  Handle soon = loop.call_soon([] {});
  TimerHandle timer = loop.call_later(1.0, [] {});
  EXPECT_TRUE(soon.cancel());
  EXPECT_TRUE(timer.cancel());
  EXPECT_FALSE(soon.cancel());
  EXPECT_FALSE(timer.cancel());
  EXPECT_TRUE(soon.cancelled());
  EXPECT_TRUE(timer.cancelled());
}

TEST_F(LoopTest, CancelledIsFalseUntilCancelAndSeenThroughACopyWhileQueued) {
  Handle soon = loop.call_soon([] {});
  TimerHandle timer = loop.call_later(1.0, [] {});
  EXPECT_FALSE(soon.cancelled());
  EXPECT_FALSE(timer.cancelled());
  Handle soon_copy = soon;
  TimerHandle timer_copy = timer;
  EXPECT_TRUE(soon_copy.cancel());
  EXPECT_TRUE(timer_copy.cancel());
  EXPECT_TRUE(soon.cancelled());
  EXPECT_TRUE(timer.cancelled());
  EXPECT_FALSE(soon.cancel());  // the copy already did
  EXPECT_FALSE(timer.cancel());
}

TEST_F(LoopTest, TimerHandleWhenAndDeadlineGiveTheScheduledTime) {
  clock->advance(10s);
  TimerHandle later = loop.call_later(2.5, [] {});
  EXPECT_DOUBLE_EQ(later.when(), 12.5);
  EXPECT_EQ(later.deadline(), loop.now() + 2500ms);

  TimerHandle later_chrono = loop.call_later(250ms, [] {});
  EXPECT_DOUBLE_EQ(later_chrono.when(), 10.25);

  TimerHandle at = loop.call_at(42.0, [] {});
  EXPECT_DOUBLE_EQ(at.when(), 42.0);
  EXPECT_EQ(at.deadline().time_since_epoch(), 42s);

  Clock::time_point point = loop.now() + 1234567ns;
  TimerHandle at_point = loop.call_at(point, [] {});
  EXPECT_EQ(at_point.deadline(), point);
  EXPECT_NEAR(at_point.when(), 10.001234567, 1e-12);
}

TEST_F(LoopTest, TimerFiresWhenItsWhenSays) {
  clock->advance(3s);
  double fired_at = -1;
  TimerHandle h = loop.call_later(0.75, [&] { fired_at = loop.time(); });
  loop.run_once();
  EXPECT_DOUBLE_EQ(fired_at, h.when());
}

TEST_F(LoopTest, CancelOfATimerThatIsDueButNotYetPoppedPreventsIt) {
  int runs = 0;
  TimerHandle h;
  {
    Counted c;
    h = loop.call_later(1.0, [c, &runs] { ++runs; });
  }
  clock->advance(5s);  // due, but no iteration has taken it yet
  EXPECT_TRUE(h.cancel());
  EXPECT_EQ(Counted::alive(), 0);
  loop.run_once();
  EXPECT_EQ(runs, 0);
}

TEST_F(LoopTest, CancelOfATimerThatIsDueButNotYetRunPreventsIt) {
  // Both timers fall due in the same iteration; the first one cancels the
  // second, which is already on the ready queue.
  std::vector<std::string> order;
  TimerHandle second;
  bool cancel_result = false;
  loop.call_later(1.0, [&] {
    order.push_back("first");
    EXPECT_FALSE(second.cancelled());
    cancel_result = second.cancel();
    EXPECT_EQ(Counted::alive(), 0);  // destroyed at once
    EXPECT_TRUE(second.cancelled());
  });
  {
    Counted c;
    second = loop.call_later(1.0, [&order, c] { order.push_back("second"); });
  }
  loop.call_later(1.0, [&] { order.push_back("third"); });
  loop.run_once();
  EXPECT_TRUE(cancel_result);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "third"}));
  EXPECT_EQ(loop.stats().callbacks_run, 2u);  // the cancelled one did not run
  EXPECT_FALSE(second.cancel());
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(loop.stats().timers, 0u);

  // Its slot is reused correctly afterwards.
  bool later_ran = false;
  loop.call_later(1.0, [&] { later_ran = true; });
  loop.run_once();
  EXPECT_TRUE(later_ran);
}

TEST_F(LoopTest, CancelOfAThreadsafeHandleInTheInboxOnTheLoopThread) {
  int runs = 0;
  Handle h;
  {
    Counted c;
    h = loop.call_soon_threadsafe([c, &runs] { ++runs; });
  }
  loop.call_soon_threadsafe([&runs] { runs += 10; });
  EXPECT_EQ(Counted::alive(), 1);
  EXPECT_TRUE(h.cancel());
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(h.cancelled());
  EXPECT_FALSE(h.cancel());
  for (int i = 0; i < 3; ++i)
    loop.run_once();
  EXPECT_EQ(runs, 10);
}

TEST_F(LoopTest, CancelOfAThreadsafeHandleAlreadyMovedToTheReadyQueue) {
  std::vector<std::string> order;
  Handle victim;
  // Before the loop runs, the threadsafe call lands in the inbox (on the
  // running loop's thread it would be a call_soon). The iteration's poll
  // moves it behind "canceller", which then cancels it in the ready queue.
  {
    Counted c;
    victim = loop.call_soon_threadsafe([&order, c] { order.push_back("victim"); });
  }
  loop.call_soon([&] {
    order.push_back("canceller");
    ASSERT_EQ(loop.stats().ready, 1u) << "the threadsafe callback was not drained before the pass";
    EXPECT_EQ(Counted::alive(), 1);
    EXPECT_TRUE(victim.cancel());
    EXPECT_EQ(Counted::alive(), 0);
  });
  EXPECT_EQ(loop.stats().ready, 1u);  // the victim waits in the inbox
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"canceller"}));
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_FALSE(victim.cancel());
  EXPECT_EQ(loop.stats().ready, 0u);
}

TEST_F(LoopTest, CancelledIsSeenThroughACopyOfAThreadsafeHandleInTheInbox) {
  Handle in_inbox = loop.call_soon_threadsafe([] {});
  Handle inbox_copy = in_inbox;
  EXPECT_FALSE(in_inbox.cancelled());
  EXPECT_TRUE(inbox_copy.cancel());
  EXPECT_TRUE(in_inbox.cancelled());
  EXPECT_FALSE(in_inbox.cancel());
}

TEST_F(LoopTest, CancelledIsSeenThroughACopyOfAThreadsafeHandleInTheReadyQueue) {
  bool checked = false;
  Handle in_ready = loop.call_soon_threadsafe([] {});  // the inbox: the loop is not running
  loop.call_soon([&] {
    ASSERT_EQ(loop.stats().ready, 1u);  // drained by the poll, behind this callback
    Handle copy = in_ready;
    EXPECT_FALSE(in_ready.cancelled());
    EXPECT_TRUE(copy.cancel());
    EXPECT_TRUE(in_ready.cancelled());
    checked = true;
  });
  loop.run_once();
  EXPECT_TRUE(checked);
  EXPECT_EQ(loop.stats().ready, 0u);
}

TEST_F(LoopTest, CancelOfAThreadsafeHandleAfterItRanReturnsFalse) {
  int runs = 0;
  Handle h = loop.call_soon_threadsafe([&runs] { ++runs; });
  for (int i = 0; i < 3 && runs == 0; ++i)
    loop.run_once();
  ASSERT_EQ(runs, 1);
  EXPECT_FALSE(h.cancelled());
  EXPECT_FALSE(h.cancel());
}

TEST_F(LoopTest, CancelAfterCloseReturnsFalse) {
  Handle soon = loop.call_soon([] {});
  TimerHandle timer = loop.call_later(1.0, [] {});
  loop.close();
  EXPECT_FALSE(soon.cancel());
  EXPECT_FALSE(timer.cancel());
}

TEST_F(LoopTest, CancelInsideTheCallbackItselfReturnsFalse) {
  Handle self;
  bool result = true;
  self = loop.call_soon([&] { result = self.cancel(); });
  TimerHandle timer_self;
  bool timer_result = true;
  timer_self = loop.call_later(1.0, [&] { timer_result = timer_self.cancel(); });
  loop.run_once();
  loop.run_once();
  EXPECT_FALSE(result);
  EXPECT_FALSE(timer_result);
}

TEST_F(LoopTest, CancellingManyTimersKeepsTheRestInOrder) {
  // Enough cancellations to make the heap compact itself.
  std::vector<TimerHandle> handles;
  std::vector<int> fired;
  for (int i = 0; i < 1000; ++i) {
    handles.push_back(loop.call_later(1.0 + i * 0.001, [&fired, i] { fired.push_back(i); }));
  }
  for (int i = 0; i < 1000; ++i) {
    if (i % 7 != 0) {
      EXPECT_TRUE(handles[i].cancel());
    }
  }
  EXPECT_EQ(loop.stats().timers, 143u);
  loop.call_later(10.0, [&] { loop.stop(); });
  loop.run_forever();
  ASSERT_EQ(fired.size(), 143u);
  for (std::size_t k = 0; k < fired.size(); ++k)
    EXPECT_EQ(fired[k], static_cast<int>(k * 7));
}

TEST_F(LoopTest, TimersCancelledInsideACallbackLeaveTheRestFiringInOrder) {
  // Cancels made inside a pass are compacted at the start of the next pass
  // (asyncio's _run_once); timers added in between, and the survivors, keep
  // (deadline, scheduling) order.
  std::vector<int> fired;
  std::vector<TimerHandle> handles;
  loop.call_soon([&] {
    for (int i = 0; i < 1000; ++i)
      handles.push_back(
          loop.call_later(1.0 + (i % 10) * 0.001, [&fired, i] { fired.push_back(i); }));
    for (int i = 0; i < 1000; ++i) {
      if (i % 7 != 0) {
        EXPECT_TRUE(handles[static_cast<std::size_t>(i)].cancel());
      }
    }
    EXPECT_EQ(loop.stats().timers, 143u + 1u);  // and the stop timer
    // Added after the cancels, before any compaction: last among equal deadlines.
    loop.call_later(1.0, [&fired] { fired.push_back(-1); });
  });
  loop.call_later(10.0, [&] { loop.stop(); });
  loop.run_forever();
  std::vector<int> expected;
  for (int group = 0; group < 10; ++group) {
    for (int i = group; i < 1000; i += 10) {
      if (i % 7 == 0) expected.push_back(i);
    }
    if (group == 0) expected.push_back(-1);
  }
  EXPECT_EQ(fired, expected);
  // A cancelled handle still says so, and cancelling it again is a no-op.
  EXPECT_TRUE(handles[1].cancelled());
  EXPECT_FALSE(handles[1].cancel());
}

TEST_F(LoopTest, CancellingEveryTimerInsideACallbackLeavesNoneScheduledAndNoneFiring) {
  int fired = 0;
  std::vector<TimerHandle> handles;
  loop.call_soon([&] {
    for (int i = 0; i < 500; ++i)
      handles.push_back(loop.call_later(0.5 + i * 0.001, [&fired] { ++fired; }));
    for (TimerHandle& h : handles)
      EXPECT_TRUE(h.cancel());
    loop.call_soon([&] { loop.stop(); });
  });
  loop.run_forever();
  EXPECT_EQ(loop.stats().timers, 0u);
  for (TimerHandle& h : handles)
    EXPECT_TRUE(h.cancelled());
  // The slots are reused; old handles do not reach the new timers.
  bool new_fired = false;
  TimerHandle fresh = loop.call_later(0.1, [&] { new_fired = true; });
  EXPECT_FALSE(handles[0].cancel());
  EXPECT_FALSE(fresh.cancelled());
  loop.call_later(1.0, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_TRUE(new_fired);
  EXPECT_EQ(fired, 0);
}

TEST_F(LoopTest, TimerChurnInsideAPassLeavesADueTimerOfThatPassToRun) {
  // Timer `due` is handed to the ready queue behind the callback `churn`,
  // which adds and cancels timers until the slab is full and add() compacts
  // it mid-pass. The due timer's slot is not in the heap then: it must
  // survive, and run after churn in the same pass.
  std::vector<std::string> order;
  loop.call_soon([&] {
    loop.call_soon([&] {
      for (int i = 0; i < 1000; ++i)
        loop.call_later(5.0, [&order] { order.push_back("cancelled timer"); }).cancel();
      order.push_back("churn");
    });
    loop.call_later(0.0, [&order] { order.push_back("due"); });
  });
  loop.run_once();  // queues churn, schedules due
  const std::uint64_t before = loop.stats().iterations;
  loop.run_once();  // churn, then due (timers join behind what is queued)
  EXPECT_EQ(loop.stats().iterations, before + 1);
  EXPECT_EQ(order, (std::vector<std::string>{"churn", "due"}));
  EXPECT_EQ(loop.stats().timers, 0u);
}

// Threadsafe batches join the ready queue as one block of 32-byte entries
// (copied, or relocated one by one when a callable needs it); the block may
// wrap around the ring's end. Many rounds, each shifting the ring's tail by
// a few 16-byte call_soon entries, put the wrap at every position. Order,
// cancellation (in the inbox and once drained) and destruction must hold.
TEST_F(LoopTest, ThreadsafeBatchesKeepOrderAndCancellationWhereverTheyWrapTheReadyQueue) {
  std::vector<int> order;
  // Entries of every size (16, 24 and 32 bytes) are mixed in one batch.
  struct Slot {
    std::vector<int>* order;
    int value;
  };
  std::vector<Slot> slots;
  for (int i = 0; i < 200; ++i)
    slots.push_back({&order, i});
  std::uint64_t expected_runs = 0;
  for (int round = 0; round < 90; ++round) {
    order.clear();
    std::vector<int> expected;
    // Odd rounds: a callback queued during a pass is still in the ready
    // queue when the batch is drained; the batch goes in behind it.
    const bool queue_busy = round % 2 == 1;
    if (queue_busy) {
      loop.call_soon([this, &order] { loop.call_soon([&order] { order.push_back(-100); }); });
      loop.run_once();
      expected.push_back(-100);
    }
    for (int k = 0; k < round % 3 + 1; ++k) {
      loop.call_soon([&order, k] { order.push_back(-1 - k); });
      expected.push_back(-1 - k);
    }
    std::vector<Handle> handles;
    // The last callback before the batch cancels some of it, once the poll
    // has moved it into the ready queue.
    loop.call_soon([&handles, round] {
      for (int i = 3; i < 200; i += 11) {
        const bool cancelled_before = i % 7 == 0;
        EXPECT_EQ(handles[static_cast<std::size_t>(i)].cancel(), !cancelled_before)  // in ready_
            << "round " << round << ", entry " << i;
      }
    });
    // Round 0 mod 3: callables copied as bytes; 1: all relocated (Counted);
    // 2: mixed, so that the batch is relocated entry by entry.
    for (int i = 0; i < 200; ++i) {
      const bool counted = round % 3 == 1 || (round % 3 == 2 && i % 2 == 0);
      if (counted) {
        Counted c;
        handles.push_back(loop.call_soon_threadsafe([&order, i, c] { order.push_back(i); }));
      } else if (i % 3 == 0) {  // one word of captures: a 16-byte entry
        handles.push_back(loop.call_soon_threadsafe(
            [s = &slots[static_cast<std::size_t>(i)]] { s->order->push_back(s->value); }));
      } else if (i % 3 == 1) {  // two words: 24 bytes
        handles.push_back(loop.call_soon_threadsafe([&order, i] { order.push_back(i); }));
      } else {  // three words: 32 bytes
        const int* base = &i;
        handles.push_back(loop.call_soon_threadsafe(
            [&order, i, base] { order.push_back(base != nullptr ? i : -100); }));
      }
    }
    for (int i = 0; i < 200; i += 7)
      EXPECT_TRUE(handles[static_cast<std::size_t>(i)].cancel());  // in the inbox
    for (int i = 0; i < 200; ++i) {
      if (i % 7 != 0 && (i < 3 || (i - 3) % 11 != 0)) expected.push_back(i);
    }
    loop.run_once();  // the poll drains the inbox behind the call_soon entries; then all run
    ASSERT_EQ(order, expected) << "round " << round;
    for (int i = 0; i < 200; ++i) {
      EXPECT_EQ(handles[static_cast<std::size_t>(i)].cancelled(),
                i % 7 == 0 || (i >= 3 && (i - 3) % 11 == 0));
    }
    EXPECT_EQ(Counted::alive(), 0) << "round " << round;
    // Besides `expected`: the canceller, and the callback that queued -100.
    expected_runs += expected.size() + 1 + (queue_busy ? 1 : 0);
    EXPECT_EQ(loop.stats().callbacks_run, expected_runs) << "round " << round;
    EXPECT_EQ(loop.stats().ready, 0u);
  }
}

// ------------------------------------------------------------------ asyncio's own scenarios

TEST_F(LoopTest, CancelAfterTheRunStillMarksTheHandleCancelled) {
  // test_events.py HandleTests.test_handle: asyncio's Handle.cancel() sets
  // _cancelled whether or not the callback has run, and cancelled() says so.
  Handle soon = loop.call_soon([] {});
  TimerHandle timer = loop.call_later(1.0, [] {});
  loop.run_once();
  loop.run_once();
  EXPECT_FALSE(soon.cancelled());
  EXPECT_FALSE(timer.cancelled());
  soon.cancel();
  timer.cancel();
  EXPECT_TRUE(soon.cancelled());
  EXPECT_TRUE(timer.cancelled());
}

TEST_F(LoopTest, ATimerCancelledByAnEarlierTimerOfTheSameDeadlineDoesNotRun) {
  // test_base_events.py BaseEventLoopTests.test__run_once (a cancelled
  // TimerHandle is dropped, not run, even once it is due).
  std::vector<std::string> order;
  TimerHandle second;
  loop.call_later(1.0, [&] {
    order.push_back("first");
    second.cancel();
  });
  second = loop.call_later(1.0, [&] { order.push_back("second"); });
  loop.call_later(2.0, [&] { order.push_back("third"); });
  loop.run_once();
  loop.run_once();
  EXPECT_EQ(order, (std::vector<std::string>{"first", "third"}));
  EXPECT_TRUE(second.cancelled());
}

}  // namespace
}  // namespace eddy
