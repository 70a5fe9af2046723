// Futures and tasks when memory runs out: every allocation a call makes is
// made to fail in turn (FailingAllocator), and the call either succeeds or
// throws std::bad_alloc, changing nothing: no callback left unrun, no task
// left registered that will never run, no use of freed memory.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <eddy/async_pool.hpp>
#include <eddy/clock.hpp>
#include <eddy/concurrent_future.hpp>
#include <eddy/executor.hpp>
#include <eddy/future.hpp>
#include <eddy/gather.hpp>
#include <eddy/run_coroutine_threadsafe.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/task_group.hpp>
#include <eddy/timeout.hpp>

#include "failing_allocator.hpp"
#include "loop_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using testing::DisarmAtExit;
using testing::FailingAllocator;

/// A loop on a virtual clock that has run nothing yet (its ready queue has
/// no buffer, so the first call_soon must allocate one). Its exception
/// handler keeps the reports' messages.
struct FreshLoop {
  FreshLoop() {
    loop.set_exception_handler(
        [this](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  }
  FreshLoop(const FreshLoop&) = delete;
  FreshLoop& operator=(const FreshLoop&) = delete;

  std::shared_ptr<VirtualClock> clock = std::make_shared<VirtualClock>();
  Loop loop{LoopOptions().use_clock(clock).debug(false)};
  std::vector<std::string> reports;
};

/// Runs `attempt(k)` for k = 1, 2, ...: each attempt makes allocation k
/// fail (FailingAllocator) and returns whether the call reached it; the
/// sweep ends at the first k it did not. Records how many were swept.
template <class F>
void sweep_allocations(F attempt) {
  long k = 1;
  while (attempt(k))
    ++k;
  EXPECT_GT(k, 1) << "the call never allocated: the sweep proved nothing";
  ::testing::Test::RecordProperty("allocations_swept", static_cast<int>(k - 1));
}

/// Makes allocation k of `complete(future)` fail, for k = 1, 2, ... until
/// the call no longer reaches it. Each time, the future has three done
/// callbacks; if the call threw, the future must still be pending and
/// complete normally afterwards; either way each callback runs once.
void sweep_completion(const std::function<void(Future<int>&)>& complete) {
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    Future<int> future = loop.create_future<int>();
    std::vector<int> runs(3, 0);
    for (int& r : runs)
      future.add_done_callback([&r] { ++r; });

    bool threw = false;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        complete(future);
      } catch (const std::bad_alloc&) {
        threw = true;
      }
    }
    const bool reached = FailingAllocator::fired();
    if (threw) {
      EXPECT_FALSE(future.done()) << "allocation " << k << " failed: the future must stay pending";
      complete(future);  // the same call, now with memory
    }
    EXPECT_TRUE(future.done());
    loop.run_once();
    EXPECT_EQ(runs, (std::vector<int>{1, 1, 1})) << "allocation " << k;
    if (!future.cancelled()) (void)future.exception();  // seen: no report when it goes
    loop.close();
    return reached;
  });
}

TEST(OutOfMemory, SetResultThatCannotScheduleTheCallbacksLeavesTheFuturePending) {
  sweep_completion([](Future<int>& f) { f.set_result(7); });
}

TEST(OutOfMemory, SetExceptionThatCannotScheduleTheCallbacksLeavesTheFuturePending) {
  sweep_completion([](Future<int>& f) { f.set_exception(std::runtime_error("boom")); });
}

TEST(OutOfMemory, CancelThatCannotScheduleTheCallbacksLeavesTheFuturePending) {
  sweep_completion([](Future<int>& f) { EXPECT_TRUE(f.cancel("no memory")); });
}

TEST(OutOfMemory, AddDoneCallbackOnADoneFutureThatCannotScheduleItAddsNothing) {
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    Future<int> future = loop.create_future<int>();
    future.set_result(1);  // no callbacks: nothing queued, the ready queue still has no buffer
    int runs = 0;
    bool threw = false;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        future.add_done_callback([&runs] { ++runs; });
      } catch (const std::bad_alloc&) {
        threw = true;
      }
    }
    const bool reached = FailingAllocator::fired();
    if (threw) future.add_done_callback([&runs] { ++runs; });  // the same call, now with memory
    loop.run_once();
    EXPECT_EQ(runs, 1) << "allocation " << k;
    loop.close();
    return reached;
  });
}

