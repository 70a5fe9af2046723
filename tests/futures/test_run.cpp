// Tests for eddy::run (eddy/run.hpp): asyncio.run's life cycle — a new loop
// runs main, the tasks left pending are cancelled and allowed to finish, the
// loop is closed, main's result or exception comes out. Virtual time.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <uv.h>
#include <eddy/executor.hpp>
#include <eddy/run.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

#include "loop_test.hpp"
#include "thread_test.hpp"

namespace eddy {
namespace {

using eddy::testing::Counted;

LoopOptions virtual_time() {
  return LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false);
}

TEST(Run, ReturnsTheResultOfMain) {
  auto amain = []() -> Task<int> {
    co_await sleep(2.5);
    co_return get_running_loop().time() == 2.5 ? 42 : -1;
  };
  EXPECT_EQ(run(amain(), virtual_time()), 42);
}

TEST(Run, RethrowsTheExceptionOfMain) {
  auto amain = []() -> Task<int> {
    co_await sleep(1.0);
    throw std::runtime_error("main failed");
  };
  EXPECT_THROW(run(amain(), virtual_time()), std::runtime_error);
}

TEST(Run, CancelsTheTasksLeftPendingAndLetsThemFinish) {
  Counted::reset();
  std::vector<std::string> log;
  auto background = [&](Counted) -> Task<> {
    bool cancelled = false;
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      log.push_back("background cancelled");
      cancelled = true;
    }
    if (cancelled) {
      co_await sleep(1.0);  // clean-up that awaits still runs
      log.push_back("background cleaned up");
      throw CancelledError();
    }
  };
  auto amain = [&]() -> Task<int> {
    (void)create_task(background(Counted{}));
    co_await sleep(1.0);
    log.push_back("main done");
    co_return 1;
  };
  EXPECT_EQ(run(amain(), virtual_time()), 1);
  EXPECT_EQ(log, (std::vector<std::string>{"main done", "background cancelled",
                                           "background cleaned up"}));
  EXPECT_EQ(Counted::alive(), 0);
}

// Two tasks left awaiting each other (a deadlock) cannot be cancelled: run()
// still cancels and waits for the others, closes the loop (which ends the
// two, their frames destroyed once), then throws the cancel's RuntimeError,
// as asyncio.run raises the RecursionError of its cancel().
TEST(Run, TasksLeftAwaitingEachOtherMakeRunThrowRuntimeErrorAfterTheOthersFinish) {
  Counted::reset();
  std::vector<std::string> log;
  Future<void> a, b;
  auto awaits = [](Future<void>& other, Counted) -> Task<> { co_await other; };
  auto background = [&]() -> Task<> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      log.push_back("background cancelled");
      throw;
    }
  };
  auto amain = [&]() -> Task<int> {
    a = create_task(awaits(b, Counted()));
    b = create_task(awaits(a, Counted()));
    (void)create_task(background());  // after them, in all_tasks' order too
    co_await sleep(1.0);
    co_return 1;
  };
  try {
    run(amain(), virtual_time());
    ADD_FAILURE() << "no RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log, std::vector<std::string>{"background cancelled"});
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
  a = Future<void>();
  b = Future<void>();
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(Run, CancelsTheTasksLeftPendingWhenMainFails) {
  bool cancelled = false;
  auto background = [&]() -> Task<> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      cancelled = true;
      throw;
    }
  };
  auto amain = [&]() -> Task<int> {
    (void)create_task(background());
    co_await sleep(1.0);
    throw std::runtime_error("main failed");
  };
  EXPECT_THROW(run(amain(), virtual_time()), std::runtime_error);
  EXPECT_TRUE(cancelled);
}

TEST(Run, ATaskThatFailsDuringShutdownIsReported) {
  std::vector<std::string> messages;
  auto background = [&]() -> Task<> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
    }
    throw std::runtime_error("failed while shutting down");
  };
  auto amain = [&]() -> Task<int> {
    get_running_loop().set_exception_handler(
        [&](Loop&, const ExceptionContext& context) { messages.push_back(context.message); });
    (void)create_task(background());
    co_await sleep(0);
    co_return 0;
  };
  EXPECT_EQ(run(amain(), virtual_time()), 0);
  EXPECT_EQ(messages,
            (std::vector<std::string>{"unhandled exception during eddy::run() shutdown"}));
}

TEST(Run, InsideARunningLoopThrowsLoopRunningError) {
  auto inner = []() -> Task<int> { co_return 1; };
  auto amain = [&]() -> Task<std::string> {
    try {
      run(inner());
    } catch (const LoopRunningError&) {
      co_return "refused";
    }
    co_return "ran";
  };
  EXPECT_EQ(run(amain(), virtual_time()), "refused");
}

// asyncio.run: a task that stops the loop while the leftover tasks are
// being cancelled makes run() raise "Event loop stopped before Future
// completed", instead of main's result. The default executor is still
// waited for, and the loop closed.
TEST(Run, ATaskThatStopsTheLoopDuringShutdownMakesRunThrowRuntimeError) {
  Counted::reset();
  auto stubborn = [](Counted) -> Task<> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      get_running_loop().stop();
    }
    co_await sleep(3600.0);  // still pending when the loop closes
  };
  auto amain = [&]() -> Task<int> {
    (void)create_task(stubborn(Counted()));
    co_await sleep(0);
    co_return 1;
  };
  EXPECT_THROW(run(amain(), virtual_time()), RuntimeError);
  EXPECT_EQ(Counted::alive(), 0);  // the loop was closed: the task's frame went
}

