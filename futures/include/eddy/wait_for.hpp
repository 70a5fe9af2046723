// wait_for: await with a time limit. Mirrors: asyncio.wait_for.
#pragma once

#include <chrono>
#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/sleep.hpp"
#include "eddy/task.hpp"
#include "eddy/timeout.hpp"

namespace eddy {
namespace detail {

/// Resumes when `future` is done, without taking its result (so a
/// cancellation of the future does not throw here).
template <class T>
class DoneAwaiter {
 public:
  explicit DoneAwaiter(Future<T> future) : future_(std::move(future)) {}
  bool await_ready() const { return future_.done(); }
  template <EddyPromise P>
  void await_suspend(std::coroutine_handle<P> at) {
    TaskCore& task = *at.promise().task;
    add_core_done_callback(*FutureAccess::shared(future_), StepTask(task));
    task_ = &task;
    task.suspend(at, Waiter{});
  }
  void await_resume() {
    if (task_ != nullptr) task_->resumed(false);
  }

 private:
  Future<T> future_;
  TaskCore* task_ = nullptr;
};

template <class T>
Task<T> await_future(Future<T> future) {
  co_return co_await std::move(future);
}

}  // namespace detail

/// Awaits `task` for at most `timeout` seconds. Mirrors: asyncio.wait_for.
///
/// Returns its result if it finishes in time. Otherwise its current await is
/// cancelled, it runs on to its end, and TimeoutError is thrown — unless it
/// finished despite the cancel, in which case its result is returned. With
/// `timeout <= 0` a Task never starts (TimeoutError at once); nullopt means
/// no limit. The task runs inline, in the calling task (as asyncio 3.12 runs
/// a coroutine): cancelling the caller cancels it too.
template <class T>
Task<T> wait_for(Task<T> task, std::optional<double> timeout) {
  if (timeout && *timeout <= 0) {
    task = Task<T>();  // never started, as asyncio cancels a task that has not run
    throw TimeoutError("eddy::wait_for: the timeout passed");
  }
  co_return co_await eddy::timeout(timeout, std::move(task));
}

/// Same for a future: with `timeout <= 0` a done future gives its result, a
/// pending one is cancelled and awaited to its end (its result if it finished
/// despite the cancel, else TimeoutError).
template <class T>
Task<T> wait_for(Future<T> future, std::optional<double> timeout) {
  if (timeout && *timeout <= 0) {
    if (!future.done()) {
      future.cancel();
      co_await detail::DoneAwaiter<T>(future);
      if (future.cancelled()) throw TimeoutError("eddy::wait_for: the timeout passed");
    }
    co_return detail::take_result(future);
  }
  co_return co_await eddy::timeout(timeout, detail::await_future(std::move(future)));
}

template <class A, class Rep, class Period>
auto wait_for(A awaitable, std::chrono::duration<Rep, Period> timeout) {
  return wait_for(std::move(awaitable), std::optional<double>(detail::to_seconds(timeout)));
}
template <class A>
auto wait_for(A awaitable, double timeout) {
  return wait_for(std::move(awaitable), std::optional<double>(timeout));
}

}  // namespace eddy