Task<int> counted_body(Counted, int* ran) {
  ++*ran;
  co_return 5;
}

TEST(OutOfMemory, CreateTaskThatRunsOutOfMemoryLeavesNoTaskBehind) {
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    int ran = 0;
    Task<int> task = counted_body(Counted{}, &ran);
    bool threw = false;
    Future<int> future;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        future = loop.create_task(std::move(task), "t");
      } catch (const std::bad_alloc&) {
        threw = true;
      }
    }
    const bool reached = FailingAllocator::fired();
    if (threw) {
      EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k << ": a task was left registered";
      task = Task<int>();  // its frame (and the argument) goes with it
      EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
      future = loop.create_task(counted_body(Counted{}, &ran));
    }
    EXPECT_EQ(loop.run_until_complete(future), 5) << "allocation " << k;
    EXPECT_EQ(ran, 1) << "allocation " << k;
    EXPECT_TRUE(all_tasks(loop).empty());
    loop.close();
    EXPECT_EQ(Counted::alive(), 0);
    return reached;
  });
}

Task<int> child_after(double delay, int value) {
  co_await sleep(delay);
  co_return value;
}

TEST(OutOfMemory, ATaskGroupWhoseExitRunsOutOfMemoryLeavesItsChildrenSafe) {
  // Allocation k after the block returns fails: the group's exit, waiting
  // for a child still running, may be unable to wait. It then throws
  // std::bad_alloc, and the child ends later without touching the group.
  // (Allocation k may be the child's own: the group then reports its failure.)
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    bool reached = false;
    int outcome = 0;  // 1: the group returned; 2: it threw bad_alloc; 3: the child failed
    Future<int> child;
    auto parent = [&]() -> Task<void> {
      try {
        co_await task_group([&](TaskGroup& group) -> Task<void> {
          child = group.create_task(child_after(0.05, 1));
          FailingAllocator::arm(k);
          co_return;
        });
        outcome = 1;
      } catch (const std::bad_alloc&) {
        outcome = 2;
      } catch (const TaskGroupError&) {
        outcome = 3;  // the failing allocation was the child's own
      }
      reached = FailingAllocator::fired();
      FailingAllocator::disarm();
      co_await sleep(0.1);  // the child ends meanwhile
    };
    {
      DisarmAtExit disarm;
      loop.run_until_complete(parent());
    }
    EXPECT_NE(outcome, 0) << "allocation " << k;
    EXPECT_TRUE(child.done()) << "allocation " << k;
    if (outcome == 1) {
      EXPECT_EQ(child.result(), 1);
    }
    loop.close();
    return reached;
  });
}

TEST(OutOfMemory, ATaskThatCannotQueueItsDoneCallbacksAsItEndsRunsThemAtOnce) {
  // The ready queue must grow to take the entry of the task's done callbacks
  // as it ends: with n callbacks queued during its last step it is full for
  // some n. Then the callbacks run at once, before those n: whoever awaits
  // the task (run_until_complete here) still wakes.
  bool reached = false;
  for (int n = 0; n < 100000 && !reached; ++n) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string> order;
    // Whichever of the two runs first disarms: nothing else may fail.
    auto settle = [&reached] {
      reached = reached || FailingAllocator::fired();
      FailingAllocator::disarm();
    };
    auto body = [&]() -> Task<int> {
      co_await sleep(0);
      for (int i = 0; i < n; ++i)
        loop.call_soon([] {});
      loop.call_soon([&] {
        settle();
        order.push_back("queued in the last step");
      });
      FailingAllocator::arm(1);
      co_return 9;
    };
    Future<int> task = loop.create_task(body());
    task.add_done_callback([&](Future<int>&) {
      settle();
      order.push_back("done callback");
    });
    // Fails the test rather than hang it.
    TimerHandle guard = loop.call_later(1000.0, [&loop] { loop.stop(); });
    {
      DisarmAtExit disarm;
      EXPECT_EQ(loop.run_until_complete(task), 9) << n << " callbacks queued";
    }
    guard.cancel();
    loop.run_once();  // what the last step queued, if the task's end came first
    if (reached) {
      EXPECT_EQ(order, (std::vector<std::string>{"done callback", "queued in the last step"}));
    } else {
      EXPECT_EQ(order, (std::vector<std::string>{"queued in the last step", "done callback"}));
    }
    loop.close();
  }
  EXPECT_TRUE(reached) << "the ready queue never had to grow as the task ended";
}

