// Tests for eddy::Queue, LifoQueue and PriorityQueue (eddy/queue.hpp):
// the order items come out, waiting while full or empty, the order waiters
// are served in, cancellation of waiters (no wake-up is ever lost), the
// nowait variants, task_done/join, Python 3.13's shutdown, and the loop a
// queue is bound to. Time runs on the fixture's VirtualClock.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/detail/block_cache.hpp>
#include <eddy/errors.hpp>
#include <eddy/future.hpp>
#include <eddy/handle.hpp>
#include <eddy/queue.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/wait_for.hpp>

#include "future_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;
using eddy::testing::FutureTest;

class QueueTest : public FutureTest {
 protected:
  /// One pass of the loop (asyncio's test_utils.run_briefly).
  void run_briefly_for_queue() { loop.run_once(); }
};

/// Lets the tasks that are ready run: `n` iterations of the loop.
Task<> yield_iterations(int n = 1) {
  for (int i = 0; i < n; ++i)
    co_await sleep(0);
}

/// Runs `get()` on `queue` and says what happened: the item, or the error.
template <class Q>
Task<std::string> get_or_error(Q& queue) {
  try {
    co_return std::to_string(co_await queue.get());
  } catch (const QueueShutDown&) {
    co_return "QueueShutDown";
  }
}
template <class Q>
Task<std::string> put_or_error(Q& queue, int item) {
  try {
    co_await queue.put(item);
    co_return "put";
  } catch (const QueueShutDown&) {
    co_return "QueueShutDown";
  }
}

// ------------------------------------------------------------ the orders

TEST_F(QueueTest, AQueueGivesItsItemsFirstInFirstOut) {
  Queue<int> queue;
  auto body = [&]() -> Task<std::vector<int>> {
    queue.put_nowait(1);
    co_await queue.put(2);
    queue.put_nowait(3);
    std::vector<int> out;
    out.push_back(co_await queue.get());
    out.push_back(queue.get_nowait());
    out.push_back(co_await queue.get());
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{1, 2, 3}));
}

TEST_F(QueueTest, ALifoQueueGivesTheLastItemPutFirst) {
  LifoQueue<int> queue;
  auto body = [&]() -> Task<std::vector<int>> {
    for (int i : {1, 2, 3})
      co_await queue.put(i);
    std::vector<int> out;
    out.push_back(co_await queue.get());
    queue.put_nowait(4);
    while (!queue.empty())
      out.push_back(co_await queue.get());
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{3, 4, 2, 1}));
}

TEST_F(QueueTest, APriorityQueueGivesTheSmallestItemFirst) {
  PriorityQueue<int> queue;
  auto body = [&]() -> Task<std::vector<int>> {
    for (int i : {5, 1, 4, 2, 3, 1})
      co_await queue.put(i);
    std::vector<int> out;
    while (!queue.empty())
      out.push_back(co_await queue.get());
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{1, 1, 2, 3, 4, 5}));
}

TEST_F(QueueTest, APriorityQueueOrdersItsItemsByItsCompare) {
  struct Job {
    int priority;
    std::string name;
  };
  struct ByPriority {
    bool operator()(const Job& a, const Job& b) const { return a.priority < b.priority; }
  };
  PriorityQueue<Job, ByPriority> jobs;
  jobs.put_nowait({3, "low"});
  jobs.put_nowait({1, "urgent"});
  jobs.put_nowait({2, "normal"});
  EXPECT_EQ(jobs.get_nowait().name, "urgent");
  EXPECT_EQ(jobs.get_nowait().name, "normal");
  EXPECT_EQ(jobs.get_nowait().name, "low");

  PriorityQueue<int, std::greater<int>> largest_first;
  for (int i : {2, 9, 4})
    largest_first.put_nowait(i);
  EXPECT_EQ(largest_first.get_nowait(), 9);
  EXPECT_EQ(largest_first.get_nowait(), 4);
  EXPECT_EQ(largest_first.get_nowait(), 2);
}

struct ByPointee {
  bool operator()(const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) const {
    return *a < *b;
  }
};

// Each item also passes through a waiting put and a waiting get (maxsize 1).
template <class Q>
Task<std::vector<int>> pass_move_only_items(Q& queue) {
  auto late_getter = [&]() -> Task<int> {
    std::unique_ptr<int> p = co_await queue.get();
    co_return *p;
  };
  std::vector<int> out;
  Future<int> waiting_get = create_task(late_getter());
  co_await yield_iterations();  // it waits: the queue is empty
  co_await queue.put(std::make_unique<int>(1));
  out.push_back(co_await waiting_get);
  co_await queue.put(std::make_unique<int>(3));
  auto putter = [&]() -> Task<> { co_await queue.put(std::make_unique<int>(2)); };
  Future<void> waiting_put = create_task(putter());
  co_await yield_iterations();  // it waits: the queue is full
  EXPECT_FALSE(waiting_put.done());
  out.push_back(*co_await queue.get());
  co_await waiting_put;
  out.push_back(*queue.get_nowait());
  co_return out;
}

