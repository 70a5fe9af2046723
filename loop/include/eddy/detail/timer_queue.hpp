// detail::TimerQueue: eddy's own timer heap, driven by one libuv timer.
// Internal to eddy: include <eddy/loop.hpp> instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eddy/detail/callback.hpp"

namespace eddy::detail {

/// Pending timers: a 4-ary min-heap of {deadline, sequence, slot} over a slab
/// of slots that hold the callbacks.
///
/// Invariants:
/// - Heap order is (deadline, sequence): equal deadlines fire in the order
///   they were scheduled.
/// - A slot is free, scheduled (in the heap), ready (handed to the ready
///   queue, not yet run) or cancelled (see SlotState). A slot's generation is
///   bumped when it is reused, so a stale TimerId never touches a newer timer.
/// - Cancelling destroys the callback at once; a cancelled slot still in the
///   heap is removed lazily when it reaches the top, or all at once by
///   compact(), which the owner calls when compaction_due(): cancelled entries
///   are all of the heap, or more than half of a heap of 64 or more
///   (compaction is O(n), so cancel is amortised O(1)). The loop compacts at
///   the start of its next pass, as asyncio's _run_once does, so that a burst
///   of cancels costs one compaction.
/// - Slot states are kept in a dense byte array apart from the callbacks, so
///   compaction scans 1 byte per timer instead of a cache line.
class TimerQueue {
 public:
  struct TimerId {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;
  };

  /// free: unused; scheduled: in the heap; ready: handed to the ready queue;
  /// cancelled: cancelled, its heap entry not yet removed; cancelled_free:
  /// unused, but remembers that its last timer was cancelled (so a copy of the
  /// handle still reports cancelled() until the slot is reused).
  enum class SlotState : std::uint8_t { free, scheduled, ready, cancelled, cancelled_free };

  /// Bytes of eddy-owned memory per pending timer (heap entry + slot), not
  /// counting captures too large for the callback's inline buffer.
  static constexpr std::size_t bytes_per_timer() noexcept {
    return sizeof(Entry) + sizeof(Callback) + sizeof(std::uint32_t) + sizeof(SlotState);
  }

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  /// Schedules a callable built from `f` in its slot (no temporary).
  template <class F>
  TimerId add(std::int64_t when, F&& f) {
    if (free_slots_.empty()) [[unlikely]] {
      // Cancelled entries waiting for the owner's compaction hold slots: take
      // them back before growing, so that timers added and cancelled over and
      // over within one pass do not grow the slab.
      compact_if_due();
      if (free_slots_.empty()) grow_slab();  // the only step that allocates
    }
    std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    ++generations_[slot];  // handles of the slot's previous timer no longer match
    callbacks_[slot].assign(std::forward<F>(f));
    states_[slot] = SlotState::scheduled;
    heap_.push_back(Entry{when, next_sequence_++, slot});  // never reallocates: see grow_slab
    ++scheduled_;
    sift_up(heap_.size() - 1);
    return TimerId{slot, generations_[slot]};
  }

  /// Cancels a scheduled or ready timer: destroys its callback now. Returns
  /// false if `id` already ran or was cancelled.
  bool cancel(TimerId id) noexcept {
    if (id.slot >= states_.size() || generations_[id.slot] != id.generation) return false;
    SlotState& state = states_[id.slot];
    if (state == SlotState::scheduled) {
      state = SlotState::cancelled;
      ++cancelled_in_heap_;
      --scheduled_;
      destroy_callback(id.slot);
      return true;
    }
    if (state == SlotState::ready) {
      // Already handed to the ready queue: the forwarder finds it cancelled
      // and frees the slot.
      state = SlotState::cancelled;
      destroy_callback(id.slot);
      return true;
    }
    return false;
  }

  /// True if cancelled entries are all of the heap, or more than half of a
  /// big one: time for compact().
  bool compaction_due() const noexcept {
    return cancelled_in_heap_ != 0 &&
           (cancelled_in_heap_ == heap_.size() ||
            (heap_.size() >= kMinCompactSize && cancelled_in_heap_ * 2 > heap_.size()));
  }
  /// Removes every cancelled entry from the heap and frees its slot: O(n).
  void compact() noexcept;
  void compact_if_due() noexcept {
    if (compaction_due()) compact();
  }

  /// True if `id` names a timer that was cancelled and whose slot is not yet reused.
  bool is_cancelled(TimerId id) const noexcept {
    return id.slot < states_.size() && generations_[id.slot] == id.generation &&
           (states_[id.slot] == SlotState::cancelled ||
            states_[id.slot] == SlotState::cancelled_free);
  }

  /// True if no timer is scheduled (cancelled entries not yet removed do not count).
  bool empty() const noexcept { return scheduled_ == 0; }
  /// Slots not free: scheduled, ready or cancelled-but-not-yet-removed timers.
  std::size_t slots_in_use() const noexcept { return callbacks_.size() - free_slots_.size(); }
  /// Number of scheduled, not cancelled timers.
  std::size_t size() const noexcept { return scheduled_; }