// ------------------------------------------------------------ run_coroutine_threadsafe

Task<int> counted_answer(Counted, int* ran, int* finished = nullptr) {
  ++*ran;
  co_await sleep(0);
  if (finished != nullptr) ++*finished;
  co_return 42;
}

/// Runs passes of `loop` until `done()` (at most `passes` of them).
template <class Done>
void run_until(Loop& loop, Done done, int passes = 100) {
  for (int i = 0; i < passes && !done(); ++i)
    loop.run_once();
}

TEST(OutOfMemory, RunCoroutineThreadsafeThatRunsOutOfMemoryOnTheCallingThreadSchedulesNothing) {
  // The loop is not running: the call takes the path of another thread (the
  // inbox of call_soon_threadsafe).
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    int ran = 0;
    bool threw = false;
    std::optional<ConcurrentFuture<int>> result;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        result.emplace(run_coroutine_threadsafe(counted_answer(Counted{}, &ran), loop));
      } catch (const std::bad_alloc&) {
        threw = true;
      }
    }
    const bool reached = FailingAllocator::fired();
    if (threw) {
      EXPECT_EQ(Counted::alive(), 0) << "allocation " << k << ": the coroutine was kept";
      loop.run_once();
      EXPECT_EQ(ran, 0) << "allocation " << k << ": the coroutine ran after the call threw";
      result.emplace(run_coroutine_threadsafe(counted_answer(Counted{}, &ran), loop));
    }
    run_until(loop, [&] { return result->done(); });
    if (!result->done()) {
      ADD_FAILURE() << "allocation " << k << ": the returned future stays pending";
      return false;
    }
    EXPECT_EQ(result->result(), 42) << "allocation " << k;
    EXPECT_EQ(ran, 1) << "allocation " << k;
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

TEST(OutOfMemory, RunCoroutineThreadsafeWhoseTaskCannotBeStartedOnTheLoopLosesNothing) {
  // Allocation k of the loop's thread, from the callback that starts the
  // task (armed by a callback queued before it), fails. The returned future
  // must end: with the result, or with the failure (never pending forever,
  // never cancelled while the coroutine goes on running), and its cancel
  // must still reach the task.
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    int ran = 0;
    loop.call_soon([k] { FailingAllocator::arm(k); });  // runs just before the task is started
    ConcurrentFuture<int> result = run_coroutine_threadsafe(counted_answer(Counted{}, &ran), loop);
    bool reached = false;
    {
      DisarmAtExit disarm;
      loop.run_once();
      reached = FailingAllocator::fired();
    }
    run_until(loop, [&] { return result.done(); });
    if (!result.done()) {
      ADD_FAILURE() << "allocation " << k << ": the returned future stays pending";
      return false;
    }
    if (result.cancelled()) {
      ADD_FAILURE() << "allocation " << k << ": cancelled, where nobody cancelled it";
    } else if (std::exception_ptr error = result.exception()) {
      EXPECT_THROW(std::rethrow_exception(error), std::bad_alloc) << "allocation " << k;
    } else {
      EXPECT_EQ(result.result(), 42) << "allocation " << k;
      EXPECT_EQ(ran, 1) << "allocation " << k;
    }
    EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k << ": a task runs on, unwatched";
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

TEST(OutOfMemory, RunCoroutineThreadsafeWhoseTaskCannotBeStartedStillPassesACancelOn) {
  // As above, then the returned future is cancelled (from outside the
  // loop's thread): a task that runs must hear of it, at its next await.
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    int ran = 0;
    int finished = 0;
    loop.call_soon([k] { FailingAllocator::arm(k); });
    ConcurrentFuture<int> result =
        run_coroutine_threadsafe(counted_answer(Counted{}, &ran, &finished), loop);
    bool reached = false;
    {
      DisarmAtExit disarm;
      loop.run_once();
      reached = FailingAllocator::fired();
    }
    result.cancel();  // (false if it failed already)
    run_until(loop, [&] { return all_tasks(loop).empty() && loop.stats().ready == 0; });
    EXPECT_TRUE(result.done()) << "allocation " << k;
    EXPECT_EQ(finished, 0) << "allocation " << k << ": the cancel did not reach the task";
    EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k;
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

// ------------------------------------------------------------ orphaned futures

TEST(OutOfMemory, AGatherWhoseChildGoesAwayPendingEndsCancelledEvenOutOfMemory) {
  // A range gather holds no reference to a pending child: one that nobody
  // else holds goes away while the gather is set up, and the gather ends
  // cancelled at once. Allocation k fails: the call throws std::bad_alloc,
  // or the gather ends cancelled, with a CancelledError made beforehand if
  // its own could not be made (it used to call std::terminate).
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    Future<int> kept = loop.create_future<int>();
    std::optional<Future<std::vector<int>>> gathered;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        std::vector<Future<int>> futures{kept, loop.create_future<int>(), kept};
        gathered = gather(std::move(futures));
      } catch (const std::bad_alloc&) {
      }
    }
    const bool reached = FailingAllocator::fired();
    if (gathered) {
      EXPECT_TRUE(gathered->cancelled()) << "allocation " << k;
      EXPECT_THROW((void)gathered->result(), CancelledError) << "allocation " << k;
    }
    kept.set_result(3);
    loop.run_once();
    loop.close();
    return reached;
  });
}

