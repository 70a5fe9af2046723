// Handle and TimerHandle: what call_soon, call_later and call_at return.
#pragma once

#include <cstdint>

#include "eddy/clock.hpp"

namespace eddy {

class Loop;
namespace detail {
struct HandleAccess;
}

/// A scheduled callback, returned by Loop::call_soon and
/// Loop::call_soon_threadsafe. Mirrors: asyncio.Handle.
///
/// A Handle is a small value (no allocation): copies refer to the same
/// callback. It must not outlive its Loop.
///
/// Thread safety: cancel() follows the loop's rule for non-thread-safe
/// methods: while the loop runs, call it on the loop's thread.
class Handle {
 public:
  /// A handle that refers to nothing: cancel() does nothing.
  Handle() noexcept = default;

  /// Prevents the callback from running, if it has not run yet, and destroys
  /// it (and what it captured) at once. Calling it again, or after the
  /// callback ran, does nothing. Returns true if this call prevented the run.
  /// Throws WrongThreadError when called from another thread while the loop runs.
  bool cancel();

  /// True once cancel() was called on this object; for a callback still
  /// queued, also when it was cancelled through a copy of this handle.
  bool cancelled() const noexcept;

 protected:
  enum class Kind : std::uint8_t { none, ready, threadsafe, timer };
  Handle(Loop* loop, Kind kind, std::uint64_t id) noexcept : loop_(loop), id_(id), kind_(kind) {}

  Loop* loop_ = nullptr;
  std::uint64_t id_ = 0;
  Kind kind_ = Kind::none;
  bool cancelled_ = false;

  friend class Loop;
  friend struct detail::HandleAccess;
};

/// A callback scheduled for a time, returned by Loop::call_later and
/// Loop::call_at. Mirrors: asyncio.TimerHandle.
class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;

  /// The deadline in seconds on the loop's clock (compare with Loop::time()).
  double when() const noexcept {
    return static_cast<double>(deadline_.time_since_epoch().count()) * 1e-9;
  }
  /// The deadline as a time point on the loop's clock (compare with Loop::now()).
  Clock::time_point deadline() const noexcept { return deadline_; }

 private:
  TimerHandle(Loop* loop, std::uint64_t id, Clock::time_point deadline) noexcept
      : Handle(loop, Kind::timer, id), deadline_(deadline) {}

  Clock::time_point deadline_{};

  friend class Loop;
};

namespace detail {
/// For eddy's own awaiters: a timer's handle kept as its id alone (8 bytes
/// in a coroutine frame instead of a TimerHandle's 32), and made again.
struct HandleAccess {
  static std::uint64_t id(const Handle& h) noexcept { return h.id_; }
  static Handle timer(Loop& loop, std::uint64_t id) noexcept {
    return Handle(&loop, Handle::Kind::timer, id);
  }
};
}  // namespace detail

}  // namespace eddy
