#include "eddy/clock.hpp"

#include <uv.h>

namespace eddy {

Clock::~Clock() = default;

Clock::time_point MonotonicClock::now() const noexcept {
  return time_point{duration{static_cast<std::int64_t>(uv_hrtime())}};
}

void VirtualClock::advance(duration d) noexcept {
  if (d.count() <= 0) return;
  // Saturating at time_point::max(): a fetch_add past it would wrap to about
  // -292 years, and the clock must never go backwards.
  std::int64_t current = now_.load(std::memory_order_relaxed);
  std::int64_t next;
  do {
    if (__builtin_add_overflow(current, d.count(), &next)) next = INT64_MAX;
  } while (!now_.compare_exchange_weak(current, next, std::memory_order_relaxed));
}

void VirtualClock::advance_to(time_point t) noexcept {
  std::int64_t target = t.time_since_epoch().count();
  std::int64_t current = now_.load(std::memory_order_relaxed);
  while (current < target &&
         !now_.compare_exchange_weak(current, target, std::memory_order_relaxed)) {
  }
}

}  // namespace eddy
