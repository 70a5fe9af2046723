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

/// What wait_for's TimeoutError says, whichever way the timeout passed.
inline constexpr const char* kWaitForTimedOut = "eddy::wait_for: the timeout passed";

/// Waits until `future` is done, without taking its result (a cancellation
/// of the future does not throw here). A cancellation of the awaiting task
/// ends the wait at once, with CancelledError: as asyncio's
/// _cancel_and_wait, it waits on a future of its own, completed by a done
/// callback of `future`, rather than on `future`, so that it stays
/// cancellable.
template <class T>
Task<void> wait_done(Future<T> future) {
  Future<void> waiter = make_future<void>(*FutureAccess::shared(future)->loop);
  DoneCallbackId id = future.add_done_callback([waiter]() mutable {
    if (!waiter.done()) waiter.set_result();
  });
  struct Remove {
    Future<T>& future;
    DoneCallbackId id;
    ~Remove() { future.remove_done_callback(id); }
  } remove{future, id};
  co_await waiter;
}

template <class T>
Task<T> await_future(Future<T> future) {
  co_return co_await std::move(future);
}

template <class A>
using AwaitResult = decltype(std::declval<A&>().await_resume());

/// Runs another eddy awaitable (an awaiter object) as a Task.
template <class A>
Task<AwaitResult<A>> await_as_task(A awaitable) {
  if constexpr (std::is_void_v<AwaitResult<A>>) {
    co_await std::move(awaitable);
  } else {
    co_return co_await std::move(awaitable);
  }
}

template <class A>
inline constexpr bool is_task_or_future = false;
template <class T>
inline constexpr bool is_task_or_future<Task<T>> = true;
template <class T>
inline constexpr bool is_task_or_future<Future<T>> = true;

}  // namespace detail

/// Awaits `task` for at most `timeout` seconds. Mirrors: asyncio.wait_for.
///
/// Returns its result if it finishes in time. Otherwise its current await is
/// cancelled, it runs on to its end, and TimeoutError is thrown — unless it
/// finished despite the cancel, in which case its result is returned. With
/// `timeout <= 0` a Task never starts (TimeoutError after one yield, or
/// CancelledError if the caller is cancelled meanwhile); nullopt (or
/// +infinity, as asyncio's never-firing timer) means no limit. The task runs
/// inline, in the calling task (as asyncio 3.12 runs a coroutine):
/// cancelling the caller cancels it too.
///
/// The rules are asyncio 3.12's (wait_for built on timeout()), not 3.11's:
/// a result due at the very moment of the deadline loses to it (3.11
/// returns it), and a cancel of the caller in the iteration the awaited
/// one finishes is not swallowed (3.11 returns the value: CPython
/// gh-86296).
template <class T>
Task<T> wait_for(Task<T> task, std::optional<double> timeout) {
  if (timeout && *timeout <= 0) {
    // An empty Task, or one that already ran: InvalidStateError, as with a
    // positive timeout.
    (void)task.operator co_await().await_ready();
    task = Task<T>();  // never started, as asyncio cancels a task that has not run
    // asyncio waits for that cancelled task to end: the caller suspends, and
    // a cancel() pending on it is thrown there instead of the TimeoutError.
    co_await sleep(0);
    throw TimeoutError(detail::kWaitForTimedOut);
  }
  co_return co_await detail::run_with_timeout(timeout, true, detail::block_of(std::move(task)),
                                              detail::kWaitForTimedOut);
}

/// Same for a future: with `timeout <= 0` a done future gives its result, a
/// pending one is cancelled and awaited to its end (TimeoutError if it ended
/// with a CancelledError, also a gather's; else its result or its error). A
/// cancel of the caller during that wait throws CancelledError at once, as
/// in asyncio.
template <class T>
Task<T> wait_for(Future<T> future, std::optional<double> timeout) {
  detail::check_not_empty(future);
  if (timeout && *timeout <= 0) {
    if (&future.get_loop() != &get_running_loop()) {
      // Before anything is cancelled (asyncio's ensure_future raises first).
      throw std::invalid_argument("eddy::wait_for: the future belongs to another loop");
    }
    if (!future.done()) {
      future.cancel();
      co_await detail::wait_done(future);
      // Any CancelledError, also a gather's (finished with one), means the
      // cancel ended it, as asyncio's wait_for turns result()'s into TimeoutError.
      if (detail::take_cancellation(*detail::FutureAccess::shared(future))) {
        throw TimeoutError(detail::kWaitForTimedOut);
      }
    }
    co_return detail::take_result(future);
  }
  co_return co_await detail::run_with_timeout(
      timeout, true, detail::block_of(detail::await_future(std::move(future))),
      detail::kWaitForTimedOut);
}

/// Same for another eddy awaitable, such as `queue.get()`, `queue.put(x)`
/// or `gen.next()` (asyncio's wait_for takes any awaitable): it runs as a
/// Task, with the Task's rules above. `wait_for(queue.get(), 1.0)` that
/// times out takes no item.
template <class A>
requires(!detail::is_task_or_future<A>) && requires(A& a) {
  a.await_resume();
}
Task<detail::AwaitResult<A>> wait_for(A awaitable, std::optional<double> timeout) {
  static_assert(!detail::ForeignAwaitable<A&>,
                "eddy::wait_for: not an eddy awaitable (it suspends without telling the task, "
                "so neither the timeout nor a cancel could reach it)");
  return wait_for(detail::await_as_task(std::move(awaitable)), timeout);
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