TEST_F(QueueTest, MoveOnlyItemsPassThroughEveryKindOfQueue) {
  Queue<std::unique_ptr<int>> fifo(1);
  EXPECT_EQ(run(pass_move_only_items(fifo)), (std::vector<int>{1, 3, 2}));
  LifoQueue<std::unique_ptr<int>> lifo(1);
  EXPECT_EQ(run(pass_move_only_items(lifo)), (std::vector<int>{1, 3, 2}));
  PriorityQueue<std::unique_ptr<int>, ByPointee> by_value(1);
  EXPECT_EQ(run(pass_move_only_items(by_value)), (std::vector<int>{1, 3, 2}));

  PriorityQueue<std::unique_ptr<int>, ByPointee> heap;
  for (int i : {3, 1, 2})
    heap.put_nowait(std::make_unique<int>(i));
  EXPECT_EQ(*heap.get_nowait(), 1);
  EXPECT_EQ(*heap.get_nowait(), 2);
  EXPECT_EQ(*heap.get_nowait(), 3);
}

// ------------------------------------------------------ waiting and not

TEST_F(QueueTest, GetWaitsUntilAnItemIsPut) {
  Queue<int> queue;
  auto getter = [&]() -> Task<std::pair<int, double>> {
    int item = co_await queue.get();
    co_return std::pair{item, loop.time()};
  };
  auto body = [&]() -> Task<std::pair<int, double>> {
    Future<std::pair<int, double>> got = create_task(getter());
    co_await sleep(1.5);
    EXPECT_FALSE(got.done());
    queue.put_nowait(7);
    co_return co_await got;
  };
  auto [item, at] = run(body());
  EXPECT_EQ(item, 7);
  EXPECT_DOUBLE_EQ(at, 1.5);
}

TEST_F(QueueTest, PutWaitsWhileTheQueueIsFull) {
  Queue<int> queue(2);
  auto putter = [&]() -> Task<double> {
    co_await queue.put(1);
    co_await queue.put(2);
    co_await queue.put(3);  // waits: full
    co_return loop.time();
  };
  auto body = [&]() -> Task<double> {
    Future<double> put_all = create_task(putter());
    co_await sleep(2);
    EXPECT_FALSE(put_all.done());
    EXPECT_EQ(queue.qsize(), 2u);
    EXPECT_EQ(co_await queue.get(), 1);
    double at = co_await put_all;
    EXPECT_EQ(queue.get_nowait(), 2);
    EXPECT_EQ(queue.get_nowait(), 3);
    co_return at;
  };
  EXPECT_DOUBLE_EQ(run(body()), 2.0);
}

TEST_F(QueueTest, PutGetAndJoinDoNotSuspendWhenTheyNeedNot) {
  Queue<int> queue(1);
  bool loop_iterated = false;  // outlives the coroutine: the callback runs after it
  auto body = [&]() -> Task<bool> {
    loop.call_soon([&] { loop_iterated = true; });
    co_await queue.put(1);            // not full
    int item = co_await queue.get();  // not empty
    co_await queue.put(item + 1);
    EXPECT_EQ(co_await queue.get(), 2);
    queue.task_done();
    queue.task_done();
    co_await queue.join();  // nothing unfinished
    co_return loop_iterated;
  };
  EXPECT_FALSE(run(body()));
}

TEST_F(QueueTest, WaitingGettersAreServedInTheOrderTheyCame) {
  Queue<int> queue;
  std::vector<std::string> served;
  auto getter = [&](std::string name) -> Task<> {
    int item = co_await queue.get();
    served.push_back(name + "=" + std::to_string(item));
  };
  auto body = [&]() -> Task<> {
    std::vector<Future<void>> getters;
    for (const char* name : {"a", "b", "c"})
      getters.push_back(create_task(getter(name)));
    co_await yield_iterations();
    for (int i : {1, 2, 3})
      queue.put_nowait(i);
    for (auto& g : getters)
      co_await g;
  };
  run(body());
  EXPECT_EQ(served, (std::vector<std::string>{"a=1", "b=2", "c=3"}));
}

TEST_F(QueueTest, WaitingPuttersAreServedInTheOrderTheyCame) {
  Queue<int> queue(1);
  auto putter = [&](int item) -> Task<> { co_await queue.put(item); };
  auto body = [&]() -> Task<std::vector<int>> {
    queue.put_nowait(0);
    std::vector<Future<void>> putters;
    for (int i : {1, 2, 3})
      putters.push_back(create_task(putter(i)));
    co_await yield_iterations();
    std::vector<int> out;
    for (int i = 0; i < 4; ++i)
      out.push_back(co_await queue.get());
    for (auto& p : putters)
      co_await p;
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<int>{0, 1, 2, 3}));
}

// ------------------------------------------------------------ cancelling

