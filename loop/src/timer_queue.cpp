// TimerQueue: a 4-ary heap over a slab of slots (see detail/timer_queue.hpp).
#include "eddy/detail/timer_queue.hpp"

#include <algorithm>
#include <utility>

namespace eddy::detail {

void TimerQueue::grow_slab() {
  // Every allocation happens here, before anything changes, so a bad_alloc
  // leaves the queue as it was; afterwards release() and the heap push in
  // add() never allocate (the heap holds at most one entry per slot).
  const std::size_t old_size = callbacks_.size();
  const std::size_t new_size = old_size == 0 ? 64 : old_size * 2;
  std::vector<Callback> callbacks(new_size);
  generations_.reserve(new_size);
  states_.reserve(new_size);
  free_slots_.reserve(new_size);
  heap_.reserve(new_size);
  for (std::size_t i = 0; i < old_size; ++i)
    callbacks[i].assign(std::move(callbacks_[i]));
  callbacks_.swap(callbacks);
  generations_.resize(new_size, 0);
  states_.resize(new_size, SlotState::free);
  for (std::size_t i = new_size; i-- > old_size;) {
    free_slots_.push_back(static_cast<std::uint32_t>(i));  // handed out in ascending order
  }
}

void TimerQueue::clear() noexcept {
  std::vector<Callback> victims = std::move(callbacks_);
  callbacks_.clear();  // moved-from: make the state explicit
  heap_.clear();
  generations_.clear();
  states_.clear();
  free_slots_.clear();
  cancelled_in_heap_ = 0;
  scheduled_ = 0;
  victims.clear();  // destructors may add timers again; the caller loops until empty
}

void TimerQueue::release(std::uint32_t slot, SlotState now) noexcept {
  states_[slot] = now;
  free_slots_.push_back(slot);  // never reallocates: add() keeps capacity >= slab size
  if (free_slots_.size() == callbacks_.size()) free_every_slot_in_order();
}

void TimerQueue::free_every_slot_in_order() noexcept {
  // Every slot is free: hand them out in ascending order again, so the next
  // burst of timers walks the slab sequentially instead of in the scattered
  // order the last burst fired or was cancelled in.
  const auto n = static_cast<std::uint32_t>(callbacks_.size());
  free_slots_.resize(n);  // never reallocates: grow_slab reserved the slab's size
  for (std::uint32_t i = 0; i < n; ++i)
    free_slots_[i] = n - 1 - i;
}

void TimerQueue::sift_up(std::size_t i) noexcept {
  Entry moving = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / kArity;
    if (!earlier(moving, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = moving;
}

void TimerQueue::sift_down(std::size_t i) noexcept {
  const std::size_t n = heap_.size();
  Entry moving = heap_[i];
  for (std::size_t best; (best = earliest_child(i)) != n && earlier(heap_[best], moving);) {
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = moving;
}

void TimerQueue::pop_top() noexcept {
  // Bottom-up: move the hole at the root down along the earliest children to a
  // leaf (one compare among siblings per level, none against the moving
  // entry), then sift the last entry up from there; it rarely climbs far.
  Entry last = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size();
  if (n == 0) return;
  std::size_t hole = 0;
  for (std::size_t best; (best = earliest_child(hole)) != n;) {
    heap_[hole] = heap_[best];
    hole = best;
  }
  heap_[hole] = last;
  sift_up(hole);
}

bool TimerQueue::due_at_least(std::int64_t now, std::size_t count) {
  // The due entries form a subtree at the root: walk it, stopping at `count`.
  due_search_.clear();
  due_search_.push_back(0);
  std::size_t found = 0;
  const std::size_t n = heap_.size();
  while (!due_search_.empty()) {
    std::size_t i = due_search_.back();
    due_search_.pop_back();
    if (heap_[i].when > now) continue;
    if (++found >= count) return true;
    std::size_t first = i * kArity + 1;
    for (std::size_t c = first; c < first + kArity && c < n; ++c) {
      due_search_.push_back(static_cast<std::uint32_t>(c));
    }
  }
  return false;
}

std::size_t TimerQueue::sort_due_to_front(std::int64_t now) noexcept {
  auto first_not_due =
      std::partition(heap_.begin(), heap_.end(), [now](const Entry& e) { return e.when <= now; });
  std::sort(heap_.begin(), first_not_due, &TimerQueue::earlier);
  return static_cast<std::size_t>(first_not_due - heap_.begin());
}

void TimerQueue::drop_front_and_heapify(std::size_t count) noexcept {
  heap_.erase(heap_.begin(), heap_.begin() + static_cast<std::ptrdiff_t>(count));
  heapify();
}

void TimerQueue::heapify() noexcept {
  const std::size_t n = heap_.size();
  if (n > 1) {
    for (std::size_t i = (n - 2) / kArity + 1; i-- > 0;)
      sift_down(i);
  }
}

void TimerQueue::drop_cancelled_top() noexcept {
  while (!heap_.empty() && states_[heap_.front().slot] == SlotState::cancelled) {
    std::uint32_t slot = heap_.front().slot;
    pop_top();
    --cancelled_in_heap_;
    release(slot, SlotState::cancelled_free);
  }
}

void TimerQueue::compact() noexcept {
  const std::size_t in_use = callbacks_.size() - free_slots_.size();
  if (cancelled_in_heap_ == heap_.size() && in_use == heap_.size()) {
    // Every slot in use is a cancelled entry of the heap (a burst of timers
    // all cancelled): free the whole slab in one sweep.
    for (SlotState& state : states_) {
      if (state == SlotState::cancelled) state = SlotState::cancelled_free;
    }
    free_every_slot_in_order();
    heap_.clear();
    cancelled_in_heap_ = 0;
    return;
  }
  std::size_t kept = 0;
  for (const Entry& e : heap_) {
    if (states_[e.slot] == SlotState::cancelled) {
      release(e.slot, SlotState::cancelled_free);
    } else {
      heap_[kept++] = e;
    }
  }
  heap_.resize(kept);
  cancelled_in_heap_ = 0;
  if (kept > 1) {
    for (std::size_t i = (kept - 2) / kArity + 1; i-- > 0;)
      sift_down(i);
  }
}

}  // namespace eddy::detail
