// LoopThread: a loop on its own thread, started by the constructor, stopped
// and joined by the destructor, never hanging. Waits use futures and gates,
// never sleeps.
#include <gtest/gtest.h>

#include <uv.h>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eddy/executor.hpp>
#include <eddy/loop_thread.hpp>

#include "loop_test.hpp"
#include "thread_test.hpp"

namespace eddy {
namespace {

using testing::Gate;
using testing::this_thread_name;

/// Runs `fn` on the loop thread and returns what it returns.
template <class F>
auto on_loop(LoopThread& lt, F fn) {
  using R = decltype(fn());
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> result = promise->get_future();
  lt.call_soon_threadsafe([promise, fn]() mutable {
    if constexpr (std::is_void_v<R>) {
      fn();
      promise->set_value();
    } else {
      promise->set_value(fn());
    }
  });
  return result.get();
}

TEST(LoopThread, TheLoopIsRunningOnItsOwnThreadWhenTheConstructorReturns) {
  LoopThread lt;
  EXPECT_NE(lt.thread_id(), std::this_thread::get_id());
  EXPECT_EQ(on_loop(lt, [] { return std::this_thread::get_id(); }), lt.thread_id());
  EXPECT_EQ(on_loop(lt, [] { return try_get_running_loop(); }), &lt.loop());
  EXPECT_TRUE(on_loop(lt, [&lt] { return lt.loop().is_running(); }));
}

TEST(LoopThread, TheThreadIsNamed) {
  {
    LoopThread lt;
    EXPECT_EQ(on_loop(lt, this_thread_name), "eddy-loop");
  }
  {
    LoopThread lt(LoopOptions(), "my-loop");
    EXPECT_EQ(on_loop(lt, this_thread_name), "my-loop");
  }
}

TEST(LoopThread, CallbacksFromOneThreadRunInOrder) {
  std::vector<int> order;  // loop thread only
  {
    LoopThread lt;
    for (int i = 0; i < 1000; ++i)
      lt.call_soon_threadsafe([&order, i] { order.push_back(i); });
  }  // the destructor's stop comes after them: they all run
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(LoopThread, StopFromCodeOnTheLoopDoesNotEndTheThread) {
  LoopThread lt;
  on_loop(lt, [&lt] { lt.loop().stop(); });
  EXPECT_EQ(on_loop(lt, [] { return 5; }), 5);  // still running
}

TEST(LoopThread, TheDestructorDoesNotWaitForTimers) {
  std::atomic<bool> fired{false};
  {
    LoopThread lt;
    on_loop(lt, [&lt, &fired] { lt.loop().call_later(3600.0, [&fired] { fired = true; }); });
  }
  EXPECT_FALSE(fired);
}

TEST(LoopThread, TheDestructorDestroysCallbacksThatCouldNotRun) {
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  struct Token {
    std::shared_ptr<std::atomic<int>> count;
    Token(std::shared_ptr<std::atomic<int>> c) : count(std::move(c)) {}
    Token(Token&& other) noexcept = default;
    ~Token() {
      if (count) ++*count;
    }
  };
  {
    LoopThread lt;
    // Queued on the loop for the next iteration, after the stop: never run.
    on_loop(lt, [&lt, destroyed] {
      lt.loop().call_soon(
          [&lt, destroyed] { lt.loop().call_later(3600.0, [t = Token(destroyed)] {}); });
    });
  }
  EXPECT_EQ(*destroyed, 1);
}

TEST(LoopThread, AnExceptionInACallbackGoesToTheHandlerAndTheLoopGoesOn) {
  LoopThread lt;
  auto reported = std::make_shared<std::promise<std::string>>();
  on_loop(lt, [&lt, reported] {
    lt.loop().set_exception_handler([reported](Loop&, const ExceptionContext& c) {
      reported->set_value(testing::what_of(c.exception));
    });
  });
  lt.call_soon_threadsafe([] { throw std::runtime_error("boom"); });
  EXPECT_EQ(reported->get_future().get(), "boom");
  EXPECT_EQ(on_loop(lt, [] { return 1; }), 1);
}

TEST(LoopThread, AcceptsLoopOptionsSuchAsAVirtualClock) {
  auto clock = std::make_shared<VirtualClock>();
  LoopThread lt(LoopOptions().use_clock(clock));
  auto fired = std::make_shared<std::promise<double>>();
  lt.call_soon_threadsafe([&lt, fired] {
    Loop& loop = lt.loop();
    const double start = loop.time();
    loop.call_later(3600.0, [&loop, fired, start] { fired->set_value(loop.time() - start); });
  });
  EXPECT_GE(fired->get_future().get(), 3600.0);  // an hour, at once
}

TEST(LoopThread, RejectsAnAttachedLoop) {
  uv_loop_t host;
  ASSERT_EQ(uv_loop_init(&host), 0);
  EXPECT_THROW(LoopThread(LoopOptions().attach_to(&host)), std::invalid_argument);
  EXPECT_EQ(uv_loop_close(&host), 0);
}

TEST(LoopThread, RunInExecutorWorksOnItsLoop) {
  LoopThread lt;
  auto result = std::make_shared<std::promise<int>>();
  lt.call_soon_threadsafe([&lt, result] {
    Future<int> f = lt.loop().run_in_executor([] { return 6 * 7; });
    f.add_done_callback([result](Future<int>& done) { result->set_value(done.result()); });
  });
  EXPECT_EQ(result->get_future().get(), 42);
}

TEST(LoopThread, TheDestructorNeverWaitsForExecutorWorkInFlight) {
  auto started = Gate::make();
  auto release = Gate::make();
  // Set when the future's done callback is destroyed, i.e. when the future's
  // state is freed: nothing of the job's loop side outlives the LoopThread.
  auto freed = std::make_shared<std::promise<void>>();
  struct SetOnDestruction {
    std::shared_ptr<std::promise<void>> promise;
    explicit SetOnDestruction(std::shared_ptr<std::promise<void>> p) : promise(std::move(p)) {}
    SetOnDestruction(SetOnDestruction&& other) noexcept = default;
    ~SetOnDestruction() {
      if (promise) promise->set_value();
    }
  };
  {
    LoopThread lt;
    lt.call_soon_threadsafe([&lt, started, release, freed] {
      Future<int> f = lt.loop().run_in_executor([started, release] {
        started->open();
        release->wait();
        return 1;
      });
      f.add_done_callback([token = SetOnDestruction(freed)] {});
    });
    started->wait();
  }  // returns although the job is blocked
  freed->get_future().get();
  release->open();
}

TEST(LoopThread, ShutdownIsIdempotentAndLaterPostsThrowLoopClosedError) {
  LoopThread lt;
  std::atomic<int> ran{0};
  lt.call_soon_threadsafe([&ran] { ++ran; });
  lt.shutdown();
  EXPECT_EQ(ran, 1);  // posted before the shutdown: it ran
  EXPECT_TRUE(lt.loop().is_closed());
  EXPECT_THROW(lt.call_soon_threadsafe([] {}), LoopClosedError);
  lt.shutdown();  // again: nothing to do
}

TEST(LoopThread, ConcurrentShutdownCallsAllReturnOnceTheThreadIsJoined) {
  LoopThread lt;
  std::atomic<int> closed_when_returned{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      lt.shutdown();
      if (lt.loop().is_closed()) ++closed_when_returned;
    });
  }
  for (auto& t : callers)
    t.join();
  EXPECT_EQ(closed_when_returned, 4);
}

TEST(LoopThread, ShutdownOnItsOwnThreadThrowsRuntimeError) {
  LoopThread lt;
  EXPECT_TRUE(on_loop(lt, [&lt] {
    try {
      lt.shutdown();
    } catch (const RuntimeError&) {
      return true;
    }
    return false;
  }));
}

TEST(LoopThreadDeathTest, DestroyingItOnItsOwnThreadTerminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* lt = new LoopThread;
        lt->call_soon_threadsafe([lt] { delete lt; });
        std::promise<void>().get_future().wait();  // until the callback terminates
      },
      "destroyed on its own loop's thread");
}

}  // namespace
}  // namespace eddy