TEST_F(QueueTest, ACancelledWaitingGetterTakesNoItemAndLeavesTheQueue) {
  Queue<int> queue;
  auto getter = [&]() -> Task<int> { co_return co_await queue.get(); };
  auto body = [&]() -> Task<> {
    Future<int> cancelled = create_task(getter());
    Future<int> second = create_task(getter());
    co_await yield_iterations();
    EXPECT_TRUE(cancelled.cancel());
    co_await yield_iterations();
    EXPECT_TRUE(cancelled.cancelled());
    queue.put_nowait(1);  // goes to the second getter, not to the cancelled one
    EXPECT_EQ(co_await second, 1);
    queue.put_nowait(2);  // nobody waits any more: it stays
    co_await yield_iterations(2);
    EXPECT_EQ(queue.qsize(), 1u);
  };
  run(body());
}

TEST_F(QueueTest, ACancelledWaitingPutterPutsNothingAndItsItemIsDestroyed) {
  // Each item holds a copy of `token`: its use_count() counts the items
  // alive (moved-from ones hold nothing).
  auto token = std::make_shared<int>(0);
  Queue<std::shared_ptr<int>> queue(1);
  auto putter = [&]() -> Task<> { co_await queue.put(token); };
  auto body = [&]() -> Task<> {
    queue.put_nowait(token);
    Future<void> cancelled = create_task(putter());
    Future<void> second = create_task(putter());
    co_await yield_iterations();
    EXPECT_EQ(token.use_count(), 1 + 3);  // one queued, two waiting to be put
    EXPECT_TRUE(cancelled.cancel());
    co_await yield_iterations();
    EXPECT_TRUE(cancelled.cancelled());
    EXPECT_EQ(token.use_count(), 1 + 2);
    (void)queue.get_nowait();  // makes room for the second putter
    co_await second;
    EXPECT_EQ(queue.qsize(), 1u);
    (void)queue.get_nowait();
    EXPECT_EQ(token.use_count(), 1);
  };
  run(body());
}