TEST(OutOfMemory, ATaskLeftPendingByCloseEndsCancelledEvenOutOfMemory) {
  // close() ends a pending task cancelled ("the loop was closed"). Out of
  // memory for that CancelledError, the one made beforehand stands in: the
  // future must never be cancelled without one (result() had nothing to
  // throw).
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    Future<int> task = loop.create_task(child_after(10.0, 1));
    loop.run_once();  // it sleeps
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      loop.close();
    }
    const bool reached = FailingAllocator::fired();
    EXPECT_TRUE(task.cancelled()) << "allocation " << k;
    EXPECT_THROW((void)task.result(), CancelledError) << "allocation " << k;
    return reached;
  });
}

// ------------------------------------------------------------ gather_settled

Task<int> counted_fails(Counted, int* ran) {
  ++*ran;
  co_await sleep(0.01);
  throw std::runtime_error("child failed");
}

/// What a report says, joined, for a failure message.
std::string joined(const std::vector<std::string>& reports) {
  std::string all;
  for (const std::string& r : reports)
    all += "[" + r + "] ";
  return all;
}

TEST(OutOfMemory, GatherSettledThatRunsOutOfMemoryStartsNothing) {
  // Allocation k of the call fails; its children are a future and two
  // coroutines (which it makes tasks of). If it throws, no child task may
  // run on, unwatched; otherwise every child's outcome arrives.
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string>& reports = fresh.reports;
    int ran = 0;
    bool reached = false;
    bool threw = false;
    auto main = [&]() -> Task<void> {
      Future<int> f = loop.create_future<int>();
      Task<int> a = counted_answer(Counted{}, &ran);
      Task<int> b = counted_fails(Counted{}, &ran);
      std::optional<Future<std::tuple<Outcome<int>, Outcome<int>, Outcome<int>>>> g;
      {
        DisarmAtExit disarm;
        FailingAllocator::arm(k);
        try {
          g.emplace(gather_settled(f, std::move(a), std::move(b)));
        } catch (const std::bad_alloc&) {
          threw = true;
        }
        reached = FailingAllocator::fired();
      }
      if (threw) {
        co_await sleep(1.0);  // a child that was started would run meanwhile
        EXPECT_EQ(ran, 0) << "allocation " << k << ": a child ran, though gather_settled threw";
        co_return;
      }
      f.set_result(1);
      auto [x, y, z] = co_await *g;
      EXPECT_EQ(x.value(), 1);
      EXPECT_EQ(y.value(), 42);
      EXPECT_FALSE(z.has_value());
      EXPECT_EQ(ran, 2);
    };
    loop.run_until_complete(main());
    EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k;
    EXPECT_TRUE(reports.empty()) << "allocation " << k << ": " << joined(reports);
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

TEST(OutOfMemory, GatherSettledOfARangeThatRunsOutOfMemoryStartsNothing) {
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string>& reports = fresh.reports;
    int ran = 0;
    bool reached = false;
    bool threw = false;
    auto main = [&]() -> Task<void> {
      std::vector<Task<int>> tasks;
      tasks.push_back(counted_answer(Counted{}, &ran));
      tasks.push_back(counted_fails(Counted{}, &ran));
      tasks.push_back(counted_answer(Counted{}, &ran));
      std::optional<Future<std::vector<Outcome<int>>>> g;
      {
        DisarmAtExit disarm;
        FailingAllocator::arm(k);
        try {
          g.emplace(gather_settled(std::move(tasks)));
        } catch (const std::bad_alloc&) {
          threw = true;
        }
        reached = FailingAllocator::fired();
      }
      if (threw) {
        co_await sleep(1.0);
        EXPECT_EQ(ran, 0) << "allocation " << k << ": a child ran, though gather_settled threw";
        co_return;
      }
      std::vector<Outcome<int>> outcomes = co_await *g;
      EXPECT_EQ(outcomes.size(), 3u);
      EXPECT_EQ(ran, 3);
    };
    loop.run_until_complete(main());
    EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k;
    EXPECT_TRUE(reports.empty()) << "allocation " << k << ": " << joined(reports);
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

/// gather_settled's completion: allocation k from the moment its children
/// start completing fails. A call that throws is made again; the gather
/// then ends with every outcome, or fails with std::bad_alloc (its result
/// could not be made), never pending; every child's failure counts as seen.
template <bool Range>
void sweep_gather_settled_completion() {
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string>& reports = fresh.reports;
    int ran = 0;
    bool reached = false;
    int outcome = 0;  // 1: every outcome; 2: bad_alloc
    auto main = [&]() -> Task<void> {
      Future<int> f1 = loop.create_future<int>();
      Future<int> f2 = loop.create_future<int>();
      Future<int> t = loop.create_task(counted_fails(Counted{}, &ran));
      auto g = [&] {
        if constexpr (Range) {
          return gather_settled(std::vector<Future<int>>{f1, f2, t});
        } else {
          return gather_settled(f1, f2, t);
        }
      }();
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        f1.set_result(1);
      } catch (const std::bad_alloc&) {
        f1.set_result(1);
      }
      try {
        f2.set_exception(std::runtime_error("f2"));
      } catch (const std::bad_alloc&) {
        f2.set_exception(std::runtime_error("f2"));
      }
      try {
        auto results = co_await g;
        (void)results;
        outcome = 1;
      } catch (const std::bad_alloc&) {
        outcome = 2;
      }
      reached = FailingAllocator::fired();
    };
    {
      DisarmAtExit disarm;
      loop.run_until_complete(main());
    }
    EXPECT_NE(outcome, 0) << "allocation " << k;
    EXPECT_EQ(ran, 1) << "allocation " << k;
    EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k;
    EXPECT_TRUE(reports.empty()) << "allocation " << k << ": " << joined(reports);
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

TEST(OutOfMemory, GatherSettledWhoseCompletionRunsOutOfMemoryEndsAllTheSame) {
  sweep_gather_settled_completion<false>();
}

TEST(OutOfMemory, GatherSettledOfARangeWhoseCompletionRunsOutOfMemoryEndsAllTheSame) {
  sweep_gather_settled_completion<true>();
}

// ------------------------------------------------------------ cancel and timeout

/// Queues no-op callbacks on `loop` until its ready queue is full: the next
/// call_soon has to allocate (and a failure there throws, queueing nothing).
void fill_ready_queue(Loop& loop) {
  static int anchor = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    DisarmAtExit disarm;
    FailingAllocator::arm(1);
    try {
      loop.call_soon([p = &anchor] { (void)p; });
    } catch (const std::bad_alloc&) {
      return;
    }
  }
  ADD_FAILURE() << "the ready queue never had to grow";
}

/// Schedules far timers (in a million seconds) on `loop` until the next
/// timer has to allocate.
void fill_timer_queue(Loop& loop) {
  for (int i = 0; i < 1'000'000; ++i) {
    DisarmAtExit disarm;
    FailingAllocator::arm(1);
    try {
      loop.call_later(1e6, [] {});
    } catch (const std::bad_alloc&) {
      return;
    }
  }
  ADD_FAILURE() << "the timers never had to grow";
}

/// Cancels a task suspended in `sleep(delay)` with allocation k failing. A
/// cancel that throws std::bad_alloc changes nothing and can be made
/// again; either way the task ends cancelled without finishing its sleep.
void sweep_cancel_of_a_sleeping_task(double delay) {
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string>& reports = fresh.reports;
    int finished = 0;
    auto sleeper = [&]() -> Task<int> {
      co_await sleep(delay);
      ++finished;
      co_return 1;
    };
    Future<int> task = loop.create_task(sleeper());
    loop.run_once();         // suspended in the sleep
    fill_ready_queue(loop);  // waking it up will need memory
    bool threw = false;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        EXPECT_TRUE(task.cancel("stop"));
      } catch (const std::bad_alloc&) {
        threw = true;
      }
    }
    const bool reached = FailingAllocator::fired();
    if (threw) {
      EXPECT_FALSE(task.done()) << "allocation " << k;
      EXPECT_TRUE(task.cancel("stop")) << "allocation " << k;  // the same call, now with memory
    }
    run_until(
        loop, [&] { return task.done(); }, 10);
    EXPECT_TRUE(task.cancelled()) << "allocation " << k << ": " << joined(reports);
    EXPECT_EQ(finished, 0) << "allocation " << k;
    loop.close();
    return reached;
  });
}

