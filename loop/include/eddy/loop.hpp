// Loop: the event loop. Mirrors: asyncio.AbstractEventLoop / BaseEventLoop.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <ratio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/clock.hpp"
#include "eddy/detail/callback.hpp"
#include "eddy/detail/ready_queue.hpp"
#include "eddy/detail/threadsafe_inbox.hpp"
#include "eddy/detail/timer_queue.hpp"
#include "eddy/errors.hpp"
#include "eddy/handle.hpp"
#include "eddy/source_location.hpp"

struct uv_loop_s;  // libuv's uv_loop_t; include <uv.h> to use it
struct uv_idle_s;

namespace eddy {

template <class T>
class Future;  // futures/: <eddy/future.hpp>
template <class T>
class Task;                // futures/: <eddy/task.hpp>
class TaskRef;             // futures/: <eddy/task.hpp>
class ThreadPoolExecutor;  // futures/: <eddy/executor.hpp>
class Loop;
struct ExceptionContext;

namespace detail {
struct UvHandles;
/// An address unique to the calling thread while it lives (cheaper than
/// std::this_thread::get_id() on the hot path).
inline std::uintptr_t this_thread_token() noexcept {
#if defined(__x86_64__) || defined(__aarch64__)
  // The thread pointer (on x86-64, %fs:0): compared in place, without a load.
  return reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
#else
  static thread_local char marker;
  return reinterpret_cast<std::uintptr_t>(&marker);
#endif
}

/// Per-loop state that a higher layer keeps on a Loop without the loop
/// knowing its type (futures/ keeps the task registry here, the executors
/// their default pool). The loop owns it: close() calls loop_closing() before
/// it destroys queued callbacks, and the Loop's destructor destroys it.
class LoopExtension {
 public:
  LoopExtension() = default;
  LoopExtension(const LoopExtension&) = delete;
  LoopExtension& operator=(const LoopExtension&) = delete;
  virtual ~LoopExtension() = default;
  /// The loop is closing. Release what can no longer run (close() repeats
  /// until nothing is left, so work created meanwhile is also released).
  /// Returns true if it released anything.
  virtual bool loop_closing() noexcept { return false; }

  /// For debug mode's slow-callback reports, which name what a callback ran
  /// for (futures/: the task whose step it was), as asyncio's reports name
  /// the Task.
  /// Before the loop times a queued callback it asks each extension, with
  /// the callback's table and captures; one that knows the callback returns
  /// a token that keeps what it runs for alive (a reference), else null.
  /// If the callback was slow the loop has describe_subject fill the
  /// report's `future` and `source`; release_subject drops the token either
  /// way, after the callback is destroyed.
  virtual void* subject_of(const void* table, void* captures) noexcept {
    (void)table;
    (void)captures;
    return nullptr;
  }
  virtual void describe_subject(void* subject, ExceptionContext& context) const {
    (void)subject;
    (void)context;
  }
  virtual void release_subject(void* subject) noexcept { (void)subject; }
};

/// One slot per layer that keeps a LoopExtension.
enum class ExtensionSlot : std::uint8_t { tasks, executor, wrapped, count };

/// A way to a loop from other threads that outlives it: `loop` is the loop
/// until its destructor starts, then null. Hold `mutex` while using `loop`
/// (a call_soon_threadsafe): the destructor takes it to null the pointer, so
/// it cannot go meanwhile. What such a caller does for a loop that is gone
/// is its own choice (wrap_future drops the result, as asyncio's callback
/// does for a closed loop).
struct LoopLifeline {
  std::mutex mutex;
  Loop* loop = nullptr;
};

/// The extension slots of a loop (for futures/; users never need them).
struct LoopExtensions {
  static LoopExtension* get(const Loop& loop, ExtensionSlot slot) noexcept;
  /// Installs `ext` in an empty slot; throws LoopClosedError (naming
  /// `method`) on a closed loop.
  static LoopExtension& set(Loop& loop, ExtensionSlot slot, std::unique_ptr<LoopExtension> ext,
                            const char* method);
  /// The check every scheduling method makes: throws LoopClosedError on a
  /// closed loop, WrongThreadError from a thread other than the one running it.
  static void check_usable(const Loop& loop, const char* method);
  /// The loop's lifeline, made on first use (on the loop's thread).
  static std::shared_ptr<LoopLifeline> lifeline(Loop& loop);
  /// The thread rule alone, for methods of other classes that act on the
  /// loop's objects (a Future's set_result, cancel): WrongThreadError, naming
  /// `qualified_method` in full, from a thread other than the one running the
  /// loop. Checked before they change anything.
  static void check_thread(const Loop& loop, const char* qualified_method);
  /// Work on another thread will come back to `loop` (an executor job in
  /// flight, a wrapped future's source): while at least one hold is taken,
  /// the loop's wake-up handle keeps a host's uv_run alive, as a pending
  /// uv_work_t does. Each layer takes one hold while it has anything in
  /// flight and gives it back when it has nothing left. On the loop's thread.
  static void add_hold(Loop& loop) noexcept;
  static void remove_hold(Loop& loop) noexcept;
  /// call_soon on the loop running on this thread (try_get_running_loop()),
  /// which needs no thread or closed check: a task's own wake-up.
  template <class F>
  static void call_soon_running(Loop& running, F f);
  /// Makes room in the ready queue for one callback of type F, so that the
  /// next call_soon of one cannot fail for memory: for a change that must
  /// not be left half done (a future marked done whose callbacks could not
  /// be scheduled). Throws std::bad_alloc, changing nothing.
  template <class F>
  static void reserve_ready(Loop& loop);
};
}  // namespace detail

/// What went wrong, passed to the exception handler. Mirrors the context
/// dict of asyncio's loop.call_exception_handler().
struct ExceptionContext {
  /// Always set: one line saying what happened.
  std::string message;
  /// The exception, if one was thrown (null for reports such as a slow callback).
  std::exception_ptr exception;
  /// The callback involved, described ("callback #4096" or "timer callback
  /// #4096", the number identifying its queue entry), if any.
  std::string handle;
  /// The future or task involved, described, if any (set by futures/).
  std::string future;
  /// Where the object involved was created, if known. Objects that an eddy
  /// call with a parameter pack made (run_in_executor, gather) carry
  /// SourceLocation::made_by(<the call>) instead: known() is false and
  /// `function` names the call.
  SourceLocation source;
};

/// How a Loop is made. Chain the setters:
///
///     eddy::Loop loop(eddy::LoopOptions().use_clock(clock).debug(true));
///     eddy::Loop embedded(eddy::LoopOptions().attach_to(&host_uv_loop));
///
/// (Setters rather than designated initializers: g++ 12 warns under -Wextra
/// about every field a designated initializer leaves out.)
struct LoopOptions {
  /// Attach to a host's libuv loop instead of creating one. The host keeps
  /// ownership and calls uv_run(); eddy's callbacks and timers run inside it.
  LoopOptions& attach_to(uv_loop_s* host) noexcept {
    host_loop = host;
    return *this;
  }
  /// The loop's clock; by default the monotonic system clock (uv_hrtime).
  /// Pass a VirtualClock to test timer logic in virtual time.
  LoopOptions& use_clock(std::shared_ptr<Clock> c) noexcept {
    clock = std::move(c);
    return *this;
  }
  /// Debug mode; by default taken from the environment (EDDY_DEBUG=1).
  LoopOptions& debug(bool enabled) noexcept {
    debug_mode = enabled;
    return *this;
  }

