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
///   (run_until): nothing is moved on the hot path. The oldest byte in use is
///   the start of the entry running (running_), else head_: a push never
///   reuses the bytes of the entry running. If the ring grows while an entry
///   runs, the old buffer is kept (retired_) until no entry runs.
/// - A cancelled entry stays in place with a skip marker of its size. Markers
///   are run like callbacks (they do nothing), so run_until has no test per
///   entry; runs_ is lowered when a marker is made so that it still counts
///   only real callbacks once the marker is passed.
/// - Fast path of a push: the offsets of one lap of the ring (capacity_ bytes
///   from a multiple of capacity_) map to the buffer by one addition, so the
///   write side keeps write_base_ for tail_'s lap. A push whose entry ends at
///   or before limit_ has room and stays in that lap. limit_ is only ever too
///   low (it is recomputed by the slow path, and is 0 while the fast path is
///   closed, see set_fast_path), never too high.
class ReadyQueue {
  using Ops = Callback::Ops;
  static constexpr std::size_t kHeader = sizeof(const Ops*);

 public:
  /// A queued callback, as run_until hands it to its runner.
  class Entry {
   public:
    /// Calls the callback, then destroys it. If the call throws, the
    /// callback is left alive: destroy() it once the exception is handled.
    void run() const { ops_->run(header_); }
    /// Calls the callback only; destroy() it afterwards.
    void invoke() const { ops_->invoke(header_ + kHeader); }
    void destroy() const noexcept {
      if (ops_->destroy != nullptr) ops_->destroy(header_ + kHeader);
    }
    /// True for a cancelled entry (its calls do nothing).
    bool cancelled() const noexcept { return is_marker(ops_); }

   private:
    friend class ReadyQueue;
    explicit Entry(unsigned char* header) noexcept : ops_(ops_at(header)), header_(header) {}
    const Ops* ops_;
    unsigned char* header_;
  };

  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;
  ~ReadyQueue() { clear(); }

  /// True when no entry (not even a cancelled one) is left to pass over.
  bool empty() const noexcept { return head_ == tail_; }
  /// Callbacks queued and not cancelled. Counted by walking the queue (it is
  /// for diagnostics): keeping a counter would cost every push and every run.
  std::size_t size() const noexcept {
    std::size_t live = 0;
    for_each_queued([&live](const Ops* ops) { live += is_marker(ops) ? 0 : 1; });
    return live;
  }
  /// Callbacks run so far (cancelled ones are not counted).
  std::uint64_t runs() const noexcept {
    std::uint64_t markers = 0;  // not passed yet: runs_ was lowered for them
    for_each_queued([&markers](const Ops* ops) { markers += is_marker(ops) ? 1 : 0; });
    return runs_ + markers;
  }
  /// Offset one past the last entry: a pass runs the entries before it.
  std::uint64_t end_offset() const noexcept { return tail_; }
  /// True while run_until runs an entry.
  bool running() const noexcept { return running_ != nullptr; }

  /// Opens or closes the fast path of pushes (fits() is false while it is
  /// closed). The loop keeps it closed while its idle handle is stopped, so
  /// one compare tells a push both that there is room and that the loop is
  /// awake. Closing it also frees buffers retired by growth.
  void set_fast_path(bool open) noexcept {
    open_ = open;
    if (!open) release_retired();
    sync_write_lap();
  }

  /// Bytes an entry for a callable of type F takes.
  template <class F>
  static constexpr std::size_t entry_bytes() noexcept {
    return kHeader + Callback::payload_size_of<F>();
  }
  /// True if a push of `bytes` may take push_fast.
  bool fits(std::size_t bytes) const noexcept { return tail_ + bytes <= limit_; }

  /// Appends a callback built from `f` in place; returns its offset.
  /// Precondition: fits(entry_bytes<F>()).
  template <class F>
  std::uint64_t push_fast(F&& f) {
    unsigned char* entry = reinterpret_cast<unsigned char*>(write_base_ + tail_);
    const Ops* ops = Callback::construct_into(entry + kHeader, std::forward<F>(f));
    return commit(entry, ops, entry_bytes<F>());
  }

