// run: the program's entry point into eddy. Mirrors: asyncio.run.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/future.hpp"
#include "eddy/loop.hpp"
#include "eddy/task.hpp"

namespace eddy {
namespace detail {

/// Cancels every task of `loop` that is not done and runs the loop until
/// they all are (asyncio.runners._cancel_all_tasks). A task that then fails
/// with an exception other than CancelledError is reported to the loop's
/// exception handler. A task whose cancel() throws (tasks awaiting each other
/// in a cycle) is left to Loop::close(); the rest are cancelled and waited
/// for, then the first such error is thrown.
void cancel_all_tasks(Loop& loop);

}  // namespace detail

/// Runs `main` on a new loop and returns its result; then cancels the tasks
/// still pending, lets them finish, waits for the default executor's jobs
/// and threads (shutdown_default_executor), and closes the loop. Mirrors:
/// asyncio.run.
///
///     int main() { return eddy::run(amain()); }
///
/// Throws what `main` throws (after the clean-up), and LoopRunningError if a
/// loop is already running on this thread. An error of the clean-up itself
/// comes out instead of main's result or exception, as asyncio.run's does:
/// RuntimeError when a task stop()s the loop before the cancelled tasks have
/// finished, or close()'s RuntimeError when `main` left a libuv handle of
/// its own open on the loop. The default executor is waited for even then,
/// so that no job is cut off, and the loop is closed (or, if close() itself
/// refused, released when run returns).
template <class T>
T run(Task<T> main, LoopOptions options = LoopOptions()) {
  if (try_get_running_loop() != nullptr) {
    throw LoopRunningError("eddy::run: cannot be called while another loop runs on this thread");
  }
  Loop loop(std::move(options));
  using Result = std::conditional_t<std::is_void_v<T>, detail::NoValue, T>;
  std::optional<Result> result;
  std::exception_ptr error;  // main's, or the clean-up's, which replaces it
  try {
    if constexpr (std::is_void_v<T>) {
      loop.run_until_complete(std::move(main));
      result.emplace();
    } else {
      result.emplace(loop.run_until_complete(std::move(main)));
    }
  } catch (...) {
    error = std::current_exception();
  }
  // Each step of the clean-up runs even if one before it failed (the first
  // failure is the one thrown).
  std::exception_ptr cleanup_error;
  auto step = [&](auto&& fn) {
    try {
      fn();
    } catch (...) {
      if (!cleanup_error) cleanup_error = std::current_exception();
    }
  };
  step([&] { detail::cancel_all_tasks(loop); });
  // As asyncio.Runner.close: the default executor's jobs, queued ones too,
  // finish (for up to 300 s, asyncio's THREAD_JOIN_TIMEOUT; the stragglers
  // are reported) before the loop closes.
  step([&] { loop.run_until_complete(loop.shutdown_default_executor(300.0)); });
  step([&] { loop.close(); });
  if (cleanup_error) std::rethrow_exception(cleanup_error);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace eddy
