// ThreadPoolExecutor, Loop::run_in_executor and to_thread: blocking work on
// eddy's own threads, with results back on the loop.
// Mirrors: concurrent.futures.ThreadPoolExecutor, asyncio.loop.run_in_executor,
// asyncio.to_thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "eddy/concurrent_future.hpp"
#include "eddy/detail/completion_port.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop.hpp"

namespace eddy {

class ThreadPoolExecutor;

namespace detail {

// ------------------------------------------------------------------ jobs

/// What a pool does with a queued job.
enum class JobAction : std::uint8_t {
  run,     ///< on a worker: run it (unless it was cancelled meanwhile) and complete it
  cancel,  ///< shutdown(cancel_futures = true) dropped it: never run it, cancel its future
};

/// A queued job: an intrusive node erased behind one function pointer.
/// `act` is called exactly once (run or cancel) and ends the pool's ownership.
struct Job {
  Job* next_job = nullptr;
  void (*act)(Job* self, JobAction action) noexcept = nullptr;
};

/// How a job calls fn(args...): fn and args are stored decayed and called
/// once, as rvalues; with a std::stop_token first when fn accepts one.
template <class F, class... Args>
struct JobTraits {
  using Fn = std::decay_t<F>;
  static constexpr bool stoppable = std::is_invocable_v<Fn, std::stop_token, std::decay_t<Args>...>;
  static constexpr bool invocable = stoppable || std::is_invocable_v<Fn, std::decay_t<Args>...>;
  using result_type = std::remove_cvref_t<typename std::conditional_t<
      stoppable, std::invoke_result<Fn, std::stop_token, std::decay_t<Args>...>,
      std::conditional_t<invocable, std::invoke_result<Fn, std::decay_t<Args>...>,
                         std::type_identity<void>>>::type>;
};

template <class F, class... Args>
inline constexpr void check_job_callable() {
  static_assert(JobTraits<F, Args...>::invocable,
                "eddy executor: fn is not callable as fn(args...) or fn(std::stop_token, args...) "
                "with the arguments given (they are stored by value and passed as rvalues; use "
                "std::ref to pass a reference)");
  // asyncio's run_in_executor refuses coroutine functions too (in debug mode).
  static_assert(
      !requires { typename JobTraits<F, Args...>::result_type::promise_type; },
      "eddy executor: fn is a coroutine function (it returns eddy::Task or another "
      "coroutine type): a worker thread would only make the coroutine, never run it. "
      "Run it on a loop (create_task, LoopThread::submit, AsyncPool::submit)");
}

/// A void job's result.
struct Done {};

/// A job's outcome, filled in on the worker: nothing yet (never ran), its
/// result, or the exception it threw.
template <class R>
using Result = std::variant<std::monostate, std::conditional_t<std::is_void_v<R>, Done, R>,
                            std::exception_ptr>;

/// fn and its arguments, as a job stores them until it runs.
template <class Fn, class... Args>
struct Call {
  template <class F, class... A>
  explicit Call(F&& f, A&&... a) : fn(std::forward<F>(f)), args(std::forward<A>(a)...) {}
  Fn fn;
  std::tuple<Args...> args;
};

/// Runs `call` once; an exception it throws becomes the result.
template <class R, bool Stoppable, class Fn, class... Args>
Result<R> run_call(Call<Fn, Args...>& call, const std::stop_token& token) noexcept {
  try {
    auto invoke = [&](Args&... args) -> decltype(auto) {
      if constexpr (Stoppable) {
        return std::invoke(std::move(call.fn), std::stop_token(token), std::move(args)...);
      } else {
        return std::invoke(std::move(call.fn), std::move(args)...);
      }
    };
    if constexpr (std::is_void_v<R>) {
      std::apply(invoke, call.args);
      return Result<R>(std::in_place_index<1>);
    } else {
      return Result<R>(std::in_place_index<1>, std::apply(invoke, call.args));
    }
  } catch (...) {
    return Result<R>(std::in_place_index<2>, std::current_exception());
  }
}

/// What executors may do to a ConcurrentFuture beyond its public rules.
struct ConcurrentFutureAccess {
  /// pending -> running (registering `interrupt`); false if it was cancelled
  /// or completed by someone else: the job must not run.
  template <class R>
  static bool start(ConcurrentFuture<R>& future, std::stop_source interrupt) noexcept {
    std::lock_guard lock(future.state_->mutex);
    if (future.state_->state != ConcurrentState::pending) return false;
    future.state_->state = ConcurrentState::running;
    future.state_->interrupt = std::move(interrupt);
    return true;
  }
  /// Completes a running future with `result`, unless it was cancelled meanwhile.
  template <class R>
  static void finish(ConcurrentFuture<R>& future, Result<R>& result) noexcept {
    try {
      if (result.index() == 2) {
        future.finish_unless_cancelled(std::move(std::get<2>(result)));
      } else if constexpr (std::is_void_v<R>) {
        future.finish_unless_cancelled(nullptr);
      } else {
        future.finish_unless_cancelled(nullptr, std::move(std::get<1>(result)));
      }
    } catch (...) {
      // A move of the result that throws: the future fails with its exception
      // (the value's emplace left it running).
      try {
        future.finish_unless_cancelled(std::current_exception());
      } catch (...) {
      }
    }
  }
};

/// A job of ThreadPoolExecutor::submit: completes a ConcurrentFuture<R>.
template <class R, bool Stoppable, class Fn, class... Args>
class SubmitJob final : public Job {
 public:
  template <class F, class... A>
  SubmitJob(ConcurrentFuture<R> future, F&& fn, A&&... args)
      : future_(std::move(future)), call_(std::forward<F>(fn), std::forward<A>(args)...) {
    act = &SubmitJob::act_on;
    if constexpr (Stoppable) interrupt_ = std::stop_source();
  }

