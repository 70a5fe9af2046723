// as_completed: results in the order they arrive. Mirrors: asyncio.as_completed.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "eddy/detail/waiters.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/gather.hpp"
#include "eddy/handle.hpp"
#include "eddy/task.hpp"

namespace eddy {

namespace detail {

/// Shared by the AsCompleted object and the callbacks: futures move from
/// `pending` to `arrived` as they finish; each next() takes the oldest
/// arrival, waiting for one if none is there. A deadline turns every future
/// still pending into an arrival that throws TimeoutError.
template <class T>
struct AsCompletedState {
  explicit AsCompletedState(Loop& l) : loop(&l) {}
  AsCompletedState(const AsCompletedState&) = delete;
  AsCompletedState& operator=(const AsCompletedState&) = delete;
  ~AsCompletedState() { timer.cancel(); }

  void arrive(std::optional<Future<T>> f) {
    arrived.push_back(std::move(f));
    wake_next();
  }
  // A cancelled waiter never swallows an arrival (it stays for the next next()).
  void wake_next() { detail::wake_next(waiters); }
  /// Future i's done callback ran: it arrives, unless the deadline passed
  /// first (then it has arrived already, as a TimeoutError).
  void arrive_from(std::size_t i, Future<T>& f) {
    if (ids[i] == 0) return;
    ids[i] = 0;
    arrive(f);
  }
  /// Every future whose arrival was not seen yet times out, even one done
  /// in this iteration whose callback has not run (as asyncio's _on_timeout
  /// turns all of `todo` into TimeoutErrors).
  void on_timeout() {
    for (std::size_t i = 0; i < pending.size(); ++i) {
      if (ids[i] != 0) {
        pending[i].remove_done_callback(std::exchange(ids[i], 0));  // 0 if already scheduled
        arrive(std::nullopt);
      }
    }
  }

  Loop* loop;
  std::vector<Future<T>> pending;
  std::vector<DoneCallbackId> ids;               // 0 once future i arrived or timed out
  std::deque<std::optional<Future<T>>> arrived;  // nullopt: the deadline passed
  std::deque<Future<void>> waiters;
  std::size_t remaining_next = 0;
  TimerHandle timer;
};

template <class T>
Task<T> next_completed(std::shared_ptr<AsCompletedState<T>> state) {
  while (state->arrived.empty()) {
    Future<void> waiter = state->loop->template create_future<void>();
    state->waiters.push_back(waiter);
    try {
      co_await waiter;
    } catch (...) {
      // Woken by an arrival but cancelled before taking it: pass the wake-up
      // on, or the next waiter would wait for one more arrival.
      if (waiter.done() && !waiter.cancelled() && !state->arrived.empty()) state->wake_next();
      throw;
    }
  }
  std::optional<Future<T>> f = std::move(state->arrived.front());
  state->arrived.pop_front();
  if (!f) throw TimeoutError("eddy::as_completed: the timeout passed");
  co_return take_result(*f);
}

}  // namespace detail

/// The futures of as_completed(), to take in completion order. Mirrors the
/// iterator asyncio.as_completed returns.
///
///     for (eddy::Task<int> next : eddy::as_completed(futures, 5.0)) {
///       int v = co_await next;  // the earliest result not taken yet
///     }
///
/// Each next() (or each element of the range) is a Task that, awaited,
/// gives the result of the earliest future to finish that was not taken yet,
/// or rethrows its exception; once the timeout has passed, the ones left
/// throw TimeoutError (a timeout of +infinity is none; -infinity is
/// past). There are exactly as many as futures given. Awaiting
/// them concurrently is fine: each arrival goes to one awaiter, in order;
/// a cancelled awaiter does not lose one.
template <class T>
class AsCompleted {
 public:
  AsCompleted(std::vector<Future<T>> futures, std::optional<double> timeout) {
    if (futures.empty()) return;
    for (Future<T>& f : futures)
      detail::check_not_empty(f);
    state_ = std::make_shared<detail::AsCompletedState<T>>(
        detail::common_loop(futures, "eddy::as_completed"));
    state_->pending = std::move(futures);
    state_->remaining_next = state_->pending.size();
    std::weak_ptr<detail::AsCompletedState<T>> weak = state_;
    for (std::size_t i = 0; i < state_->pending.size(); ++i) {
      state_->ids.push_back(state_->pending[i].add_done_callback([weak, i](Future<T>& done) {
        if (auto state = weak.lock()) state->arrive_from(i, done);
      }));
    }
    if (std::optional<double> delay = detail::deadline_delay(timeout)) {
      state_->timer = state_->loop->call_later(*delay, [weak] {
        if (auto state = weak.lock()) state->on_timeout();
      });
    }
  }

  /// How many futures are left to take.
  std::size_t size() const noexcept { return state_ ? state_->remaining_next : 0; }
  /// The next result in completion order, as a Task to await. Throws
  /// InvalidStateError when all were taken.
  Task<T> next() {
    if (size() == 0) throw InvalidStateError("eddy::as_completed: every future was taken");
    --state_->remaining_next;
    return detail::next_completed(state_);
  }

  class iterator {
   public:
    explicit iterator(AsCompleted* owner) noexcept : owner_(owner) {}
    Task<T> operator*() const { return owner_->next(); }
    iterator& operator++() noexcept { return *this; }
    bool operator!=(const iterator&) const noexcept { return owner_->size() != 0; }

   private:
    AsCompleted* owner_;
  };
  iterator begin() noexcept { return iterator(this); }
  iterator end() noexcept { return iterator(this); }

 private:
  std::shared_ptr<detail::AsCompletedState<T>> state_;
};

/// Takes `futures` (futures or tasks; tasks are scheduled first) in the order
/// they finish; see AsCompleted. `timeout` (seconds) bounds the whole
/// iteration. Mirrors: asyncio.as_completed.
template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> futures,
                            std::optional<double> timeout = std::nullopt) {
  return AsCompleted<T>(std::move(futures), timeout);
}
template <class T>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks,
                            std::optional<double> timeout = std::nullopt) {
  return AsCompleted<T>(detail::schedule_all(std::move(tasks), "eddy::as_completed"), timeout);
}

}  // namespace eddy