TEST_F(QueueTest, ItemsAreDestroyedOnceOnEveryPath) {
  {
    Queue<Counted> queue(1);
    auto putter = [&]() -> Task<> { co_await queue.put(Counted()); };
    auto body = [&]() -> Task<> {
      queue.put_nowait(Counted());
      Future<void> cancelled = create_task(putter());  // cancelled while it waits
      Future<void> waiting = create_task(putter());    // served
      co_await yield_iterations();
      cancelled.cancel();
      co_await yield_iterations();
      Counted taken = co_await queue.get();
      co_await waiting;
      queue.shutdown(true);  // drops the last one
    };
    run(body());
    Queue<Counted> leftover;  // destroyed with its items
    leftover.put_nowait(Counted());
    leftover.put_nowait(Counted());
  }
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(QueueTest, AWokenGetterCancelledBeforeItRunsPassesItsWakeUpToTheNextGetter) {
  Queue<int> queue;
  auto getter = [&]() -> Task<int> { co_return co_await queue.get(); };
  auto body = [&]() -> Task<> {
    Future<int> first = create_task(getter());
    Future<int> second = create_task(getter());
    co_await yield_iterations();
    queue.put_nowait(1);            // wakes the first getter...
    EXPECT_TRUE(first.cancel());    // ...which is cancelled before it runs
    EXPECT_EQ(co_await second, 1);  // the item is not lost
    EXPECT_TRUE(first.cancelled());
    EXPECT_TRUE(queue.empty());
  };
  run(body());
}

TEST_F(QueueTest, AWokenPutterCancelledBeforeItRunsPassesItsWakeUpToTheNextPutter) {
  Queue<int> queue(1);
  auto putter = [&](int item) -> Task<> { co_await queue.put(item); };
  auto body = [&]() -> Task<> {
    queue.put_nowait(0);
    Future<void> first = create_task(putter(1));
    Future<void> second = create_task(putter(2));
    co_await yield_iterations();
    EXPECT_EQ(queue.get_nowait(), 0);  // wakes the first putter...
    EXPECT_TRUE(first.cancel());       // ...which is cancelled before it runs
    co_await second;                   // the free slot is not lost
    EXPECT_TRUE(first.cancelled());
    EXPECT_EQ(queue.get_nowait(), 2);
    EXPECT_TRUE(queue.empty());
  };
  run(body());
}

TEST_F(QueueTest, ACancelledGetterThatWasNotWokenWakesNobody) {
  // The first getter is cancelled while it still waits; the put that follows
  // goes to the second, and a third item put later is kept for later.
  Queue<int> queue;
  std::vector<int> got;
  auto getter = [&]() -> Task<> { got.push_back(co_await queue.get()); };
  auto body = [&]() -> Task<> {
    Future<void> first = create_task(getter());
    Future<void> second = create_task(getter());
    co_await yield_iterations();
    first.cancel();
    queue.put_nowait(5);
    co_await second;
    EXPECT_TRUE(first.cancelled());
  };
  run(body());
  EXPECT_EQ(got, (std::vector<int>{5}));
}

// ------------------------------------------------------------- nowait

TEST_F(QueueTest, PutNowaitOnAFullQueueThrowsQueueFull) {
  Queue<int> queue(2);
  queue.put_nowait(1);
  queue.put_nowait(2);
  EXPECT_THROW(queue.put_nowait(3), QueueFull);
  EXPECT_EQ(queue.qsize(), 2u);
  EXPECT_EQ(queue.get_nowait(), 1);
  EXPECT_EQ(queue.get_nowait(), 2);
}

TEST_F(QueueTest, GetNowaitOnAnEmptyQueueThrowsQueueEmpty) {
  Queue<int> queue;
  EXPECT_THROW((void)queue.get_nowait(), QueueEmpty);
  LifoQueue<int> lifo;
  EXPECT_THROW((void)lifo.get_nowait(), QueueEmpty);
  PriorityQueue<int> priority;
  EXPECT_THROW((void)priority.get_nowait(), QueueEmpty);
}

TEST_F(QueueTest, QsizeEmptyFullAndMaxsizeDescribeTheQueue) {
  Queue<int> bounded(2);
  EXPECT_EQ(bounded.maxsize(), 2u);
  EXPECT_TRUE(bounded.empty());
  EXPECT_FALSE(bounded.full());
  bounded.put_nowait(1);
  EXPECT_EQ(bounded.qsize(), 1u);
  EXPECT_FALSE(bounded.empty());
  EXPECT_FALSE(bounded.full());
  bounded.put_nowait(2);
  EXPECT_EQ(bounded.qsize(), 2u);
  EXPECT_TRUE(bounded.full());

  Queue<int> unbounded;  // maxsize 0: never full
  EXPECT_EQ(unbounded.maxsize(), 0u);
  for (int i = 0; i < 1000; ++i)
    unbounded.put_nowait(i);
  EXPECT_EQ(unbounded.qsize(), 1000u);
  EXPECT_FALSE(unbounded.full());
}

// -------------------------------------------------------- task_done, join

TEST_F(QueueTest, JoinWaitsUntilEveryItemPutIsMarkedDone) {
  Queue<int> queue;
  auto worker = [&]() -> Task<> {
    for (;;) {
      (void)co_await queue.get();
      co_await sleep(1);  // work on it
      queue.task_done();
    }
  };
  auto body = [&]() -> Task<double> {
    Future<void> running = create_task(worker());
    for (int i = 0; i < 3; ++i)
      queue.put_nowait(i);
    co_await queue.join();
    double at = loop.time();
    EXPECT_TRUE(queue.empty());
    running.cancel();
    co_return at;
  };
  EXPECT_DOUBLE_EQ(run(body()), 3.0);
}

TEST_F(QueueTest, JoinReleasesEveryJoiner) {
  Queue<int> queue;
  queue.put_nowait(1);
  int released = 0;
  auto joiner = [&]() -> Task<> {
    co_await queue.join();
    ++released;
  };
  auto body = [&]() -> Task<> {
    Future<void> a = create_task(joiner());
    Future<void> b = create_task(joiner());
    co_await sleep(1);
    EXPECT_EQ(released, 0);
    (void)queue.get_nowait();
    queue.task_done();
    co_await a;
    co_await b;
  };
  run(body());
  EXPECT_EQ(released, 2);
}

TEST_F(QueueTest, JoinReturnsOnceAllWasDoneEvenIfMoreIsPutBeforeItResumes) {
  // asyncio's join waits on an Event: once the count of unfinished items
  // reaches zero, the joiners that waited return, even if more items came
  // in before they ran.
  Queue<int> queue;
  queue.put_nowait(1);
  auto joiner = [&]() -> Task<> { co_await queue.join(); };
  auto body = [&]() -> Task<> {
    Future<void> joined = create_task(joiner());
    co_await yield_iterations();
    (void)queue.get_nowait();
    queue.task_done();    // releases the joiner...
    queue.put_nowait(2);  // ...which has not run yet
    co_await sleep(1);
    EXPECT_TRUE(joined.done());
    (void)queue.get_nowait();
    queue.task_done();
    co_await joined;
  };
  run(body());
}

TEST_F(QueueTest, TaskDoneCalledMoreTimesThanItemsWerePutThrowsInvalidArgument) {
  Queue<int> queue;
  EXPECT_THROW(queue.task_done(), std::invalid_argument);
  queue.put_nowait(1);
  queue.put_nowait(2);
  (void)queue.get_nowait();
  (void)queue.get_nowait();
  queue.task_done();
  queue.task_done();
  try {
    queue.task_done();
    ADD_FAILURE() << "task_done did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("too many"), std::string::npos) << e.what();
  }
}

TEST_F(QueueTest, ACancelledJoinThrowsCancelledErrorAndLeavesTheCountAlone) {
  Queue<int> queue;
  queue.put_nowait(1);
  auto joiner = [&]() -> Task<> { co_await queue.join(); };
  auto body = [&]() -> Task<> {
    Future<void> joined = create_task(joiner());
    co_await yield_iterations();
    joined.cancel();
    co_await yield_iterations();
    EXPECT_TRUE(joined.cancelled());
    (void)queue.get_nowait();
    queue.task_done();
    EXPECT_THROW(queue.task_done(), std::invalid_argument);
    co_await queue.join();
  };
  run(body());
}

TEST_F(QueueTest, AQueueOutlivingItsLoopKeepsNoWaiterOfTheTasksTheLoopDestroyed) {
  Queue<int> full(1);  // a putter waits on it, and two joins (one cancelled)
  Queue<int> empty;    // a getter waits on it
  full.put_nowait(1);
  {
    Loop other{LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false)};
    auto put_two = [&]() -> Task<> { co_await full.put(2); };
    auto get_one = [&]() -> Task<int> { co_return co_await empty.get(); };
    auto join = [&]() -> Task<> { co_await full.join(); };
    other.create_task(put_two());
    other.create_task(get_one());
    other.create_task(join());
    Future<void> cancelled_join = other.create_task(join());
    other.call_soon([&] { other.stop(); });
    other.run_forever();  // all four wait
    cancelled_join.cancel();
    other.call_soon([&] { other.stop(); });
    other.run_forever();
    EXPECT_TRUE(cancelled_join.cancelled());
    other.close();  // destroys the three waiting tasks
    // A waiter left behind would be woken on the closed loop: call_soon
    // throws LoopClosedError there, after the queue changed.
    int got = 0;
    EXPECT_NO_THROW(empty.put_nowait(7));
    EXPECT_NO_THROW(got = full.get_nowait());
    EXPECT_EQ(got, 1);
    EXPECT_NO_THROW(full.task_done());
  }
  // The loop is gone too: waking a waiter now would touch freed memory.
  int got = 0;
  EXPECT_NO_THROW(full.put_nowait(3));
  EXPECT_NO_THROW(got = empty.get_nowait());
  EXPECT_EQ(got, 7);
  EXPECT_EQ(full.qsize(), 1u);
}