 private:
  static void act_on(Job* base, JobAction action) noexcept {
    auto* self = static_cast<SubmitJob*>(base);
    ConcurrentFuture<R> future = std::move(self->future_);
    if (action == JobAction::cancel || !ConcurrentFutureAccess::start(future, self->interrupt_)) {
      delete self;
      if (action == JobAction::cancel) future.cancel();
      return;
    }
    Result<R> result = run_call<R, Stoppable>(self->call_, self->interrupt_.get_token());
    delete self;  // fn and its arguments are gone before the future completes
    ConcurrentFutureAccess::finish(future, result);
  }

  ConcurrentFuture<R> future_;
  Call<Fn, Args...> call_;
  std::stop_source interrupt_{std::nostopstate};
};

class ThreadPool;          // futures/src/executor.cpp
class LoopExecutors;       // below
struct ShutdownOperation;  // futures/src/executor.cpp

/// What eddy's loop machinery may do to an executor beyond its public API.
struct ExecutorAccess {
  /// Queues `job` (taking it over). Throws ExecutorShutdownError (the job is
  /// left to the caller) after shutdown.
  static void enqueue(ThreadPoolExecutor& executor, Job* job);
  /// Lets go of `executor`: if nothing else holds it, it is shut down without
  /// waiting and its threads end on their own (detached). With `shut_down`,
  /// it is shut down (without waiting) in any case.
  static void let_go(std::shared_ptr<ThreadPoolExecutor> executor, bool shut_down) noexcept;
  /// Jobs running and queued now.
  static std::pair<std::size_t, std::size_t> load(const ThreadPoolExecutor& executor);
  /// Worker threads started so far (and not yet joined or detached).
  static std::size_t threads(const ThreadPoolExecutor& executor);
};

// ------------------------------------------------------------------ the loop side

/// A loop's bookkeeping of work whose completion has not come back yet: the
/// loop cancels it when it closes, so that nothing is left pending.
struct InFlight {
  InFlight* prev = nullptr;
  InFlight* next = nullptr;
  /// The loop is closing: cancel what this stands for and let go of its
  /// loop side (its completion is then orphaned by the port).
  void (*abandon)(InFlight* self) noexcept = nullptr;