  uv_loop_s* host_loop = nullptr;
  std::shared_ptr<Clock> clock;
  std::optional<bool> debug_mode;
};

/// Counters kept in every build (a few increments per iteration).
struct LoopStats {
  std::uint64_t iterations = 0;       ///< ready-queue passes run
  std::uint64_t callbacks_run = 0;    ///< callbacks invoked (cancelled ones are not)
  std::uint64_t callback_errors = 0;  ///< callbacks that threw
  std::size_t ready = 0;              ///< callbacks queued now (counted when asked)
  std::size_t timers = 0;             ///< timers scheduled now (not cancelled)
  std::size_t bytes_per_timer = 0;    ///< eddy's memory per scheduled timer
};

/// A single-threaded event loop on libuv. Mirrors: asyncio's event loop.
///
/// Scheduling: call_soon (FIFO), call_later / call_at (deadline order, equal
/// deadlines in scheduling order), call_soon_threadsafe (from any thread).
/// One iteration runs exactly the callbacks that were ready when it began:
/// first those queued by call_soon, then the timers that fell due, in that
/// order; anything scheduled meanwhile runs in a later iteration. Between
/// iterations libuv polls for I/O (with a zero timeout while callbacks are
/// ready).
///
/// Thread safety: only call_soon_threadsafe may be called from any thread.
/// Every other method, while the loop runs, must be called on the thread that
/// runs it; eddy checks this in every build and throws WrongThreadError,
/// except in the queries that never throw (time, now, is_running, is_closed,
/// get_debug, slow_callback_duration, stats, uv_loop, backend_fd,
/// backend_timeout) and in call_exception_handler, which never throws: from
/// another thread those are data races. A loop that is not running may be
/// prepared from any one thread at a time. An attached loop
/// (LoopOptions::attach_to) belongs to the thread that created it.
///
/// Errors: a callback that throws never escapes the loop; the exception goes
/// to the exception handler and the loop goes on. An empty callable (a null
/// function pointer, an empty std::function) is refused when it is scheduled,
/// with std::invalid_argument, as asyncio's debug mode refuses None: it would
/// only fail when run (a null pointer: a crash). The same holds for every
/// eddy call that takes a callable (done callbacks, executor jobs...).
///
/// Invariants:
/// - A pass is due (idle_active_) exactly while callbacks are ready (or a
///   VirtualClock has timers to jump to): libuv then polls with a zero
///   timeout, and blocks otherwise. While eddy drives libuv (run_forever,
///   run_once) it runs the pass after each libuv iteration, as asyncio's
///   _run_once runs callbacks after its poll; otherwise (a host's uv_run) the
///   idle handle, active exactly then, runs it.
/// - The libuv timer is armed for the earliest eddy deadline (real clock
///   only); it only wakes the poll, eddy's heap decides what is due.
/// - Every callback is run or destroyed exactly once, close() included.
class Loop {
 public:
  using ExceptionHandler = std::function<void(Loop&, const ExceptionContext&)>;

