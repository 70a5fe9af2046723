// ConcurrentFuture<T>: a thread-safe result with blocking waits, and
// wrap_future, its bridge to a loop's Future<T>.
// Mirrors: concurrent.futures.Future and asyncio.wrap_future.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop.hpp"

namespace eddy {

/// A concurrent future's state. `running` exists only here: an executor
/// moves a job to it when a worker starts it, after which cancel() fails.
enum class ConcurrentState : std::uint8_t { pending, running, cancelled, finished };

namespace detail {
struct ConcurrentFutureAccess;  // <eddy/executor.hpp>: completes a future unless it was cancelled
}

/// A result that another thread delivers. Mirrors: concurrent.futures.Future.
///
/// Thread safety: every method may be called from any thread. Copies share
/// one state (reference counted atomically).
///
/// Rules (concurrent.futures'):
/// - result(timeout) / exception(timeout) block until done; with a timeout
///   that expires they throw TimeoutError; on a cancelled future they throw
///   CancelledError; result() rethrows a stored exception.
/// - cancel() fails (returns false) once the future is running or finished;
///   it returns true for a pending or an already cancelled future.
///   Exception (not in concurrent.futures): a running future whose executor
///   registered a stop_source (set_running_or_notify_cancel(stop_source))
///   can be cancelled: cancel() cancels it at once, wakes the waiters, then
///   requests stop on that source, and returns true. The job's eventual
///   result is discarded.
/// - set_running_or_notify_cancel(): what an executor calls before running
///   the job: false if the future was cancelled (the job must not run), true
///   after moving it to running; InvalidStateError if it was already running
///   or finished, or if it already answered false (concurrent.futures'
///   CANCELLED_AND_NOTIFIED: one executor, one call).
/// - set_result / set_exception on a cancelled or finished future throw
///   InvalidStateError.
/// - Done callbacks run on the thread that completes the future, in
///   registration order, after every waiter was woken; one added to a done
///   future runs at once on the caller's thread. A callback that throws is
///   reported on stderr (there is no loop to report to) and the rest still run.
template <class T>
class ConcurrentFuture {
 public:
  using value_type = T;
  using Callback = std::function<void(ConcurrentFuture&)>;

  /// A new pending future.
  ConcurrentFuture() : state_(std::make_shared<State>()) {}

  /// False for a moved-from ConcurrentFuture, whose every other method
  /// throws InvalidStateError.
  bool valid() const noexcept { return state_ != nullptr; }

  bool done() const {
    check_valid("done");
    return is(ConcurrentState::cancelled) || is(ConcurrentState::finished);
  }
  bool running() const {
    check_valid("running");
    return is(ConcurrentState::running);
  }
  bool cancelled() const {
    check_valid("cancelled");
    return is(ConcurrentState::cancelled);
  }
  ConcurrentState state() const {
    check_valid("state");
    std::lock_guard lock(state_->mutex);
    return state_->state;
  }

  /// Blocks until done; returns the result (a reference into the shared
  /// state: move from it to take a move-only value).
  std::add_lvalue_reference_t<T> result() const { return result_impl(std::nullopt); }
  template <class Rep, class Period>
  std::add_lvalue_reference_t<T> result(std::chrono::duration<Rep, Period> timeout) const {
    return result_impl(to_duration(timeout));
  }
  /// Same, with the timeout in seconds, as concurrent.futures spells it.
  std::add_lvalue_reference_t<T> result(double timeout_seconds) const {
    return result_impl(to_duration(timeout_seconds));
  }

  /// Blocks until done; returns the stored exception (null for a result).
  std::exception_ptr exception() const { return exception_impl(std::nullopt); }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    return exception_impl(to_duration(timeout));
  }
  std::exception_ptr exception(double timeout_seconds) const {
    return exception_impl(to_duration(timeout_seconds));
  }

  /// Cancels a pending future (or a running one that can be interrupted);
  /// see the rules above.
  bool cancel() {
    check_valid("cancel");
    std::unique_lock lock(state_->mutex);
    if (state_->state == ConcurrentState::cancelled) return true;
    std::stop_source interrupt{std::nostopstate};
    if (state_->state == ConcurrentState::running && state_->interrupt.stop_possible()) {
      interrupt = std::move(state_->interrupt);
    } else if (state_->state != ConcurrentState::pending) {
      return false;
    }
    state_->state = ConcurrentState::cancelled;
    complete(lock);
    // After unlocking: request_stop runs the job's stop_callbacks, which may
    // look at this future.
    if (interrupt.stop_possible()) interrupt.request_stop();
    return true;
  }

