// LoopThread: an event loop running on a thread of its own, for synchronous
// code. Mirrors the asyncio pattern
// `threading.Thread(target=loop.run_forever)` with its start-up and shutdown
// done right.
#pragma once

#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "eddy/handle.hpp"
#include "eddy/loop.hpp"

namespace eddy {

/// A Loop that runs on its own thread from construction to destruction.
///
/// The constructor starts the thread and returns once the loop is running.
/// shutdown() — or the destructor, which calls it — asks the loop to stop
/// (through call_soon_threadsafe, so callbacks posted before it run first),
/// waits for the callback running at that moment to return, closes the loop
/// on its thread (queued callbacks are destroyed unrun; executor jobs still in
/// flight are cancelled, the default executor is shut down without waiting)
/// and joins the thread. It never waits for anything else, and needs no
/// atexit hook. The Loop object itself lives until the destructor, so that
/// late call_soon_threadsafe calls throw LoopClosedError instead of touching
/// freed memory.
///
/// A stop() called by code on the loop does not end the thread: the loop runs
/// again at once. Only shutdown() ends it.
///
/// Thread safety: loop() may be called from any thread, but the Loop's own
/// rules apply: from other threads use call_soon_threadsafe (or, with
/// <eddy/executor.hpp> and tasks, the submit functions). shutdown() may be
/// called from any thread but the loop's own (it cannot join itself: it
/// throws RuntimeError there; the destructor terminates the program with a
/// message, as destroying a running Loop does).
class LoopThread {
 public:
  /// Starts a loop made with `options` on a new thread named `thread_name`
  /// (15 characters at most). Throws std::invalid_argument for an attached
  /// loop (LoopOptions::attach_to: its host runs it), and what the Loop
  /// constructor and std::thread throw.
  explicit LoopThread(LoopOptions options = {}, std::string thread_name = "eddy-loop");
  /// shutdown(), then destroys the loop.
  ~LoopThread();
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  /// The loop. Its non-threadsafe methods must be called on its thread (from
  /// its callbacks).
  Loop& loop() noexcept { return loop_; }

  /// The thread running the loop.
  std::thread::id thread_id() const noexcept { return thread_id_; }

  /// Schedules `f(args...)` on the loop's thread. Mirrors:
  /// asyncio.loop.call_soon_threadsafe. Calls from one thread keep their
  /// order. Throws LoopClosedError once shutdown() (or the destructor) has
  /// closed the loop.
  template <class F, class... Args>
  Handle call_soon_threadsafe(F&& f, Args&&... args) {
    return loop_.call_soon_threadsafe(std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// Stops the loop, closes it on its thread and joins the thread (see the
  /// class comment). Idempotent; concurrent callers all return once the
  /// thread is joined. Throws RuntimeError on the loop's own thread.
  void shutdown();

  /// Runs the coroutine function `fn(args...)` (returning Task<T>) as a task
  /// on the loop, from any thread, and returns a ConcurrentFuture<T> for its
  /// result; cancelling that future cancels the task. `fn` and `args` are
  /// copied (moved) and kept alive until the task ends, so a lambda with
  /// captures is safe here; `fn` gets the kept arguments as rvalues, as a
  /// std::thread's function does (by-value parameters, move-only ones too,
  /// and const references work; a non-const lvalue reference parameter
  /// needs std::ref). Defined in <eddy/run_coroutine_threadsafe.hpp>
  /// (run_coroutine_threadsafe). Throws LoopClosedError after shutdown().
  template <class F, class... Args>
  auto submit(F&& fn, Args&&... args);

 private:
  void run() noexcept;

  Loop loop_;
  bool stopping_ = false;  // loop thread only: set by shutdown()'s stop callback
  std::thread thread_;
  std::thread::id thread_id_;  // thread_'s, kept after the join
  std::mutex shutdown_mutex_;  // serializes shutdown() callers
  bool joined_ = false;        // guarded by shutdown_mutex_
};

}  // namespace eddy
