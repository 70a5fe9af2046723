// Test support for code that runs on real threads: a Gate that jobs wait on
// (no sleeps), the current thread's name, and a fixture whose loop runs on the
// real clock with a generous safety net instead of timing thresholds.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#if defined(__linux__)
#include <pthread.h>
#endif

#include <eddy/future.hpp>
#include <eddy/loop.hpp>

namespace eddy::testing {

/// A one-way gate between threads: wait() blocks until open() (or, with a
/// stop_token, until stop is requested). Hold it in a shared_ptr so that a
/// job still waiting when a test ends never touches a destroyed gate.
class Gate {
 public:
  static std::shared_ptr<Gate> make() { return std::make_shared<Gate>(); }

  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }
  /// Returns true if the gate opened, false if stop was requested first.
  bool wait(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    return cv_.wait(lock, stop, [this] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mutex_);
    return open_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable_any cv_;
  bool open_ = false;
};

/// The calling thread's name ("" where unsupported).
inline std::string this_thread_name() {
#if defined(__linux__)
  char name[32] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
#else
  return {};
#endif
}

/// A loop on the real clock (worker threads race it for real). TearDown closes
/// it. run() waits for a future with a safety net far away, so that a broken
/// test fails instead of hanging; no test depends on how long anything takes.
class RealLoopTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!loop.is_closed()) {
      EXPECT_FALSE(loop.is_running());
      loop.close();
    }
    EXPECT_TRUE(loop.is_closed());
  }

  /// run_until_complete(future), with a safety net: if the future is not
  /// done after 120 s, the loop stops and run_until_complete throws.
  template <class T>
  T run(Future<T> future) {
    TimerHandle guard = loop.call_later(120.0, [this] {
      ADD_FAILURE() << "the future did not complete within the safety net";
      loop.stop();
    });
    struct Cancel {
      TimerHandle& guard;
      ~Cancel() { guard.cancel(); }
    } cancel{guard};
    return loop.run_until_complete(std::move(future));
  }

  Loop loop{LoopOptions().debug(false)};
};

}  // namespace eddy::testing