TEST_F(QueueTest, CancelledJoinsLeaveNothingBehind) {
  // asyncio's join waits on an Event, which forgets a cancelled waiter. A
  // joiner kept until the count reaches zero would hold its future's state:
  // 50k of them, over 5 MB of blocks, where the states of the joins that
  // went are reused. (Under AddressSanitizer blocks come from operator new,
  // and none are mapped either way.)
  Queue<int> queue;
  queue.put_nowait(1);  // never marked done
  auto joins = [&]() -> Task<> {
    for (int i = 0; i < 50'000; ++i) {
      Future<void> joined = create_task(queue.join());
      co_await sleep(0);
      joined.cancel();
      co_await sleep(0);
    }
  };
  run(joins());  // the first rounds may map blocks: measure from here
  const std::size_t mapped = detail::mapped_block_bytes();
  run(joins());
  EXPECT_EQ(detail::mapped_block_bytes(), mapped);
}

// ------------------------------------------------------------- shutdown

TEST_F(QueueTest, AfterShutdownPutsThrowQueueShutDown) {
  Queue<int> queue(1);
  auto body = [&]() -> Task<> {
    queue.shutdown();
    EXPECT_TRUE(queue.is_shut_down());
    EXPECT_THROW(queue.put_nowait(1), QueueShutDown);
    EXPECT_EQ(co_await put_or_error(queue, 1), "QueueShutDown");  // room: throws at once
    EXPECT_TRUE(queue.empty());
  };
  run(body());

  Queue<int> full(1);
  full.put_nowait(1);
  full.shutdown();
  EXPECT_EQ(run(put_or_error(full, 2)), "QueueShutDown");  // full: too
  EXPECT_EQ(full.qsize(), 1u);
}

TEST_F(QueueTest, AfterShutdownGetsDrainTheQueueThenThrowQueueShutDown) {
  Queue<int> queue;
  auto body = [&]() -> Task<std::vector<std::string>> {
    for (int i : {1, 2, 3})
      queue.put_nowait(i);
    queue.shutdown();
    std::vector<std::string> out;
    out.push_back(co_await get_or_error(queue));
    out.push_back(std::to_string(queue.get_nowait()));
    out.push_back(co_await get_or_error(queue));
    out.push_back(co_await get_or_error(queue));
    EXPECT_THROW((void)queue.get_nowait(), QueueShutDown);
    co_return out;
  };
  EXPECT_EQ(run(body()), (std::vector<std::string>{"1", "2", "3", "QueueShutDown"}));
}

TEST_F(QueueTest, ShutdownWakesTheWaitingGettersWhichThrowQueueShutDown) {
  Queue<int> queue;
  auto body = [&]() -> Task<> {
    Future<std::string> a = create_task(get_or_error(queue));
    Future<std::string> b = create_task(get_or_error(queue));
    co_await sleep(1);
    queue.shutdown();
    EXPECT_EQ(co_await a, "QueueShutDown");
    EXPECT_EQ(co_await b, "QueueShutDown");
    EXPECT_DOUBLE_EQ(loop.time(), 1.0);
  };
  run(body());
}

TEST_F(QueueTest, ShutdownWakesTheWaitingPuttersWhichThrowQueueShutDown) {
  Queue<int> queue(1);
  auto body = [&]() -> Task<> {
    queue.put_nowait(0);
    Future<std::string> a = create_task(put_or_error(queue, 1));
    Future<std::string> b = create_task(put_or_error(queue, 2));
    co_await sleep(1);
    queue.shutdown();
    EXPECT_EQ(co_await a, "QueueShutDown");
    EXPECT_EQ(co_await b, "QueueShutDown");
    EXPECT_EQ(queue.qsize(), 1u);  // the item put before stays to be drained
    EXPECT_EQ(queue.get_nowait(), 0);
  };
  run(body());
}

