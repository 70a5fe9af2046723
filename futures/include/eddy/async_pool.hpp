// AsyncPool: run coroutine jobs from plain synchronous code, at most `size`
// at once, with back-pressure. (The seed's AsyncPoolExecutor.)
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "eddy/concurrent_future.hpp"
#include "eddy/detail/waiters.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop_thread.hpp"
#include "eddy/run_coroutine_threadsafe.hpp"
#include "eddy/task.hpp"

namespace eddy {

/// A pool that runs coroutine functions on its own loop thread, for callers
/// that know nothing of event loops: `submit(fn, args...)` from any thread
/// returns a ConcurrentFuture; `result()` blocks for the value.
///
///     eddy::AsyncPool pool(10);
///     auto f = pool.submit([](int i) -> eddy::Task<int> { co_return i * i; }, 7);
///     int v = f.result();  // 49
///
/// - At most `size` jobs run at once; later ones wait, in submission order.
/// - Back-pressure: `submit` blocks while `backlog` submitted jobs wait to
///   start; `try_submit` returns nullopt instead of blocking. backlog 0
///   means unbounded. From one of the pool's own jobs, `submit` with the
///   backlog full throws RuntimeError instead of blocking the pool's thread
///   for good.
/// - A job that fails or is cancelled never stops the pool: its exception
///   goes to its future. Cancelling a future cancels its job (one that has
///   not started never runs).
/// - shutdown(true) stops taking jobs and waits for every job submitted;
///   shutdown(false) cancels the jobs that have not started and the running
///   ones (each ends as its coroutine answers the cancel), then stops the
///   thread. The destructor calls shutdown(true). Submitting after shutdown
///   throws ExecutorShutdownError.
/// - The pool prints nothing.
///
/// Thread safety: every method may be called from any thread but the pool's
/// own (do not block on a job from inside a job).
class AsyncPool {
 public:
  explicit AsyncPool(std::size_t size, std::size_t backlog = 0,
                     std::string thread_name = "eddy-pool")
      : size_(size), backlog_(backlog), thread_(LoopOptions(), std::move(thread_name)) {
    if (size == 0) throw std::invalid_argument("eddy::AsyncPool: size must be at least 1");
  }
  ~AsyncPool() { shutdown(true); }
  AsyncPool(const AsyncPool&) = delete;
  AsyncPool& operator=(const AsyncPool&) = delete;

  /// Submits `fn(args...)` (a coroutine function returning Task<T>),
  /// waiting while the backlog is full. Returns its ConcurrentFuture<T>.
  /// `fn` and `args` are kept, and passed, as LoopThread::submit does.
  template <class F, class... Args>
  auto submit(F&& fn, Args&&... args) {
    detail::check_callable(fn, "eddy::AsyncPool::submit");
    std::unique_lock lock(mutex_);
    auto has_room = [&] { return closed_ || backlog_ == 0 || waiting_ < backlog_; };
    if (!has_room() && try_get_running_loop() == &thread_.loop()) {
      throw RuntimeError(
          "eddy::AsyncPool::submit: the backlog is full and the caller is one of the pool's own "
          "jobs, which would wait for itself; use try_submit there");
    }
    room_.wait(lock, has_room);
    return start(lock, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  /// Same without waiting: nullopt if the backlog is full.
  template <class F, class... Args>
  auto try_submit(F&& fn, Args&&... args)
      -> std::optional<decltype(this->submit(std::forward<F>(fn), std::forward<Args>(args)...))> {
    detail::check_callable(fn, "eddy::AsyncPool::try_submit");
    std::unique_lock lock(mutex_);
    if (!closed_ && backlog_ != 0 && waiting_ >= backlog_) return std::nullopt;
    return start(lock, std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Stops taking jobs; `wait`: lets every submitted job finish, else
  /// cancels them; then stops the loop thread. Idempotent. Throws
  /// RuntimeError, and changes nothing, when called from one of the pool's
  /// own jobs (its thread would wait for itself), as LoopThread::shutdown
  /// does on its own thread.
  void shutdown(bool wait = true) {
    if (try_get_running_loop() == &thread_.loop()) {
      throw RuntimeError(
          "eddy::AsyncPool::shutdown: called from the pool's own thread (a job), which would "
          "wait for itself");
    }
    {
      std::unique_lock lock(mutex_);
      closed_ = true;
      room_.notify_all();
    }
    if (!wait) {
      try {
        thread_.call_soon_threadsafe([this] { cancel_everything(); });
      } catch (const LoopClosedError&) {
      }
    }
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return submitted_ == finished_; });
    lock.unlock();
    thread_.shutdown();
  }

  /// Jobs submitted and not finished.
  std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return submitted_ - finished_;
  }

 private:
  // One per job, a parameter of its coroutine: whatever way the job ends
  // (finished, failed, cancelled before or after it started, destroyed
  // unrun), its frame's destruction settles the accounting once.
  class Ticket {
   public:
    explicit Ticket(AsyncPool* pool) noexcept : pool_(pool) {}
    Ticket(Ticket&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), started_(other.started_) {}
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (pool_ != nullptr) pool_->job_ended(started_);
    }
    AsyncPool& pool() const noexcept { return *pool_; }
    void started() noexcept { started_ = true; }

   private:
    AsyncPool* pool_;
    bool started_ = false;
  };

