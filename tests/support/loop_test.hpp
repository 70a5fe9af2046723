// Shared test support: a fixture whose loop runs on a VirtualClock and is
// checked to close cleanly, and `Counted`, which counts constructions and
// destructions to catch leaks and double destruction.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include <eddy/loop.hpp>

#include "sanitizers.hpp"

#ifdef EDDY_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace eddy::testing {

/// While alive, LeakSanitizer ignores what is allocated: for a test of a
/// documented leak (a uv_loop_t that foreign handles keep open).
struct LeakCheckDisabled {
#ifdef EDDY_TEST_ASAN
  LeakCheckDisabled() {
    __lsan_disable();
  }
  ~LeakCheckDisabled() {
    __lsan_enable();
  }
  LeakCheckDisabled(const LeakCheckDisabled&) = delete;
  LeakCheckDisabled& operator=(const LeakCheckDisabled&) = delete;
#endif
};

/// what() of the exception in `error`, or a marker for one that is not a
/// std::exception.
inline std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

/// A value whose copies throw std::runtime_error("copy failed") while a
/// FragileCopy::Failing is alive (moves never throw): for the paths where
/// eddy copies a result out of a future.
struct FragileCopy {
  static inline bool fail = false;
  struct Failing {
    Failing() { fail = true; }
    ~Failing() { fail = false; }
    Failing(const Failing&) = delete;
    Failing& operator=(const Failing&) = delete;
  };

  int value = 0;
  explicit FragileCopy(int v = 0) : value(v) {}
  FragileCopy(const FragileCopy& other) : value(other.value) {
    if (fail) throw std::runtime_error("copy failed");
  }
  FragileCopy(FragileCopy&&) noexcept = default;
  FragileCopy& operator=(const FragileCopy&) = default;
  FragileCopy& operator=(FragileCopy&&) noexcept = default;
};

/// Counts live instances; copies and moves count as constructions. The
/// counts are atomic: a Counted may be handed to an executor's thread.
struct Counted {
  static inline std::atomic<int> constructed{0};
  static inline std::atomic<int> destroyed{0};
  static void reset() { constructed = destroyed = 0; }
  static int alive() { return constructed - destroyed; }

  Counted() { ++constructed; }
  Counted(const Counted&) { ++constructed; }
  Counted(Counted&&) noexcept { ++constructed; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) noexcept = default;
  ~Counted() { ++destroyed; }
};

/// A loop on a virtual clock. TearDown closes it and checks that it closed.
class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override { Counted::reset(); }
  void TearDown() override {
    if (!loop.is_closed()) {
      EXPECT_FALSE(loop.is_running());
      loop.close();
    }
    EXPECT_TRUE(loop.is_closed());
  }

  /// Runs until `stop()` is called from a callback, with a safety net so a
  /// broken test fails instead of hanging: a virtual-time timer far away.
  void run_until_stopped(double virtual_limit_seconds = 1e6) {
    auto guard = loop.call_later(virtual_limit_seconds, [this] {
      ADD_FAILURE() << "the loop ran into the virtual time limit";
      loop.stop();
    });
    loop.run_forever();
    guard.cancel();
  }

  std::shared_ptr<VirtualClock> clock = std::make_shared<VirtualClock>();
  Loop loop{LoopOptions().use_clock(clock).debug(false)};
};

}  // namespace eddy::testing
