// Tests for eddy/locks.hpp: Lock, Event, Condition, Semaphore,
// BoundedSemaphore, Barrier and the Acquired guard — FIFO wake-ups, no
// barging, cancellation of waiters before and after they are woken, the
// errors, and object lifetimes on every path. Time runs on the fixture's
// VirtualClock; `run_briefly` runs one pass of the loop (asyncio's
// test_utils.run_briefly); `run` is run_until_complete with a time limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <eddy/errors.hpp>
#include <eddy/future.hpp>
#include <eddy/locks.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>
#include <eddy/wait_for.hpp>

#include "future_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::FutureTest;
using eddy::testing::what_of;

class LocksTest : public FutureTest {
 protected:
  /// One pass of the loop: the callbacks ready now (each woken task steps once).
  void run_briefly(int passes = 1) {
    for (int i = 0; i < passes; ++i)
      loop.run_once();
  }
  /// A T that lives as long as the fixture: the loop closes (in TearDown)
  /// while it exists, as <eddy/locks.hpp> requires, even if a test fails
  /// with tasks still waiting on it.
  template <class T, class... Args>
  T& keep(Args&&... args) {
    auto object = std::make_shared<T>(std::forward<Args>(args)...);
    kept_.push_back(object);
    return *object;
  }
  /// A pending future that the loop never completes (a task awaiting it
  /// waits until cancelled).
  Future<void> forever() { return loop.create_future<void>(); }

 private:
  std::vector<std::shared_ptr<void>> kept_;
};

using LockTest = LocksTest;
using EventTest = LocksTest;
using ConditionTest = LocksTest;
using SemaphoreTest = LocksTest;
using BarrierTest = LocksTest;
using AcquiredTest = LocksTest;

// ================================================================ Lock

TEST_F(LockTest, AcquiringAFreeLockTakesItWithoutSuspending) {
  Lock& lock = keep<Lock>();
  std::vector<std::string> order;
  auto body = [&]() -> Task<> {
    loop.call_soon([&] { order.push_back("callback"); });
    co_await lock.acquire();
    order.push_back("acquired");
  };
  run(body());
  EXPECT_EQ(order, (std::vector<std::string>{"acquired", "callback"}));
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, ReleaseOfAnUnlockedLockThrowsRuntimeError) {
  Lock& lock = keep<Lock>();
  try {
    lock.release();
    FAIL() << "expected RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_STREQ(e.what(), "eddy::Lock::release: the lock is not acquired");
  }
}

