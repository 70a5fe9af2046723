// run_coroutine_threadsafe: hand a coroutine to a loop from another thread.
// Mirrors: asyncio.run_coroutine_threadsafe.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "eddy/concurrent_future.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop.hpp"
#include "eddy/loop_thread.hpp"
#include "eddy/task.hpp"

namespace eddy {

namespace detail {

/// Between a task and the ConcurrentFuture of run_coroutine_threadsafe.
/// `task` is read and written on the loop's thread only; other threads only
/// post closures that read it there.
struct ThreadsafeLink {
  FutureCore* task = nullptr;  // the task's future while it is pending
};

/// What the task's done callback holds: the ConcurrentFuture and the link.
/// One allocation, made before the task, so that the callback is one
/// pointer and fits in the task's future without allocating.
template <class T>
struct DeliveryTarget {
  ConcurrentFuture<T> result;
  std::shared_ptr<ThreadsafeLink> link;
};

/// The task's done callback: copies its outcome to the ConcurrentFuture.
/// Destroyed unrun (the loop closed with the task pending), it cancels the
/// ConcurrentFuture, so that nobody waits forever.
template <class T>
class DeliverToConcurrent {
 public:
  explicit DeliverToConcurrent(std::shared_ptr<DeliveryTarget<T>> target) noexcept
      : target_(std::move(target)) {}
  DeliverToConcurrent(DeliverToConcurrent&&) noexcept = default;
  DeliverToConcurrent& operator=(DeliverToConcurrent&&) = delete;
  ~DeliverToConcurrent() {
    if (!target_) return;  // moved from
    target_->link->task = nullptr;
    if (!target_->result.done()) target_->result.cancel();
  }
  void operator()(Future<T>& done) {
    try {
      follow_outcome(done, target_->result);
    } catch (const InvalidStateError&) {
      // Cancelled from another thread meanwhile; that cancel reached the task.
    }
  }

 private:
  std::shared_ptr<DeliveryTarget<T>> target_;
};

/// The loop callback of run_coroutine_threadsafe: creates the task on the
/// loop's thread. Destroyed unrun (the loop closed before it got to it), it
/// cancels the ConcurrentFuture, so that nobody waits forever.
template <class T>
class SubmitTask {
 public:
  SubmitTask(Task<T> task, ConcurrentFuture<T> result, Loop& loop)
      : task_(std::move(task)), result_(std::move(result)), loop_(&loop) {}
  SubmitTask(SubmitTask&&) noexcept = default;
  SubmitTask& operator=(SubmitTask&&) = delete;
  ~SubmitTask() {
    // The task is still here only if this never ran (or was moved from: then
    // it is empty too), or if it ran after result_ was already done.
    if (task_.valid() && !result_.done()) result_.cancel();
  }

  void operator()() {
    if (result_.done()) return;  // cancelled before the loop got to it: never runs
    // Everything that may throw comes before the task exists: a failure
    // (out of memory) fails the returned future, and no task runs unwatched.
    Future<T> future;
    std::shared_ptr<DeliveryTarget<T>> target;
    try {
      auto link = std::make_shared<ThreadsafeLink>();
      target = std::make_shared<DeliveryTarget<T>>(DeliveryTarget<T>{result_, link});
      // A cancel of the returned future, from any thread, reaches the task on
      // the loop's thread (if it is still pending there): the task is made
      // on this thread before the posted cancel runs. Through the loop's
      // lifeline: the cancel may come as, or after, the loop is destroyed
      // (a closed or destroyed loop took its tasks with it).
      result_.add_done_callback(
          [link, lifeline = LoopExtensions::lifeline(*loop_)](ConcurrentFuture<T>& done) {
            if (!done.cancelled()) return;
            post_to_loop(*lifeline, [link] {
              if (link->task != nullptr) cancel_core(*link->task, {});
            });
          });
      future = loop_->create_task(std::move(task_));
    } catch (...) {
      try {
        result_.set_exception(std::current_exception());
      } catch (const InvalidStateError&) {
      }
      throw;  // to the loop's exception handler too, as asyncio's callback re-raises
    }
    target->link->task = FutureAccess::shared(future);
    // The task's first done callback, one pointer: stored in place, unless
    // a task factory added callbacks before it.
    DeliverToConcurrent<T> deliver(std::move(target));
    try {
      future.add_done_callback(std::move(deliver));
    } catch (...) {
      // Nobody would hear of the task: the returned future fails with the
      // error, as when the task cannot be made, and the task is cancelled
      // before its first step.
      try {
        result_.set_exception(std::current_exception());
      } catch (...) {
      }
      future.cancel();
      throw;
    }
  }

 private:
  Task<T> task_;
  ConcurrentFuture<T> result_;
  Loop* loop_;
};

}  // namespace detail

/// Schedules `task` on `loop` from any thread and returns a ConcurrentFuture
/// for its result. Mirrors: asyncio.run_coroutine_threadsafe.
///
/// - The task is created on the loop's thread (create_task, through
///   call_soon_threadsafe); its result, exception or cancellation reaches
///   the returned future.
/// - Cancelling the returned future cancels the task (on the loop's thread);
///   if that happens before the loop picked the task up, it never runs.
///   The returned future stays pending (never running) until the task ends,
///   so it can be cancelled at any time, as in asyncio.
/// - Closing the loop while the task is pending cancels the returned future
///   (nobody waits forever), even if the loop never picked the task up
///   (asyncio leaves that future pending).
/// - Throws InvalidStateError for an empty Task and LoopClosedError if the
///   loop is closed (the task is destroyed, never run).
///
/// Thread safety: call it from any thread. Do not call it on the loop's
/// thread and then block on the result: the loop could never run the task.
template <class T>
ConcurrentFuture<T> run_coroutine_threadsafe(Task<T> task, Loop& loop) {
  if (!task.valid()) {
    throw InvalidStateError("eddy::run_coroutine_threadsafe: the Task is empty");
  }
  ConcurrentFuture<T> result;
  loop.call_soon_threadsafe(detail::SubmitTask<T>(std::move(task), result, loop));
  return result;
}

namespace detail {

/// Owns a coroutine function and its arguments for as long as the coroutine
/// it makes runs (a lambda's captures live in the lambda, not in the frame).
/// The arguments are passed as rvalues, as std::thread passes its own: a
/// parameter by value takes them over (move-only ones too), a reference
/// parameter sees the owned copy, alive until the coroutine ends.
template <class F, class... Args>
auto call_owned(F fn, Args... args) -> std::invoke_result_t<F&, Args&&...> {
  co_return co_await std::invoke(fn, std::move(args)...);
}

}  // namespace detail

template <class F, class... Args>
auto LoopThread::submit(F&& fn, Args&&... args) {
  detail::check_callable(fn, "eddy::LoopThread::submit");
  return run_coroutine_threadsafe(
      detail::call_owned(std::decay_t<F>(std::forward<F>(fn)),
                         std::decay_t<Args>(std::forward<Args>(args))...),
      loop_);
}

}  // namespace eddy
