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
/// - The offsets of one lap of the ring (capacity_ bytes from a multiple of
///   capacity_) map to the buffer by one addition: the write side keeps
///   write_base_ for tail_'s lap, the read side read_base_ for the lap that
///   head_ is in (or, after a pass that ended on a lap's end, the lap before;
///   the next pass moves on).
/// - Fast path of a push: an entry that ends at or before limit_ has room and
///   stays in write_base_'s lap. limit_ is only ever too low (it is recomputed
///   by the slow path, and is 0 while the fast path is closed, see
///   set_fast_path), never too high.
class ReadyQueue {
  using Ops = Callback::Ops;
  static_assert(alignof(Ops) >= 4, "the header keeps a size class in the table address's low bits");

 public:
  /// An entry's first 8 bytes: its table's address and its size class (see header_at).
  using Header = std::uintptr_t;
  static constexpr std::size_t kHeader = sizeof(Header);
  static_assert(kHeader == sizeof(const Ops*), "Ops::run finds the storage one pointer on");
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
    bool cancelled() const noexcept { return is_skip(ops_); }
    /// The callback's table (Callback::table_of<F>() for a callable of type
    /// F) and its captures, for a caller that recognises the callable.
    const Ops* table() const noexcept { return ops_; }
    void* captures() const noexcept { return header_ + kHeader; }