  /// Takes this node out of `loop`'s in-flight list; the last one out gives
  /// back the loop's hold (LoopExecutors::link took it).
  void unlink(Loop& loop) noexcept {
    prev->next = next;
    next->prev = prev;
    if (prev == next) LoopExtensions::remove_hold(loop);  // only the anchor is left
  }
};

/// The executor state a Loop keeps in its ExtensionSlot::executor: the
/// default executor, the CompletionPort through which results come back, and
/// the jobs in flight.
///
/// Invariants (loop thread only, except the port):
/// - Every job created by run_in_executor is in the in-flight list from its
///   creation until its completion is delivered, or until the loop closes.
/// - While the list is not empty, the loop holds one LoopExtensions hold (an
///   attached host's uv_run waits for the jobs, as for uv_queue_work).
/// - After loop_closing(): closed, no default executor, no port; every job
///   that was in flight has its future cancelled and is orphaned.
class LoopExecutors final : public LoopExtension {
 public:
  explicit LoopExecutors(Loop& loop);
  ~LoopExecutors() override;

  /// The state of `loop`, made on first use. Throws LoopClosedError (naming
  /// `method`) once the loop closes.
  static LoopExecutors& of(Loop& loop, const char* method) {
    if (LoopExtension* ext = LoopExtensions::get(loop, ExtensionSlot::executor)) [[likely]] {
      auto& self = static_cast<LoopExecutors&>(*ext);
      if (self.closed_) [[unlikely]]
        throw_loop_closed(method);
      return self;
    }
    return install(loop, method);
  }
  /// The default executor of `loop`, if any (for tests and diagnostics).
  static std::shared_ptr<ThreadPoolExecutor> peek_default_executor(const Loop& loop);

  /// The default executor, made on first use. Throws ExecutorShutdownError
  /// after shutdown_default_executor().
  ThreadPoolExecutor& default_executor(const char* method) {
    if (default_executor_ && !shutdown_called_) [[likely]]
      return *default_executor_;
    return make_default_executor(method);
  }
  void set_default_executor(std::shared_ptr<ThreadPoolExecutor> executor);
  Future<void> shutdown_default_executor(double timeout_seconds);

  Loop& loop() const noexcept { return *loop_; }
  CompletionPort* port() const noexcept { return port_; }

  /// Adds `node` to the in-flight list (InFlight::unlink takes it out).
  void link(InFlight* node) noexcept {
    if (anchor_.next == &anchor_) LoopExtensions::add_hold(*loop_);
    node->prev = anchor_.prev;
    node->next = &anchor_;
    anchor_.prev->next = node;
    anchor_.prev = node;
  }
  /// Jobs (and shutdowns) in flight, counted (for tests and diagnostics).
  std::size_t in_flight() const noexcept {
    std::size_t n = 0;
    for (const InFlight* node = anchor_.next; node != &anchor_; node = node->next)
      ++n;
    return n;
  }

  bool loop_closing() noexcept override;

 private:
  friend struct ShutdownOperation;
  static LoopExecutors& install(Loop& loop, const char* method);
  ThreadPoolExecutor& make_default_executor(const char* method);
  void report_stragglers(ShutdownOperation& op, double timeout_seconds) noexcept;

