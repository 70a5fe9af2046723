// shield: protect an awaitable from the cancellation of its awaiter.
// Mirrors: asyncio.shield.
#pragma once

#include <type_traits>
#include <utility>

#include "eddy/future.hpp"
#include "eddy/task.hpp"

namespace eddy {

namespace detail {

/// A shield's outer future: it knows the callback it has on its inner
/// future, so that once it is done (and its done callbacks run) it can take
/// that callback off, as asyncio's _outer_done_callback does. It holds no
/// reference to the inner future (only the inner's callback holds one to it:
/// no cycle); the callback clears `inner` when it goes.
template <class T>
struct ShieldFuture final : FutureShared<T> {
  ShieldFuture(Loop& on, SourceLocation where) noexcept : FutureShared<T>(on, where) {}
  void destroy() noexcept override {
    this->~ShieldFuture();
    BlockCache<sizeof(ShieldFuture)>::deallocate(this);
  }
  static ShieldFuture& of(const Future<T>& future) noexcept {
    return static_cast<ShieldFuture&>(*FutureAccess::shared(future));
  }

  FutureCore* inner = nullptr;  // while the callback below is on it
  DoneCallbackId callback = 0;  // on `inner`

 private:
  ~ShieldFuture() = default;
};

/// The shield's callback on its inner future: passes the outcome on.
template <class T>
struct ShieldInnerDone {
  Future<T> outer;

  explicit ShieldInnerDone(Future<T> to) noexcept : outer(std::move(to)) {}
  ShieldInnerDone(ShieldInnerDone&&) noexcept = default;
  ShieldInnerDone& operator=(ShieldInnerDone&&) = delete;
  ~ShieldInnerDone() {
    if (!outer.valid()) return;  // moved from
    ShieldFuture<T>& shielded = ShieldFuture<T>::of(outer);
    shielded.inner = nullptr;
    // Destroyed unrun while the outer is pending: the inner went away
    // pending, and the outer can no longer follow it.
    if (shielded.state == FutureState::pending) {
      end_orphaned(shielded,
                   "eddy::shield: the inner future was destroyed before it completed (its loop "
                   "closed, or nothing else held it)");
    }
  }
  void operator()(Future<T>& done) {
    if (outer.done()) {
      // Cancelled, and its callbacks have not run yet (they take this one
      // off): the shield saw the outcome, which counts as retrieved.
      if (!done.cancelled()) done.exception();
      return;
    }
    follow_outcome(done, outer);
  }
};

}  // namespace detail

/// A future that follows `inner` but whose cancellation does not reach it.
/// Mirrors: asyncio.shield.
///
/// Cancelling the returned future (or a task awaiting it) leaves `inner`
/// running; if `inner` is cancelled on its own, the returned future is
/// cancelled too. A done `inner` is returned as it is. For a move-only T the
/// result is moved from `inner` into the returned future. Once the returned
/// future is done and its callbacks have run, the shield lets go of `inner`:
/// a failure of `inner` after that is reported if nobody retrieves it, as in
/// asyncio. The shield holds no reference to `inner`: if `inner` goes away
/// pending (its loop closed, or nothing else held it), the returned future
/// ends cancelled, as gather's does, where asyncio's would stay pending
/// forever.
template <class T>
Future<T> shield(Future<T> given, SourceLocation where = SourceLocation::current()) {
  // A local, not the parameter: a parameter lives to the end of the
  // caller's full expression, which `co_await shield(std::move(f))` keeps
  // across the wait, and would hold the inner future all along.
  Future<T> inner = std::move(given);
  detail::check_not_empty(inner);
  if (inner.done()) return inner;
  using Outer = detail::ShieldFuture<T>;
  void* block = detail::BlockCache<sizeof(Outer)>::allocate();
  Future<T> outer = detail::FutureAccess::adopt<T>(::new (block) Outer(inner.get_loop(), where));
  Outer& state = Outer::of(outer);
  // First on the outer: takes the inner callback off once the outer is done.
  detail::add_core_done_callback(state, [](detail::FutureCore& core) {
    Outer& self = static_cast<Outer&>(core);
    // Destroying the callback clears self.inner (a done inner has run it).
    if (self.inner != nullptr) detail::remove_done_callback_by_id(*self.inner, self.callback);
  });
  state.callback = inner.add_done_callback(detail::ShieldInnerDone<T>(outer));
  state.inner = detail::FutureAccess::shared(inner);
  return outer;
}

/// Schedules `task` on the running loop (create_task) and shields its future.
template <class T>
Future<T> shield(Task<T> task, SourceLocation where = SourceLocation::current()) {
  return shield(create_task(std::move(task), where), where);
}

}  // namespace eddy