TEST_F(LockTest, ReleaseHandsTheLockToTheFirstWaiter) {
  Lock& lock = keep<Lock>();
  std::vector<int> order;
  auto waiter = [&](int id) -> Task<> {
    co_await lock.acquire();
    order.push_back(id);
  };
  run(lock.acquire());
  std::vector<Future<void>> tasks;
  for (int id = 1; id <= 3; ++id)
    tasks.push_back(loop.create_task(waiter(id)));
  run_briefly();
  EXPECT_TRUE(order.empty());

  for (int expected = 1; expected <= 3; ++expected) {
    lock.release();
    EXPECT_TRUE(lock.locked()) << "handed over, not unlocked";
    run_briefly();
    EXPECT_EQ(order.back(), expected);
    EXPECT_TRUE(tasks[static_cast<std::size_t>(expected - 1)].done());
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, AnAcquireDuringAHandOffQueuesBehindTheWaiters) {
  // No barging: C starts after the release but before the woken B runs.
  Lock& lock = keep<Lock>();
  std::vector<std::string> order;
  bool c_found_it_locked = false;
  auto b = [&]() -> Task<> {
    co_await lock.acquire();
    order.push_back("B");
    lock.release();
  };
  auto c = [&]() -> Task<> {
    c_found_it_locked = lock.locked();
    co_await lock.acquire();
    order.push_back("C");
    lock.release();
  };
  run(lock.acquire());
  Future<void> tb = loop.create_task(b());
  run_briefly();                            // B waits
  Future<void> tc = loop.create_task(c());  // C's first step is queued first...
  lock.release();                           // ...then B's wake-up
  run(tc);
  EXPECT_TRUE(c_found_it_locked);
  EXPECT_EQ(order, (std::vector<std::string>{"B", "C"}));
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, ACancelledWaiterLeavesTheQueue) {
  Lock& lock = keep<Lock>();
  run(lock.acquire());
  Future<void> waiting = loop.create_task(lock.acquire());
  run_briefly();
  waiting.cancel();
  EXPECT_THROW(run(waiting), CancelledError);
  lock.release();
  EXPECT_FALSE(lock.locked()) << "nobody is left to hand it to";
}

TEST_F(LockTest, AWaiterCancelledAfterBeingHandedTheLockPassesItToTheNextWaiter) {
  Lock& lock = keep<Lock>();
  bool c_acquired = false;
  auto c = [&]() -> Task<> {
    co_await lock.acquire();
    c_acquired = true;
  };
  run(lock.acquire());
  Future<void> tb = loop.create_task(lock.acquire());
  Future<void> tc = loop.create_task(c());
  run_briefly();    // both wait
  lock.release();   // handed to B...
  tb.cancel("go");  // ...which is cancelled before it runs
  EXPECT_THROW(run(tb), CancelledError);
  run(tc);
  EXPECT_TRUE(c_acquired);
  EXPECT_TRUE(lock.locked());
}

TEST_F(LockTest, AWaiterCancelledAfterBeingHandedTheLockUnlocksItWhenNobodyElseWaits) {
  Lock& lock = keep<Lock>();
  run(lock.acquire());
  Future<void> tb = loop.create_task(lock.acquire());
  run_briefly();
  lock.release();
  EXPECT_TRUE(lock.locked());
  tb.cancel();
  EXPECT_THROW(run(tb), CancelledError);
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, ACancelRaceLeavesTheLockToTheNextLiveWaiter) {
  // asyncio's test_cancel_race: A holds the lock; B and C wait. In one
  // callback B is cancelled and A releases: C, not B, gets the lock.
  Lock& lock = keep<Lock>();
  std::vector<std::string> order;
  Future<void> fa = forever();
  auto lockit = [&](std::string name, Future<void> blocker) -> Task<> {
    auto held = co_await lock.acquire_scoped();
    order.push_back(name);
    if (blocker.valid()) co_await blocker;
  };
  Future<void> ta = loop.create_task(lockit("A", fa));
  run_briefly();
  Future<void> tb = loop.create_task(lockit("B", {}));
  Future<void> tc = loop.create_task(lockit("C", {}));
  run_briefly();
  loop.call_soon([&] {
    tb.cancel();
    fa.set_result();
  });
  run(tc);
  EXPECT_TRUE(ta.done());
  EXPECT_TRUE(tb.cancelled());
  EXPECT_EQ(order, (std::vector<std::string>{"A", "C"}));
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, WaitForOnAcquireTimesOutAndLeavesTheLockConsistent) {
  Lock& lock = keep<Lock>();
  run(lock.acquire());
  EXPECT_THROW(run(wait_for(lock.acquire(), 1.0)), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, AcquireFromTasksOfTwoLoopsAtOnceThrowsRuntimeError) {
  Lock& lock = keep<Lock>();
  run(lock.acquire());
  Future<void> waiting = loop.create_task(lock.acquire());
  run_briefly();
  {
    Loop other{LoopOptions().use_clock(clock).debug(false)};
    try {
      other.run_until_complete(lock.acquire());
      FAIL() << "expected RuntimeError";
    } catch (const RuntimeError& e) {
      EXPECT_STREQ(e.what(), "eddy::Lock: bound to another loop");
    }
    other.close();
  }
  lock.release();
  run(waiting);
  EXPECT_TRUE(lock.locked());
}

TEST_F(LockTest, ClosingTheLoopDestroysWaitersOnceAndPassesTheLockAlong) {
  Lock& lock = keep<Lock>();
  auto holder = [&](Counted) -> Task<> {
    auto held = co_await lock.acquire_scoped();
    co_await sleep(10.0);
  };
  auto waiter = [&](Counted) -> Task<> {
    auto held = co_await lock.acquire_scoped();
    Counted inside;
    co_await sleep(10.0);
  };
  loop.create_task(holder(Counted{}));
  loop.create_task(waiter(Counted{}));
  loop.create_task(waiter(Counted{}));
  run_briefly();
  EXPECT_EQ(Counted::alive(), 3);
  loop.close();  // the holder's guard hands the lock on; each waiter gives it back
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, ClosingTheLoopWhileAWokenWaiterHasNotRunUnlocksTheLock) {
  Lock& lock = keep<Lock>();
  run(lock.acquire());
  Future<void> woken = loop.create_task(lock.acquire());
  run_briefly();
  lock.release();  // handed to `woken`, which never runs
  loop.close();
  EXPECT_TRUE(woken.cancelled());
  EXPECT_FALSE(lock.locked());
}

// ================================================================ Event

TEST_F(EventTest, WaitOnASetEventReturnsWithoutSuspending) {
  Event& event = keep<Event>();
  event.set();
  std::vector<std::string> order;
  auto body = [&]() -> Task<> {
    loop.call_soon([&] { order.push_back("callback"); });
    co_await event.wait();
    order.push_back("returned");
  };
  run(body());
  EXPECT_EQ(order, (std::vector<std::string>{"returned", "callback"}));
}

TEST_F(EventTest, SetWakesEveryWaiterInTheOrderTheyBeganToWait) {
  // asyncio's test_wait: 3 starts after the set, finds it set, runs first.
  Event& event = keep<Event>();
  std::vector<int> order;
  auto waiter = [&](int id) -> Task<> {
    co_await event.wait();
    order.push_back(id);
  };
  Future<void> t1 = loop.create_task(waiter(1));
  Future<void> t2 = loop.create_task(waiter(2));
  run_briefly();
  EXPECT_TRUE(order.empty());
  Future<void> t3 = loop.create_task(waiter(3));
  event.set();
  run_briefly();
  EXPECT_EQ(order, (std::vector<int>{3, 1, 2}));
  EXPECT_TRUE(t1.done() && t2.done() && t3.done());
}

TEST_F(EventTest, WaitersWokenBySetReturnEvenIfClearedBeforeTheyRun) {
  Event& event = keep<Event>();
  std::vector<int> order;
  auto waiter = [&](int id) -> Task<> {
    co_await event.wait();
    order.push_back(id);
  };
  Future<void> t1 = loop.create_task(waiter(1));
  run_briefly();
  event.set();
  event.clear();
  EXPECT_FALSE(event.is_set());
  event.set();  // a second set wakes nobody twice
  event.set();
  run(t1);
  EXPECT_EQ(order, (std::vector<int>{1}));
}

TEST_F(EventTest, ClearMakesLaterWaitsWaitAgain) {
  Event& event = keep<Event>();
  EXPECT_FALSE(event.is_set());
  event.set();
  EXPECT_TRUE(event.is_set());
  event.clear();
  EXPECT_FALSE(event.is_set());
  Future<void> t = loop.create_task(event.wait());
  run_briefly(3);
  EXPECT_FALSE(t.done());
  loop.call_later(2.0, [&] { event.set(); });
  run(t);
  EXPECT_DOUBLE_EQ(loop.time(), 2.0);
}

TEST_F(EventTest, ACancelledWaiterThrowsCancelledErrorAndTheOthersStillWake) {
  Event& event = keep<Event>();
  Future<void> before = loop.create_task(event.wait());
  Future<void> after = loop.create_task(event.wait());
  Future<void> other = loop.create_task(event.wait());
  run_briefly();
  before.cancel();  // while waiting
  run_briefly();
  event.set();
  after.cancel();  // woken, not yet run
  EXPECT_THROW(run(before), CancelledError);
  EXPECT_THROW(run(after), CancelledError);
  run(other);
  EXPECT_TRUE(other.done() && !other.cancelled());
}

// ================================================================ Condition

TEST_F(ConditionTest, WaitWithoutTheLockThrowsRuntimeErrorWithoutSuspending) {
  Condition& cond = keep<Condition>();
  try {
    run(cond.wait());
    FAIL() << "expected RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_STREQ(e.what(), "eddy::Condition::wait: the lock is not acquired");
  }
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, NotifyWithoutTheLockThrowsRuntimeError) {
  Condition& cond = keep<Condition>();
  EXPECT_THROW(cond.notify(), RuntimeError);
  EXPECT_THROW(cond.notify_all(), RuntimeError);
  try {
    cond.notify_all();
  } catch (const RuntimeError& e) {
    EXPECT_STREQ(e.what(), "eddy::Condition::notify_all: the lock is not acquired");
  }
}

TEST_F(ConditionTest, WaitReleasesTheLockAndReacquiresItBeforeReturning) {
  // asyncio's test_wait: each waiter keeps the lock once it returns.
  Condition& cond = keep<Condition>();
  std::vector<int> order;
  auto waiter = [&](int id) -> Task<> {
    co_await cond.acquire();
    co_await cond.wait();
    EXPECT_TRUE(cond.locked());
    order.push_back(id);
  };
  std::vector<Future<void>> tasks;
  for (int id = 1; id <= 3; ++id)
    tasks.push_back(loop.create_task(waiter(id)));
  run_briefly();
  EXPECT_TRUE(order.empty());
  EXPECT_FALSE(cond.locked()) << "every waiter released it";

  run(cond.acquire());
  cond.notify();
  run_briefly();
  EXPECT_TRUE(order.empty()) << "notified, but the lock is held";
  cond.release();
  run_briefly(2);
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_TRUE(cond.locked()) << "waiter 1 returned holding it";

  cond.notify(2);
  run_briefly();
  EXPECT_EQ(order, (std::vector<int>{1}));
  cond.release();
  run_briefly(2);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  cond.release();
  run_briefly(2);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(cond.locked());
  for (Future<void>& t : tasks)
    EXPECT_TRUE(t.done());
  cond.release();
}

TEST_F(ConditionTest, NotifyWakesTheFirstNWaitersInOrderAndNotifyAllTheRest) {
  Condition& cond = keep<Condition>();
  std::vector<int> order;
  auto waiter = [&](int id) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait();
    order.push_back(id);
  };
  std::vector<Future<void>> tasks;
  for (int id = 1; id <= 5; ++id)
    tasks.push_back(loop.create_task(waiter(id)));
  run_briefly();

  auto notify = [&](std::optional<std::size_t> n) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    if (n) {
      cond.notify(*n);
    } else {
      cond.notify_all();
    }
  };
  run(notify(1));
  run_briefly(3);
  EXPECT_EQ(order, (std::vector<int>{1}));
  run(notify(2));
  run_briefly(3);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  run(notify(std::nullopt));
  run_briefly(3);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, NotifyWithNobodyWaitingDoesNothing) {
  Condition& cond = keep<Condition>();
  run(cond.acquire());
  cond.notify(3);
  cond.notify_all();
  cond.release();
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, WaitForReturnsThePredicatesValueOnceItIsTrue) {
  Condition& cond = keep<Condition>();
  int ready = 0;
  int checks = 0;
  auto consumer = [&]() -> Task<int> {
    auto held = co_await cond.acquire_scoped();
    int value = co_await cond.wait_for([&] {
      ++checks;
      EXPECT_TRUE(cond.locked());
      return ready;
    });
    co_return value;
  };
  auto produce = [&](int value) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    ready = value;
    cond.notify();
  };
  Future<int> t = loop.create_task(consumer());
  run_briefly();
  run(produce(0));  // notified, predicate still false
  run_briefly(2);
  EXPECT_FALSE(t.done());
  run(produce(7));
  EXPECT_EQ(run(t), 7);
  EXPECT_EQ(checks, 3);
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, WaitForWithATruePredicateReturnsAtOnceWithoutTheLock) {
  Condition& cond = keep<Condition>();
  auto ready = [] { return std::optional<int>(3); };
  EXPECT_EQ(run(cond.wait_for(ready)), std::optional<int>(3));
  EXPECT_THROW(run(cond.wait_for([] { return false; })), RuntimeError);
}