  /// Appends a callback built from `f` in place; returns its offset.
  template <class F>
  std::uint64_t emplace(F&& f) {
    if constexpr (std::is_same_v<std::remove_cvref_t<F>, Callback>) {
      const Ops* ops = f.ops();
      if (ops == nullptr) {
        // Cancelled before it got here (a threadsafe call): queue a skip, so
        // that a copy of its handle still sees cancelled() until it is passed.
        constexpr std::size_t bytes = 2 * kHeader;
        --runs_;
        return commit(reserve(bytes), skip_marker(bytes), bytes);
      }
      const std::size_t bytes = entry_size(ops);
      unsigned char* entry = reserve(bytes);
      f.release_into(entry + kHeader);
      return commit(entry, ops, bytes);
    } else {
      unsigned char* entry = reserve(entry_bytes<F>());
      const Ops* ops = Callback::construct_into(entry + kHeader, std::forward<F>(f));
      return commit(entry, ops, entry_bytes<F>());
    }
  }

  /// Runs every entry before `end` (an end_offset() taken earlier), in order,
  /// each through `run(Entry)`, which must leave it destroyed (Entry::run does,
  /// unless the call throws; current() gives the entry again in a handler).
  /// Entries appended meanwhile are left for later.
  ///
  /// Written for the pass of one callback (a loop iteration that runs one
  /// step of a chain): everything lives in members, which the call would
  /// clobber anyway, so the loop needs no registers saved across the call.
  template <class Runner>
  void run_until(std::uint64_t end, Runner&& run) {
    pass_end_ = end;
    while (head_ < pass_end_) {
      unsigned char* at = at_offset(head_);
      const Entry entry(at);
      head_ += entry_size(entry.ops_);  // first: the call may cancel entries or grow the ring
      running_ = at;
      run(entry);
      ++runs_;
    }
    running_ = nullptr;
  }

  /// During run_until: the entry running, and its offset.
  Entry current() const noexcept { return Entry(running_); }
  std::uint64_t current_offset() const noexcept { return head_ - entry_size(ops_at(running_)); }

  /// Cancels the entry at `offset` if it is still queued: destroys the
  /// callable now and leaves a skip marker. Returns whether it did.
  bool cancel(std::uint64_t offset) noexcept {
    unsigned char* entry = live_entry(offset);
    if (entry == nullptr) return false;
    const Ops* ops = ops_at(entry);
    set_ops(entry, skip_marker(entry_size(ops)));
    --runs_;
    // Last: a destructor may push (and grow the ring: the old buffer stays
    // alive while an entry runs).
    if (ops->destroy != nullptr) ops->destroy(entry + kHeader);
    return true;
  }

  /// True if the entry at `offset` is still queued but was cancelled.
  bool is_cancelled(std::uint64_t offset) const noexcept {
    if (offset < head_ || offset >= tail_) return false;
    return is_marker(ops_at(at_offset(offset)));
  }

  /// Destroys every queued callback (front to back); offsets continue. A
  /// destructor may push again: those are destroyed too.
  void clear() noexcept {
    while (head_ != tail_) {
      const std::uint64_t at = head_;
      unsigned char* entry = at_offset(at);
      const Ops* ops = ops_at(entry);
      head_ = at + entry_size(ops);
      if (is_marker(ops)) {
        ++runs_;  // passed without running
        continue;
      }
      if (ops->destroy != nullptr) ops->destroy(entry + kHeader);
    }
    release_retired();
  }

 private:
  // Largest entry: a header and an inline buffer of three pointers.
  static constexpr std::size_t kSlack = kHeader + Callback::inline_size;

  // Skips are Ops tables whose calls do nothing: each stands for a cancelled
  // entry of its size (16, 24 or 32 bytes, header included).
  static void skip(void*) {}
  static inline const Ops kSkip[3] = {{&skip, &skip, nullptr, nullptr, 8},
                                      {&skip, &skip, nullptr, nullptr, 16},
                                      {&skip, &skip, nullptr, nullptr, 24}};
  static const Ops* skip_marker(std::size_t entry_bytes) noexcept {
    return &kSkip[entry_bytes / 8 - 2];
  }
  static bool is_marker(const Ops* ops) noexcept { return ops >= &kSkip[0] && ops <= &kSkip[2]; }
  static std::size_t entry_size(const Ops* ops) noexcept { return kHeader + ops->payload_size; }