  bool set_running_or_notify_cancel() {
    return set_running_or_notify_cancel(std::stop_source(std::nostopstate));
  }
  /// Same, registering the stop_source whose token the job polls: cancel()
  /// then interrupts the running job (see the rules above).
  bool set_running_or_notify_cancel(std::stop_source interrupt) {
    check_valid("set_running_or_notify_cancel");
    std::lock_guard lock(state_->mutex);
    switch (state_->state) {
      case ConcurrentState::cancelled:
        // concurrent.futures: CANCELLED -> CANCELLED_AND_NOTIFIED, once.
        if (state_->notified) {
          throw InvalidStateError(
              "eddy::ConcurrentFuture::set_running_or_notify_cancel: the cancellation was "
              "already notified");
        }
        state_->notified = true;
        return false;
      case ConcurrentState::pending:
        state_->state = ConcurrentState::running;
        state_->interrupt = std::move(interrupt);
        return true;
      default:
        throw InvalidStateError(
            "eddy::ConcurrentFuture::set_running_or_notify_cancel: the future is already "
            "running or finished");
    }
  }

  template <class U = T>
  requires(!std::is_void_v<U>) void set_result(U value) {
    check_valid("set_result");
    std::unique_lock lock(state_->mutex);
    check_settable("set_result");
    state_->value.emplace(std::move(value));
    state_->state = ConcurrentState::finished;
    complete(lock);
  }
  void set_result() requires std::is_void_v<T> {
    check_valid("set_result");
    std::unique_lock lock(state_->mutex);
    check_settable("set_result");
    state_->state = ConcurrentState::finished;
    complete(lock);
  }

