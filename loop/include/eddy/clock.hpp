// The loop's clock: monotonic, nanosecond resolution, injectable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace eddy {

/// Source of the loop's time. The default (when LoopOptions::clock is null) is
/// the monotonic system clock that libuv uses (uv_hrtime), read directly
/// without a virtual call.
///
/// `Clock::time_point` is the type of every deadline in eddy: nanoseconds on
/// the loop's own time line, whose epoch is arbitrary.
class Clock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<Clock, duration>;
  static constexpr bool is_steady = true;

  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock();

  /// The current time. Must never go backwards.
  virtual time_point now() const noexcept = 0;
};

/// The real monotonic clock (uv_hrtime), as an object, for code that wants to
/// pass a clock explicitly.
class MonotonicClock final : public Clock {
 public:
  time_point now() const noexcept override;
};

/// A clock that only moves when told to, or when a loop using it would
/// otherwise sleep: then the loop jumps it straight to the next timer's
/// deadline. Timeout logic that would take seconds runs in microseconds and
/// deterministically.
///
/// Rules of a loop on a VirtualClock:
/// - When an iteration finds nothing ready and timers pending, time jumps to
///   the earliest deadline (I/O that is ready is still polled first, with a
///   zero timeout). With no timers pending the loop blocks as usual, for
///   example until a call_soon_threadsafe arrives.
/// - advance() moves time forward by hand; it never moves backwards.
///
/// Thread safety: now() may be read from any thread; advance() is meant for
/// the loop's thread.
///
///     auto clock = std::make_shared<eddy::VirtualClock>();
///     eddy::Loop loop(eddy::LoopOptions().use_clock(clock));  // call_later(3600, f): f runs at
///     once
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(time_point start = time_point{}) noexcept
      : now_(start.time_since_epoch().count()) {}

  time_point now() const noexcept override {
    return time_point{duration{now_.load(std::memory_order_relaxed)}};
  }
  /// Moves time forward by `d` (a negative `d` is ignored). Time saturates
  /// at time_point::max() (about 292 years from the epoch) rather than wrap
  /// to the past: it never goes backwards, and advance() stays noexcept.
  void advance(duration d) noexcept;
  /// The same for a duration in other units (seconds, hours, a double
  /// count): converted saturating, so that hours::max() is "as far as time
  /// goes", where an implicit conversion to nanoseconds would overflow.
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) noexcept {
    const long double ns = std::chrono::duration<long double, std::nano>(d).count();
    if (!(ns > 0)) return;  // negative, zero or NaN: ignored, as above
    advance(saturated(ns));
  }
  /// Moves time forward to `t`; does nothing if `t` is not in the future.
  void advance_to(time_point t) noexcept;
  /// The same for a time point in other units: converted saturating, as
  /// advance() converts (a time beyond time_point::max() is max(); one
  /// before min() is the past; NaN is ignored).
  template <class Dur>
  void advance_to(std::chrono::time_point<Clock, Dur> t) noexcept {
    const long double ns =
        std::chrono::duration<long double, std::nano>(t.time_since_epoch()).count();
    if (ns != ns) return;  // NaN
    advance_to(time_point(saturated(ns)));
  }

 private:
  /// `ns` nanoseconds (not NaN), clamped to what `duration` holds.
  static duration saturated(long double ns) noexcept {
    constexpr auto most = static_cast<long double>(duration::max().count());
    constexpr auto least = static_cast<long double>(duration::min().count());
    if (ns >= most) return duration::max();
    if (ns <= least) return duration::min();
    return duration(static_cast<duration::rep>(ns));
  }

  std::atomic<std::int64_t> now_;
};

}  // namespace eddy