  Loop* loop_;
  bool closed_ = false;
  bool shutdown_called_ = false;
  std::shared_ptr<ThreadPoolExecutor> default_executor_;
  CompletionPort* port_;
  InFlight anchor_;                        // the in-flight list: circular, through anchor_
  ShutdownOperation* shutdown_ = nullptr;  // shutdown_default_executor in progress
};

/// What an executor job's future tells at once, inside Future::cancel
/// (JobFuture). Intrusive: it lives in the job, which clears JobFuture::job
/// before it lets go of the future.
struct CancelHook {
  void (*on_cancel)(CancelHook* self) noexcept;
};

/// The future of a job of Loop::run_in_executor (CancelRoute::hook): its
/// cancel() reaches the job at once, as asyncio's Task.cancel acts at once,
/// rather than one iteration later through a done callback. Only these
/// futures pay for the pointer.
template <class R>
struct JobFuture final : FutureShared<R> {
  JobFuture(Loop& on, SourceLocation where) noexcept : FutureShared<R>(on, where) {
    this->route = CancelRoute::hook;
  }
  void destroy() noexcept override {
    this->~JobFuture();
    BlockCache<sizeof(JobFuture)>::deallocate(this);
  }
  void cancelled_hook() noexcept override {
    if (CancelHook* hook = std::exchange(job, nullptr)) hook->on_cancel(hook);
  }
  static Future<R> make(Loop& on, SourceLocation where) {
    void* block = BlockCache<sizeof(JobFuture)>::allocate();
    return FutureAccess::adopt<R>(::new (block) JobFuture(on, where));
  }
  static JobFuture& of(Future<R>& future) noexcept {
    return static_cast<JobFuture&>(FutureAccess::core(future));
  }

  CancelHook* job = nullptr;  // the job, until it lets go of the future

 private:
  ~JobFuture() = default;
};

/// A job of Loop::run_in_executor: runs on a pool's worker, then comes back
/// through the loop's CompletionPort and completes a Future<R> there.
///
/// One owner at a time: the loop thread until queued, then the pool and the
/// worker, then the port; delivery on the loop thread frees it (or, once the
/// loop has closed, whoever the port orphans it on). Fields are touched as
/// follows: `storage_` (the call, then in its place the result) by the
/// worker until it posts the job, then by the loop thread; `future_` and the
/// in-flight links by the loop thread only; `state_` and the stop source by
/// both (atomic / thread-safe). Kept small (104 bytes for a function pointer
/// and one word of arguments): a burst holds one per job in flight.
///
/// Cancellation reaches the job through its JobFuture (at once, inside
/// Future::cancel, on the loop thread); the job clears the future's pointer
/// to it before it lets go of the future, so that never outlives the job.
template <class R, bool Stoppable, class Fn, class... Args>
class LoopJob final : public Job, public Completion, public InFlight, private CancelHook {
 public:
  enum State : std::uint8_t { pending, running, cancelled };

  template <class F, class... A>
  LoopJob(CompletionPort* port, F&& fn, A&&... args) : port_(port) {
    act = &LoopJob::act_on;
    complete = &LoopJob::complete_on;
    abandon = &LoopJob::abandon_on;
    on_cancel = &LoopJob::on_cancel_hook;
    ::new (&storage_.call) Call<Fn, Args...>(std::forward<F>(fn), std::forward<A>(args)...);
  }
  LoopJob(const LoopJob&) = delete;
  LoopJob& operator=(const LoopJob&) = delete;
  ~LoopJob() {
    if (holds_call_) {
      storage_.call.~Call<Fn, Args...>();
    } else {
      storage_.result.~Result<R>();
    }
  }

  // Jobs come and go in bursts as large as the loop submits: recycle their
  // memory per thread, as future states are (see detail::BlockCache).
  static void* operator new(std::size_t) { return BlockCache<sizeof(LoopJob)>::allocate(); }
  static void operator delete(void* block) noexcept {
    BlockCache<sizeof(LoopJob)>::deallocate(block);
  }

