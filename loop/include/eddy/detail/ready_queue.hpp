// detail::ReadyQueue: the loop's FIFO of callbacks ready to run.
// Internal to eddy: include <eddy/loop.hpp> instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "eddy/detail/callback.hpp"

namespace eddy::detail {

/// A growable ring buffer of Callbacks, addressed by sequence number.
///
/// Invariants:
/// - Entries hold sequence numbers head_seq_ .. tail_seq_-1 (every push takes
///   the next number; numbers are never reused), so an entry is found in O(1)
///   from its number while it is queued: that is how Handle::cancel works
///   without a per-callback allocation.
/// - capacity_ is zero or a power of two; the entry with number s sits at
///   slots_[s & (capacity_ - 1)].
/// - A cancelled entry stays in place, empty, and is skipped when it reaches
///   the front.
class ReadyQueue {
 public:
  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;
  ~ReadyQueue() { clear(); }

  bool empty() const noexcept { return head_seq_ == tail_seq_; }
  std::size_t size() const noexcept { return static_cast<std::size_t>(tail_seq_ - head_seq_); }
  std::uint64_t head_seq() const noexcept { return head_seq_; }
  std::uint64_t tail_seq() const noexcept { return tail_seq_; }

  /// Appends `cb`; returns its sequence number.
  std::uint64_t push(Callback&& cb) {
    if (size() == capacity_) grow();
    slots_[tail_seq_ & (capacity_ - 1)] = std::move(cb);
    return tail_seq_++;
  }

  /// Moves the front entry out (it may be empty if it was cancelled).
  Callback pop() noexcept {
    Callback cb = std::move(slots_[head_seq_ & (capacity_ - 1)]);
    ++head_seq_;
    return cb;
  }

  /// The entry with sequence number `seq`, or nullptr if it is no longer queued.
  Callback* find(std::uint64_t seq) noexcept {
    if (seq < head_seq_ || seq >= tail_seq_) return nullptr;
    return &slots_[seq & (capacity_ - 1)];
  }

  /// Destroys every queued callback (front to back); numbering continues.
  void clear() noexcept {
    while (!empty())
      pop().reset();
  }

  std::size_t capacity() const noexcept { return capacity_; }

 private:
  void grow() {
    std::size_t new_capacity = capacity_ == 0 ? 1024 : capacity_ * 2;
    auto bigger = std::make_unique<Callback[]>(new_capacity);
    for (std::uint64_t s = head_seq_; s != tail_seq_; ++s) {
      bigger[s & (new_capacity - 1)] = std::move(slots_[s & (capacity_ - 1)]);
    }
    slots_ = std::move(bigger);
    capacity_ = new_capacity;
  }

  std::unique_ptr<Callback[]> slots_;
  std::size_t capacity_ = 0;
  std::uint64_t head_seq_ = 0;
  std::uint64_t tail_seq_ = 0;
};

}  // namespace eddy::detail