TEST_F(ConditionTest, ACancelledWaitReacquiresTheLockBeforeThrowing) {
  Condition& cond = keep<Condition>();
  double caught_at = -1;
  bool held_when_caught = false;
  auto waiter = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    try {
      co_await cond.wait();
    } catch (const CancelledError&) {
      caught_at = loop.time();
      held_when_caught = cond.locked();
      throw;
    }
  };
  auto holder = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await sleep(5.0);
  };
  Future<void> w = loop.create_task(waiter());
  run_briefly();  // waits, lock released
  Future<void> h = loop.create_task(holder());
  run_briefly();  // holds the lock until t=5
  loop.call_later(1.0, [&] { w.cancel(); });
  EXPECT_THROW(run(w), CancelledError);
  EXPECT_DOUBLE_EQ(caught_at, 5.0) << "the CancelledError waits for the lock";
  EXPECT_TRUE(held_when_caught);
  EXPECT_TRUE(h.done());
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, ACancelDuringTheReacquireIsRethrownOnceTheLockIsHeld) {
  Condition& cond = keep<Condition>();
  int cancels_seen = 0;
  auto waiter = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    try {
      co_await cond.wait();
    } catch (const CancelledError& e) {
      ++cancels_seen;
      EXPECT_EQ(e.message(), "second");  // the last one wins
      EXPECT_TRUE(cond.locked());
      throw;
    }
  };
  Future<void> w = loop.create_task(waiter());
  run_briefly();
  run(cond.acquire());
  w.cancel("first");  // leaves the wait; now waits for the lock
  run_briefly();
  w.cancel("second");  // during the re-acquire
  run_briefly();
  EXPECT_FALSE(w.done());
  cond.release();
  EXPECT_THROW(run(w), CancelledError);
  EXPECT_EQ(cancels_seen, 1);
  EXPECT_FALSE(cond.locked());
}

/// Takes `cond`'s lock and waits on it inside timeout(0.1); `outcome` says
/// how the wait ended.
Task<> wait_in_timeout(Condition& cond, std::string& outcome) {
  auto held = co_await cond.acquire_scoped();
  try {
    co_await timeout(0.1, [&](Timeout&) -> Task<> { co_await cond.wait(); });
    outcome = "returned";
  } catch (const TimeoutError&) {
    outcome = "TimeoutError";
  } catch (const CancelledError& e) {
    outcome = "CancelledError " + e.message() + (cond.locked() ? " (lock held)" : " (lock free)");
    throw;
  }
}

TEST_F(ConditionTest, ADeadlinePassingDuringTheReacquireDoesNotHideTheTasksOwnCancel) {
  // The task's own cancel() ends the wait; while it waits for the lock, an
  // enclosing timeout falls due. The cancel decides (rule 2 of task.hpp's
  // "Cancellation", as asyncio's counting does): CancelledError, not
  // TimeoutError, and the task ends cancelled instead of going on.
  Condition& cond = keep<Condition>();
  std::string outcome = "none";
  Future<void> w = loop.create_task(wait_in_timeout(cond, outcome));
  run_briefly();
  run(cond.acquire());
  w.cancel("stop");  // leaves the wait; now waits for the lock
  run_briefly();
  clock->advance(std::chrono::milliseconds(200));  // the deadline passes meanwhile
  run_briefly();
  EXPECT_FALSE(w.done());
  cond.release();
  EXPECT_THROW(run(w), CancelledError);
  EXPECT_EQ(outcome, "CancelledError stop (lock held)");
  EXPECT_TRUE(w.cancelled());
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, ATasksOwnCancelDuringTheReacquireWinsOverADeadlineBeforeIt) {
  // The other order: the deadline ends the wait, the task's cancel() comes
  // while it waits for the lock. The cancel decides here too.
  Condition& cond = keep<Condition>();
  std::string outcome = "none";
  Future<void> w = loop.create_task(wait_in_timeout(cond, outcome));
  run_briefly();
  run(cond.acquire());
  clock->advance(std::chrono::milliseconds(200));
  run_briefly();  // the deadline ended the wait: now it waits for the lock
  w.cancel("stop");
  run_briefly();
  cond.release();
  EXPECT_THROW(run(w), CancelledError);
  EXPECT_EQ(outcome, "CancelledError stop (lock held)");
}

TEST_F(ConditionTest, ANotifiedWaiterCancelledBeforeItRunsPassesTheNotificationOn) {
  Condition& cond = keep<Condition>();
  std::vector<int> returned;
  auto waiter = [&](int id) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait();
    returned.push_back(id);
  };
  Future<void> w1 = loop.create_task(waiter(1));
  Future<void> w2 = loop.create_task(waiter(2));
  Future<void> w3 = loop.create_task(waiter(3));
  run_briefly();
  run(cond.acquire());
  cond.notify(1);
  w1.cancel();  // notified, not yet run
  cond.release();
  EXPECT_THROW(run(w1), CancelledError);
  run(w2);
  run_briefly(3);
  EXPECT_EQ(returned, (std::vector<int>{2}));
  EXPECT_FALSE(w3.done()) << "one notify, one waiter woken";
  w3.cancel();
  EXPECT_THROW(run(w3), CancelledError);
}

TEST_F(ConditionTest, AWaiterCancelledWhileReacquiringAfterANotifyPassesTheNotificationOn) {
  Condition& cond = keep<Condition>();
  std::vector<int> returned;
  auto waiter = [&](int id) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait();
    returned.push_back(id);
  };
  Future<void> w1 = loop.create_task(waiter(1));
  Future<void> w2 = loop.create_task(waiter(2));
  run_briefly();
  run(cond.acquire());
  cond.notify(1);
  run_briefly();  // w1 left the wait and waits for the lock
  w1.cancel();
  run_briefly();
  cond.release();
  EXPECT_THROW(run(w1), CancelledError);
  run(w2);
  EXPECT_EQ(returned, (std::vector<int>{2}));
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, ConditionsMayShareALock) {
  Lock& lock = keep<Lock>();
  Condition& a = keep<Condition>(lock);
  Condition& b = keep<Condition>(lock);
  std::vector<std::string> order;
  auto waiter = [&](Condition& cond, std::string name) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait();
    order.push_back(name);
  };
  Future<void> wa = loop.create_task(waiter(a, "a"));
  Future<void> wb = loop.create_task(waiter(b, "b"));
  run_briefly();
  run(lock.acquire());
  EXPECT_TRUE(a.locked() && b.locked());
  b.notify();  // holding the shared lock counts for both
  lock.release();
  run(wb);
  EXPECT_EQ(order, (std::vector<std::string>{"b"}));
  EXPECT_FALSE(wa.done());
  run(a.acquire());
  a.notify();
  a.release();
  run(wa);
  EXPECT_EQ(order, (std::vector<std::string>{"b", "a"}));
}

// ================================================================ Semaphore

TEST_F(SemaphoreTest, ANegativeInitialValueThrowsInvalidArgument) {
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(BoundedSemaphore(-1), std::invalid_argument);
  try {
    Semaphore s(-2);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "eddy::Semaphore: the initial value must be >= 0, not -2");
  }
  Semaphore zero(0);
  EXPECT_TRUE(zero.locked());
}

TEST_F(SemaphoreTest, AReleaseBeyondINT64MaxThrowsOverflowErrorAndKeepsTheCount) {
  Semaphore sem(INT64_MAX);
  EXPECT_THROW(sem.release(), std::overflow_error);
  EXPECT_FALSE(sem.locked());  // still INT64_MAX units: no wrap to negative
  auto take = [](Semaphore& s) -> Task<bool> {
    co_await s.acquire();  // a unit is there: no wait
    co_return s.locked();
  };
  EXPECT_FALSE(loop.run_until_complete(take(sem)));
  sem.release();  // back to INT64_MAX: allowed
}