TEST_F(QueueTest, ImmediateShutdownDropsTheItemsCountsThemDoneAndReleasesJoin) {
  Queue<Counted> queue;
  auto joiner = [&]() -> Task<double> {
    co_await queue.join();
    co_return loop.time();
  };
  auto body = [&]() -> Task<> {
    for (int i = 0; i < 3; ++i)
      queue.put_nowait(Counted());
    Future<double> joined = create_task(joiner());
    co_await sleep(1);
    EXPECT_FALSE(joined.done());
    queue.shutdown(true);
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(Counted::alive(), 0);
    EXPECT_DOUBLE_EQ(co_await joined, 1.0);
    EXPECT_THROW((void)queue.get_nowait(), QueueShutDown);
    EXPECT_THROW(queue.task_done(), std::invalid_argument);  // all counted done
  };
  run(body());
}

TEST_F(QueueTest, ImmediateShutdownStillWaitsForItemsTakenButNotDone) {
  Queue<int> queue;
  auto joiner = [&]() -> Task<> { co_await queue.join(); };
  auto body = [&]() -> Task<> {
    queue.put_nowait(1);
    queue.put_nowait(2);
    (void)queue.get_nowait();  // taken, being worked on
    Future<void> joined = create_task(joiner());
    co_await yield_iterations();
    queue.shutdown(true);  // drops 2; 1 is still unfinished
    co_await sleep(1);
    EXPECT_FALSE(joined.done());
    queue.task_done();
    co_await joined;
  };
  run(body());
}

TEST_F(QueueTest, ImmediateShutdownWakesWaitersAndGetsThrowAtOnce) {
  Queue<int> getters_queue;
  Queue<int> putters_queue(1);
  auto body = [&]() -> Task<> {
    Future<std::string> getter = create_task(get_or_error(getters_queue));
    putters_queue.put_nowait(0);
    Future<std::string> putter = create_task(put_or_error(putters_queue, 1));
    co_await yield_iterations();
    getters_queue.shutdown(true);
    putters_queue.shutdown(true);
    EXPECT_EQ(co_await getter, "QueueShutDown");
    EXPECT_EQ(co_await putter, "QueueShutDown");  // room now, but shut down
    EXPECT_TRUE(putters_queue.empty());
    EXPECT_EQ(co_await get_or_error(putters_queue), "QueueShutDown");
  };
  run(body());
}

TEST_F(QueueTest, APutterWokenByAGetButShutDownBeforeItRunsThrowsQueueShutDown) {
  // queues.py Queue.put (3.13): the woken putter leaves its `while self.full()` loop, and
  // put_nowait raises QueueShutDown.
  Queue<int> queue(1);
  auto body = [&]() -> Task<> {
    queue.put_nowait(0);
    Future<std::string> putter = create_task(put_or_error(queue, 1));
    co_await yield_iterations();
    EXPECT_EQ(queue.get_nowait(), 0);  // wakes the putter
    queue.shutdown();
    EXPECT_EQ(co_await putter, "QueueShutDown");
    EXPECT_TRUE(queue.empty());
  };
  run(body());
}

TEST_F(QueueTest, AGetterWokenByAPutButShutDownBeforeItRunsStillGetsTheItem) {
  // queues.py Queue.get (3.13): shutdown(immediate=False) leaves the items; the woken getter
  // finds the queue non-empty and takes one.
  Queue<int> queue;
  auto body = [&]() -> Task<> {
    Future<std::string> getter = create_task(get_or_error(queue));
    co_await yield_iterations();
    queue.put_nowait(5);
    queue.shutdown();
    EXPECT_EQ(co_await getter, "5");
  };
  run(body());
}

TEST_F(QueueTest, AGetterWokenByAPutButShutDownImmediatelyBeforeItRunsThrowsQueueShutDown) {
  // queues.py Queue.shutdown(immediate=True) (3.13) drops the item; the woken getter finds the
  // queue empty and shut down.
  Queue<int> queue;
  auto body = [&]() -> Task<> {
    Future<std::string> getter = create_task(get_or_error(queue));
    co_await yield_iterations();
    queue.put_nowait(5);
    queue.shutdown(true);
    EXPECT_EQ(co_await getter, "QueueShutDown");
    EXPECT_THROW(queue.task_done(), std::invalid_argument);  // the dropped item counted done
  };
  run(body());
}

TEST_F(QueueTest, ShutdownTwiceAndJoinAfterAnImmediateShutdownReturn) {
  // queues.py Queue.shutdown (3.13) may be called again; join() returns once the unfinished
  // count is zero.
  Queue<int> queue;
  auto body = [&]() -> Task<> {
    queue.put_nowait(1);
    queue.shutdown();
    queue.shutdown(true);
    EXPECT_TRUE(queue.empty());
    co_await queue.join();
    EXPECT_EQ(co_await get_or_error(queue), "QueueShutDown");
  };
  run(body());
}

