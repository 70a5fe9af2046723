// Shared test support for attached loops: a fixture owning a host's uv_loop_t,
// and a watchdog that stops a host's uv_run that should have returned.
#pragma once

#include <uv.h>

#include <gtest/gtest.h>

#include <cstdint>

#include "loop_test.hpp"

namespace eddy::testing {

/// A host program's libuv loop, for eddy loops attached to it.
class HostLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    Counted::reset();
    ASSERT_EQ(uv_loop_init(&uv), 0);
  }
  void TearDown() override {
    uv_run(&uv, UV_RUN_DEFAULT);  // close callbacks of anything left
    EXPECT_EQ(uv_loop_close(&uv), 0);
  }
  uv_loop_t uv{};
};

// A host timer that stops uv_run after `ms` milliseconds without keeping it
// alive: a uv_run that should return by itself fails the test instead of hanging.
// The timer lives on the heap until its close callback: libuv still holds it
// after the watchdog goes out of scope.
struct HostWatchdog {
  uv_timer_t* timer = new uv_timer_t;
  bool fired = false;
  HostWatchdog(uv_loop_t* uv, std::uint64_t ms) {
    uv_timer_init(uv, timer);
    timer->data = this;
    uv_timer_start(
        timer,
        [](uv_timer_t* t) {
          static_cast<HostWatchdog*>(t->data)->fired = true;
          uv_stop(t->loop);
        },
        ms, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer));
  }
  ~HostWatchdog() {
    uv_close(reinterpret_cast<uv_handle_t*>(timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  HostWatchdog(const HostWatchdog&) = delete;
  HostWatchdog& operator=(const HostWatchdog&) = delete;
};

}  // namespace eddy::testing