TEST_F(SemaphoreTest, AcquireTakesUnitsWithoutSuspendingUntilNoneIsLeft) {
  Semaphore& sem = keep<Semaphore>(2);
  EXPECT_FALSE(sem.locked());
  std::vector<std::string> order;
  auto body = [&]() -> Task<> {
    loop.call_soon([&] { order.push_back("callback"); });
    co_await sem.acquire();
    co_await sem.acquire();
    order.push_back("two units");
  };
  run(body());
  EXPECT_EQ(order, (std::vector<std::string>{"two units", "callback"}));
  EXPECT_TRUE(sem.locked());
  Future<void> third = loop.create_task(sem.acquire());
  run_briefly(3);
  EXPECT_FALSE(third.done());
  sem.release();
  run(third);
  EXPECT_TRUE(sem.locked());
}

TEST_F(SemaphoreTest, ReleaseGivesUnitsToWaitersInTheOrderTheyCame) {
  Semaphore& sem = keep<Semaphore>(2);
  std::vector<std::pair<int, double>> started;
  auto worker = [&](int id) -> Task<> {
    auto permit = co_await sem.acquire_scoped();
    started.emplace_back(id, loop.time());
    co_await sleep(1.0);
  };
  std::vector<Future<void>> tasks;
  for (int id = 0; id < 6; ++id)
    tasks.push_back(loop.create_task(worker(id)));
  run(tasks.back());
  EXPECT_EQ(started, (std::vector<std::pair<int, double>>{
                         {0, 0.0}, {1, 0.0}, {2, 1.0}, {3, 1.0}, {4, 2.0}, {5, 2.0}}));
  EXPECT_FALSE(sem.locked());
}

TEST_F(SemaphoreTest, AnAcquireWhileTasksWaitQueuesBehindThem) {
  // No barging: C starts after the release but before the woken B runs.
  Semaphore& sem = keep<Semaphore>(1);
  std::vector<std::string> order;
  bool c_found_it_locked = false;
  auto b = [&]() -> Task<> {
    co_await sem.acquire();
    order.push_back("B");
    sem.release();
  };
  auto c = [&]() -> Task<> {
    c_found_it_locked = sem.locked();
    co_await sem.acquire();
    order.push_back("C");
    sem.release();
  };
  run(sem.acquire());
  Future<void> tb = loop.create_task(b());
  run_briefly();
  Future<void> tc = loop.create_task(c());
  sem.release();
  run(tc);
  EXPECT_TRUE(c_found_it_locked);
  EXPECT_EQ(order, (std::vector<std::string>{"B", "C"}));
  EXPECT_FALSE(sem.locked());
}

TEST_F(SemaphoreTest, ATaskArrivingWhileAWokenWaiterHasNotRunQueuesAndThatWaiterWakesIt) {
  // asyncio 3.12: a free unit is not taken past a woken waiter that has not
  // run; that waiter, when it runs, wakes the one queued behind it.
  Semaphore& sem = keep<Semaphore>(0);
  std::vector<std::string> order;
  bool c_suspended = false;
  auto b = [&]() -> Task<> {
    co_await sem.acquire();
    order.push_back("B");
  };
  auto c = [&]() -> Task<> {
    loop.call_soon([&] { c_suspended = true; });  // runs first only if C waits
    co_await sem.acquire();
    order.push_back(c_suspended ? "C after waiting" : "C at once");
  };
  Future<void> tb = loop.create_task(b());
  run_briefly();
  Future<void> tc = loop.create_task(c());
  sem.release();  // B is given the unit
  sem.release();  // a free unit, but B has not run
  EXPECT_TRUE(sem.locked());
  run(tc);
  EXPECT_EQ(order, (std::vector<std::string>{"B", "C after waiting"}));
  EXPECT_TRUE(sem.locked());
}

TEST_F(SemaphoreTest, ACancelledWaiterLeavesTheQueue) {
  Semaphore& sem = keep<Semaphore>(0);
  Future<void> cancelled = loop.create_task(sem.acquire());
  Future<void> next = loop.create_task(sem.acquire());
  run_briefly();
  cancelled.cancel();
  EXPECT_THROW(run(cancelled), CancelledError);
  sem.release();
  run(next);
  EXPECT_TRUE(sem.locked());
  sem.release();
  EXPECT_FALSE(sem.locked()) << "the unit was not lost to the cancelled waiter";
}

TEST_F(SemaphoreTest, AWaiterCancelledAfterBeingGivenAUnitGivesItToTheNextWaiter) {
  Semaphore& sem = keep<Semaphore>(0);
  std::vector<int> acquired;
  auto waiter = [&](int id) -> Task<> {
    co_await sem.acquire();
    acquired.push_back(id);
  };
  std::vector<Future<void>> tasks;
  for (int id = 1; id <= 4; ++id)
    tasks.push_back(loop.create_task(waiter(id)));
  run_briefly();
  sem.release();
  sem.release();  // units for 1 and 2...
  tasks[0].cancel();
  tasks[1].cancel();  // ...both cancelled before they run: 3 and 4 get them
  run_briefly(3);
  EXPECT_TRUE(tasks[0].cancelled());
  EXPECT_TRUE(tasks[1].cancelled());
  EXPECT_EQ(acquired, (std::vector<int>{3, 4}));
  EXPECT_TRUE(sem.locked());
  sem.release();
  EXPECT_FALSE(sem.locked());
}

TEST_F(SemaphoreTest, BoundedSemaphoreReleaseBeyondTheInitialValueThrowsInvalidArgument) {
  BoundedSemaphore& sem = keep<BoundedSemaphore>(2);
  EXPECT_THROW(sem.release(), std::invalid_argument);
  run(sem.acquire());
  run(sem.acquire());
  sem.release();
  sem.release();
  try {
    sem.release();
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "eddy::BoundedSemaphore::release: released more times than acquired");
  }
  Semaphore& as_base = sem;  // the bound holds through the base class too
  EXPECT_THROW(as_base.release(), std::invalid_argument);

  Semaphore unbounded(1);
  unbounded.release();  // a plain Semaphore may grow
  run(unbounded.acquire());
  run(unbounded.acquire());
  EXPECT_TRUE(unbounded.locked());
}

TEST_F(SemaphoreTest, BoundedSemaphoreCountsAUnitHandedToAWaiterAsTaken) {
  BoundedSemaphore& sem = keep<BoundedSemaphore>(1);
  run(sem.acquire());
  Future<void> waiter = loop.create_task(sem.acquire());
  run_briefly();
  sem.release();  // handed to the waiter, not freed
  EXPECT_TRUE(sem.locked());
  run(waiter);
  sem.release();  // the waiter's release
  EXPECT_FALSE(sem.locked());
  EXPECT_THROW(sem.release(), std::invalid_argument);
}

TEST_F(SemaphoreTest, ClosingTheLoopDestroysWaitersOnceAndGivesTheirUnitsBack) {
  Semaphore& sem = keep<Semaphore>(1);
  auto worker = [&](Counted) -> Task<> {
    auto permit = co_await sem.acquire_scoped();
    co_await sleep(10.0);
  };
  for (int i = 0; i < 3; ++i)
    loop.create_task(worker(Counted{}));
  run_briefly();
  EXPECT_EQ(Counted::alive(), 3);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_FALSE(sem.locked());
}

// ================================================================ Barrier

TEST_F(BarrierTest, ZeroPartiesThrowsInvalidArgument) {
  EXPECT_THROW(Barrier(0), std::invalid_argument);
  Barrier one(1);
  EXPECT_EQ(run(one.wait()), 0u);
  EXPECT_EQ(run(one.wait()), 0u);
}