// -------------------------------------------------------------- loops

TEST_F(QueueTest, AQueueIsBoundToTheLoopOfTheFirstTaskThatWaitsOnIt) {
  Queue<int> queue;
  auto get_one = [&]() -> Task<int> { co_return co_await queue.get(); };
  auto first_loop = [&]() -> Task<int> {
    Future<int> got = create_task(get_one());
    co_await yield_iterations();  // waits: binds the queue to this loop
    queue.put_nowait(1);
    co_return co_await got;
  };
  EXPECT_EQ(run(first_loop()), 1);

  Loop other{LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false)};
  // What needs no wait works anywhere (as asyncio's put_nowait and a get
  // of a queue that has items) ...
  queue.put_nowait(2);
  EXPECT_EQ(other.run_until_complete(get_one()), 2);
  // ... but waiting on another loop throws RuntimeError.
  TimerHandle guard = other.call_later(1e6, [&] { other.stop(); });  // no hang if it waits
  try {
    (void)other.run_until_complete(get_one());
    ADD_FAILURE() << "no RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("another loop"), std::string::npos) << e.what();
  }
  guard.cancel();
  other.close();
}

// ------------------------------------------------------------ asyncio's own scenarios
// Each test below follows a test of CPython 3.12's
// Lib/test/test_asyncio/test_queues.py (named in its first comment line).

TEST_F(QueueTest, AReaderCancelledAfterTwoPutsLeavesTheFirstItemForTheNextGet) {
  // test_get_cancel_drop_one_pending_reader.
  Queue<int> queue;
  auto getter = [&]() -> Task<int> { co_return co_await queue.get(); };
  auto body = [&]() -> Task<int> {
    Future<int> reader = create_task(getter());
    co_await yield_iterations();
    queue.put_nowait(1);
    queue.put_nowait(2);
    reader.cancel();
    try {
      co_await reader;
    } catch (const CancelledError&) {
    }
    EXPECT_TRUE(reader.cancelled());
    reader = create_task(getter());  // try again
    co_return co_await reader;
  };
  EXPECT_EQ(run(body()), 1) << "an item was dropped";
}

