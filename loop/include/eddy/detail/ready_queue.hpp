// detail::ReadyQueue: the loop's FIFO of callbacks ready to run.
// Internal to eddy: include <eddy/loop.hpp> instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/detail/callback.hpp"

namespace eddy::detail {

/// A growable ring of variable-size entries: each is the callable's table
/// (Ops*) followed by only the bytes its captures need, rounded up to 8. A
/// callback capturing one pointer takes 16 bytes (as a C `{fn, arg}` pair),
/// three pointers 32 bytes; a bigger callable stores a heap pointer.
///
/// Invariants:
/// - Entries are addressed by their byte offset on an unbounded 64-bit line;
///   the entry at offset o starts at buffer_[o & (capacity_ - 1)]. Offsets are
///   never reused, so a Handle finds its entry in O(1) while it is queued.
/// - The buffer has kSlack bytes past its end, so an entry that starts near
///   the end simply runs into them; the next offset maps back to the start.
///   The ring counts an entry's full size against capacity_ wherever it lies,
///   so no byte is ever used twice.
/// - Callbacks are built in place (emplace) and run and destroyed in place
///   (run_until): nothing is moved on the hot path. hold_ <= head_ is the
///   oldest byte in use: during a pass, where the pass began, so a push never
///   reuses the bytes of the entry running; otherwise head_. If the ring grows
///   during a pass, the old buffer is kept (retired_) until the pass ends.
/// - A cancelled entry stays in place with a skip marker of its size.
class ReadyQueue {
  using Ops = Callback::Ops;
  static constexpr std::size_t kHeader = sizeof(const Ops*);

 public:
  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;
  ~ReadyQueue() { clear(); }

  /// True when no entry (not even a cancelled one) is left to pass over.
  bool empty() const noexcept { return head_ == tail_; }
  /// Callbacks queued and not cancelled.
  /// Callbacks queued and not cancelled. Counted by walking the queue (it is
  /// for diagnostics): keeping a counter would cost every push and every run.
  std::size_t size() const noexcept {
    std::size_t live = 0;
    for (std::uint64_t at = head_; at != tail_;) {
      const Ops* ops = ops_at(at_offset(at));
      live += is_marker(ops) ? 0 : 1;
      at += entry_size(ops);
    }
    return live;
  }
  /// Offset one past the last entry: a pass runs the entries before it.
  std::uint64_t end_offset() const noexcept { return tail_; }

  /// Appends a callback built from `f` in place; returns its offset.
  template <class F>
  std::uint64_t emplace(F&& f) {
    if constexpr (std::is_same_v<std::remove_cvref_t<F>, Callback>) {
      const Ops* ops = f.ops();
      if (ops == nullptr) {
        // Cancelled before it got here (a threadsafe call): queue a skip, so
        // that a copy of its handle still sees cancelled() until it is passed.
        return commit(reserve(2 * kHeader), skip_marker(2 * kHeader));
      }
      unsigned char* entry = reserve(kHeader + ops->payload_size);
      f.release_into(entry + kHeader);
      return commit(entry, ops);
    } else {
      unsigned char* entry = reserve(kHeader + Callback::payload_size_of<F>());
      const Ops* ops = Callback::construct_into(entry + kHeader, std::forward<F>(f));
      return commit(entry, ops);
    }
  }

  /// Runs every entry before `end` (an end_offset() taken earlier), in order,
  /// each through `run(invoke, offset)` where `invoke()` calls it; destroys
  /// each after it ran. Entries appended meanwhile are left for later.
  /// Returns how many ran.
  template <class Runner>
  std::uint64_t run_until(std::uint64_t end, Runner&& run) {
    std::uint64_t ran = 0;
    hold_ = head_;  // the bytes of this pass stay reserved until it ends
    while (head_ < end) {
      const std::uint64_t at = head_;
      unsigned char* entry = at_offset(at);
      const Ops* ops = ops_at(entry);
      head_ = at + entry_size(ops);
      if (is_marker(ops)) continue;  // cancelled
      void* payload = entry + kHeader;
      run([ops, payload] { ops->invoke(payload); }, at);
      if (ops->destroy != nullptr) ops->destroy(payload);
      ++ran;
    }
    hold_ = head_;
    retired_.clear();
    return ran;
  }

  /// Cancels the entry at `offset` if it is still queued: destroys the
  /// callable now and leaves a skip marker. Returns whether it did.
  bool cancel(std::uint64_t offset) noexcept {
    unsigned char* entry = live_entry(offset);
    if (entry == nullptr) return false;
    const Ops* ops = ops_at(entry);
    set_ops(entry, skip_marker(kHeader + ops->payload_size));
    // Last: a destructor may push (and grow the ring: the old buffer stays
    // alive until the next pass ends).
    if (ops->destroy != nullptr) ops->destroy(entry + kHeader);
    return true;
  }