TEST_F(BarrierTest, WaitReturnsArrivalIndicesOnceTheLastPartyArrives) {
  Barrier& barrier = keep<Barrier>(3);
  EXPECT_EQ(barrier.parties(), 3u);
  std::vector<std::pair<std::size_t, double>> returned;
  auto party = [&](double arrive_at) -> Task<std::size_t> {
    co_await sleep(arrive_at);
    std::size_t index = co_await barrier.wait();
    returned.emplace_back(index, loop.time());
    co_return index;
  };
  Future<std::size_t> late = loop.create_task(party(2.0));
  Future<std::size_t> early = loop.create_task(party(0.5));
  Future<std::size_t> middle = loop.create_task(party(1.0));
  loop.call_later(1.5, [&] { EXPECT_EQ(barrier.n_waiting(), 2u); });
  run(late);
  run_briefly();
  EXPECT_EQ(early.result(), 0u);
  EXPECT_EQ(middle.result(), 1u);
  EXPECT_EQ(late.result(), 2u);
  // The last to arrive returns at once; the others are woken in arrival order.
  EXPECT_EQ(returned, (std::vector<std::pair<std::size_t, double>>{{2, 2.0}, {0, 2.0}, {1, 2.0}}));
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_FALSE(barrier.broken());
}

TEST_F(BarrierTest, TheBarrierServesRoundAfterRound) {
  Barrier& barrier = keep<Barrier>(2);
  std::vector<std::size_t> indices;
  auto party = [&](int rounds) -> Task<> {
    for (int i = 0; i < rounds; ++i)
      indices.push_back(co_await barrier.wait());
  };
  Future<void> a = loop.create_task(party(3));
  Future<void> b = loop.create_task(party(3));
  run(b);
  run(a);
  ASSERT_EQ(indices.size(), 6u);
  for (std::size_t round = 0; round < 3; ++round) {
    std::vector<std::size_t> pair{indices[2 * round], indices[2 * round + 1]};
    std::sort(pair.begin(), pair.end());
    EXPECT_EQ(pair, (std::vector<std::size_t>{0, 1})) << "round " << round;
  }
}

TEST_F(BarrierTest, AbortMakesWaitersAndLaterCallsThrowBrokenBarrierError) {
  Barrier& barrier = keep<Barrier>(3);
  Future<std::size_t> w1 = loop.create_task(barrier.wait());
  Future<std::size_t> w2 = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 2u);
  barrier.abort();
  EXPECT_TRUE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_THROW(run(w1), BrokenBarrierError);
  EXPECT_THROW(run(w2), BrokenBarrierError);
  try {
    run(barrier.wait());
    FAIL() << "expected BrokenBarrierError";
  } catch (const BrokenBarrierError& e) {
    EXPECT_STREQ(e.what(), "eddy::Barrier::wait: the barrier is broken");
  }
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
  Future<std::size_t> a = loop.create_task(barrier.wait());
  Future<std::size_t> b = loop.create_task(barrier.wait());
  Future<std::size_t> c = loop.create_task(barrier.wait());
  run(c);
  run_briefly();
  EXPECT_EQ(a.result() + b.result() + c.result(), 3u);
}

TEST_F(BarrierTest, ResetWhileTasksWaitMakesThemThrowAndTheBarrierFillsAgain) {
  Barrier& barrier = keep<Barrier>(2);
  Future<std::size_t> w = loop.create_task(barrier.wait());
  run_briefly();
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
  try {
    run(w);
    FAIL() << "expected BrokenBarrierError";
  } catch (const BrokenBarrierError& e) {
    EXPECT_STREQ(e.what(), "eddy::Barrier::wait: the barrier was aborted or reset");
  }
  Future<std::size_t> a = loop.create_task(barrier.wait());
  Future<std::size_t> b = loop.create_task(barrier.wait());
  EXPECT_EQ(run(b), 1u);
  EXPECT_EQ(run(a), 0u);
}

TEST_F(BarrierTest, ResetOfAnEmptyBarrierLeavesItFilling) {
  Barrier& barrier = keep<Barrier>(2);
  barrier.reset();
  Future<std::size_t> a = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 1u);
  Future<std::size_t> b = loop.create_task(barrier.wait());
  EXPECT_EQ(run(b), 1u);
  EXPECT_EQ(run(a), 0u);
}

TEST_F(BarrierTest, ACancelledWaiterLeavesItsRound) {
  Barrier& barrier = keep<Barrier>(2);
  Future<std::size_t> cancelled = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 1u);
  cancelled.cancel();
  EXPECT_THROW(run(cancelled), CancelledError);
  EXPECT_EQ(barrier.n_waiting(), 0u);
  Future<std::size_t> a = loop.create_task(barrier.wait());
  Future<std::size_t> b = loop.create_task(barrier.wait());
  EXPECT_EQ(run(b), 1u);
  EXPECT_EQ(run(a), 0u);
}

TEST_F(BarrierTest, AWaiterWokenByTheLastArrivalButCancelledBeforeItRunsThrowsCancelledError) {
  Barrier& barrier = keep<Barrier>(3);
  Future<std::size_t> w0 = loop.create_task(barrier.wait());
  Future<std::size_t> w1 = loop.create_task(barrier.wait());
  run_briefly();
  Future<std::size_t> last = loop.create_task(barrier.wait());
  run_briefly();  // the last arrives and returns; w0 and w1 are woken
  EXPECT_EQ(last.result(), 2u);
  w0.cancel();
  EXPECT_THROW(run(w0), CancelledError);
  EXPECT_EQ(run(w1), 1u);
  // The round ended: the next one fills from index 0.
  Future<std::size_t> next = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 1u);
  barrier.abort();
  EXPECT_THROW(run(next), BrokenBarrierError);
}

TEST_F(BarrierTest, APartyArrivingWhileARoundLeavesJoinsTheNextRound) {
  Barrier& barrier = keep<Barrier>(2);
  Future<std::size_t> a = loop.create_task(barrier.wait());
  run_briefly();
  Future<std::size_t> b = loop.create_task(barrier.wait());  // completes the round
  Future<std::size_t> c = loop.create_task(barrier.wait());  // arrives while `a` has not left
  run_briefly();
  EXPECT_EQ(b.result(), 1u);
  EXPECT_EQ(barrier.n_waiting(), 0u) << "draining";
  run_briefly(2);
  EXPECT_EQ(a.result(), 0u);
  EXPECT_FALSE(c.done());
  EXPECT_EQ(barrier.n_waiting(), 1u) << "c is the next round's first party";
  Future<std::size_t> d = loop.create_task(barrier.wait());
  EXPECT_EQ(run(d), 1u);
  EXPECT_EQ(run(c), 0u);
}

TEST_F(BarrierTest, BrokenBarrierErrorIsAnEddyError) {
  static_assert(std::is_base_of_v<Error, BrokenBarrierError>);
  EXPECT_EQ(what_of(std::make_exception_ptr(BrokenBarrierError("x"))), "x");
}

TEST_F(BarrierTest, ClosingTheLoopDestroysWaitersOnce) {
  Barrier& barrier = keep<Barrier>(3);
  auto party = [&](Counted) -> Task<> { co_await barrier.wait(); };
  loop.create_task(party(Counted{}));
  loop.create_task(party(Counted{}));
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 2u);
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(barrier.n_waiting(), 0u);
}

// ================================================================ Acquired

TEST_F(AcquiredTest, AGuardReleasesAtTheEndOfItsScope) {
  Lock& lock = keep<Lock>();
  Semaphore& sem = keep<Semaphore>(1);
  Condition& cond = keep<Condition>();
  auto body = [&]() -> Task<> {
    {
      Acquired<Lock> held = co_await lock.acquire_scoped();
      Acquired<Semaphore> permit = co_await sem.acquire_scoped();
      Acquired<Condition> cond_held = co_await cond.acquire_scoped();
      EXPECT_TRUE(held.owns() && permit.owns() && cond_held.owns());
      EXPECT_TRUE(lock.locked() && sem.locked() && cond.locked());
    }
    EXPECT_FALSE(lock.locked() || sem.locked() || cond.locked());
  };
  run(body());
}

TEST_F(AcquiredTest, AGuardReleasesWhenItsScopeThrows) {
  Lock& lock = keep<Lock>();
  auto body = [&]() -> Task<> {
    auto held = co_await lock.acquire_scoped();
    throw std::runtime_error("failed while holding the lock");
  };
  EXPECT_THROW(run(body()), std::runtime_error);
  EXPECT_FALSE(lock.locked());
}