TEST_F(QueueTest, TwoPutsReachTheTwoReadersLeftWhenTheFirstOfThreeIsCancelled) {
  // test_get_cancel_drop_many_pending_readers.
  Queue<int> queue;
  auto getter = [&]() -> Task<int> { co_return co_await queue.get(); };
  auto body = [&]() -> Task<> {
    Future<int> reader1 = create_task(getter());
    Future<int> reader2 = create_task(getter());
    Future<int> reader3 = create_task(getter());
    co_await yield_iterations();
    queue.put_nowait(1);
    queue.put_nowait(2);
    reader1.cancel();
    bool cancelled = false;
    try {
      co_await reader1;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    int third = co_await reader3;
    int second = co_await reader2;
    EXPECT_EQ(second + third, 3);
    EXPECT_NE(second, third);
  };
  run(body());
}

TEST_F(QueueTest, APutterCancelledAfterAGetFreedASlotCanPutAgain) {
  // test_put_cancel_drop.
  Queue<int> queue(1);
  auto putter = [&](int item) -> Task<> { co_await queue.put(item); };
  auto body = [&]() -> Task<> {
    queue.put_nowait(1);
    Future<void> writer = create_task(putter(2));
    co_await yield_iterations();
    EXPECT_EQ(queue.get_nowait(), 1);
    writer.cancel();
    try {
      co_await writer;
    } catch (const CancelledError&) {
      writer = create_task(putter(2));  // try again
    }
    co_await writer;
    EXPECT_EQ(queue.get_nowait(), 2);
    EXPECT_EQ(queue.qsize(), 0u);
  };
  run(body());
}

TEST_F(QueueTest, APutterCancelledWhileWaitingIsSkippedByTheNextFreeSlot) {
  // test_put_cancelled_race.
  Queue<std::string> queue(1);
  auto putter = [&](std::string item) -> Task<> { co_await queue.put(std::move(item)); };
  auto body = [&]() -> Task<> {
    Future<void> put_a = create_task(putter("a"));
    Future<void> put_b = create_task(putter("b"));
    Future<void> put_c = create_task(putter("X"));
    co_await yield_iterations();
    EXPECT_TRUE(put_a.done());
    EXPECT_FALSE(put_b.done());
    put_c.cancel();
    co_await yield_iterations();
    EXPECT_TRUE(put_c.done());
    EXPECT_EQ(queue.get_nowait(), "a");
    co_await yield_iterations();
    EXPECT_EQ(queue.get_nowait(), "b");
    co_await put_b;
    EXPECT_TRUE(queue.empty());
  };
  run(body());
}

TEST_F(QueueTest, EachGetNowaitWakesOneWaitingPutter) {
  // test_why_are_putters_waiting.
  Queue<int> queue(2);
  auto putter = [&](int item) -> Task<> { co_await queue.put(item); };
  auto getter = [&]() -> Task<> {
    co_await sleep(0);
    std::size_t n = queue.qsize();
    for (std::size_t i = 0; i < n; ++i)
      (void)queue.get_nowait();
  };
  std::vector<Future<void>> tasks;
  tasks.push_back(loop.create_task(getter()));
  for (int item = 0; item < 4; ++item)
    tasks.push_back(loop.create_task(putter(item)));
  for (Future<void>& t : tasks)
    run(t);
  EXPECT_EQ(queue.qsize(), 2u);
  EXPECT_EQ(queue.get_nowait(), 2);
  EXPECT_EQ(queue.get_nowait(), 3);
}

TEST_F(QueueTest, AProducerAndAConsumerThroughAQueueOfOneBothFinish) {
  // test_why_are_getters_waiting.
  Queue<int> queue(1);
  std::vector<int> got;
  auto producer = [&](int n) -> Task<> {
    for (int i = 0; i < n; ++i)
      co_await queue.put(i);
  };
  auto consumer = [&](int n) -> Task<> {
    for (int i = 0; i < n; ++i)
      got.push_back(co_await queue.get());
  };
  Future<void> p = loop.create_task(producer(5));
  Future<void> c = loop.create_task(consumer(5));
  run(p);
  run(c);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(QueueTest, AGetThatTimedOutLeavesNoGetterToTakeTheNextItem) {
  // test_cancelled_getters_not_being_held_in_self_getters.
  Queue<int> queue(5);
  EXPECT_THROW(run(wait_for(queue.get(), 0.1)), TimeoutError);  // asyncio's idiom, as is
  queue.put_nowait(7);
  run_briefly_for_queue();
  EXPECT_EQ(queue.qsize(), 1u);
  EXPECT_EQ(queue.get_nowait(), 7);
}

TEST_F(QueueTest, APutterWokenByAGetThenCancelledEndsCancelledAndPutsNothing) {
  // test_cancelled_put_silence_value_error_exception.
  Queue<int> queue(1);
  auto putter = [&](int item) -> Task<> { co_await queue.put(item); };
  auto body = [&]() -> Task<> {
    queue.put_nowait(1);
    Future<void> put_task = create_task(putter(1));
    co_await yield_iterations();
    (void)queue.get_nowait();  // wakes the putter
    put_task.cancel();
    bool cancelled = false;
    try {
      co_await put_task;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(queue.empty());
  };
  run(body());
}

TEST_F(QueueTest, ABlockedPutGoesOnOnceAGetNowaitFromATimerFreesASlot) {
  // test_blocking_put_wait.
  Queue<int> queue(1);
  bool finished = false;
  auto put_two = [&]() -> Task<> {
    co_await queue.put(1);
    co_await queue.put(2);
    finished = true;
  };
  loop.call_later(0.01, [&] { (void)queue.get_nowait(); });
  Future<void> t = loop.create_task(put_two());
  run_briefly_for_queue();
  EXPECT_FALSE(finished);
  run(t);
  EXPECT_TRUE(finished);
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
  EXPECT_EQ(queue.get_nowait(), 2);
}

TEST_F(QueueTest, TwoWorkersThatMarkEveryItemDoneReleaseJoin) {
  // test_task_done.
  Queue<int> queue;
  for (int i = 0; i < 100; ++i)
    queue.put_nowait(i);
  int accumulator = 0;
  bool running = true;
  auto worker = [&]() -> Task<> {
    while (running) {
      int item = co_await queue.get();
      accumulator += item;
      queue.task_done();
    }
  };
  auto body = [&]() -> Task<> {
    Future<void> w1 = create_task(worker());
    Future<void> w2 = create_task(worker());
    co_await queue.join();
    EXPECT_EQ(accumulator, 4950);
    running = false;
    queue.put_nowait(0);
    queue.put_nowait(0);
    co_await w1;
    co_await w2;
  };
  run(body());
}

TEST_F(QueueTest, AWokenGetterOvertakenByAnotherGetWaitsAgainBehindTheOthers) {
  // Follows Queue.get's `while self.empty()` loop (test_get_with_putters
  // and test_put_with_waiting_getters show the same hand-offs): a getter
  // woken by a put but overtaken by a get that needed no wait waits again,
  // behind the getters already waiting.
  Queue<int> queue;
  std::vector<std::string> got;
  auto getter = [&](std::string name) -> Task<> {
    int item = co_await queue.get();
    got.push_back(name + std::to_string(item));
  };
  auto body = [&]() -> Task<> {
    Future<void> first = create_task(getter("first:"));
    Future<void> second = create_task(getter("second:"));
    co_await yield_iterations();
    queue.put_nowait(1);               // wakes `first`...
    EXPECT_EQ(queue.get_nowait(), 1);  // ...which is overtaken
    co_await yield_iterations(2);
    EXPECT_FALSE(first.done());
    EXPECT_FALSE(second.done());
    queue.put_nowait(2);
    queue.put_nowait(3);
    co_await first;
    co_await second;
  };
  run(body());
  EXPECT_EQ(got, (std::vector<std::string>{"second:2", "first:3"}));
}

}  // namespace
}  // namespace eddy