  unsigned char* at_offset(std::uint64_t offset) const noexcept {
    return buffer_ + (offset & mask_);
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
  template <class Fn>
  void for_each_queued(Fn&& fn) const noexcept {
    for (std::uint64_t at = head_; at != tail_;) {
      const Ops* ops = ops_at(at_offset(at));
      fn(ops);
      at += entry_size(ops);
    }
  }

  // Room for `bytes` at the tail; returns where the entry goes. Growing is
  // the only step that can throw.
  unsigned char* reserve(std::size_t bytes) {
    if (!fits(bytes)) [[unlikely]]
      make_room(bytes);
    return reinterpret_cast<unsigned char*>(write_base_ + tail_);
  }
  std::uint64_t commit(unsigned char* entry, const Ops* ops, std::size_t bytes) noexcept {
    set_ops(entry, ops);
    const std::uint64_t at = tail_;
    tail_ = at + bytes;
    return at;
  }

  // The slow path of a push: grows the ring if it is full, and moves the
  // write side to tail_'s lap. The entry may then run into the slack.
  [[gnu::noinline]] void make_room(std::size_t bytes) {
    release_retired();
    if (tail_ + bytes - oldest_in_use() > capacity_) {
      grow();
    } else {
      sync_write_lap();
    }
  }
  std::uint64_t oldest_in_use() const noexcept {
    return running_ != nullptr ? current_offset() : head_;
  }
  void release_retired() noexcept {
    if (running_ == nullptr && !retired_.empty()) retired_.clear();
  }

  void sync_write_lap() noexcept {
    if (capacity_ == 0) return;  // limit_ stays 0: the first push grows
    const std::uint64_t lap = tail_ & ~std::uint64_t{capacity_ - 1};
    // An integer: base + offset is inside the buffer, the base alone is not.
    write_base_ = reinterpret_cast<std::uintptr_t>(buffer_) - lap;
    const std::uint64_t room_end = oldest_in_use() + capacity_;
    const std::uint64_t lap_end = lap + capacity_;
    limit_ = !open_ ? 0 : room_end < lap_end ? room_end : lap_end;
  }

  [[gnu::noinline]] void grow() {
    const std::size_t new_capacity = capacity_ == 0 ? 16 * 1024 : capacity_ * 2;
    auto bigger =
        std::make_unique<std::uint64_t[]>((new_capacity + kSlack) / sizeof(std::uint64_t));
    retired_.reserve(retired_.size() + 1);
    auto* to = reinterpret_cast<unsigned char*>(bigger.get());
    // From head_: an entry running stays behind, in the retired buffer.
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
    mask_ = new_capacity - 1;
    sync_write_lap();
  }

  // Write side, read by every push.
  std::uintptr_t write_base_ = 0;  // the entry at offset tail_ goes to write_base_ + tail_
  std::uint64_t tail_ = 0;         // offset where the next entry goes
  std::uint64_t limit_ = 0;        // a push ending at or before it takes the fast path
  // Read side, read for every entry run.
  unsigned char* buffer_ = nullptr;
  std::uint64_t mask_ = 0;            // capacity_ - 1
  std::uint64_t head_ = 0;            // offset of the next entry to run
  std::uint64_t pass_end_ = 0;        // run_until's end
  unsigned char* running_ = nullptr;  // the entry run_until runs, else null
  std::uint64_t runs_ = 0;            // entries run, minus markers made (see above)
  std::size_t capacity_ = 0;
  bool open_ = false;                         // see set_fast_path
  std::unique_ptr<std::uint64_t[]> storage_;  // owns buffer_ (8-aligned)
  std::vector<std::unique_ptr<std::uint64_t[]>> retired_;
};

}  // namespace eddy::detail