  template <class F, class... Args>
  static auto job(Ticket ticket, F fn, Args... args) -> std::invoke_result_t<F&, Args&&...> {
    // A job whose task the loop made after shutdown(false)'s cancel pass
    // (submitted just before the shutdown, handed to the loop just after it)
    // is cancelled as those before it were.
    if (ticket.pool().cancelled_all_) throw CancelledError("the AsyncPool was shut down");
    co_await ticket.pool().acquire_slot();
    ticket.started();
    ticket.pool().job_started();
    co_return co_await std::invoke(fn, std::move(args)...);  // as detail::call_owned
  }

  template <class F, class... Args>
  auto start(std::unique_lock<std::mutex>& lock, F&& fn, Args&&... args) {
    if (closed_) throw ExecutorShutdownError("eddy::AsyncPool::submit: the pool was shut down");
    ++waiting_;
    ++submitted_;
    lock.unlock();
    // From here the Ticket settles the counts, even if submitting fails: a
    // named one, as the copies of fn and args below may throw before the
    // parameter takes it over (in whatever order they are made).
    Ticket ticket(this);
    return run_coroutine_threadsafe(job(std::move(ticket), std::decay_t<F>(std::forward<F>(fn)),
                                        std::decay_t<Args>(std::forward<Args>(args))...),
                                    thread_.loop());
  }

  // Loop thread: a running slot, in submission order.
  Task<void> acquire_slot() {
    if (running_ < size_ && gates_.empty()) {
      ++running_;
      co_return;
    }
    Future<void> gate = thread_.loop().create_future<void>();
    gates_.push_back(gate);
    std::exception_ptr error;
    try {
      co_await gate;  // release_slot() hands its slot over
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      bool handed = gate.done() && !gate.cancelled();
      gate.cancel();
      detail::forget(gates_, gate);
      if (handed) release_slot();  // pass the slot on
      std::rethrow_exception(error);
    }
  }
  // Loop thread.
  void release_slot() {
    while (!gates_.empty()) {
      Future<void> next = std::move(gates_.front());
      gates_.pop_front();
      if (!next.done()) {
        next.set_result();  // the slot goes to it: running_ unchanged
        return;
      }
    }
    --running_;
  }
  void job_started() {
    std::lock_guard lock(mutex_);
    --waiting_;
    room_.notify_all();
  }
  void job_ended(bool started) noexcept {
    if (started) release_slot();  // on the loop thread: a started job's frame ends there
    std::lock_guard lock(mutex_);
    if (!started) --waiting_;
    ++finished_;
    room_.notify_all();
    idle_.notify_all();
  }
  // Loop thread: shutdown(false).
  void cancel_everything() {
    cancelled_all_ = true;
    for (TaskRef& task : all_tasks(thread_.loop()))
      task.cancel("the AsyncPool was shut down");
  }

  std::size_t size_;
  std::size_t backlog_;
  LoopThread thread_;
  mutable std::mutex mutex_;
  std::condition_variable room_;    // waiting_ dropped below backlog_, or closed
  std::condition_variable idle_;    // a job finished
  std::size_t waiting_ = 0;         // guarded: submitted, not started
  std::size_t submitted_ = 0;       // guarded
  std::size_t finished_ = 0;        // guarded
  bool closed_ = false;             // guarded
  std::size_t running_ = 0;         // loop thread: jobs holding a slot
  bool cancelled_all_ = false;      // loop thread: cancel_everything ran
  std::deque<Future<void>> gates_;  // loop thread: jobs waiting for a slot
};

}  // namespace eddy
