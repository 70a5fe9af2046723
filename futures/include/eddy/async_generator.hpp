// AsyncGenerator<T>: a coroutine that co_yields values and may co_await
// between them. Mirrors: Python's async generators (`async def` + `yield`).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "eddy/errors.hpp"
#include "eddy/task.hpp"

namespace eddy {

/// An asynchronous generator: `co_yield` produces values, `co_await` works
/// between them (sleep, futures, tasks). Mirrors: Python's async generator.
///
///     eddy::AsyncGenerator<int> ticker(double delay, int to) {
///       for (int i = 0; i < to; ++i) {
///         co_yield i;
///         co_await eddy::sleep(delay);
///       }
///     }
///     auto gen = ticker(0.1, 10);
///     while (std::optional<int> i = co_await gen.next()) use(*i);
///
/// - Lazy: the body starts at the first next(). next() resumes it until
///   the next co_yield and returns that value, or nullopt once the body has
///   ended (and every time after). An exception leaving the body is
///   rethrown by the next() that ran it; the generator is then finished.
/// - `Sent` (not void) makes it a push-style generator, like Python's
///   `x = yield v` with `gen.asend(x)`: `co_await gen.send(x)` resumes it
///   with `co_yield` evaluating to `std::optional<Sent>(x)` (next() gives
///   nullopt there). Prime it with next() first: send() to a generator that
///   has not started throws InvalidStateError, as Python's TypeError.
/// - It runs inline in the task that awaits next()/send(): its awaits are
///   that task's, and so is cancellation (a CancelledError thrown at an
///   await inside it comes out of next()).
/// - Destroying the generator (closing it early) destroys its frame: the
///   destructors of its locals run, without resuming it. If a task is inside
///   it at that moment (suspended at an await of the body, its next() not yet
///   answered), the frame lives on until that step ends: the task's next()
///   gets the value it was waiting for (or the end, or the exception), and
///   only then is the frame destroyed. (Python's aclose() raises
///   RuntimeError there and leaves the generator running; a destructor cannot
///   throw, so eddy lets the running step finish and loses nothing.)
/// - next() while it is already running throws InvalidStateError. So does
///   every next() after the task running a step was destroyed inside it (its
///   loop closed): the body is stuck at an await nobody will wake. (Python's
///   generator stays "already running" for good.)
template <class T, class Sent = void>
class [[nodiscard]] AsyncGenerator {
  using SentSlot = std::conditional_t<std::is_void_v<Sent>, detail::NoValue, Sent>;

 public:
  struct promise_type : detail::PromiseBase {
    AsyncGenerator get_return_object() noexcept {
      return AsyncGenerator(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { exception = std::current_exception(); }

    /// Ends back in the consumer that ran the body last.
    struct FinalAwaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        std::coroutine_handle<> next = self.promise().continuation;
        return next ? next : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }

    class YieldAwaiter {
     public:
      explicit YieldAwaiter(promise_type& promise) noexcept : promise_(&promise) {}
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
        return std::exchange(promise_->continuation, {});  // back to the consumer
      }
      auto await_resume() const {
        if constexpr (!std::is_void_v<Sent>) return std::exchange(promise_->sent, std::nullopt);
      }

     private:
      promise_type* promise_;
    };
    template <class U>
    requires std::is_convertible_v<U&&, T> YieldAwaiter yield_value(U&& value) {
      current.emplace(std::forward<U>(value));
      return YieldAwaiter(*this);
    }

    std::coroutine_handle<> continuation;  // the consumer, while the body runs
    std::optional<T> current;
    std::optional<SentSlot> sent;
    std::exception_ptr exception;  // thrown by the body, for the next() that ran it
    bool started = false;
    /// The AsyncGenerator went away while the body ran: the next() that runs
    /// it destroys the frame when the step ends.
    bool orphaned = false;
    /// The task running the body was destroyed inside a step: the body is
    /// suspended at an await nobody will wake, and every next() throws.
    bool interrupted = false;
  };