TEST(OutOfMemory, CancelOfASleepingTaskThatRunsOutOfMemoryLeavesTheSleepAsItWas) {
  sweep_cancel_of_a_sleeping_task(10.0);
}

TEST(OutOfMemory, CancelOfATaskSleepingForeverThatRunsOutOfMemoryLeavesTheSleepAsItWas) {
  sweep_cancel_of_a_sleeping_task(std::numeric_limits<double>::infinity());
}

/// A timeout of 1 s around a sleep of `delay`, with allocation k failing
/// from just before the deadline on. The block must not outlive its
/// deadline by much: the sleep never finishes, and the timeout throws
/// TimeoutError (or the failure itself, std::bad_alloc).
void sweep_timeout_expiry(double delay) {
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string>& reports = fresh.reports;
    int finished = 0;
    int outcome = 0;  // 1: returned; 2: TimeoutError; 3: bad_alloc
    bool reached = false;
    auto main = [&]() -> Task<void> {
      // Due with the deadline, just before it: the expiry's call_soon finds
      // the ready queue full.
      loop.call_at(1.0, [&loop, k] {
        fill_ready_queue(loop);
        FailingAllocator::arm(k);
      });
      try {
        co_await timeout(1.0, [&](Timeout&) -> Task<void> {
          co_await sleep(delay);
          ++finished;
        });
        outcome = 1;
      } catch (const TimeoutError&) {
        outcome = 2;
      } catch (const std::bad_alloc&) {
        outcome = 3;
      }
      reached = FailingAllocator::fired();
      FailingAllocator::disarm();
    };
    {
      DisarmAtExit disarm;
      Future<void> done = loop.create_task(main());
      run_until(
          loop, [&] { return done.done(); }, 20);
      EXPECT_TRUE(done.done()) << "allocation " << k << ": the block outlived its deadline";
    }
    EXPECT_EQ(finished, 0) << "allocation " << k << ": the block outlived its deadline";
    EXPECT_TRUE(outcome == 2 || outcome == 3) << "allocation " << k << ": outcome " << outcome;
    EXPECT_LT(loop.time(), 2.0) << "allocation " << k << ": " << joined(reports);
    loop.close();
    return reached;
  });
}