  /// Deadline of the earliest scheduled timer. Precondition: !empty().
  std::int64_t next_deadline() noexcept {
    // Cancels waiting for compaction may fill the top: one O(n) sweep rather
    // than a pop per cancelled entry.
    compact_if_due();
    drop_cancelled_top();
    return heap_.front().when;
  }

  /// Takes every timer whose deadline is <= now off the heap in (deadline,
  /// sequence) order, marks it ready and calls `sink(slot)` for it.
  ///
  /// When a large share of the heap is due at once (a burst of timeouts
  /// expiring together), the due entries are partitioned out, sorted and the
  /// rest re-heapified: O(n + k log k) instead of k pops of O(log n) cache
  /// misses each.
  ///
  /// If `sink` throws (out of memory), the timers handed out so far are off
  /// the heap and the others still on it, unchanged: the exception leaves
  /// the queue consistent, and the rest fire on a later pop_due.
  template <class Sink>
  void pop_due(std::int64_t now, Sink&& sink) {
    if (heap_.empty() || heap_.front().when > now) return;
    if (heap_.size() >= kBulkMinSize && due_at_least(now, heap_.size() / 8)) {
      std::size_t due = sort_due_to_front(now);
      std::size_t handed = 0;
      try {
        for (; handed < due; ++handed)
          hand_out(heap_[handed].slot, sink);
      } catch (...) {
        drop_front_and_heapify(handed);  // the sorted rest is still a valid part of the heap
        throw;
      }
      drop_front_and_heapify(due);
      return;
    }
    while (!heap_.empty() && heap_.front().when <= now) {
      hand_out(heap_.front().slot, sink);  // first: if the sink throws, the timer stays
      pop_top();
    }
  }

  /// For a slot handed out by pop_due: takes its callback (empty if the timer
  /// was cancelled meanwhile) and frees the slot.
  Callback take_ready(std::uint32_t slot) noexcept {
    Callback cb = std::move(callbacks_[slot]);
    release(slot,
            states_[slot] == SlotState::cancelled ? SlotState::cancelled_free : SlotState::free);
    return cb;
  }

  /// Destroys every callback and forgets every timer.
  void clear() noexcept;

 private:
  struct Entry {
    std::int64_t when;
    std::uint64_t sequence;
    std::uint32_t slot;
  };
  static bool earlier(const Entry& a, const Entry& b) noexcept {
    return a.when < b.when || (a.when == b.when && a.sequence < b.sequence);
  }

  static constexpr std::size_t kArity = 4;
  static constexpr std::size_t kBulkMinSize = 4096;
  static constexpr std::size_t kMinCompactSize = 64;

  void destroy_callback(std::uint32_t slot) noexcept {
    Callback& cb = callbacks_[slot];
    if (cb.trivially_destructible()) {
      cb.reset();  // no user code runs
    } else {
      // A destructor may add timers, which may grow the slab under our feet:
      // move the callable out first.
      Callback victim = std::move(cb);
    }
  }

  template <class Sink>
  void hand_out(std::uint32_t slot, Sink& sink) {
    if (states_[slot] == SlotState::cancelled) {
      --cancelled_in_heap_;
      release(slot, SlotState::cancelled_free);
      return;
    }
    sink(slot);  // first: if it throws, the timer is still scheduled
    states_[slot] = SlotState::ready;
    --scheduled_;
  }
  bool due_at_least(std::int64_t now, std::size_t count);
  std::size_t sort_due_to_front(std::int64_t now) noexcept;
  void drop_front_and_heapify(std::size_t count) noexcept;

  // The earliest of node i's children, or heap_.size() if it has none.
  std::size_t earliest_child(std::size_t i) const noexcept {
    const std::size_t n = heap_.size();
    const std::size_t first = i * kArity + 1;
    if (first >= n) return n;
    const std::size_t end = first + kArity < n ? first + kArity : n;
    std::size_t best = first;
    for (std::size_t c = first + 1; c < end; ++c) {
      if (earlier(heap_[c], heap_[best])) best = c;
    }
    return best;
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void pop_top() noexcept;
  void drop_cancelled_top() noexcept;
  void heapify() noexcept;
  void release(std::uint32_t slot, SlotState now) noexcept;
  void free_every_slot_in_order() noexcept;
  void grow_slab();

  std::vector<Entry> heap_;
  std::vector<Callback> callbacks_;
  std::vector<std::uint32_t> generations_;
  std::vector<SlotState> states_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<std::uint32_t> due_search_;  // scratch for due_at_least
  std::size_t cancelled_in_heap_ = 0;
  std::size_t scheduled_ = 0;  // == heap_.size() - cancelled_in_heap_, kept to test it cheaply
  std::uint64_t next_sequence_ = 0;
};

}  // namespace eddy::detail
