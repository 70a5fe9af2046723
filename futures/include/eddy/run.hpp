// run: the program's entry point into eddy. Mirrors: asyncio.run.
#pragma once

#include <cstddef>
#include <exception>
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
/// exception handler.
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
/// loop is already running on this thread.
template <class T>
T run(Task<T> main, LoopOptions options = LoopOptions()) {
  if (try_get_running_loop() != nullptr) {
    throw LoopRunningError("eddy::run: cannot be called while another loop runs on this thread");
  }
  Loop loop(std::move(options));
  struct CloseAtExit {  // also when `main` throws
    Loop& loop;
    ~CloseAtExit() {
      try {
        detail::cancel_all_tasks(loop);
        // As asyncio.Runner.close: the default executor's jobs, queued ones
        // too, finish (for up to 300 s, asyncio's THREAD_JOIN_TIMEOUT; the
        // stragglers are reported) before the loop closes.
        loop.run_until_complete(loop.shutdown_default_executor(300.0));
      } catch (...) {
        // Out of memory while cancelling: close() still releases the tasks.
      }
      loop.close();
    }
  } close_at_exit{loop};
  return loop.run_until_complete(std::move(main));
}

}  // namespace eddy
