// timeout / timeout_at: a deadline for part of a task. Mirrors: asyncio.timeout.
#pragma once

#include <chrono>
#include <coroutine>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "eddy/errors.hpp"
#include "eddy/handle.hpp"
#include "eddy/loop.hpp"
#include "eddy/sleep.hpp"
#include "eddy/task.hpp"

namespace eddy {
namespace detail {
/// What timeout()'s TimeoutError says.
inline constexpr const char* kTimeoutExpired = "eddy::timeout: the deadline passed";
}  // namespace detail

/// The deadline of a timeout block, which the block may move. Mirrors:
/// asyncio.Timeout. The block receives it as `Timeout&`:
///
///     co_await eddy::timeout(5.0, [&](eddy::Timeout& t) -> eddy::Task<> {
///       co_await first_part();
///       t.reschedule(t.when().value() + 5.0);  // more time for the rest
///       co_await second_part();
///     });
///
/// When the deadline passes, the block's current await is cancelled (its
/// CancelledError carries this scope as origin()); when that cancellation
/// leaves the block, timeout() throws TimeoutError instead. See
/// "Cancellation" in <eddy/task.hpp> for how scopes nest.
///
/// The Timeout lives in timeout()'s own coroutine frame: the reference is
/// valid only until the block ends. Keep no pointer to it past the block
/// (asyncio's context manager object outlives its block, and reschedule()
/// on it then raises RuntimeError; in eddy there is nothing left to call).
/// Read expired() or when() inside the block, or keep what they say.
class Timeout {
 public:
  /// `timeout_message`: what its TimeoutError says (a static string: eddy's
  /// combinators built on a timeout name themselves).
  Timeout(detail::TaskCore& task, std::optional<double> when,
          const char* timeout_message = detail::kTimeoutExpired)
      : task_(&task), timeout_message_(timeout_message) {
    reschedule(when);  // first: if it throws (NaN), no scope is left on the task
    task.push_scope(scope_);
  }
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
  ~Timeout() {
    timer_.cancel();
    task_->pop_scope(scope_);
  }

  /// The deadline (seconds on the loop's clock), or nullopt for none.
  std::optional<double> when() const noexcept { return when_; }
  /// Moves the deadline; nullopt removes it, and so does +infinity in effect
  /// (when() then says infinity, as asyncio's does); a time already past
  /// (-infinity too) expires the block through call_soon, before what the
  /// block then awaits (asyncio's order: `sleep(0)` in the block throws).
  /// Throws RuntimeError once it has expired, std::invalid_argument for NaN
  /// (the deadline then stays as it was).
  void reschedule(std::optional<double> when) {
    if (scope_.fired) {
      throw RuntimeError("eddy::Timeout::reschedule: the timeout has already expired");
    }
    Handle next;  // scheduled first: if that throws (NaN), nothing changed
    if (when && *when != std::numeric_limits<double>::infinity()) {
      Loop& loop = task_->loop();
      if (*when <= loop.time()) {
        next = loop.call_soon([this] { expire(); });
      } else {
        next = loop.call_at(*when, [this] { expire(); });
      }
    }
    timer_.cancel();
    timer_ = next;
    when_ = when;
  }
  /// True once the deadline passed and the block was cancelled for it.
  bool expired() const noexcept { return scope_.fired; }

  /// The scope whose cancellations this timeout owns (for eddy's combinators).
  const detail::CancelScope& scope() const noexcept { return scope_; }
  /// At the block's exit with a CancelledError `error`: throws the outcome
  /// (TimeoutError for its own cancellation, CancelledError if the task's
  /// own cancel() is also pending, else `error` again). Call in the catch.
  [[noreturn]] void rethrow_cancelled(const CancelledError& error) {
    if (error.origin() != &scope_) throw;
    if (auto message = task_->take_pending_external()) throw CancelledError(std::move(*message));
    throw TimeoutError(timeout_message_);
  }

 private:
  void expire() {
    try {
      task_->request_cancel(&scope_, {});
    } catch (const std::bad_alloc&) {
      // Out of memory passing the cancellation on, which changed nothing:
      // tried again on a later pass, as due timers that the ready queue
      // cannot take are (the timer's own slot, just freed, takes it), and
      // the exception handler is told.
      timer_ = task_->loop().call_at(task_->loop().now(), [this] { expire(); });
      throw;
    }
  }

  detail::TaskCore* task_;
  const char* timeout_message_;
  detail::CancelScope scope_;
  Handle timer_;  // the deadline's timer, or its call_soon once past
  std::optional<double> when_;
};

namespace detail {

template <class F>
using BlockTask = std::invoke_result_t<F&, Timeout&>;

/// Runs `block` in a Timeout scope of the current task, due at `when` (from
/// now if `relative`); its TimeoutError says `timeout_message`.
template <class F>
BlockTask<F> run_with_timeout(std::optional<double> when, bool relative, F block,
                              const char* timeout_message = detail::kTimeoutExpired) {
  using T = typename BlockTask<F>::value_type;
  TaskCore& task = co_await ThisTask{};
  if (relative && when) *when += task.loop().time();
  Timeout scope(task, when, timeout_message);
  try {
    if constexpr (std::is_void_v<T>) {
      co_await block(scope);
      co_return;
    } else {
      co_return co_await block(scope);
    }
  } catch (const CancelledError& error) {
    scope.rethrow_cancelled(error);
  }
}

template <class T>
auto block_of(Task<T> task) {
  return [task = std::move(task)](Timeout&) mutable { return std::move(task); };
}

}  // namespace detail

/// Runs `block` (a Task, or a callable taking `Timeout&` and returning a
/// Task) with a deadline `delay` seconds from when it starts; nullopt means
/// no deadline. Returns the block's result. Mirrors: asyncio.timeout.
///
/// When the deadline passes, the block's current await is cancelled; if that
/// cancellation leaves the block, TimeoutError is thrown. If the block
/// finishes anyway (it caught the CancelledError, or what it awaited ignored
/// the cancel), its result stands. If the task's own cancel() arrives as
/// well, CancelledError wins over TimeoutError.
template <class T>
Task<T> timeout(std::optional<double> delay, Task<T> block) {
  return detail::run_with_timeout(delay, true, detail::block_of(std::move(block)));
}
template <class F>
requires std::is_invocable_v<F&, Timeout&> detail::BlockTask<F> timeout(std::optional<double> delay,
                                                                        F block) {
  return detail::run_with_timeout(delay, true, std::move(block));
}
template <class Rep, class Period, class B>
auto timeout(std::chrono::duration<Rep, Period> delay, B block) {
  return timeout(std::optional<double>(detail::to_seconds(delay)), std::move(block));
}

/// Same with an absolute deadline `when` (seconds on the loop's clock, as
/// Loop::time()). Mirrors: asyncio.timeout_at.
template <class T>
Task<T> timeout_at(std::optional<double> when, Task<T> block) {
  return detail::run_with_timeout(when, false, detail::block_of(std::move(block)));
}
template <class F>
requires std::is_invocable_v<F&, Timeout&> detail::BlockTask<F> timeout_at(
    std::optional<double> when, F block) {
  return detail::run_with_timeout(when, false, std::move(block));
}

}  // namespace eddy
