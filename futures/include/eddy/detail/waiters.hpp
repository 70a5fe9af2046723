// Queues of waiter futures: how queues, as_completed and the pools wake the
// tasks that wait on them.
#pragma once

#include <algorithm>
#include <deque>

#include "eddy/future.hpp"

namespace eddy::detail {

/// Wakes the oldest waiter that still waits (a cancelled one is skipped, so
/// it never swallows the wake-up).
inline void wake_next(std::deque<Future<void>>& waiters) {
  while (!waiters.empty()) {
    Future<void> waiter = std::move(waiters.front());
    waiters.pop_front();
    if (!waiter.done()) {
      waiter.set_result();
      return;
    }
  }
}
inline void wake_all(std::deque<Future<void>>& waiters) {
  while (!waiters.empty())
    wake_next(waiters);
}
inline void forget(std::deque<Future<void>>& waiters, const Future<void>& waiter) {
  auto it = std::find_if(waiters.begin(), waiters.end(), [&](const Future<void>& w) {
    return FutureAccess::shared(w) == FutureAccess::shared(waiter);
  });
  if (it != waiters.end()) waiters.erase(it);
}

}  // namespace eddy::detail
