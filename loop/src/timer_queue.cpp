// TimerQueue: a 4-ary heap over a slab of slots (see detail/timer_queue.hpp).
#include "eddy/detail/timer_queue.hpp"

#include <utility>

namespace eddy::detail {

namespace {
constexpr std::size_t kArity = 4;
constexpr std::size_t kMinCompactSize = 64;
}  // namespace

namespace {
// Room for one more element, growing geometrically (reserve(n + 1) alone would
// reallocate on every call).
template <class T>
void reserve_one_more(std::vector<T>& v) {
  if (v.size() == v.capacity()) v.reserve(v.empty() ? 64 : v.size() * 2);
}
}  // namespace

TimerQueue::TimerId TimerQueue::add(std::int64_t when, Callback&& cb) {
  // Every allocation happens first, so that a bad_alloc leaves the queue unchanged
  // and release() (noexcept) never needs to allocate.
  reserve_one_more(heap_);
  if (free_slots_.empty()) {
    reserve_one_more(callbacks_);
    reserve_one_more(generations_);
    reserve_one_more(states_);
    if (free_slots_.capacity() < callbacks_.capacity()) free_slots_.reserve(callbacks_.capacity());
    callbacks_.emplace_back();
    generations_.push_back(0);
    states_.push_back(SlotState::free);
    free_slots_.push_back(static_cast<std::uint32_t>(callbacks_.size() - 1));
  }
  std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  callbacks_[slot] = std::move(cb);
  states_[slot] = SlotState::scheduled;
  heap_.push_back(Entry{when, next_sequence_++, slot});
  sift_up(heap_.size() - 1);
  return TimerId{slot, generations_[slot]};
}

bool TimerQueue::cancel(TimerId id) noexcept {
  if (id.slot >= states_.size() || generations_[id.slot] != id.generation) return false;
  SlotState& state = states_[id.slot];
  if (state == SlotState::scheduled) {
    state = SlotState::cancelled;
    ++cancelled_in_heap_;
    Callback victim = std::move(callbacks_[id.slot]);
    if (heap_.size() >= kMinCompactSize && cancelled_in_heap_ * 2 > heap_.size()) compact();
    victim.reset();  // last: its destructor may schedule or cancel timers
    return true;
  }
  if (state == SlotState::ready) {
    // Already handed to the ready queue: the forwarder finds it cancelled and frees the slot.
    state = SlotState::cancelled;
    Callback victim = std::move(callbacks_[id.slot]);
    victim.reset();
    return true;
  }
  return false;
}

void TimerQueue::clear() noexcept {
  std::vector<Callback> victims = std::move(callbacks_);
  callbacks_.clear();  // moved-from: make the state explicit
  heap_.clear();
  generations_.clear();
  states_.clear();
  free_slots_.clear();
  cancelled_in_heap_ = 0;
  victims.clear();  // destructors may add timers again; the caller loops until empty
}

void TimerQueue::release(std::uint32_t slot) noexcept {
  ++generations_[slot];
  states_[slot] = SlotState::free;
  free_slots_.push_back(slot);  // never reallocates: add() keeps capacity >= slab size
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
  for (;;) {
    std::size_t first = i * kArity + 1;
    if (first >= n) break;
    std::size_t last = first + kArity < n ? first + kArity : n;
    std::size_t best = first;
    for (std::size_t c = first + 1; c < last; ++c) {
      if (earlier(heap_[c], heap_[best])) best = c;
    }
    if (!earlier(heap_[best], moving)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = moving;
}

void TimerQueue::pop_top() noexcept {
  heap_.front() = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) sift_down(0);
}

void TimerQueue::drop_cancelled_top() noexcept {
  while (!heap_.empty() && states_[heap_.front().slot] == SlotState::cancelled) {
    std::uint32_t slot = heap_.front().slot;
    pop_top();
    --cancelled_in_heap_;
    release(slot);
  }
}

void TimerQueue::compact() noexcept {
  std::size_t kept = 0;
  for (const Entry& e : heap_) {
    if (states_[e.slot] == SlotState::cancelled) {
      release(e.slot);
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