  void set_exception(std::exception_ptr error) {
    check_valid("set_exception");
    if (!error) {
      throw std::invalid_argument("eddy::ConcurrentFuture::set_exception: the exception is null");
    }
    std::unique_lock lock(state_->mutex);
    check_settable("set_exception");
    state_->exception = std::move(error);
    state_->state = ConcurrentState::finished;
    complete(lock);
  }
  template <class E>
  requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>) void set_exception(E&& error) {
    set_exception(std::make_exception_ptr(std::forward<E>(error)));
  }

  /// Adds `fn`, called as `fn(future)` when the future is done (see the
  /// rules). `fn` may be move-only (it is stored as one, not as a Callback);
  /// an empty one (a null pointer or std::function) is refused with
  /// std::invalid_argument.
  template <class F>
  requires std::is_invocable_v < std::decay_t<F>
  &, ConcurrentFuture& > void add_done_callback(F&& callable) {
    check_valid("add_done_callback");
    detail::check_callable(callable, "eddy::ConcurrentFuture::add_done_callback");
    Stored fn(std::forward<F>(callable));
    {
      std::lock_guard lock(state_->mutex);
      if (state_->state != ConcurrentState::cancelled &&
          state_->state != ConcurrentState::finished) {
        state_->callbacks.push_back(std::move(fn));
        return;
      }
    }
    invoke(fn);
  }

 private:
  template <class U>
  friend Future<U> wrap_future(ConcurrentFuture<U> concurrent, Loop& loop, SourceLocation where);
  friend struct detail::ConcurrentFutureAccess;

  /// A done callback as kept: move-only callables too.
  using Stored = detail::SmallFunction<void(ConcurrentFuture&)>;
  struct State;
  explicit ConcurrentFuture(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
  std::weak_ptr<State> weak() const noexcept { return state_; }
  static std::optional<ConcurrentFuture> lock(const std::weak_ptr<State>& weak) {
    if (std::shared_ptr<State> state = weak.lock()) return ConcurrentFuture(std::move(state));
    return std::nullopt;
  }

  struct State {
    mutable std::mutex mutex;
    std::condition_variable done_cv;
    ConcurrentState state = ConcurrentState::pending;
    std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;  // unused for void
    std::exception_ptr exception;
    std::vector<Stored> callbacks;
    std::stop_source interrupt{std::nostopstate};  // while running: see cancel()
    bool notified = false;  // set_running_or_notify_cancel saw the cancellation
  };

  /// Any chrono duration, through seconds as a double: a huge one (hours::max())
  /// means no timeout rather than an overflow, as for the double overloads.
  template <class Rep, class Period>
  static std::optional<std::chrono::nanoseconds> to_duration(
      std::chrono::duration<Rep, Period> timeout) {
    return to_duration(std::chrono::duration<double>(timeout).count());
  }
  static std::optional<std::chrono::nanoseconds> to_duration(double seconds) {
    if (!(seconds == seconds)) {
      throw std::invalid_argument("eddy::ConcurrentFuture: the timeout is NaN");
    }
    if (seconds > 1e9) return std::nullopt;  // decades: as good as no timeout
    return std::chrono::nanoseconds(static_cast<std::int64_t>(seconds < 0 ? 0 : seconds * 1e9));
  }

  void check_valid(const char* method) const {
    if (state_ == nullptr) [[unlikely]] {
      throw InvalidStateError(std::string("eddy::ConcurrentFuture::") + method +
                              ": the ConcurrentFuture is empty (moved from)");
    }
  }
  bool is(ConcurrentState s) const {
    std::lock_guard lock(state_->mutex);
    return state_->state == s;
  }

  void check_settable(const char* method) const {
    if (state_->state == ConcurrentState::cancelled || state_->state == ConcurrentState::finished) {
      throw InvalidStateError(std::string("eddy::ConcurrentFuture::") + method +
                              ": the future is already done");
    }
  }

  // For executors: complete a running future unless it was cancelled
  // meanwhile (then the outcome is dropped). Returns whether it completed.
  template <class... V>
  bool finish_unless_cancelled(std::exception_ptr error, V&&... value) {
    std::unique_lock lock(state_->mutex);
    if (state_->state == ConcurrentState::cancelled || state_->state == ConcurrentState::finished) {
      return false;  // (finished: someone else completed it; theirs stands)
    }
    if (error) {
      state_->exception = std::move(error);
    } else if constexpr (sizeof...(V) != 0) {
      state_->value.emplace(std::forward<V>(value)...);
    }
    state_->state = ConcurrentState::finished;
    state_->interrupt = std::stop_source(std::nostopstate);
    complete(lock);
    return true;
  }

  // Called with the lock held, after the state became cancelled or finished:
  // wakes the waiters, then runs the callbacks without the lock.
  void complete(std::unique_lock<std::mutex>& lock) {
    std::vector<Stored> callbacks = std::move(state_->callbacks);
    state_->callbacks.clear();
    state_->done_cv.notify_all();
    lock.unlock();
    for (Stored& fn : callbacks)
      invoke(fn);
  }

  void invoke(Stored& fn) noexcept {
    try {
      fn(*this);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eddy: a ConcurrentFuture done callback threw: %s\n",
                   detail::what_of(e));
    } catch (...) {
      std::fputs("eddy: a ConcurrentFuture done callback threw a non-standard exception\n", stderr);
    }
  }

  // Waits until done (or the timeout); leaves the lock held.
  void wait(std::unique_lock<std::mutex>& lock, std::optional<std::chrono::nanoseconds> timeout,
            const char* method) const {
    auto is_done = [this] {
      return state_->state == ConcurrentState::cancelled ||
             state_->state == ConcurrentState::finished;
    };
    if (!timeout) {
      state_->done_cv.wait(lock, is_done);
    } else if (!state_->done_cv.wait_for(lock, *timeout, is_done)) {
      throw TimeoutError(std::string("eddy::ConcurrentFuture::") + method +
                         ": the future was not done within the timeout");
    }
    if (state_->state == ConcurrentState::cancelled) throw CancelledError();
  }

  std::add_lvalue_reference_t<T> result_impl(
      std::optional<std::chrono::nanoseconds> timeout) const {
    check_valid("result");
    std::unique_lock lock(state_->mutex);
    wait(lock, timeout, "result");
    if (state_->exception) {
      std::exception_ptr error = state_->exception;
      lock.unlock();
      std::rethrow_exception(error);
    }
    if constexpr (!std::is_void_v<T>) return *state_->value;
  }

  std::exception_ptr exception_impl(std::optional<std::chrono::nanoseconds> timeout) const {
    check_valid("exception");
    std::unique_lock lock(state_->mutex);
    wait(lock, timeout, "exception");
    return state_->exception;
  }

  std::shared_ptr<State> state_;
};

namespace detail {

/// The loop futures that wrap_future made, while their source may still
/// complete: held by the loop (an extension), on its thread, instead of by
/// the source's done callback. That callback runs, or is destroyed unrun,
/// on whatever thread completes or drops the source, and a Future's
/// reference count is not atomic: a Future<T> copy inside it would be
/// counted on two threads at once. The source side holds a WrapTicket.
///
/// Registers `future` (takes a reference to it); returns its id. On the
/// loop's thread.
std::uint64_t hold_wrapped(Loop& loop, FutureCore& future);
/// Hands over the reference held for `id`, or null if there is none any
/// more (the loop closed). On the loop's thread.
FutureCore* take_wrapped(Loop& loop, std::uint64_t id) noexcept;

/// Queues `on_loop` with call_soon_threadsafe on the loop `lifeline` leads
/// to, from any thread. A loop that is closed or destroyed gets nothing:
/// nothing could observe what `on_loop` would do, and it is dropped.
template <class F>
void post_to_loop(LoopLifeline& lifeline, F on_loop) {
  std::lock_guard<std::mutex> guard(lifeline.mutex);  // the loop cannot go meanwhile
  if (lifeline.loop == nullptr) return;
  try {
    lifeline.loop->call_soon_threadsafe(std::move(on_loop));
  } catch (const LoopClosedError&) {
  }
}

/// The source side's claim on a future held by hold_wrapped: safe to copy
/// and destroy on any thread (it holds no Future, only the loop's lifeline
/// and an id). post() queues the completion on the loop; a ticket never
/// posted asks the loop, as it goes, to let go of the future (the source
/// went away uncompleted: the future ends cancelled, where asyncio's would
/// stay pending forever).
/// A loop that is closed or destroyed gets nothing: it let go of every
/// held future as it closed.
class WrapTicket {
 public:
  explicit WrapTicket(Loop& loop) : lifeline_(LoopExtensions::lifeline(loop)), loop_(&loop) {}
  WrapTicket(const WrapTicket&) = delete;
  WrapTicket& operator=(const WrapTicket&) = delete;
  ~WrapTicket();