   private:
    friend class ReadyQueue;
    Entry(const Ops* ops, unsigned char* header) noexcept : ops_(ops), header_(header) {}
    const Ops* ops_;
    unsigned char* header_;
  };

  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;
  ~ReadyQueue() { clear(); }

  /// True when no entry (not even a cancelled one) is left to pass over.
  bool empty() const noexcept { return head_ == tail_; }
  /// The offset of the next entry to run: every entry before it has run or is running.
  std::uint64_t head() const noexcept { return head_; }
  /// Callbacks queued and not cancelled. Counted by walking the queue (it is
  /// for diagnostics): keeping a counter would cost every push and every run.
  std::size_t size() const noexcept {
    std::size_t live = 0;
    for_each_queued([&live](Header h) { live += is_marker(h) ? 0 : 1; });
    return live;
  }
  /// Callbacks run so far (cancelled ones are not counted).
  std::uint64_t runs() const noexcept {
    std::uint64_t markers = 0;  // not passed yet: runs_ was lowered for them
    for_each_queued([&markers](Header h) { markers += is_marker(h) ? 1 : 0; });
    return runs_ + markers;
  }
  /// Offset one past the last entry: a pass runs the entries before it.
  std::uint64_t end_offset() const noexcept { return tail_; }
  /// True while run_until runs an entry.
  bool running() const noexcept { return running_ != nullptr; }

  /// Opens or closes the fast path of pushes (fits() is false while it is
  /// closed). The loop keeps it closed while no pass is due, so one compare
  /// tells a push both that there is room and that the loop is awake.
  /// Closing it also frees buffers retired by growth.
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
  /// Grows the ring now, if need be, so that the next push of `bytes` does
  /// not allocate (and so cannot throw): for a caller that must push after
  /// a change it cannot undo. Throws what growing throws, changing nothing.
  void ensure_room(std::size_t bytes) { (void)reserve(bytes); }

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

  // ------------------------------------------------------------ blocks
  // call_soon_threadsafe's inbox (threadsafe_inbox.hpp) stores its entries
  // in this format, so that a drained batch joins the queue as one block and
  // the entry at byte k of the batch lands at the block's first offset + k.

  /// The header of an entry of `bytes` (16, 24 or 32) holding a callable
  /// with table `ops`.
  static Header header_for(const Ops* ops, std::size_t bytes) noexcept {
    return reinterpret_cast<Header>(ops) | (bytes - 16) / 8;
  }
  /// The header of a cancelled entry of `bytes`.
  static Header marker_for(std::size_t bytes) noexcept {
    return header_for(skip_marker(bytes), bytes);
  }
  /// Bytes of an entry holding a callable with table `ops`.
  static std::size_t entry_size(const Ops* ops) noexcept { return kHeader + ops->payload_size; }
  static bool is_marker(Header header) noexcept { return is_skip(ops_of(header)); }
  /// The header of the entry at `entry`, and the entry's size.
  static Header header_of(const unsigned char* entry) noexcept { return header_at(entry); }
  static std::size_t size_of(Header header) noexcept { return 16 + (header & 7) * 8; }
  static void write_header(unsigned char* entry, Header header) noexcept {
    ::new (static_cast<void*>(entry)) Header(header);
  }
  static const Ops* ops_of(Header header) noexcept {
    return reinterpret_cast<const Ops*>(header & ~Header{7});
  }
  /// Moves the entry at `from` to `to` (its header, and its callable unless
  /// it is a marker) and returns the entry's size.
  static std::size_t relocate_entry(unsigned char* to, unsigned char* from) noexcept {
    const Header header = header_at(from);
    write_header(to, header);
    if (!is_marker(header))
      Callback::relocate_payload(ops_of(header), to + kHeader, from + kHeader);
    return size_of(header);
  }
  /// Appends the entries in `from` (8-aligned, `bytes` long, back to back),
  /// of which `markers` are cancelled, and returns the first one's offset.
  /// With `relocate_each` false, no entry's payload needs its relocate call:
  /// the block is copied with at most two memcpy (it may wrap around the
  /// ring). Afterwards the entries belong to the queue; `from` is raw bytes.
  std::uint64_t append_block(unsigned char* from, std::size_t bytes, std::size_t markers,
                             bool relocate_each) {
    release_retired();
    while (tail_ + bytes - oldest_in_use() > capacity_)
      grow();
    const std::uint64_t first = tail_;
    if (relocate_each) {
      for (std::size_t k = 0; k < bytes;)
        k += relocate_entry(at_offset(first + k), from + k);
    } else {
      // Entries that start before the end of tail_'s lap are copied after
      // tail_ (the last may run into the slack); the rest to the buffer's
      // start, past the bytes the straddling entry counts against capacity_.
      const std::uint64_t to_lap_end = capacity_ - (first & mask_);
      std::size_t head_part = bytes;
      if (bytes > to_lap_end) {
        head_part = 0;
        while (head_part < to_lap_end)
          head_part += size_of(header_at(from + head_part));
      }
      std::memcpy(at_offset(first), from, head_part);
      if (head_part != bytes)
        std::memcpy(at_offset(first + head_part), from + head_part, bytes - head_part);
    }
    tail_ = first + bytes;
    runs_ -= markers;
    sync_write_lap();
    return first;
  }

  /// Runs every entry before `end` (an end_offset() taken earlier), in order,
  /// each through `run(Entry)`, which must leave it destroyed (Entry::run does,
  /// unless the call throws; current() gives the entry again in a handler).
  /// Entries appended meanwhile are left for later.
  ///
  ///
  /// Each entry's place depends on the previous entry's header only through
  /// `at` (a register), one load and two operations: the chain from one entry
  /// to the next is short, so a long pass does not wait on load after load.
  template <class Runner>
  void run_until(std::uint64_t end, Runner&& run) {
    std::uint64_t at = head_;  // only run_until moves head_ while it runs
    pass_end_ = end;           // a member: one register less to save
    for (;;) {
      // One lap at a time: within it the entry at offset `at` is at
      // read_base_ + at. read_base_ is read again after each call, which may
      // grow the ring (and stop stays within the lap: the new laps are longer).
      const std::uint64_t stop = pass_end_ < read_end_ ? pass_end_ : read_end_;
      while (at < stop) {
        unsigned char* entry = reinterpret_cast<unsigned char*>(read_base_ + at);
        const Header header = header_at(entry);
        at += size_of(header);
        head_ = at;  // before the call, which may cancel entries or grow the ring
        running_ = entry;
        run(Entry(ops_of(header), entry));
        ++runs_;
      }
      if (at >= pass_end_) break;
      if (at >= read_end_) {  // on to the next lap
        read_base_ -= capacity_;
        read_end_ += capacity_;
      }
    }
    running_ = nullptr;
  }

  /// During run_until: the entry running, and its offset.
  Entry current() const noexcept { return Entry(ops_of(header_at(running_)), running_); }
  std::uint64_t current_offset() const noexcept { return head_ - size_of(header_at(running_)); }

  /// Cancels the entry at `offset` if it is still queued: destroys the
  /// callable now and leaves a skip marker. Returns whether it did.
  bool cancel(std::uint64_t offset) noexcept {
    unsigned char* entry = live_entry(offset);
    if (entry == nullptr) return false;
    const Header header = header_at(entry);
    const Ops* ops = ops_of(header);
    set_header(entry, skip_marker(size_of(header)), size_of(header));
    --runs_;
    // Last: a destructor may push (and grow the ring: the old buffer stays
    // alive while an entry runs).
    if (ops->destroy != nullptr) ops->destroy(entry + kHeader);
    return true;
  }

  /// True if the entry at `offset` is still queued but was cancelled.
  bool is_cancelled(std::uint64_t offset) const noexcept {
    if (offset < head_ || offset >= tail_) return false;
    return is_marker(header_at(at_offset(offset)));
  }

  /// Destroys every queued callback (front to back); offsets continue. A
  /// destructor may push again: those are destroyed too.
  void clear() noexcept {
    while (head_ != tail_) {
      const std::uint64_t at = head_;
      unsigned char* entry = at_offset(at);
      const Header header = header_at(entry);
      head_ = at + size_of(header);
      if (is_marker(header)) {
        ++runs_;  // passed without running
        continue;
      }
      const Ops* ops = ops_of(header);
      if (ops->destroy != nullptr) ops->destroy(entry + kHeader);
    }
    sync_read_lap();
    release_retired();
  }

 private:
  // Largest entry: a header and an inline buffer of three pointers.
  static constexpr std::size_t kSlack = kHeader + Callback::inline_size;

  // Skips are Ops tables whose calls do nothing: each stands for a cancelled
  // entry of its size (16, 24 or 32 bytes, header included).
  static void skip(void*) {}
  static inline const Ops kSkip[3] = {{&skip, &skip, &skip, nullptr, nullptr, 8},
                                      {&skip, &skip, &skip, nullptr, nullptr, 16},
                                      {&skip, &skip, &skip, nullptr, nullptr, 24}};
  static const Ops* skip_marker(std::size_t entry_bytes) noexcept {
    return &kSkip[entry_bytes / 8 - 2];
  }
  static bool is_skip(const Ops* ops) noexcept { return ops >= &kSkip[0] && ops <= &kSkip[2]; }

  unsigned char* at_offset(std::uint64_t offset) const noexcept {
    return buffer_ + (offset & mask_);
  }
  // An entry's header: its table's address with the entry's size class
  // ((bytes - 16) / 8: 0, 1 or 2) in the low bits, which the table's alignment
  // leaves free. The size comes with the header's load, not from a second,
  // dependent load from the table. It is an integer object created in the
  // buffer, written and read with that type.
  static Header header_at(const unsigned char* entry) noexcept {
    return *std::launder(reinterpret_cast<const Header*>(entry));
  }
  static void set_header(unsigned char* entry, const Ops* ops, std::size_t bytes) noexcept {
    write_header(entry, header_for(ops, bytes));
  }
  unsigned char* live_entry(std::uint64_t offset) const noexcept {
    if (offset < head_ || offset >= tail_) return nullptr;
    unsigned char* entry = at_offset(offset);
    return is_marker(header_at(entry)) ? nullptr : entry;
  }
  template <class Fn>
  void for_each_queued(Fn&& fn) const noexcept {
    for (std::uint64_t at = head_; at != tail_;) {
      const Header header = header_at(at_offset(at));
      fn(header);
      at += size_of(header);
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
    set_header(entry, ops, bytes);
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

  // The read side's lap: the one head_ is in.
  void sync_read_lap() noexcept {
    if (capacity_ == 0) return;  // nothing was ever queued: read_end_ stays 0
    const std::uint64_t lap = head_ & ~std::uint64_t{capacity_ - 1};
    read_base_ = reinterpret_cast<std::uintptr_t>(buffer_) - lap;
    read_end_ = lap + capacity_;
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
    for (std::uint64_t at = head_; at != tail_;)
      at += relocate_entry(to + (at & (new_capacity - 1)), at_offset(at));
    if (buffer_ != nullptr) retired_.push_back(std::move(storage_));
    storage_ = std::move(bigger);
    buffer_ = to;
    capacity_ = new_capacity;
    mask_ = new_capacity - 1;
    sync_read_lap();
    sync_write_lap();
  }

  // Write side, read by every push.
  std::uintptr_t write_base_ = 0;  // the entry at offset tail_ goes to write_base_ + tail_
  std::uint64_t tail_ = 0;         // offset where the next entry goes
  std::uint64_t limit_ = 0;        // a push ending at or before it takes the fast path
  // Read side, read for every entry run.
  unsigned char* buffer_ = nullptr;
  std::uint64_t mask_ = 0;            // capacity_ - 1
  std::uintptr_t read_base_ = 0;      // the entry at offset o of its lap is at read_base_ + o
  std::uint64_t read_end_ = 0;        // end of read_base_'s lap
  std::uint64_t pass_end_ = 0;        // run_until's end
  std::uint64_t head_ = 0;            // offset of the next entry to run
  unsigned char* running_ = nullptr;  // the entry run_until runs, else null
  std::uint64_t runs_ = 0;            // entries run, minus markers made (see above)
  std::size_t capacity_ = 0;
  bool open_ = false;                         // see set_fast_path
  std::unique_ptr<std::uint64_t[]> storage_;  // owns buffer_ (8-aligned)
  std::vector<std::unique_ptr<std::uint64_t[]>> retired_;
};

}  // namespace eddy::detail
