#include "eddy/clock.hpp"

#include <uv.h>

namespace eddy {

Clock::~Clock() = default;

Clock::time_point MonotonicClock::now() const noexcept {
  return time_point{duration{static_cast<std::int64_t>(uv_hrtime())}};
}

void VirtualClock::advance(duration d) noexcept {
  if (d.count() > 0) now_.fetch_add(d.count(), std::memory_order_relaxed);
}

void VirtualClock::advance_to(time_point t) noexcept {
  std::int64_t target = t.time_since_epoch().count();
  std::int64_t current = now_.load(std::memory_order_relaxed);
  while (current < target &&
         !now_.compare_exchange_weak(current, target, std::memory_order_relaxed)) {
  }
}

}  // namespace eddy