TEST(OutOfMemory, ATimeoutWhoseExpiryRunsOutOfMemoryStillEndsTheBlock) {
  sweep_timeout_expiry(10.0);
}

TEST(OutOfMemory, ATimeoutWhoseExpiryRunsOutOfMemoryStillEndsASleepForever) {
  sweep_timeout_expiry(std::numeric_limits<double>::infinity());
}

TEST(OutOfMemory, ATimeoutThatRunsOutOfMemoryAsItStartsRunsNothing) {
  // Allocation k of `co_await timeout(...)` fails before the block runs:
  // the await throws std::bad_alloc, and no deadline is left behind.
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    int ran = 0;
    int outcome = 0;  // 1: returned; 2: TimeoutError; 3: bad_alloc
    bool reached = false;
    auto main = [&]() -> Task<void> {
      Task<int> block = counted_answer(Counted{}, &ran);
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        int value = co_await timeout_at(loop.time() + 1.0, std::move(block));
        EXPECT_EQ(value, 42);
        outcome = 1;
      } catch (const TimeoutError&) {
        outcome = 2;
      } catch (const std::bad_alloc&) {
        outcome = 3;
      }
      reached = FailingAllocator::fired();
      FailingAllocator::disarm();
      co_await sleep(5.0);  // a deadline left behind would fire meanwhile
    };
    loop.run_until_complete(main());
    EXPECT_NE(outcome, 0) << "allocation " << k;
    EXPECT_NE(outcome, 2) << "allocation " << k;
    if (outcome == 1) {
      EXPECT_EQ(ran, 1);
    }
    EXPECT_TRUE(all_tasks(loop).empty());
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

