// wait: wait for some or all of a set of futures. Mirrors: asyncio.wait.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "eddy/future.hpp"
#include "eddy/gather.hpp"
#include "eddy/handle.hpp"
#include "eddy/task.hpp"

namespace eddy {

/// When wait() returns. Mirrors: asyncio.FIRST_COMPLETED / FIRST_EXCEPTION /
/// ALL_COMPLETED.
enum class ReturnWhen { first_completed, first_exception, all_completed };

/// What wait() returns: the futures that are done and those still pending,
/// each in the order they were given (asyncio returns two sets).
template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> pending;
};

namespace detail {

// The wait's bookkeeping, owned by the wait's coroutine frame; its destructor
// takes every callback and the timer back before the frame goes, whatever
// way it leaves (result, cancel, loop close). The callbacks hold it weakly:
// one already queued when the frame goes cannot be taken back, and finds
// the state gone.
template <class T>
struct WaitState {
  WaitState(Loop& loop, std::vector<Future<T>>& watched, ReturnWhen condition)
      : futures(watched),
        when(condition),
        waiter(loop.create_future<void>()),
        counter(watched.size()) {}
  WaitState(const WaitState&) = delete;
  WaitState& operator=(const WaitState&) = delete;
  ~WaitState() {
    timer.cancel();
    for (std::size_t i = 0; i < ids.size(); ++i)
      futures[i].remove_done_callback(ids[i]);
  }
  void on_completion(Future<T>& f) {
    --counter;
    // In asyncio's order: exception() (which counts as retrieving it) is
    // asked only when neither of the first two decides.
    if (counter == 0 || when == ReturnWhen::first_completed ||
        (when == ReturnWhen::first_exception && !f.cancelled() && f.exception() != nullptr)) {
      release();
    }
  }
  void release() {
    timer.cancel();
    if (!waiter.done()) waiter.set_result();
  }

  std::vector<Future<T>>& futures;
  ReturnWhen when;
  Future<void> waiter;
  std::size_t counter;
  std::vector<DoneCallbackId> ids;
  TimerHandle timer;
};

}  // namespace detail

/// Waits until `when` holds for `futures` (futures or tasks; tasks are
/// scheduled first), or `timeout` seconds pass, and returns which are done
/// and which are pending. Cancels nothing. Mirrors: asyncio.wait.
///
/// - first_completed: returns when any is done; first_exception: when one
///   fails (a cancelled one does not count), or all are done; all_completed
///   (the default): when all are done.
/// - On timeout it returns what is done so far; no TimeoutError. A timeout
///   of +infinity is none; -infinity is past, as any negative one.
/// - It always suspends at least once, as asyncio's does.
/// - Throws std::invalid_argument for an empty input (as asyncio's
///   ValueError) or futures of different loops, before suspending.
template <class T>
Task<WaitResult<T>> wait(std::vector<Future<T>> futures,
                         ReturnWhen when = ReturnWhen::all_completed,
                         std::optional<double> timeout = std::nullopt) {
  if (futures.empty()) throw std::invalid_argument("eddy::wait: the set of futures is empty");
  for (const Future<T>& f : futures)
    detail::check_not_empty(f);
  Loop& loop = detail::common_loop(futures, "eddy::wait");
  auto state = std::make_shared<detail::WaitState<T>>(loop, futures, when);
  std::weak_ptr<detail::WaitState<T>> weak = state;
  if (std::optional<double> delay = detail::deadline_delay(timeout)) {
    state->timer = loop.call_later(*delay, [weak] {
      if (auto alive = weak.lock()) alive->release();
    });
  }
  state->ids.reserve(futures.size());
  for (Future<T>& f : futures) {
    state->ids.push_back(f.add_done_callback([weak](Future<T>& done) {
      if (auto alive = weak.lock()) alive->on_completion(done);
    }));
  }
  co_await state->waiter;
  WaitResult<T> result;
  for (Future<T>& f : futures)
    (f.done() ? result.done : result.pending).push_back(f);
  co_return result;
}
template <class T>
Task<WaitResult<T>> wait(std::vector<Task<T>> tasks, ReturnWhen when = ReturnWhen::all_completed,
                         std::optional<double> timeout = std::nullopt) {
  return wait(detail::schedule_all(std::move(tasks), "eddy::wait"), when, timeout);
}

}  // namespace eddy