  /// Has the loop hold `future` for this ticket (made first, so that a
  /// failure to make it leaves nothing held).
  void hold(FutureCore& future) { id_ = hold_wrapped(*loop_, future); }
  Loop* loop() const noexcept { return loop_; }
  std::uint64_t id() const noexcept { return id_; }
  /// Queues `on_loop` on the loop with call_soon_threadsafe, if the loop is
  /// still open; from any thread. At most once.
  template <class F>
  void post(F on_loop) {
    posted_ = true;
    post_to_loop(*lifeline_, std::move(on_loop));
  }

 private:
  std::shared_ptr<LoopLifeline> lifeline_;
  Loop* loop_;
  std::uint64_t id_ = 0;  // 0: nothing held
  bool posted_ = false;
};

}  // namespace detail

/// A Future<T> on `loop` that follows `concurrent`: it gets the same result,
/// exception or cancellation, delivered on the loop's thread through
/// call_soon_threadsafe. Cancelling the returned future cancels `concurrent`
/// (if it has not started running), and cancelling `concurrent` cancels the
/// returned future. Mirrors: asyncio.wrap_future.
///
/// Call it on the loop's thread (from another one, while the loop runs, it
/// throws WrongThreadError). The loop keeps the returned future alive
/// until `concurrent` completes (its done callbacks run even if nobody else
/// holds it). If the loop is closed, or destroyed, before `concurrent`
/// completes, the result is dropped on the completing thread (as asyncio's
/// callback drops it for a closed loop), and the returned future ends
/// cancelled as the loop closes, as the loop's tasks do. If `concurrent`
/// goes away uncompleted, the returned future ends cancelled too, with a
/// CancelledError that says so, and its done callbacks run (asyncio's would
/// stay pending forever). `concurrent` may be completed, copied and dropped
/// on any thread. A result that cannot be copied is moved out of
/// `concurrent` into the returned future on the loop's thread: the other
/// holders of `concurrent` must not read it (see README, "Futures").
template <class T>
Future<T> wrap_future(ConcurrentFuture<T> given, Loop& loop,
                      SourceLocation where = SourceLocation::current()) {
  // A local, not the parameter: a parameter lives to the end of the
  // caller's full expression, which `co_await wrap_future(std::move(cf),
  // loop)` keeps across the wait, and would hold the source all along.
  detail::LoopExtensions::check_thread(loop, "eddy::wrap_future");  // before anything changes
  ConcurrentFuture<T> concurrent = std::move(given);
  Future<T> future = loop.create_future<T>(where);

  // Loop side -> concurrent side: a cancelled loop future cancels the source.
  // Held weakly: the source's callback leads back to the loop future (below),
  // and a strong reference back would keep the source alive as long as the
  // loop future, which waits for it. A source nobody holds has nothing to cancel.
  future.add_done_callback([source = concurrent.weak()](Future<T>& f) {
    if (!f.cancelled()) return;
    if (std::optional<ConcurrentFuture<T>> alive = ConcurrentFuture<T>::lock(source)) {
      alive->cancel();
    }
  });

  // Concurrent side -> loop side, through the loop (see hold_wrapped).
  auto ticket = std::make_shared<detail::WrapTicket>(loop);
  ticket->hold(*detail::FutureAccess::shared(future));
  concurrent.add_done_callback([ticket](ConcurrentFuture<T>& source) {
    ticket->post([loop = ticket->loop(), id = ticket->id(), source]() mutable {
      detail::FutureCore* held = detail::take_wrapped(*loop, id);
      if (held == nullptr) return;
      Future<T> target =
          detail::FutureAccess::adopt<T>(static_cast<detail::FutureShared<T>*>(held));
      if (target.done()) return;  // cancelled on the loop side meanwhile
      detail::follow_outcome(source, target);
    });
  });
  return future;
}

}  // namespace eddy