TEST(OutOfMemory, RescheduleThatRunsOutOfMemoryKeepsTheDeadline) {
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    bool threw = false;
    bool reached = false;
    int outcome = 0;  // 1: returned; 2: TimeoutError
    auto main = [&]() -> Task<void> {
      try {
        co_await timeout(1.0, [&](Timeout& t) -> Task<void> {
          fill_timer_queue(loop);  // the new deadline's timer needs memory
          {
            DisarmAtExit disarm;
            FailingAllocator::arm(k);
            try {
              t.reschedule(loop.time() + 3.0);
            } catch (const std::bad_alloc&) {
              threw = true;
            }
            reached = FailingAllocator::fired();
          }
          if (threw) {
            EXPECT_EQ(t.when(), 1.0) << "allocation " << k;
          }
          co_await sleep(2.0);
        });
        outcome = 1;
      } catch (const TimeoutError&) {
        outcome = 2;
      }
    };
    loop.run_until_complete(main());
    EXPECT_EQ(outcome, threw ? 2 : 1) << "allocation " << k;
    EXPECT_EQ(loop.time(), threw ? 1.0 : 2.0) << "allocation " << k;
    loop.close();
    return reached;
  });
}

TEST(OutOfMemory, SleepWithAValueThatRunsOutOfMemoryThrowsAndKeepsNothing) {
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    bool reached = false;
    int outcome = 0;  // 1: slept; 2: bad_alloc
    auto main = [&]() -> Task<void> {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        Counted c = co_await sleep(1.0, Counted{});
        outcome = 1;
      } catch (const std::bad_alloc&) {
        outcome = 2;
      }
      reached = FailingAllocator::fired();
    };
    loop.run_until_complete(main());
    EXPECT_NE(outcome, 0) << "allocation " << k;
    EXPECT_EQ(loop.time(), outcome == 1 ? 1.0 : 0.0) << "allocation " << k;
    EXPECT_EQ(loop.stats().timers, 0u) << "allocation " << k;
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

// ------------------------------------------------------------ run_until_complete