  /// Creates the job and its future, queues it on `executor`. On the loop thread.
  template <class F, class... A>
  static Future<R> start(Loop& loop, ThreadPoolExecutor& executor, LoopExecutors& owner, F&& fn,
                         A&&... args) {
    Future<R> future =
        JobFuture<R>::make(loop, SourceLocation::made_by("eddy::Loop::run_in_executor"));
    auto* job = new LoopJob(owner.port(), std::forward<F>(fn), std::forward<A>(args)...);
    job->future_ = future;
    JobFuture<R>::of(future).job = job;
    owner.link(job);
    try {
      ExecutorAccess::enqueue(executor, job);
    } catch (...) {
      job->unlink(loop);
      JobFuture<R>::of(future).job = nullptr;
      delete job;
      throw;
    }
    return future;
  }

 private:
  // Loop thread, inside Future::cancel: a job not started yet never runs; a
  // running one that takes a stop_token is asked to stop (its stop_callbacks
  // run here); any other keeps running and its result is dropped.
  static void on_cancel_hook(CancelHook* hook) noexcept {
    static_cast<LoopJob*>(hook)->cancel_work();
  }
  void cancel_work() noexcept {
    std::uint8_t expected = pending;
    if (state_.compare_exchange_strong(expected, cancelled, std::memory_order_acq_rel)) return;
    if constexpr (Stoppable) {
      if (expected == running) stop_.source.request_stop();
    }
  }

  // Worker (run), or the thread calling shutdown(cancel_futures) (cancel).
  static void act_on(Job* base, JobAction action) noexcept {
    auto* self = static_cast<LoopJob*>(base);
    std::uint8_t expected = pending;
    const std::uint8_t next = action == JobAction::run ? running : cancelled;
    // Built in place (no assignment: R need not be assignable).
    Result<R> result = [&]() noexcept -> Result<R> {
      if (self->state_.compare_exchange_strong(expected, next, std::memory_order_acq_rel) &&
          next == running) {
        return run_call<R, Stoppable>(self->storage_.call, self->stop_.token());
      }
      return Result<R>();
    }();
    // fn and its arguments are destroyed here, before the trip back; the
    // result takes their place. A move of R that throws makes its exception
    // the result.
    self->storage_.call.~Call<Fn, Args...>();
    try {
      ::new (&self->storage_.result) Result<R>(std::move(result));
    } catch (...) {
      ::new (&self->storage_.result) Result<R>(std::in_place_index<2>, std::current_exception());
    }
    self->holds_call_ = false;
    self->port_->post(self);
  }

  // Loop thread (delivered), or wherever the port orphans it (not delivered:
  // the loop side was let go by abandon_on already).
  static void complete_on(Completion* base, bool delivered) noexcept {
    auto* self = static_cast<LoopJob*>(base);
    if (delivered) self->deliver();
    delete self;
  }

  void deliver() noexcept {
    Future<R> future = std::move(future_);
    unlink(*JobFuture<R>::of(future).loop);
    JobFuture<R>::of(future).job = nullptr;
    if (future.done()) return;  // cancelled (or completed) on the loop side meanwhile
    Result<R>& result = storage_.result;
    try {
      if (result.index() == 0) {
        future.cancel();  // never ran: shutdown(cancel_futures = true)
      } else if (result.index() == 2) {
        future.set_exception(std::move(std::get<2>(result)));
      } else if constexpr (std::is_void_v<R>) {
        future.set_result();
      } else {
        future.set_result(std::move(std::get<1>(result)));
      }
    } catch (...) {
      // A move of the result that throws: the future fails with its exception,
      // as a task's return does (an allocation failure of the ready queue
      // finds the future done already).
      if (!future.done()) {
        try {
          future.set_exception(std::current_exception());
        } catch (...) {
        }
      }
    }
  }

  static void abandon_on(InFlight* base) noexcept {
    auto* self = static_cast<LoopJob*>(base);
    self->cancel_work();
    Future<R> future = std::move(self->future_);
    JobFuture<R>::of(future).job = nullptr;
    try {
      future.cancel("eddy::Loop::close: the loop closed before the executor job completed");
    } catch (...) {
    }
  }