TEST_F(AcquiredTest, AGuardReleasesWhenItsTaskIsCancelled) {
  Semaphore& sem = keep<Semaphore>(1);
  Condition& cond = keep<Condition>();
  auto body = [&](Counted) -> Task<> {
    auto permit = co_await sem.acquire_scoped();
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait();  // cancelled here: re-acquires, then unwinds
  };
  Future<void> t = loop.create_task(body(Counted{}));
  run_briefly();
  EXPECT_TRUE(sem.locked());
  loop.call_later(1.0, [&] { t.cancel(); });
  EXPECT_THROW(run(t), CancelledError);
  EXPECT_FALSE(sem.locked());
  EXPECT_FALSE(cond.locked());
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(AcquiredTest, AGuardReleasesOnceWhenMovedOrReleasedEarly) {
  Lock& lock = keep<Lock>();
  Semaphore& sem = keep<Semaphore>(2);
  auto body = [&]() -> Task<> {
    Acquired<Lock> first = co_await lock.acquire_scoped();
    Acquired<Lock> second = std::move(first);
    EXPECT_FALSE(first.owns());
    EXPECT_TRUE(second.owns());
    second.release();
    EXPECT_FALSE(lock.locked());
    EXPECT_FALSE(static_cast<bool>(second));
    EXPECT_THROW(second.release(), RuntimeError);

    Acquired<Semaphore> a = co_await sem.acquire_scoped();
    Acquired<Semaphore> b = co_await sem.acquire_scoped();
    EXPECT_TRUE(sem.locked());
    a = std::move(b);  // releases a's unit, takes b's
    EXPECT_FALSE(sem.locked());
  };
  run(body());
  EXPECT_FALSE(lock.locked());
  EXPECT_FALSE(sem.locked());
  // Both units are back: a bounded check would have thrown on a double release.
}

TEST_F(AcquiredTest, AGuardThatCannotReleaseReportsToTheExceptionHandler) {
  Lock& lock = keep<Lock>();
  std::vector<ExceptionContext> reports;
  loop.set_exception_handler(
      [&](Loop&, const ExceptionContext& context) { reports.push_back(context); });
  auto body = [&]() -> Task<> {
    auto held = co_await lock.acquire_scoped();
    lock.release();  // a misuse: the guard's release will fail
  };
  run(body());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].message,
            "eddy::Acquired: the guard's destructor could not release what it held");
  EXPECT_EQ(what_of(reports[0].exception), "eddy::Lock::release: the lock is not acquired");
}

TEST_F(AcquiredTest, ClosingTheLoopWhileGuardedTasksWaitInConditionWaitIsClean) {
  // Destroyed inside wait(), these tasks do not hold the lock their guards
  // name: the guards' failed releases are dropped, nothing terminates.
  Condition& cond = keep<Condition>();
  auto waiter = [&](Counted) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait();
  };
  auto holder = [&](Counted) -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await sleep(10.0);
  };
  loop.create_task(waiter(Counted{}));
  loop.create_task(waiter(Counted{}));
  run_briefly();
  loop.create_task(holder(Counted{}));
  run_briefly();
  EXPECT_TRUE(cond.locked());
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_FALSE(cond.locked());
}