  /// A loop that owns a new libuv loop, on the system monotonic clock.
  Loop();
  explicit Loop(LoopOptions options);
  /// Closes the loop if it is not closed (callbacks still queued are destroyed
  /// without running). Destroying a running loop terminates the program.
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // ------------------------------------------------------------ scheduling

  /// Schedules `f(args...)` to run on the next iteration. Mirrors:
  /// asyncio.loop.call_soon. FIFO: callbacks run in the order they were
  /// scheduled. `args` are stored by value. Never allocates for a callable of
  /// up to three pointers of captures (in the steady state).
  /// Throws LoopClosedError after close(), WrongThreadError from another
  /// thread while the loop runs.
  template <class F, class... Args>
  Handle call_soon(F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_soon");
    if constexpr (sizeof...(Args) != 0) {
      return call_soon(detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
    } else if constexpr (std::is_same_v<std::remove_cvref_t<F>, detail::Callback>) {
      return Handle(this, Handle::Kind::ready, push_ready_slow(std::forward<F>(f)));
    } else {
      // Two compares: the thread check, and the ready queue's fast path, which
      // says both "room" and "a pass is due" (it is closed while none is,
      // see start_idle). Everything else is out of line, so this inlines
      // into the caller without a stack frame.
      std::uint64_t seq;
      if (on_loop_thread() && ready_.fits(detail::ReadyQueue::entry_bytes<F>())) [[likely]] {
        seq = ready_.push_fast(std::forward<F>(f));
      } else if constexpr (std::is_trivially_copyable_v<std::decay_t<F>> &&
                           sizeof(std::decay_t<F>) <= 2 * sizeof(void*)) {
        // By value: passed in registers, so that a caller that drops the
        // Handle can jump to the slow path instead of building a stack frame.
        seq = push_ready_slow_by_value<std::decay_t<F>>(std::forward<F>(f));
      } else {
        seq = push_ready_slow(std::forward<F>(f));
      }
      return Handle(this, Handle::Kind::ready, seq);
    }
  }

  /// Schedules `f(args...)` from any thread. Mirrors:
  /// asyncio.loop.call_soon_threadsafe. The callback runs on the loop's
  /// thread; calls from one thread keep their order. The loop is woken only
  /// when its inbox goes from empty to non-empty. On the running loop's own
  /// thread it is call_soon, FIFO with call_soon as asyncio's (one ready
  /// queue for both): callbacks other threads left in the inbox first join
  /// the ready queue, so they still run before it.
  /// Throws LoopClosedError if the loop is closed (the callable is destroyed).
  template <class F, class... Args>
  Handle call_soon_threadsafe(F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_soon_threadsafe");
    if (on_loop_thread()) {
      if (!inbox_.empty()) on_async();  // (rare: another thread's callbacks wait)
      return call_soon(std::forward<F>(f), std::forward<Args>(args)...);
    }
    using Fn = std::decay_t<decltype(detail::bind_callback(std::forward<F>(f),
                                                           std::forward<Args>(args)...))>;
    if constexpr (detail::ThreadsafeInbox::stored_as_bytes<Fn>) {
      // The common case (captures of pointers and numbers): built here, then
      // handed to the inbox as three words.
      detail::ThreadsafeInbox::Payload payload{};
      const detail::Callback::Ops* ops = detail::Callback::construct_into(
          payload.bytes, detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
      return Handle(this, Handle::Kind::threadsafe,
                    inbox_.push_words(ops, payload.word(0), payload.word(1), payload.word(2),
                                      detail::ReadyQueue::entry_bytes<Fn>()));
    } else {
      detail::Callback cb(detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
      return Handle(this, Handle::Kind::threadsafe, inbox_.push(cb));
    }
  }

  /// Schedules `f(args...)` to run `delay` seconds from now. Mirrors:
  /// asyncio.loop.call_later. Sub-millisecond delays are honoured (eddy keeps
  /// its own nanosecond deadlines; libuv's timer only wakes it). A negative
  /// delay means "due now"; a huge one never fires and never overflows (only
  /// a VirtualClock advanced to time_point::max() reaches it). A
  /// std::chrono duration may have any count type and period: beyond about
  /// 292 years either way it saturates, never wraps (an unsigned count of
  /// 2^63 nanoseconds or more is "never", not negative).
  /// Throws std::invalid_argument for NaN or infinite delays.
  template <class F, class... Args>
  TimerHandle call_later(double delay, F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_later");
    check_usable("call_later");
    std::int64_t when = add_saturating(now_ns(), seconds_to_ns("call_later", delay));
    return schedule_timer(when,
                          detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
  }
  template <class Rep, class Period, class F, class... Args>
  TimerHandle call_later(std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_later");
    check_usable("call_later");
    std::int64_t when = add_saturating(now_ns(), duration_to_ns("call_later", delay));
    return schedule_timer(when,
                          detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
  }

  /// Schedules `f(args...)` for the absolute time `when` (seconds on the
  /// loop's clock, as returned by time()). Mirrors: asyncio.loop.call_at.
  /// A time in the past means "due now". Throws std::invalid_argument for NaN
  /// or infinite times.
  template <class F, class... Args>
  TimerHandle call_at(double when, F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_at");
    check_usable("call_at");
    return schedule_timer(seconds_to_ns("call_at", when),
                          detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
  }
  template <class F, class... Args>
  TimerHandle call_at(Clock::time_point when, F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_at");
    check_usable("call_at");
    return schedule_timer(when.time_since_epoch().count(),
                          detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
  }
  /// A time point of the loop's clock in another unit (seconds, a double
  /// count...): converted as call_later converts durations, saturating beyond
  /// about 292 years either way ("never", or "due now") instead of wrapping.
  template <class Duration, class F, class... Args>
  TimerHandle call_at(std::chrono::time_point<Clock, Duration> when, F&& f, Args&&... args) {
    detail::check_callable(f, "eddy::Loop::call_at");
    check_usable("call_at");
    return schedule_timer(duration_to_ns("call_at", when.time_since_epoch()),
                          detail::bind_callback(std::forward<F>(f), std::forward<Args>(args)...));
  }

  /// The loop's time in seconds (monotonic, sub-microsecond). Mirrors: asyncio.loop.time.
  double time() const noexcept { return static_cast<double>(now_ns()) * 1e-9; }
  /// The loop's time as a time point.
  Clock::time_point now() const noexcept { return Clock::time_point{Clock::duration{now_ns()}}; }

  // ------------------------------------------------------------ running

  /// A new pending Future<T> bound to this loop. Mirrors:
  /// asyncio.loop.create_future. Defined in <eddy/future.hpp>.
  template <class T = void>
  auto create_future(SourceLocation where = SourceLocation::current());

  /// Runs the loop until `future` is done and returns its result (or
  /// rethrows its exception). Mirrors: asyncio.loop.run_until_complete.
  /// A future already done still runs one iteration, as in asyncio. Throws
  /// std::invalid_argument for a future of another loop, and RuntimeError if
  /// the loop was stopped before the future completed. Defined in
  /// <eddy/future.hpp>.
  template <class T>
  T run_until_complete(Future<T> future);
  /// Same for a coroutine: schedules it with create_task and runs the loop
  /// until it ends. Defined in <eddy/task.hpp>.
  template <class T>
  T run_until_complete(Task<T> task, SourceLocation where = SourceLocation::current());

  /// Schedules the coroutine `task` to run as a task of this loop and returns
  /// its future. Mirrors: asyncio.loop.create_task. Its first step runs
  /// through call_soon; the loop keeps the task alive until it ends, whether
  /// or not the caller keeps the future. Cancelling the future asks the task
  /// to cancel (see <eddy/task.hpp>). `name` defaults to "Task-<n>".
  /// Throws InvalidStateError for an empty Task or one that already ran,
  /// LoopClosedError on a closed loop. Defined in <eddy/task.hpp>.
  template <class T>
  Future<T> create_task(Task<T> task, SourceLocation where = SourceLocation::current());
  /// The same, with a name (an empty one stands for "Task-<n>").
  template <class T>
  Future<T> create_task(Task<T> task, std::string name,
                        SourceLocation where = SourceLocation::current());

  /// A hook run for every task create_task makes, after its first step is
  /// scheduled and before create_task returns; it may name, record or cancel
  /// the task. Mirrors: asyncio.loop.set_task_factory (C++ has no task
  /// subclass to return, so eddy's factory observes instead of constructs).
  /// If it throws, create_task throws that, and the task never runs its
  /// body (it ends cancelled), as no task exists in asyncio then. An empty
  /// function removes it. Defined in futures/src/task.cpp.
  void set_task_factory(std::function<void(TaskRef)> factory);
  /// The hook set by set_task_factory (empty if none).
  std::function<void(TaskRef)> get_task_factory() const;

  // ------------------------------------------------------------ executors
  // Declared here, defined with the futures in <eddy/executor.hpp> (the
  // templates) and futures/src/executor.cpp: loop/ knows nothing of them.

  /// Runs `fn(args...)` on the loop's default executor and returns a
  /// Future<R> (R: what fn returns) completed on this loop's thread with its
  /// result or exception. Mirrors: asyncio.loop.run_in_executor(None, fn, *args).
  /// The default executor is a ThreadPoolExecutor of
  /// ThreadPoolExecutor::default_max_workers() threads, made on first use.
  /// See <eddy/executor.hpp> for ordering (results come back batched, in the
  /// order the jobs finished), cancellation (cancelling the future cancels the
  /// job; a fn taking a std::stop_token first can be interrupted) and close().
  /// Throws LoopClosedError, WrongThreadError, and ExecutorShutdownError after
  /// shutdown_default_executor().
  template <class F, class... Args>
  requires(!std::is_same_v<std::remove_cvref_t<F>, ThreadPoolExecutor>) auto run_in_executor(
      F&& fn, Args&&... args);
  /// Same, on `executor`. Mirrors: asyncio.loop.run_in_executor(executor, fn, *args).
  /// Throws ExecutorShutdownError if `executor` is shut down.
  template <class F, class... Args>
  auto run_in_executor(ThreadPoolExecutor& executor, F&& fn, Args&&... args);

  /// Makes `executor` (not null) the default executor for run_in_executor.
  /// Mirrors: asyncio.loop.set_default_executor. The previous default is let
  /// go: if nothing else holds it, it is shut down without waiting (its
  /// queued work still runs, its threads end on their own).
  /// Throws std::invalid_argument for null, LoopClosedError, WrongThreadError.
  void set_default_executor(std::shared_ptr<ThreadPoolExecutor> executor);

  /// Shuts the default executor down and joins its threads without blocking
  /// the loop (a helper thread joins them); the returned future completes
  /// when they have joined. Mirrors: asyncio.loop.shutdown_default_executor.
  /// If `timeout_seconds` passes first, the stragglers (jobs still running or
  /// queued) are reported through the exception handler and the future
  /// completes anyway; the executor keeps shutting down in the background.
  /// Afterwards run_in_executor on the default executor throws
  /// ExecutorShutdownError. Without a default executor the future is done at
  /// once. Throws std::invalid_argument for a NaN timeout, LoopClosedError,
  /// WrongThreadError.
  Future<void> shutdown_default_executor(
      double timeout_seconds = std::numeric_limits<double>::infinity());
  template <class Rep, class Period>
  Future<void> shutdown_default_executor(std::chrono::duration<Rep, Period> timeout);

  /// Runs iterations until stop() is called. Mirrors: asyncio.loop.run_forever.
  /// With nothing scheduled it blocks (until a threadsafe call or I/O arrives).
  /// If stop() was called before, runs exactly one iteration.
  /// Throws LoopClosedError on a closed loop, LoopRunningError if this or
  /// another loop is already running on this thread.
  void run_forever();

  /// Runs one step without blocking: one libuv poll with a zero timeout
  /// (I/O, and call_soon_threadsafe callbacks that arrived), then the
  /// callbacks that are ready and the timers that are due. For a foreign main
  /// loop (GUI, game) that waits on backend_fd() itself. On a VirtualClock,
  /// a step that finds nothing ready jumps to the next deadline.
  void run_once();

  /// Asks the loop to stop: the current iteration finishes, then run_forever
  /// returns. Callbacks scheduled meanwhile run first on the next run.
  /// Mirrors: asyncio.loop.stop.
  void stop();

  /// Closes the loop: queued callbacks and timers are destroyed without
  /// running; every later scheduling call throws LoopClosedError. Idempotent.
  /// Throws LoopRunningError if the loop is running, and RuntimeError (the
  /// loop left open) if an owned libuv loop still has handles that are not
  /// eddy's. Mirrors: asyncio.loop.close.
  void close();

  bool is_running() const noexcept { return running_; }
  bool is_closed() const noexcept { return closed_; }

  // ------------------------------------------------------------ embedding

  /// The libuv loop eddy runs on (owned, or the host's). Once it has been
  /// asked for, eddy's iterations of an owned loop always go through uv_run
  /// (see "How an eddy iteration maps onto a libuv iteration" in loop.cpp):
  /// handles added to it run as libuv promises.
  uv_loop_s* uv_loop() const noexcept {
    peek_fd_.store(-1, std::memory_order_relaxed);
    return uv_;
  }
  /// libuv's backend file descriptor: readable when the loop has work.
  int backend_fd() const noexcept;
  /// Milliseconds a foreign main loop may wait on backend_fd() before calling
  /// run_once(): 0 if callbacks are ready, -1 if nothing is scheduled.
  int backend_timeout() const noexcept;

  // ------------------------------------------------------------ errors

  /// Mirrors: asyncio.loop.set_exception_handler. An empty handler restores
  /// the default one.
  void set_exception_handler(ExceptionHandler handler);
  /// The handler set by set_exception_handler (empty if the default is in
  /// use), as a copy: a handler that chains the previous one may keep it
  /// across set_exception_handler.
  ExceptionHandler get_exception_handler() const;
  /// Passes `context` to the handler; if the handler throws, the default
  /// handler reports both. Never throws.
  void call_exception_handler(const ExceptionContext& context) noexcept;
  /// Writes the context to stderr (never stdout).
  void default_exception_handler(const ExceptionContext& context) noexcept;

  // ------------------------------------------------------------ debug

  /// Debug mode: reports callbacks that run longer than
  /// slow_callback_duration() through the exception handler. EDDY_DEBUG=1 in
  /// the environment turns it on for loops created without an explicit choice.
  /// Turned on inside a callback, it times callbacks from the next iteration
  /// on (asyncio: from the next callback); turned off, from the next callback.
  void set_debug(bool enabled) {
    check_thread("set_debug");
    debug_ = enabled;
    update_general_pass();
  }
  bool get_debug() const noexcept { return debug_; }
  /// Threshold for slow-callback reports, in seconds (default 0.1). Throws
  /// std::invalid_argument for a negative, NaN or infinite value. A value
  /// over about 292 years (the int64 nanoseconds the loop counts in) means
  /// no callback is ever reported slow. slow_callback_duration() returns the
  /// value set, as asyncio's attribute does.
  void set_slow_callback_duration(double seconds);
  double slow_callback_duration() const noexcept { return slow_seconds_; }

  /// Always-on counters.
  LoopStats stats() const noexcept;

 private:
  friend class Handle;
  friend struct detail::UvHandles;
  friend struct detail::LoopExtensions;

  // The hot-path check of every scheduling call: one compare while the loop
  // runs on this thread; otherwise the slow path tells closed, wrong thread
  // and "not running, any thread may prepare it" apart.
  // A virtual clock jumps to the next deadline when a pass finds nothing
  // ready, except in run_forever's last iteration after stop(), which waits
  // for nothing (asyncio's timeout 0 while _stopping). Elsewhere (run_once, a
  // host-driven pass) stop() concerns only the next run_forever: it must not
  // freeze time.
  bool may_jump_time() const noexcept { return virtual_time_ && !(stopping_ && running_forever_); }
  bool on_loop_thread() const noexcept {
    return owner_thread_.load(std::memory_order_relaxed) == detail::this_thread_token();
  }
  void check_usable(const char* method) const {
    if (!on_loop_thread()) [[unlikely]]
      check_usable_slow(method);
  }
  void check_usable_slow(const char* method) const;
  // The thread rule for LoopExtensions::check_thread, off its hot path.
  void check_thread_in(const char* qualified_method) const;
  // Thread rule only (no closed check): for cancel() and stop().
  void check_thread(const char* method) const {
    std::uintptr_t owner = owner_thread_.load(std::memory_order_relaxed);
    if (owner != 0 && owner != detail::this_thread_token()) [[unlikely]]
      detail::throw_wrong_thread(method);
  }
  std::int64_t now_ns() const noexcept;
  static std::int64_t seconds_to_ns(const char* method, double seconds);
  // 292 years: the largest delay that fits in int64 nanoseconds; beyond it, "never".
  static constexpr double kMaxSeconds = 9.2e9;
  // A duration in nanoseconds, saturating beyond kMaxSeconds either way:
  // INT64_MAX, "never", or -INT64_MAX, "long ago"; nothing wraps (an unsigned
  // count of 2^63 or more is not negative). Integer counts of a period of a
  // nanosecond or more, signed or unsigned, are converted exactly (a fraction
  // of a nanosecond, as of thirds of a second, truncated towards zero as by
  // duration_cast); finer periods and floating counts go through seconds as
  // a double, rounded as delays in seconds are.
  template <class Rep, class Period>
  static std::int64_t duration_to_ns(const char* method, std::chrono::duration<Rep, Period> d) {
    if constexpr (std::is_integral_v<Rep> && sizeof(Rep) <= sizeof(std::uintmax_t) &&
                  std::ratio_less_equal_v<std::nano, Period> && ns_ratio_fits<Period>()) {
      // Nanoseconds per tick: num / den, in lowest terms. On the magnitude,
      // ticks = q * den + r gives q * num + r * num / den nanoseconds, and
      // r * num < den * num cannot overflow (ns_ratio_fits).
      using PerTick = std::ratio_divide<Period, std::nano>;
      constexpr auto num = static_cast<std::uintmax_t>(PerTick::num);
      constexpr auto den = static_cast<std::uintmax_t>(PerTick::den);
      constexpr auto limit = static_cast<std::uintmax_t>(INT64_MAX);
      const Rep count = d.count();
      auto magnitude = static_cast<std::uintmax_t>(count);
      bool negative = false;
      if constexpr (std::is_signed_v<Rep>) {
        if (count < 0) {
          negative = true;
          magnitude = 0 - magnitude;  // |count|, for the most negative count too
        }
      }
      const std::uintmax_t whole = magnitude / den;
      if (whole > limit / num) return negative ? -INT64_MAX : INT64_MAX;
      const std::uintmax_t ns = whole * num;
      const std::uintmax_t part = magnitude % den * num / den;
      if (part > limit - ns) return negative ? -INT64_MAX : INT64_MAX;
      const auto result = static_cast<std::int64_t>(ns + part);
      return negative ? -result : result;
    } else {
      if constexpr (std::is_floating_point_v<Rep>) {
        // A finite count beyond double's seconds (1e300 of std::exa) is still
        // a huge delay, not an infinite one: decided in long double.
        if (std::isfinite(d.count())) {
          const long double seconds = std::chrono::duration<long double>(d).count();
          if (seconds >= kMaxSeconds) return INT64_MAX;
          if (seconds <= -kMaxSeconds) return -INT64_MAX;
        }
      }
      return seconds_to_ns(method, std::chrono::duration<double>(d).count());
    }
  }
  // True if std::ratio_divide<Period, std::nano> compiles and its products in
  // duration_to_ns fit: every period but bizarre ones (ticks of centuries,
  // ratios of huge coprime terms), which take the double path.
  template <class Period>
  static constexpr bool ns_ratio_fits() noexcept {
    constexpr std::intmax_t scale = std::nano::den / std::gcd(std::nano::den, Period::den);
    if constexpr (Period::num > INTMAX_MAX / scale) {
      return false;
    } else {
      using PerTick = std::ratio_divide<Period, std::nano>;
      return static_cast<std::uintmax_t>(PerTick::num) <=
             UINTMAX_MAX / static_cast<std::uintmax_t>(PerTick::den);
    }
  }
  static std::int64_t add_saturating(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
  }

  // call_soon's slow path: the checks in full, a pass made due, a full ring.
  template <class F>
  [[gnu::noinline]] std::uint64_t push_ready_slow(F&& f) {
    check_usable("call_soon");
    if (!idle_active_) start_idle();
    return ready_.emplace(std::forward<F>(f));
  }
  template <class Fn>
  [[gnu::noinline]] std::uint64_t push_ready_slow_by_value(Fn f) {
    check_usable("call_soon");
    if (!idle_active_) start_idle();
    return ready_.emplace(std::move(f));
  }
  /// call_soon for a caller that made check_usable() already.
  template <class F>
  void call_soon_checked(F f) {
    if (ready_.fits(detail::ReadyQueue::entry_bytes<F>())) [[likely]] {
      ready_.push_fast(std::move(f));
    } else {
      push_ready_slow_by_value<F>(std::move(f));
    }
  }
  /// create_task's work; `named` holds the task's name (a TaskCore::Cold),
  /// or is null. Defined in <eddy/task.hpp>.
  template <class T, class Named>
  Future<T> start_task(Task<T>& task, Named* named, SourceLocation where);
  void start_idle() noexcept;
  void set_idle(bool active) noexcept;
  void arm_timer(std::int64_t deadline) noexcept;
  template <class F>
  TimerHandle schedule_timer(std::int64_t when, F&& f) {
    detail::TimerQueue::TimerId id = timers_.add(when, std::forward<F>(f));
    general_pass_ = true;
    // Inside a pass, end_pass arms libuv's timer once, after this pass or
    // (while callbacks are left) the next one, a general pass; outside (before
    // running, or from a host's libuv callback), make sure libuv wakes for it.
    if (!ready_.running()) [[unlikely]]
      wake_for_timer(when);
    std::uint64_t raw = (static_cast<std::uint64_t>(id.generation) << 32) | id.slot;
    return TimerHandle(this, raw, Clock::time_point{Clock::duration{when}});
  }
  void wake_for_timer(std::int64_t when) noexcept;

  // Passes take on_idle's short path unless general_pass_ is set.
  void update_general_pass() noexcept {
    general_pass_ = !running_ || debug_ || !timers_.empty() || armed_deadline_ != INT64_MAX ||
                    timers_.compaction_due();
  }

  // Called from libuv. on_idle is the idle handle's callback itself (its
  // data is the Loop): no trampoline on the way to every pass.
  static void on_idle(uv_idle_s* idle);
  // Runs the callbacks ready now (and the timers due): one pass.
  void pass();
  class Driving;
  // One libuv iteration (uv_run_mode `mode`), while eddy drives libuv.
  void poll(int mode) noexcept;
  void on_timer() noexcept;
  void on_async() noexcept;

  void run_ready();
  void end_pass() noexcept;
  void callback_failed() noexcept;
  void run_batch_timed(std::uint64_t end);
  void report_callback_error(std::uint64_t seq) noexcept;
  /// In a pass, inside the catch: the ready queue could not take the due
  /// timers (out of memory); they stay scheduled.
  void report_timers_not_queued() noexcept;
  void fire_timer(std::uint32_t slot);
  std::string describe_callback(std::uint64_t seq) const;
  /// What a timed callback runs for, as an extension knows it (see
  /// LoopExtension::subject_of); released when it goes.
  struct Subject;
  void report_slow_callback(std::uint64_t seq, std::int64_t took_ns,
                            const Subject& subject) noexcept;
  void update_idle_and_timer() noexcept;
  void prepare_step() noexcept;
  // LoopClosedError if the loop is closed, then LoopRunningError if it, or
  // another loop on this thread, is running (asyncio's order): begin_run,
  // and both run_until_complete forms before they schedule anything.
  void check_can_run(const char* method) const;
  void begin_run(const char* method);
  void end_run() noexcept;
  void release_everything() noexcept;

  bool cancel_handle(const Handle& h) noexcept;
  bool handle_cancelled(const Handle& h) const noexcept;

  // Hot state first.
  detail::ReadyQueue ready_;
  bool idle_active_ = false;
  bool closed_ = false;
  bool closing_ = false;  // close() is destroying what is queued (release_everything)
  bool running_ = false;
  bool stopping_ = false;
  bool debug_ = false;
  bool virtual_time_ = false;
  // A pass must take run_ready's general path: a host drives the loop (not
  // running_), debug mode, timers scheduled or the libuv timer armed. May be
  // set when none holds (it is recomputed after each general pass), never
  // clear when one does.
  bool general_pass_ = true;
  // eddy drives libuv (run_forever, run_once): the idle handle rests.
  bool driving_ = false;
  bool running_forever_ = false;  // ... in run_forever (Driving's `forever`)
  bool in_uv_run_ = false;        // ... and is inside uv_run (see start_idle)
  bool firing_timer_ = false;     // set only while fire_timer runs a timer's callback
  std::uint8_t holds_ = 0;        // LoopExtensions::add_hold, one per layer at most
  bool timer_ran_ = false;        // debug mode: the callback just run was a timer's
  // The thread running the loop (attached: the creating thread); 0 while an
  // owned loop is not running (any thread may prepare it) and once closed.
  std::atomic<std::uintptr_t> owner_thread_{0};
  // Counted on every pass: next to the flags a pass reads.
  LoopStats stats_{};

  detail::TimerQueue timers_;
  std::int64_t armed_deadline_ = INT64_MAX;  // what the libuv timer is armed for

  // call_soon_threadsafe's queue: the one place other threads write to.
  detail::ThreadsafeInbox inbox_;

  std::shared_ptr<Clock> clock_;
  VirtualClock* virtual_clock_ = nullptr;
  // Made by the first LoopExtensions::lifeline(); let go of as the destructor starts.
  std::shared_ptr<detail::LoopLifeline> lifeline_;
  uv_loop_s* uv_ = nullptr;
  bool owns_uv_ = false;
  // libuv's backend fd while libuv is known to hold nothing but eddy's own
  // handles (an owned loop whose uv_loop() nobody asked for), else -1: a
  // zero-timeout poll then peeks at it and skips uv_run when nothing is
  // ready (Loop::poll).
  mutable std::atomic<int> peek_fd_{-1};
  detail::UvHandles* handles_ = nullptr;

  // Shared so that call_exception_handler can hold the handler it runs.
  std::shared_ptr<const ExceptionHandler> exception_handler_;
  // A timer's callback that threw, kept until its report is made (fire_timer).
  detail::Callback failed_timer_callback_;
  std::int64_t slow_ns_ = 100'000'000;
  double slow_seconds_ = 0.1;  // as set: slow_ns_ saturates

  std::unique_ptr<detail::LoopExtension>
      extensions_[static_cast<std::size_t>(detail::ExtensionSlot::count)];
};

inline void detail::LoopExtensions::check_usable(const Loop& loop, const char* method) {
  loop.check_usable(method);
}
template <class F>
void detail::LoopExtensions::call_soon_running(Loop& running, F f) {
  running.call_soon_checked(std::move(f));
}
template <class F>
void detail::LoopExtensions::reserve_ready(Loop& loop) {
  loop.ready_.ensure_room(ReadyQueue::entry_bytes<F>());
}
inline void detail::LoopExtensions::check_thread(const Loop& loop, const char* qualified_method) {
  // One compare on the hot path (the loop runs on this thread); a loop that
  // is not running (owner 0) may be prepared from any thread.
  if (!loop.on_loop_thread()) [[unlikely]]
    loop.check_thread_in(qualified_method);
}
inline detail::LoopExtension* detail::LoopExtensions::get(const Loop& loop,
                                                          ExtensionSlot slot) noexcept {
  return loop.extensions_[static_cast<std::size_t>(slot)].get();
}

/// The loop running on this thread. Mirrors: asyncio.get_running_loop.
/// Throws NoRunningLoopError when none is running.
Loop& get_running_loop();
namespace detail {
/// The loop running on this thread (loop.cpp sets it), or null.
extern thread_local constinit Loop* tls_running_loop;
}  // namespace detail
/// The loop running on this thread, or nullptr.
inline Loop* try_get_running_loop() noexcept {
  return detail::tls_running_loop;
}

}  // namespace eddy