TEST(Run, WhenMainFailsAStopDuringShutdownStillComesOutAsRuntimeError) {
  auto stubborn = []() -> Task<> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
      get_running_loop().stop();
    }
    co_await sleep(3600.0);
  };
  auto amain = [&]() -> Task<int> {
    (void)create_task(stubborn());
    co_await sleep(0);
    throw std::logic_error("main failed");
  };
  EXPECT_THROW(run(amain(), virtual_time()), RuntimeError);  // as asyncio: it replaces main's
}

// close() refuses a loop on which the program left a libuv handle of its own
// open: run() throws that RuntimeError (it used to end the program, as it
// was thrown from a destructor).
TEST(Run, AForeignLibuvHandleLeftOpenMakesRunThrowRuntimeError) {
  [[maybe_unused]] testing::LeakCheckDisabled
      leak_ok;  // ~Loop then leaks the uv_loop_t, as it says
  uv_timer_t foreign;
  auto amain = [&]() -> Task<int> {
    EXPECT_EQ(uv_timer_init(get_running_loop().uv_loop(), &foreign), 0);
    co_return 1;
  };
  EXPECT_THROW(run(amain(), virtual_time()), RuntimeError);
}

// ------------------------------------------------------------ asyncio scenarios: more of
// test_runners.py

// runners._cancel_all_tasks: a leftover task that answers the cancel with a
// value is not reported.
TEST(Run, ALeftoverTaskThatAnswersTheCancelWithAValueIsNotReported) {
  std::vector<std::string> messages;
  bool finished = false;
  auto leftover = [&]() -> Task<int> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
    }
    finished = true;
    co_return 5;
  };
  auto amain = [&]() -> Task<int> {
    get_running_loop().set_exception_handler(
        [&](Loop&, const ExceptionContext& context) { messages.push_back(context.message); });
    (void)create_task(leftover());
    co_await sleep(0);
    co_return 0;
  };
  EXPECT_EQ(run(amain(), virtual_time()), 0);
  EXPECT_TRUE(finished);
  EXPECT_TRUE(messages.empty());
}

// Runner.run + Runner.close: main's exception comes out, and a leftover
// task failing during the shutdown is still reported.
TEST(Run, WhenMainFailsALeftoverFailingDuringShutdownIsReportedAndMainsErrorComesOut) {
  std::vector<std::string> messages;
  auto leftover = [&]() -> Task<> {
    try {
      co_await sleep(3600.0);
    } catch (const CancelledError&) {
    }
    throw std::logic_error("leftover failed");
  };
  auto amain = [&]() -> Task<int> {
    get_running_loop().set_exception_handler(
        [&](Loop&, const ExceptionContext& context) { messages.push_back(context.message); });
    (void)create_task(leftover());
    co_await sleep(1.0);
    throw std::runtime_error("main failed");
  };
  try {
    run(amain(), virtual_time());
    ADD_FAILURE() << "run did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "main failed");
  }
  EXPECT_EQ(messages,
            (std::vector<std::string>{"unhandled exception during eddy::run() shutdown"}));
}

// test_asyncio_run_cancels_hanging_tasks with a main that cancels itself:
// the CancelledError of main comes out of run.
TEST(Run, AMainThatEndsCancelledMakesRunThrowCancelledError) {
  auto amain = []() -> Task<int> {
    current_task().cancel("main cancelled");
    co_await sleep(1.0);
    co_return 1;
  };
  try {
    run(amain(), virtual_time());
    ADD_FAILURE() << "run did not throw";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "main cancelled");
  }
}

// ------------------------------------------------------------ asyncio 3.12 details

// Runner.close: after cancelling the leftover tasks, asyncio.run waits for
// the default executor (loop.shutdown_default_executor(), i.e.
// executor.shutdown(wait=True) with cancel_futures=False), so every job
// submitted to it, queued ones included, has run when run() returns.
// As in asyncio: Lib/asyncio/runners.py, Runner.close, calls
// loop.run_until_complete(loop.shutdown_default_executor(...)) before loop.close().
TEST(Run, WaitsForTheDefaultExecutorsJobsQueuedJobsIncludedBeforeReturning) {
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  ThreadPoolExecutor side(1);
  auto a_started = testing::Gate::make();
  auto main_done = testing::Gate::make();
  auto release_a = testing::Gate::make();
  auto b_ran = std::make_shared<std::atomic<bool>>(false);
  std::thread helper([=] {
    main_done->wait();
    release_a->open();
  });
  auto amain = [&]() -> Task<int> {
    Loop& loop = get_running_loop();
    loop.set_default_executor(pool);
    (void)loop.run_in_executor([a_started, release_a] {
      a_started->open();
      release_a->wait();
    });
    (void)loop.run_in_executor([b_ran] { b_ran->store(true); });
    // Named first: g++ 12 destroys twice the captures of a closure made
    // inside a co_await expression (README, "Coroutine lambdas").
    auto wait_for_a = [a_started] { a_started->wait(); };
    co_await loop.run_in_executor(side, wait_for_a);  // A runs
    main_done->open();
    co_return 0;
  };
  EXPECT_EQ(run(amain()), 0);
  const bool b_ran_when_run_returned = b_ran->load();
  helper.join();
  pool->shutdown(true);
  EXPECT_TRUE(b_ran_when_run_returned);
}

}  // namespace
}  // namespace eddy