  /// True if the entry at `offset` is still queued but was cancelled.
  bool is_cancelled(std::uint64_t offset) const noexcept {
    if (offset < head_ || offset >= tail_) return false;
    return is_skip(ops_at(at_offset(offset)));
  }

  /// Destroys every queued callback (front to back); offsets continue. A
  /// destructor may push again: those are destroyed too.
  void clear() noexcept {
    while (head_ != tail_) {
      const std::uint64_t at = head_;
      unsigned char* entry = at_offset(at);
      const Ops* ops = ops_at(entry);
      head_ = at + entry_size(ops);
      if (is_marker(ops)) continue;
      if (ops->destroy != nullptr) ops->destroy(entry + kHeader);
    }
    hold_ = head_;
    retired_.clear();
  }

 private:
  // Largest entry: a header and an inline buffer of three pointers.
  static constexpr std::size_t kSlack = kHeader + Callback::inline_size;

  // Skips are Ops tables that are never called: each stands for a cancelled
  // entry of its size (16, 24 or 32 bytes, header included).
  static inline const Ops kSkip[3] = {{nullptr, nullptr, nullptr, 8},
                                      {nullptr, nullptr, nullptr, 16},
                                      {nullptr, nullptr, nullptr, 24}};
  static const Ops* skip_marker(std::size_t entry_bytes) noexcept {
    return &kSkip[entry_bytes / 8 - 2];
  }
  static bool is_skip(const Ops* ops) noexcept { return ops >= &kSkip[0] && ops <= &kSkip[2]; }
  static bool is_marker(const Ops* ops) noexcept { return ops->invoke == nullptr; }
  static std::size_t entry_size(const Ops* ops) noexcept { return kHeader + ops->payload_size; }

  unsigned char* at_offset(std::uint64_t offset) const noexcept {
    return buffer_ + (offset & (capacity_ - 1));
  }
  // The header is a real `const Ops*` object created in the buffer, written
  // and read with that type (not memcpy through unsigned char, which may
  // alias anything): the compiler can then keep tail_ and the other members
  // in registers across a burst of pushes.
  static const Ops* ops_at(const unsigned char* entry) noexcept {
    return *std::launder(reinterpret_cast<const Ops* const*>(entry));
  }
  static void set_ops(unsigned char* entry, const Ops* ops) noexcept {
    ::new (static_cast<void*>(entry)) const Ops*(ops);
  }
  unsigned char* live_entry(std::uint64_t offset) const noexcept {
    if (offset < head_ || offset >= tail_) return nullptr;
    unsigned char* entry = at_offset(offset);
    return is_marker(ops_at(entry)) ? nullptr : entry;
  }

  // Room for `bytes` at the tail; returns where the entry goes. Growing is
  // the only step that can throw.
  unsigned char* reserve(std::size_t bytes) {
    if (tail_ + bytes - hold_ > capacity_) [[unlikely]]
      grow();
    return at_offset(tail_);
  }
  std::uint64_t commit(unsigned char* entry, const Ops* ops) noexcept {
    set_ops(entry, ops);
    const std::uint64_t at = tail_;
    tail_ += kHeader + ops->payload_size;
    return at;
  }

  [[gnu::noinline]] void grow() {
    const std::size_t new_capacity = capacity_ == 0 ? 16 * 1024 : capacity_ * 2;
    auto bigger =
        std::make_unique<std::uint64_t[]>((new_capacity + kSlack) / sizeof(std::uint64_t));
    retired_.reserve(retired_.size() + 1);
    auto* to = reinterpret_cast<unsigned char*>(bigger.get());
    for (std::uint64_t at = head_; at != tail_;) {
      unsigned char* from = at_offset(at);
      const Ops* ops = ops_at(from);
      unsigned char* dest = to + (at & (new_capacity - 1));
      set_ops(dest, ops);
      if (!is_marker(ops)) Callback::relocate_payload(ops, dest + kHeader, from + kHeader);
      at += entry_size(ops);
    }
    if (buffer_ != nullptr) retired_.push_back(std::move(storage_));
    storage_ = std::move(bigger);
    buffer_ = to;
    capacity_ = new_capacity;
    hold_ = head_;  // a running entry stays behind, in the retired buffer
  }

  std::unique_ptr<std::uint64_t[]> storage_;  // owns buffer_ (8-aligned)
  unsigned char* buffer_ = nullptr;
  std::size_t capacity_ = 0;
  std::uint64_t head_ = 0;  // offset of the next entry to run
  std::uint64_t tail_ = 0;  // offset where the next entry goes
  std::uint64_t hold_ = 0;  // oldest byte still in use: the pass's start, else head_
  std::vector<std::unique_ptr<std::uint64_t[]>> retired_;
};

}  // namespace eddy::detail
