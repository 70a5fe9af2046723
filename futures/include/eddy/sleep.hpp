// sleep: suspend a task for a while. Mirrors: asyncio.sleep.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "eddy/handle.hpp"
#include "eddy/loop.hpp"
#include "eddy/task.hpp"

namespace eddy {
namespace detail {

/// A sleep with a delay: `task` (suspending at `at`) steps when the timer
/// fires. Out of line, so that sleep(0), a bare yield, stays short.
void suspend_on_timer(Loop& loop, TaskCore& task, std::coroutine_handle<> at, double delay);

/// Suspends the awaiting task for `delay` seconds (on its loop), then yields
/// `value`. A delay of zero or less yields exactly once, through call_soon.
///
/// It lives in the awaiting coroutine's frame, so it keeps only the delay
/// (and the value): the task is TaskCore::current when it resumes, and the
/// timer's id travels in the task's Waiter.
template <class T>
class SleepAwaiter {
 public:
  SleepAwaiter(double delay, T value) : delay_(delay), value_(std::move(value)) {}

  bool await_ready() const noexcept { return false; }
  template <EddyPromise P>
  void await_suspend(std::coroutine_handle<P> at) {
    TaskCore& task = *TaskCore::current;
    // The running loop is the task's; asked of the thread, not of the task's
    // state, so that a burst of sleeping tasks reads one line less of each.
    Loop* running = try_get_running_loop();
    if (!(delay_ <= 0)) {  // NaN too: call_later rejects it
      suspend_on_timer(running != nullptr ? *running : task.loop(), task, at, delay_);
    } else {
      // asyncio's sleep(0): a bare yield that a cancel cannot cut short (it
      // is delivered when the task resumes).
      if (running != nullptr) [[likely]] {
        LoopExtensions::call_soon_running(*running, StepTask(task));
      } else {
        task.loop().call_soon(StepTask(task));
      }
      task.suspend(at, Waiter{});
    }
  }
  auto await_resume() {
    TaskCore& task = *TaskCore::current;
    task.resumed(task.wait_interrupted());
    if constexpr (!std::is_same_v<T, NoValue>) return std::move(value_);
  }

 private:
  double delay_;
  [[no_unique_address]] T value_;
};

template <class Rep, class Period>
double to_seconds(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace detail

/// Suspends the calling task for `delay` seconds, on its loop's clock.
/// Mirrors: asyncio.sleep.
///
/// `co_await sleep(0)` yields exactly once: the task resumes on a later
/// iteration, after the callbacks already ready. `co_await sleep(d, value)`
/// returns `value`. Cancellation: a cancel during the sleep ends it at once
/// and the await throws CancelledError. `sleep(+infinity)` sleeps until
/// the task is cancelled, as asyncio's does (no timer is set: a virtual
/// clock does not jump for it); a negative delay, -infinity too, is
/// sleep(0). Throws std::invalid_argument for NaN (asyncio's sleep(nan)
/// never returns). Only inside an eddy Task.
/// (Any arithmetic delay type, so that `sleep(1)` means eddy's, not POSIX's.)
template <class N>
requires std::is_arithmetic_v<N> detail::SleepAwaiter<detail::NoValue> sleep(N delay) {
  return {static_cast<double>(delay), detail::NoValue{}};
}
template <class N, class T>
requires std::is_arithmetic_v<N> detail::SleepAwaiter<std::decay_t<T>> sleep(N delay, T&& value) {
  return {static_cast<double>(delay), std::forward<T>(value)};
}
template <class Rep, class Period>
detail::SleepAwaiter<detail::NoValue> sleep(std::chrono::duration<Rep, Period> delay) {
  return {detail::to_seconds(delay), detail::NoValue{}};
}
template <class Rep, class Period, class T>
detail::SleepAwaiter<std::decay_t<T>> sleep(std::chrono::duration<Rep, Period> delay, T&& value) {
  return {detail::to_seconds(delay), std::forward<T>(value)};
}

}  // namespace eddy