TEST_F(AcquiredTest, AScopedAcquireRunByRunUntilCompleteGivesTheGuardToTheCaller) {
  Lock& lock = keep<Lock>();
  {
    Acquired<Lock> held = run(lock.acquire_scoped());
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
}

// ================================================================ asyncio's own scenarios
// Each test below follows a test of CPython 3.12's
// Lib/test/test_asyncio/test_locks.py (named in its first comment line).

// ---------------------------------------------------------------- Lock

TEST_F(LockTest, ACancelAndAReleaseInOneCallbackLetOnlyOneWaiterTakeTheLock) {
  // test_cancel_release_race (bpo-32734).
  Lock& lock = keep<Lock>();
  int calls = 0;
  int acquired = 0;
  auto lockit = [&]() -> Task<> {
    ++calls;
    co_await lock.acquire();
    ++acquired;
  };
  run(lock.acquire());
  Future<void> t1 = loop.create_task(lockit());
  Future<void> t2 = loop.create_task(lockit());
  Future<void> t3 = loop.create_task(lockit());
  run_briefly();
  loop.call_soon([&] {
    t1.cancel();
    lock.release();
  });
  EXPECT_THROW(run(t1), CancelledError);
  EXPECT_EQ(acquired, 1);
  EXPECT_EQ(calls, 3);
  EXPECT_TRUE(t1.cancelled());
  EXPECT_TRUE(t2.done());
  EXPECT_FALSE(t3.done());
  t3.cancel();
  EXPECT_THROW(run(t3), CancelledError);
  EXPECT_TRUE(lock.locked()) << "t2 holds it";
}

TEST_F(LockTest, AWaiterCancelledBeforeAReleaseDoesNotHoldUpALaterAcquire) {
  // test_finished_waiter_cancelled.
  Lock& lock = keep<Lock>();
  Future<void> ta = loop.create_task(lock.acquire());
  run_briefly();
  EXPECT_TRUE(lock.locked());
  Future<void> tb = loop.create_task(lock.acquire());
  run_briefly();
  Future<void> tc = loop.create_task(lock.acquire());
  tb.cancel();
  lock.release();
  run_briefly();
  EXPECT_TRUE(lock.locked());
  EXPECT_TRUE(ta.done());
  EXPECT_TRUE(tb.cancelled());
  run(tc);
  EXPECT_TRUE(tc.done() && !tc.cancelled());
}

TEST_F(LockTest, ReleasesServeWaitersInFifoOrderAndALateComerQueuesLast) {
  // test_acquire: c1, c2 wait; after the first release c3 comes and queues last.
  Lock& lock = keep<Lock>();
  std::vector<int> result;
  auto c = [&](int id) -> Task<> {
    co_await lock.acquire();
    result.push_back(id);
  };
  run(lock.acquire());
  Future<void> t1 = loop.create_task(c(1));
  Future<void> t2 = loop.create_task(c(2));
  run_briefly();
  EXPECT_TRUE(result.empty());
  lock.release();
  run_briefly();
  EXPECT_EQ(result, (std::vector<int>{1}));
  run_briefly();
  EXPECT_EQ(result, (std::vector<int>{1}));
  Future<void> t3 = loop.create_task(c(3));
  lock.release();
  run_briefly();
  EXPECT_EQ(result, (std::vector<int>{1, 2}));
  lock.release();
  run_briefly();
  EXPECT_EQ(result, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(t1.done() && t2.done() && t3.done());
  lock.release();
}

// ---------------------------------------------------------------- Semaphore

TEST_F(SemaphoreTest, ATaskThatReleasesAndAcquiresAgainQueuesBehindTheWokenWaiters) {
  // test_acquire_fifo_order_2.
  Semaphore& sem = keep<Semaphore>(1);
  std::vector<int> result;
  auto c1 = [&]() -> Task<> {
    co_await sem.acquire();
    result.push_back(1);
  };
  auto c2 = [&]() -> Task<> {
    co_await sem.acquire();
    result.push_back(2);
    sem.release();
    co_await sem.acquire();
    result.push_back(4);
  };
  auto c3 = [&]() -> Task<> {
    co_await sem.acquire();
    result.push_back(3);
  };
  Future<void> t1 = loop.create_task(c1());
  Future<void> t2 = loop.create_task(c2());
  Future<void> t3 = loop.create_task(c3());
  run_briefly();
  sem.release();
  sem.release();
  run(t1);
  run(t2);
  run(t3);
  EXPECT_EQ(result, (std::vector<int>{1, 2, 3, 4}));
}

TEST_F(SemaphoreTest, AWaiterCancelledWhileWaitingIsSkippedByLaterReleases) {
  // test_acquire_fifo_order_3.
  Semaphore& sem = keep<Semaphore>(0);
  std::vector<int> result;
  auto c = [&](int id) -> Task<> {
    co_await sem.acquire();
    result.push_back(id);
  };
  Future<void> t1 = loop.create_task(c(1));
  Future<void> t2 = loop.create_task(c(2));
  Future<void> t3 = loop.create_task(c(3));
  run_briefly();
  t1.cancel();
  run_briefly();
  sem.release();
  sem.release();
  EXPECT_THROW(run(t1), CancelledError);
  run(t2);
  run(t3);
  EXPECT_EQ(result, (std::vector<int>{2, 3}));
}

TEST_F(SemaphoreTest, AWokenWaiterWakesTheTasksQueuedBehindItAsFarAsUnitsAllow) {
  // test_acquire_fifo_order_4: c2 releases three units while c1 (woken by
  // the first) has not run; c2 and c3 queue behind it, and c1 wakes both.
  Semaphore& sem = keep<Semaphore>(0);
  std::vector<int> result;
  std::optional<Future<void>> t4;
  auto c4 = [&]() -> Task<> {
    result.push_back(4);
    co_return;
  };
  auto c1 = [&]() -> Task<> {
    co_await sem.acquire();
    EXPECT_TRUE(sem.locked()) << "every unit was handed on";
    t4 = loop.create_task(c4());  // runs after c3, not before c2
    result.push_back(1);
  };
  auto c2 = [&]() -> Task<> {
    sem.release();
    sem.release();
    sem.release();
    EXPECT_TRUE(sem.locked()) << "c1 was woken and has not run";
    co_await sem.acquire();
    result.push_back(2);
  };
  auto c3 = [&]() -> Task<> {
    co_await sem.acquire();
    EXPECT_TRUE(sem.locked());
    result.push_back(3);
  };
  Future<void> t1 = loop.create_task(c1());
  Future<void> t2 = loop.create_task(c2());
  Future<void> t3 = loop.create_task(c3());
  run(t1);
  run(t2);
  run(t3);
  ASSERT_TRUE(t4.has_value());
  run(*t4);
  EXPECT_EQ(result, (std::vector<int>{1, 2, 3, 4}));
}

TEST_F(SemaphoreTest, AHolderThatCancelsTheWaiterItWokeLeavesTheUnitFree) {
  // test_acquire_no_hang.
  Semaphore& sem = keep<Semaphore>(1);
  Future<void> t2;
  bool c2_entered = false;
  auto c1 = [&]() -> Task<> {
    {
      auto held = co_await sem.acquire_scoped();
      co_await sleep(0);
    }
    t2.cancel();
  };
  auto c2 = [&]() -> Task<> {
    auto held = co_await sem.acquire_scoped();
    c2_entered = true;
  };
  Future<void> t1 = loop.create_task(c1());
  t2 = loop.create_task(c2());
  run(t1);
  EXPECT_THROW(run(t2), CancelledError);
  EXPECT_FALSE(c2_entered);
  EXPECT_FALSE(sem.locked());
  run(wait_for(sem.acquire(), 1.0));
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

TEST_F(SemaphoreTest, WaitersCancelledBeforeAReleaseDoNotTakeItsUnit) {
  // test_acquire_cancel_before_awoken.
  Semaphore& sem = keep<Semaphore>(0);
  Future<void> t1 = loop.create_task(sem.acquire());
  Future<void> t2 = loop.create_task(sem.acquire());
  Future<void> t3 = loop.create_task(sem.acquire());
  Future<void> t4 = loop.create_task(sem.acquire());
  run_briefly();
  t1.cancel();
  t2.cancel();
  sem.release();
  run_briefly(2);
  EXPECT_TRUE(t3.done());
  EXPECT_FALSE(t4.done());
  EXPECT_TRUE(t1.cancelled() && t2.cancelled());
  t4.cancel();
  EXPECT_THROW(run(t4), CancelledError);
}

TEST_F(SemaphoreTest, AReleaseAfterTheFirstWaiterIsCancelledGoesToTheSecond) {
  // test_acquire_hang.
  Semaphore& sem = keep<Semaphore>(0);
  Future<void> t1 = loop.create_task(sem.acquire());
  Future<void> t2 = loop.create_task(sem.acquire());
  run_briefly();
  t1.cancel();
  sem.release();
  run_briefly(2);
  EXPECT_TRUE(sem.locked());
  EXPECT_TRUE(t2.done() && !t2.cancelled());
}

// ---------------------------------------------------------------- Condition

TEST_F(ConditionTest, AWaitCancelledBeforeItStartsLeavesTheLockWithItsHolder) {
  // test_wait_cancel.
  Condition& cond = keep<Condition>();
  run(cond.acquire());
  Future<void> wait = loop.create_task(cond.wait());
  loop.call_soon([&] { wait.cancel(); });
  EXPECT_THROW(run(wait), CancelledError);
  EXPECT_TRUE(cond.locked());
  cond.release();
}

TEST_F(ConditionTest, ANotifiedWaitCancelledWhileTheLockIsContestedEndsHoldingTheLock) {
  // test_wait_cancel_contested.
  Condition& cond = keep<Condition>();
  run(cond.acquire());
  Future<void> wait = loop.create_task(cond.wait());
  run_briefly();
  EXPECT_FALSE(cond.locked());
  run(cond.acquire());
  EXPECT_TRUE(cond.locked());
  cond.notify();
  loop.call_soon([&] { wait.cancel(); });
  loop.call_soon([&] { cond.release(); });
  try {
    run(wait);
  } catch (const CancelledError&) {
  }
  EXPECT_TRUE(wait.done());
  EXPECT_TRUE(cond.locked()) << "wait() re-acquired the lock before it ended";
  cond.release();
}

TEST_F(ConditionTest, WaitForTimingOutOnWaitLeavesTheLockHeld) {
  // test_timeout_in_block.
  Condition& cond = keep<Condition>();
  bool timed_out = false;
  auto body = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    try {
      co_await wait_for(cond.wait(), 0.5);
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(cond.locked());
  };
  run(body());
  EXPECT_TRUE(timed_out);
  EXPECT_DOUBLE_EQ(loop.time(), 0.5);
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, ACancelWhileWaitingComesOutOfWaitForWithItsMessage) {
  // test_cancelled_error_wakeup.
  Condition& cond = keep<Condition>();
  bool wake = false;
  auto func = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait_for([&] { return wake; });
  };
  Future<void> task = loop.create_task(func());
  run_briefly();
  task.cancel("foo");
  try {
    run(task);
    FAIL() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "foo");
  }
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, ACancelWhileReacquiringComesOutOfWaitForWithItsMessage) {
  // test_cancelled_error_re_aquire.
  Condition& cond = keep<Condition>();
  bool wake = false;
  auto func = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    co_await cond.wait_for([&] { return wake; });
  };
  Future<void> task = loop.create_task(func());
  run_briefly();
  run(cond.acquire());
  wake = true;
  cond.notify();
  run_briefly();  // the task left the wait and waits for the lock
  task.cancel("foo");
  run_briefly();
  cond.release();
  try {
    run(task);
    FAIL() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "foo");
  }
  EXPECT_FALSE(cond.locked());
}

TEST_F(ConditionTest, ANotifyRacingACancelOfTheNotifiedConsumerIsNotLost) {
  // test_cancelled_wakeup: one item, one notify, the notified consumer is
  // cancelled before it runs; the other consumer takes the item.
  Condition& cond = keep<Condition>();
  int state = 0;
  auto consumer = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    for (;;) {
      co_await cond.wait_for([&] { return state != 0; });
      if (state < 0) co_return;
      --state;
    }
  };
  Future<void> c0 = loop.create_task(consumer());
  Future<void> c1 = loop.create_task(consumer());
  run_briefly();
  auto producer = [&]() -> Task<> {
    auto held = co_await cond.acquire_scoped();
    ++state;
    cond.notify(1);
    c0.cancel();
    try {
      co_await wait_for(cond.wait_for([&] { return state == 0; }), 0.01);
    } catch (const TimeoutError&) {
    }
    EXPECT_EQ(state, 0) << "the notification was lost";
    state = -1;
    cond.notify_all();
  };
  run(producer());
  run(c1);
  EXPECT_THROW(run(c0), CancelledError);
  EXPECT_FALSE(cond.locked());
}

// ---------------------------------------------------------------- Barrier