TEST(OutOfMemory, RunUntilCompleteThatRunsOutOfMemoryLeavesNoTaskBehind) {
  Counted::reset();
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    int ran = 0;
    Task<int> task = counted_answer(Counted{}, &ran);
    bool threw = false;
    int value = 0;
    {
      DisarmAtExit disarm;
      FailingAllocator::arm(k);
      try {
        value = loop.run_until_complete(std::move(task));
      } catch (const std::bad_alloc&) {
        threw = true;
      }
    }
    const bool reached = FailingAllocator::fired();
    if (threw) {
      EXPECT_TRUE(all_tasks(loop).empty()) << "allocation " << k << ": a task was left behind";
      value = loop.run_until_complete(counted_answer(Counted{}, &ran));
    }
    EXPECT_EQ(value, 42) << "allocation " << k;
    EXPECT_EQ(ran, 1) << "allocation " << k;
    loop.close();
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

// ------------------------------------------------------------ run_in_executor

/// run_in_executor on the loop's thread with allocation k of the call
/// failing: if it throws, no job runs and none is left in flight; otherwise
/// the result comes back. `on_default`: the loop's default executor, made
/// by the call (else a pool made beforehand).
void sweep_run_in_executor(bool on_default) {
  Counted::reset();
  sweep_allocations([&](long k) {
    std::atomic<int> ran{0};
    bool reached = false;
    {
      ThreadPoolExecutor pool(1);
      FreshLoop fresh;
      Loop& loop = fresh.loop;
      auto job = [&ran](Counted) {
        ++ran;
        return 6;
      };
      auto main = [&]() -> Task<void> {
        bool threw = false;
        Future<int> result;
        {
          DisarmAtExit disarm;
          FailingAllocator::arm(k);
          try {
            result = on_default ? loop.run_in_executor(job, Counted{})
                                : loop.run_in_executor(pool, job, Counted{});
          } catch (const std::bad_alloc&) {
            threw = true;
          }
          reached = FailingAllocator::fired();
        }
        if (threw) {
          EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
          co_await sleep(0.01);
          result = on_default ? loop.run_in_executor(job, Counted{})
                              : loop.run_in_executor(pool, job, Counted{});
        }
        EXPECT_EQ(co_await result, 6) << "allocation " << k;
      };
      loop.run_until_complete(main());
      loop.run_until_complete(loop.shutdown_default_executor());
      loop.close();
    }
    EXPECT_EQ(ran.load(), 1) << "allocation " << k;
    EXPECT_EQ(Counted::alive(), 0) << "allocation " << k;
    return reached;
  });
}

TEST(OutOfMemory, RunInExecutorThatRunsOutOfMemoryRunsNoJob) {
  sweep_run_in_executor(false);
}

TEST(OutOfMemory, RunInExecutorThatRunsOutOfMemoryMakingTheDefaultExecutorRunsNoJob) {
  sweep_run_in_executor(true);
}

// ------------------------------------------------------------ wrap_future

TEST(OutOfMemory, AwaitingAConcurrentFutureThatRunsOutOfMemoryLeavesNothingHeld) {
  // co_await of a ConcurrentFuture wraps it (wrap_future) with allocation k
  // failing: the await throws std::bad_alloc, or it gets the result, which
  // another thread (here: the test, with memory) sets afterwards.
  sweep_allocations([&](long k) {
    FreshLoop fresh;
    Loop& loop = fresh.loop;
    std::vector<std::string>& reports = fresh.reports;
    int outcome = 0;  // 1: the value; 2: bad_alloc
    ConcurrentFuture<std::string> source;
    auto main = [&]() -> Task<void> {
      FailingAllocator::arm(k);
      try {
        std::string value = co_await ConcurrentFuture<std::string>(source);
        EXPECT_EQ(value, "a value too long for the small string buffer");
        outcome = 1;
      } catch (const std::bad_alloc&) {
        outcome = 2;
      }
    };
    Future<void> done = loop.create_task(main());
    bool reached = false;
    {
      DisarmAtExit disarm;
      loop.run_once();  // the task waits on the source, or failed to
      reached = FailingAllocator::fired();
    }
    source.set_result("a value too long for the small string buffer");
    run_until(loop, [&] { return done.done(); });
    EXPECT_TRUE(done.done()) << "allocation " << k;
    EXPECT_NE(outcome, 0) << "allocation " << k;
    EXPECT_TRUE(reports.empty()) << "allocation " << k << ": " << joined(reports);
    loop.close();
    return reached;
  });
}

// ------------------------------------------------------------ AsyncPool

TEST(OutOfMemory, AsyncPoolSubmitThatRunsOutOfMemoryCountsNoJob) {
  // Allocation k of submit() fails on the calling thread (the pool's loop
  // runs on its own thread, where nothing fails): the job never runs, and
  // the pool counts it neither pending nor waiting.
  Counted::reset();
  {
    AsyncPool pool(1, 4);
    std::atomic<int> ran{0};
    auto job = [&ran](Counted, int i) -> Task<int> {
      ++ran;
      co_return i * 2;
    };
    sweep_allocations([&](long k) {
      const int before = ran.load();
      bool threw = false;
      std::optional<ConcurrentFuture<int>> result;
      {
        DisarmAtExit disarm;
        FailingAllocator::arm(k);
        try {
          result.emplace(pool.submit(job, Counted{}, 21));
        } catch (const std::bad_alloc&) {
          threw = true;
        }
      }
      const bool reached = FailingAllocator::fired();
      if (threw) {
        EXPECT_EQ(pool.pending(), 0u) << "allocation " << k;
        result.emplace(pool.submit(job, Counted{}, 21));  // the pool goes on (its backlog too)
      }
      EXPECT_EQ(result->result(), 42) << "allocation " << k;
      EXPECT_EQ(ran.load(), before + 1) << "allocation " << k;
      return reached;
    });
    pool.shutdown(true);
    EXPECT_EQ(pool.pending(), 0u);
  }
  EXPECT_EQ(Counted::alive(), 0);
}

}  // namespace
}  // namespace eddy
