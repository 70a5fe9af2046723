// shield: protect an awaitable from the cancellation of its awaiter.
// Mirrors: asyncio.shield.
#pragma once

#include <type_traits>
#include <utility>

#include "eddy/future.hpp"
#include "eddy/task.hpp"

namespace eddy {

/// A future that follows `inner` but whose cancellation does not reach it.
/// Mirrors: asyncio.shield.
///
/// Cancelling the returned future (or a task awaiting it) leaves `inner`
/// running; if `inner` is cancelled on its own, the returned future is
/// cancelled too. A done `inner` is returned as it is. For a move-only T the
/// result is moved from `inner` into the returned future.
template <class T>
Future<T> shield(Future<T> inner) {
  if (inner.done()) return inner;
  Future<T> outer = inner.get_loop().template create_future<T>();
  // Only inner -> outer holds a reference: no cycle if neither completes.
  inner.add_done_callback([outer](Future<T>& done) mutable {
    if (outer.done()) {
      if (!done.cancelled()) done.exception();  // retrieved: the shield saw it
      return;
    }
    if (done.cancelled()) {
      outer.cancel();
    } else if (std::exception_ptr error = done.exception()) {
      outer.set_exception(error);
    } else if constexpr (std::is_void_v<T>) {
      outer.set_result();
    } else if constexpr (std::is_copy_constructible_v<T>) {
      outer.set_result(done.result());
    } else {
      outer.set_result(std::move(done.result()));
    }
  });
  return outer;
}

/// Schedules `task` on the running loop (create_task) and shields its future.
template <class T>
Future<T> shield(Task<T> task) {
  return shield(create_task(std::move(task)));
}

}  // namespace eddy