TEST_F(BarrierTest, AResetWhileARoundDrainsBreaksThePartiesThatHaveNotLeft) {
  // test_reset_barrier_when_tasks_half_draining (N = 5).
  constexpr int kParties = 5;
  Barrier& barrier = keep<Barrier>(kParties);
  int broken = 0;
  int left = 0;
  auto coro = [&]() -> Task<> {
    bool was_broken = false;
    try {
      co_await barrier.wait();
    } catch (const BrokenBarrierError&) {
      was_broken = true;
    }
    if (was_broken) {
      ++broken;
    } else if (kParties - ++left == kParties / 2) {
      barrier.reset();  // half of the round has not left yet
    }
  };
  std::vector<Future<void>> tasks;
  for (int i = 0; i < kParties; ++i)
    tasks.push_back(loop.create_task(coro()));
  for (Future<void>& t : tasks)
    run(t);
  EXPECT_EQ(broken, kParties / 2);
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_FALSE(barrier.broken());
}

TEST_F(BarrierTest, APartyThatAbortsAfterARoundBreaksItForEveryoneElse) {
  // test_abort_barrier_when_exception (N = 5).
  constexpr std::size_t kParties = 5;
  Barrier& barrier = keep<Barrier>(kParties);
  int passed_twice = 0;
  int broken = 0;
  auto coro = [&]() -> Task<> {
    bool failed = false;
    try {
      std::size_t index = co_await barrier.wait();
      if (index == kParties / 2) throw std::logic_error("party failed");
      co_await barrier.wait();
      ++passed_twice;
    } catch (const BrokenBarrierError&) {
      ++broken;
    } catch (const std::logic_error&) {
      failed = true;
    }
    if (failed) barrier.abort();
  };
  std::vector<Future<void>> tasks;
  for (std::size_t i = 0; i < kParties; ++i)
    tasks.push_back(loop.create_task(coro()));
  for (Future<void>& t : tasks)
    run(t);
  EXPECT_TRUE(barrier.broken());
  EXPECT_EQ(passed_twice, 0);
  EXPECT_EQ(broken, static_cast<int>(kParties) - 1);
}

TEST_F(BarrierTest, PartiesBrokenByAResetWaitAgainAndFillTheNextRound) {
  // test_reset_barrier_while_tasks_waiting_and_waiting_again (N = 5).
  constexpr int kParties = 5;
  Barrier& barrier = keep<Barrier>(kParties);
  int broken = 0;
  int passed = 0;
  auto coro1 = [&]() -> Task<> {
    try {
      co_await barrier.wait();
    } catch (const BrokenBarrierError&) {
      ++broken;
    }
    co_await barrier.wait();
    ++passed;
  };
  auto coro2 = [&]() -> Task<> {
    co_await barrier.wait();
    ++passed;
  };
  std::vector<Future<void>> tasks;
  for (int i = 0; i < kParties - 1; ++i)
    tasks.push_back(loop.create_task(coro1()));
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), static_cast<std::size_t>(kParties - 1));
  barrier.reset();
  run_briefly();
  tasks.push_back(loop.create_task(coro2()));
  for (Future<void>& t : tasks)
    run(t);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(broken, kParties - 1);
  EXPECT_EQ(passed, kParties);
  EXPECT_EQ(barrier.n_waiting(), 0u);
}

TEST_F(BarrierTest, TasksThatWaitAgainWhileTheRoundDrainsJoinTheNextRound) {
  // test_blocking_tasks_while_draining (N = 5, rewait = 2).
  constexpr int kParties = 5;
  constexpr int kRewait = 2;
  Barrier& barrier = keep<Barrier>(kParties);
  Barrier& others = keep<Barrier>(kParties - kRewait);
  int rewait = kRewait;
  auto coro = [&]() -> Task<> {
    co_await barrier.wait();
    if (rewait > 0) {
      --rewait;
      co_await barrier.wait();
    } else {
      co_await others.wait();
      co_await barrier.wait();
    }
  };
  std::vector<Future<void>> tasks;
  for (int i = 0; i < kParties; ++i)
    tasks.push_back(loop.create_task(coro()));
  for (Future<void>& t : tasks)
    run(t);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_EQ(others.n_waiting(), 0u);
}

TEST_F(BarrierTest, ACancelledPartyLeavesItsIndexToTheNextArrival) {
  // test_filling_tasks_cancel_one (N = 3), with the indices: asyncio's index
  // is the count of parties in the barrier when one arrives.
  Barrier& barrier = keep<Barrier>(3);
  Future<std::size_t> t1 = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 1u);
  Future<std::size_t> t2 = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 2u);
  t1.cancel();
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 1u);
  EXPECT_THROW(run(t1), CancelledError);
  Future<std::size_t> t3 = loop.create_task(barrier.wait());
  run_briefly();
  EXPECT_EQ(barrier.n_waiting(), 2u);
  Future<std::size_t> t4 = loop.create_task(barrier.wait());
  EXPECT_EQ(run(t4), 2u);
  EXPECT_EQ(run(t2), 1u);
  EXPECT_EQ(run(t3), 1u);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0u);
}

TEST_F(BarrierTest, ABarrierOfOnePartyLetsEveryWaitThroughAtOnce) {
  // test_filling_one_task / test_filling_one_task_twice.
  Barrier& barrier = keep<Barrier>(1);
  std::vector<std::string> order;
  auto body = [&]() -> Task<> {
    loop.call_soon([&] { order.push_back("callback"); });
    EXPECT_EQ(co_await barrier.wait(), 0u);
    EXPECT_EQ(co_await barrier.wait(), 0u);
    order.push_back("through twice");
  };
  run(body());
  EXPECT_EQ(order, (std::vector<std::string>{"through twice", "callback"}));
  EXPECT_EQ(barrier.n_waiting(), 0u);
  EXPECT_FALSE(barrier.broken());
}

// ================================================================ asyncio 3.12 details

TEST_F(LockTest, ASecondReleaseWhileTheLockIsHandedOverThrowsRuntimeError) {
  // Follows test_release_not_acquired, during a hand-off.
  // As in asyncio: its Lock.release() sets _locked = False before it wakes the first waiter
  // (Lock.release/_wake_up_first in Lib/asyncio/locks.py), so a second release() before the woken
  // task runs finds the lock unlocked and raises RuntimeError('Lock is not acquired.').
  Lock& lock = keep<Lock>();
  int holders = 0;
  int most_holders = 0;
  auto holder = [&]() -> Task<> {
    co_await lock.acquire();
    most_holders = std::max(most_holders, ++holders);
    co_await sleep(1.0);
    --holders;
    lock.release();
  };
  run(lock.acquire());
  Future<void> a = loop.create_task(holder());
  Future<void> b = loop.create_task(holder());
  run_briefly();
  lock.release();  // handed to a, which has not run yet
  EXPECT_THROW(lock.release(), RuntimeError);
  run(a);
  run(b);
  EXPECT_EQ(most_holders, 1) << "two tasks held the lock at once";
}

TEST_F(LockTest, ALockThatWaitedOnOneLoopRefusesTheWaitersOfAnother) {
  // Follows test_ambiguous_loops (ConditionTests), with public calls only.
  // As in asyncio, which binds a Lock (Event, Condition, Semaphore, Barrier) to the loop of the
  // first task that waits on it, for good: mixins._LoopBoundMixin._get_loop raises
  // RuntimeError("... is bound to a different event loop") for any later wait from another loop.
  Lock& lock = keep<Lock>();
  run(lock.acquire());
  Future<void> waiting = loop.create_task(lock.acquire());
  run_briefly();
  lock.release();
  run(waiting);  // the lock has had a waiter of `loop`
  EXPECT_TRUE(lock.locked());
  {
    Loop other{LoopOptions().use_clock(clock).debug(false)};
    other.call_later(1.0, [&] { lock.release(); });
    EXPECT_THROW(other.run_until_complete(lock.acquire()), RuntimeError);
    other.close();
  }
  if (lock.locked()) lock.release();
}

}  // namespace
}  // namespace eddy