  // The stop_source of a job whose fn takes a std::stop_token; nothing otherwise.
  struct NoStop {
    std::stop_token token() const noexcept { return {}; }
  };
  struct Stop {
    std::stop_source source;
    std::stop_token held = source.get_token();  // made on the loop thread, read by the worker
    const std::stop_token& token() const noexcept { return held; }
  };
  union Storage {
    Storage() noexcept {}
    ~Storage() {}
    Call<Fn, Args...> call;  // until the job has run (or been dropped)
    Result<R> result;        // after
  };

  std::atomic<std::uint8_t> state_{pending};
  bool holds_call_ = true;
  CompletionPort* port_;
  Future<R> future_;
  Storage storage_;
  [[no_unique_address]] std::conditional_t<Stoppable, Stop, NoStop> stop_;
};

template <class F, class... Args>
using loop_job_t =
    LoopJob<typename JobTraits<F, Args...>::result_type, JobTraits<F, Args...>::stoppable,
            std::decay_t<F>, std::decay_t<Args>...>;

}  // namespace detail

// ------------------------------------------------------------------ ThreadPoolExecutor

/// A pool of eddy's own worker threads that runs blocking functions.
/// Mirrors: concurrent.futures.ThreadPoolExecutor.
///
/// Not libuv's thread pool (4 threads shared with file and DNS requests,
/// sized by an environment variable): each executor has its own threads,
/// started on demand up to `max_workers` (a submit that finds no idle worker
/// starts one), named "<thread_name_prefix>-<n>" (15 characters at most, as
/// Linux allows), and kept until shutdown.
///
/// Ordering: jobs start in submission order (one FIFO queue); with several
/// workers they may finish in any order.
///
/// Cancellation: cancelling a job's future before a worker starts it means it
/// never runs. A job whose fn takes a `std::stop_token` as its first
/// parameter — `submit([](std::stop_token stop, int n) {...}, 5)` — can be
/// cancelled while it runs: cancel() then cancels the future at once and
/// requests stop on the token; a job that polls the token (or waits on a
/// std::condition_variable_any with it) ends early, and whatever it returns
/// is discarded. Any other running job cannot be cancelled (cancel() returns
/// false), as in concurrent.futures.
///
/// Thread safety: every method may be called from any thread. fn and its
/// arguments (stored by value) are destroyed on the worker after the call,
/// before the future completes.
class ThreadPoolExecutor {
 public:
  /// min(32, hardware threads + 4): asyncio's default executor size.
  static int default_max_workers() noexcept;

  /// Throws std::invalid_argument unless max_workers > 0.
  explicit ThreadPoolExecutor(int max_workers = default_max_workers(),
                              std::string thread_name_prefix = "eddy-pool");
  /// shutdown(wait = true): runs what is queued, joins every worker.
  ~ThreadPoolExecutor();
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  /// Schedules `fn(args...)` (or `fn(stop_token, args...)`) on a worker and
  /// returns a ConcurrentFuture<R> that gets its result or the exception it
  /// threw. Mirrors: concurrent.futures.Executor.submit.
  /// Throws ExecutorShutdownError after shutdown() (nothing is queued then),
  /// std::system_error if no worker thread can be started.
  template <class F, class... Args>
  auto submit(F&& fn, Args&&... args) {
    detail::check_job_callable<F, Args...>();
    detail::check_callable(fn, "eddy::ThreadPoolExecutor::submit");
    using Traits = detail::JobTraits<F, Args...>;
    using R = typename Traits::result_type;
    using Job = detail::SubmitJob<R, Traits::stoppable, std::decay_t<F>, std::decay_t<Args>...>;
    ConcurrentFuture<R> future;
    auto* job = new Job(future, std::forward<F>(fn), std::forward<Args>(args)...);
    try {
      detail::ExecutorAccess::enqueue(*this, job);
    } catch (...) {
      delete job;
      throw;
    }
    return future;
  }