  AsyncGenerator() noexcept = default;
  AsyncGenerator(AsyncGenerator&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
  AsyncGenerator& operator=(AsyncGenerator other) noexcept {
    std::swap(frame_, other.frame_);
    return *this;
  }
  ~AsyncGenerator() { release(frame_); }

  bool valid() const noexcept { return static_cast<bool>(frame_); }
  /// True once the body has ended (returned or thrown).
  bool done() const noexcept { return !frame_ || frame_.done(); }

  /// What next() and send() return, to be awaited once (a second co_await of
  /// the same one throws InvalidStateError). A sent value travels in the awaiter and
  /// reaches the generator only when it is resumed with it: a send() that is
  /// refused (the generator is running) or never awaited delivers nothing.
  /// It refers to its generator, which must outlive it; next() or send() of
  /// a temporary generator gives an awaiter that takes the generator over
  /// (as Python's awaitable keeps its generator alive), so that
  /// `auto n = make_gen().next(); co_await n;` is safe. It may be moved
  /// before it is awaited (wait_for(gen.next(), t) moves it into a task); the
  /// moved-from one is empty.
  class NextAwaiter {
   public:
    /// Marks the constructors of an awaiter that takes its generator over.
    struct TakeOver {};
    explicit NextAwaiter(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
    NextAwaiter(std::coroutine_handle<promise_type> frame, SentSlot sent)
        : frame_(frame), sent_(std::move(sent)) {}
    NextAwaiter(TakeOver, std::coroutine_handle<promise_type> frame) noexcept
        : frame_(frame), owns_(true) {}
    NextAwaiter(TakeOver, std::coroutine_handle<promise_type> frame, SentSlot sent)
        : frame_(frame), sent_(std::move(sent)), owns_(true) {}
    NextAwaiter(NextAwaiter&& other) noexcept(std::is_nothrow_move_constructible_v<SentSlot>)
        : frame_(std::exchange(other.frame_, {})),
          sent_(std::move(other.sent_)),
          used_(other.used_),
          suspended_(std::exchange(other.suspended_, false)),
          owns_(std::exchange(other.owns_, false)) {}
    NextAwaiter(const NextAwaiter&) = delete;
    NextAwaiter& operator=(const NextAwaiter&) = delete;
    /// If the awaiting coroutine was destroyed while the body ran (its task
    /// ended with the loop's close), the body will not be resumed by it, and
    /// it cannot go on from an await whose wake-up went with that task. An
    /// awaiter that took its generator over then lets go of it.
    ~NextAwaiter() {
      if (suspended_) {
        promise_type& promise = frame_.promise();
        promise.continuation = {};
        promise.interrupted = true;
        if (promise.orphaned) {
          frame_.destroy();
          return;
        }
      }
      if (owns_) release(frame_);
    }
    bool await_ready() const {
      if (!frame_) throw InvalidStateError("eddy::AsyncGenerator: the generator is empty");
      if (used_) {
        // Python: "cannot reuse already awaited __anext__()/asend()".
        throw InvalidStateError("eddy::AsyncGenerator: a next() or send() is awaited once");
      }
      if (frame_.promise().continuation) {
        throw InvalidStateError("eddy::AsyncGenerator: the generator is already running");
      }
      if (frame_.promise().interrupted) {
        throw InvalidStateError(
            "eddy::AsyncGenerator: the generator was interrupted inside a step (the task running "
            "it was destroyed as its loop closed) and cannot go on");
      }
      return frame_.done();
    }
    template <detail::EddyPromise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> consumer) noexcept(
        std::is_nothrow_move_constructible_v<SentSlot>) {
      promise_type& promise = frame_.promise();
      promise.sent = std::move(sent_);  // nullopt for next(); first, as it may throw
      promise.continuation = consumer;
      promise.started = true;
      promise.current.reset();
      suspended_ = true;
      return frame_;
    }
    std::optional<T> await_resume() {
      used_ = true;
      suspended_ = false;
      promise_type& promise = frame_.promise();
      promise.continuation = {};
      std::exception_ptr error = std::exchange(promise.exception, {});
      // Built, not assigned: T need not be assignable.
      std::optional<T> value = !error && !frame_.done()
                                   ? std::exchange(promise.current, std::nullopt)
                                   : std::optional<T>();
      if (promise.orphaned) frame_.destroy();  // its AsyncGenerator went away meanwhile
      if (error) std::rethrow_exception(error);
      return value;
    }

   private:
    std::coroutine_handle<promise_type> frame_;
    std::optional<SentSlot> sent_;
    bool used_ = false;
    bool suspended_ = false;  // the body runs for this awaiter
    bool owns_ = false;       // took over the generator (next() of a temporary one)
  };

  /// `co_await next()`: the next value, or nullopt once the body has ended.
  NextAwaiter next() & noexcept { return NextAwaiter(frame_); }
  /// The same for a temporary generator: the awaiter takes it over, and
  /// destroys it when it goes (`co_await make_gen().next()`).
  NextAwaiter next() && noexcept {
    return NextAwaiter(typename NextAwaiter::TakeOver{}, std::exchange(frame_, {}));
  }

  /// `co_await send(x)`: resumes the generator with `co_yield` evaluating to
  /// `x`; returns what it yields next, or nullopt once it has ended. Throws
  /// InvalidStateError if it has not started (prime it with next()).
  template <class S = Sent>
  requires(!std::is_void_v<S>) NextAwaiter send(S value)
  &{
    check_can_send();
    return NextAwaiter(frame_, std::move(value));
  }
  /// The same for a temporary generator, which the awaiter takes over.
  template <class S = Sent>
  requires(!std::is_void_v<S>) NextAwaiter send(S value) && {
    check_can_send();
    return NextAwaiter(typename NextAwaiter::TakeOver{}, std::exchange(frame_, {}),
                       std::move(value));
  }

 private:
  explicit AsyncGenerator(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
  /// Throws InvalidStateError unless send() may resume the generator.
  void check_can_send() const {
    if (!frame_) throw InvalidStateError("eddy::AsyncGenerator: the generator is empty");
    if (!frame_.promise().started) {
      throw InvalidStateError(
          "eddy::AsyncGenerator::send: the generator has not started (call next() first)");
    }
  }
  /// Destroys the frame, or, while a task runs the body, leaves that to the
  /// task's next() (see promise_type::orphaned).
  static void release(std::coroutine_handle<promise_type> frame) noexcept {
    if (!frame) return;
    if (frame.promise().continuation) {
      frame.promise().orphaned = true;
      return;
    }
    frame.destroy();
  }
  std::coroutine_handle<promise_type> frame_;
};

}  // namespace eddy