  /// Stops accepting work. Mirrors: concurrent.futures.Executor.shutdown.
  /// Queued jobs still run, unless `cancel_futures`: then their futures are
  /// cancelled and they never run (running ones are not interrupted). With
  /// `wait`, returns once every worker has finished and been joined — except
  /// on one of this pool's own workers, which cannot wait for itself: there
  /// it does not wait. Idempotent; several threads may call it at once.
  void shutdown(bool wait = true, bool cancel_futures = false);

  int max_workers() const noexcept;

 private:
  friend struct detail::ExecutorAccess;
  std::shared_ptr<detail::ThreadPool> pool_;
};

// ------------------------------------------------------------------ on the loop
//
// Loop::run_in_executor (declared in <eddy/loop.hpp>), the rules:
// - Ordering: the returned Future<R> completes on the loop's thread. Results
//   come back through the loop's cross-thread path (call_soon_threadsafe) in
//   batches: one wake-up for a burst, then at most 256 per loop iteration (I/O
//   and timers are served between chunks), in the order the jobs finished.
// - Cancellation: cancelling the future cancels the job at once, as
//   ThreadPoolExecutor describes (a job not started never runs; one taking a
//   std::stop_token is asked to stop, its stop_callbacks running on the loop
//   thread inside cancel()); a result that arrives for a cancelled future is
//   dropped, as asyncio's wrap_future drops it.
// - Loop close: every job still in flight is cancelled that way and its future
//   cancelled ("eddy::Loop::close: the loop closed before the executor job
//   completed"): nothing is left pending. The default executor is shut down
//   without waiting; its threads end on their own once their job returns.
// - A coroutine function (returning eddy::Task) does not compile here: a
//   worker cannot run it (asyncio's debug mode raises TypeError).
// - Attached loop (LoopOptions::attach_to): a job in flight keeps the host's
//   uv_run alive until its completion has come back, as a uv_work_t does,
//   also after its future was cancelled.
// - Thread safety: call it on the loop's thread. fn runs on a worker, and fn
//   and its arguments are destroyed there.

template <class F, class... Args>
requires(!std::is_same_v<std::remove_cvref_t<F>, ThreadPoolExecutor>) auto Loop::run_in_executor(
    F&& fn, Args&&... args) {
  detail::check_job_callable<F, Args...>();
  detail::check_callable(fn, "eddy::Loop::run_in_executor");
  detail::LoopExtensions::check_usable(*this, "run_in_executor");
  detail::LoopExecutors& executors = detail::LoopExecutors::of(*this, "run_in_executor");
  return detail::loop_job_t<F, Args...>::start(*this, executors.default_executor("run_in_executor"),
                                               executors, std::forward<F>(fn),
                                               std::forward<Args>(args)...);
}

template <class F, class... Args>
auto Loop::run_in_executor(ThreadPoolExecutor& executor, F&& fn, Args&&... args) {
  detail::check_job_callable<F, Args...>();
  detail::check_callable(fn, "eddy::Loop::run_in_executor");
  detail::LoopExtensions::check_usable(*this, "run_in_executor");
  detail::LoopExecutors& executors = detail::LoopExecutors::of(*this, "run_in_executor");
  return detail::loop_job_t<F, Args...>::start(*this, executor, executors, std::forward<F>(fn),
                                               std::forward<Args>(args)...);
}

template <class Rep, class Period>
Future<void> Loop::shutdown_default_executor(std::chrono::duration<Rep, Period> timeout) {
  return shutdown_default_executor(std::chrono::duration<double>(timeout).count());
}

/// Runs `fn(args...)` on the default executor of the running loop and returns
/// its Future<R>. Mirrors: asyncio.to_thread (which also copies the context;
/// C++ has none to copy). Throws NoRunningLoopError outside a running loop,
/// and what run_in_executor throws.
template <class F, class... Args>
auto to_thread(F&& fn, Args&&... args) {
  return get_running_loop().run_in_executor(std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace eddy
