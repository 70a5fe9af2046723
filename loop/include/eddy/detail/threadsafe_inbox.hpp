// detail::ThreadsafeInbox: call_soon_threadsafe's queue, where other threads
// hand callbacks to the loop's thread.
// Internal to eddy: include <eddy/loop.hpp> instead.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/detail/callback.hpp"
#include "eddy/detail/ready_queue.hpp"

struct uv_async_s;  // libuv's uv_async_t

namespace eddy::detail {

/// The inbox's mutex: a word that is 0 (free), 1 (held) or 2 (held, and a
/// thread may be waiting). Taking and releasing it free is one atomic
/// instruction each, with none of pthread_mutex_lock's type dispatch: the
/// inbox takes it once per call_soon_threadsafe. A thread that finds it held
/// spins briefly (the holder only copies a few words), then sleeps in
/// std::atomic::wait (a futex). Memory orders: acquire when taken, release
/// when released; the guarded fields need nothing more.
class InboxLock {
 public:
  void lock() noexcept {
    int expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                        std::memory_order_relaxed)) [[unlikely]]
      lock_contended();
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
      state_.notify_one();
  }

 private:
  void lock_contended() noexcept;
  std::atomic<int> state_{0};
};

/// A lock-guarded array of callbacks that the loop drains in batches into
/// its ready queue.
///
/// Invariants:
/// - Entries are ReadyQueue entries (a header, then only the bytes the
///   callable's payload needs: 16 bytes for a callback capturing one
///   pointer, 32 for three), built in place by push, back to back: a drained
///   batch joins the ready queue as one block (one or two memcpy unless some
///   callable needs its relocate call), and the entry at byte k of a batch
///   lands at the batch's first ready offset + k. A Handle finds its entry by
///   arithmetic, no table per batch.
/// - An entry's id (its Handle's) is its byte position on a line that counts
///   every byte pushed over the loop's life: entry `id` is queued iff
///   first_id_ <= id < first_id_ + bytes_, at entries_ + (id - first_id_).
///   Drained batches whose entries may still be queued in the ready queue
///   are in batches_ (oldest first; usually one, two when the loop thread
///   drained the inbox itself in a pass, see Loop::call_soon_threadsafe): a
///   batch of `bytes` bytes from `first_id` is at ready offsets from
///   `first_offset`.
/// - Buffers have kSlack bytes past their capacity, so that push_words may
///   store a whole Payload whatever the entry's size (the bytes past the entry
///   are overwritten by the next push).
/// - A cancelled entry stays in place as a skip marker (its callable already
///   destroyed); cancelled_ counts those queued, for the ready queue's count
///   of callbacks run.
/// - Every queued callable is run or destroyed exactly once: drained into the
///   ready queue, cancelled, or destroyed by destroy_queued (close()).
///
/// Lock order: mutex_ is a leaf lock. It is held while a callable is copied
/// or relocated (nothrow moves), never while user code runs: callables are
/// destroyed outside it. The push that makes the inbox non-empty wakes the
/// loop (uv_async_send, a write to an eventfd) after unlocking, so the drain
/// never waits for a syscall; senders_in_flight_, raised under the lock and
/// lowered (release) after the send, lets close() wait (acquire) for every
/// send that began before it, before the async handle is closed.
class ThreadsafeInbox {
 public:
  using Header = ReadyQueue::Header;

  /// The payload of a callable that is trivially copyable and stored inline:
  /// built by the caller, handed over as three words, with no table call.
  struct Payload {
    alignas(void*) unsigned char bytes[Callback::inline_size];
    std::uint64_t word(std::size_t i) const noexcept {
      std::uint64_t w;
      std::memcpy(&w, bytes + i * sizeof w, sizeof w);
      return w;
    }
  };
  static_assert(sizeof(Payload) == 3 * sizeof(std::uint64_t));
  template <class Fn>
  static constexpr bool stored_as_bytes =
      Callback::fits_inline<Fn>&& std::is_trivially_copyable_v<Fn>;

  ThreadsafeInbox() = default;
  /// The handle to send when the inbox goes from empty to non-empty.
  void set_wake(uv_async_s* wake) noexcept { wake_ = wake; }
  ThreadsafeInbox(const ThreadsafeInbox&) = delete;
  ThreadsafeInbox& operator=(const ThreadsafeInbox&) = delete;
  /// Destroys what is still queued (close() leaves nothing).
  ~ThreadsafeInbox();

  // ---------------------------------------------------------- any thread

  /// Appends a callable given by its table and its Payload's words
  /// (stored_as_bytes) as an entry of `entry_bytes` (ReadyQueue::entry_bytes)
  /// and returns its id. Throws LoopClosedError (naming
  /// call_soon_threadsafe) if the inbox is closed. The words come in
  /// registers: a payload passed by reference was read with one 16-byte
  /// load just after the caller's 8-byte stores built it, which the CPU
  /// cannot forward from its store buffer: a stall that took more than half
  /// of each push (12.0 ns a push then, 4.9 now).
  std::uint64_t push_words(const Callback::Ops* ops, std::uint64_t w0, std::uint64_t w1,
                           std::uint64_t w2, std::size_t entry_bytes);
  /// Appends `cb`, leaving it empty, and returns its id. Throws
  /// LoopClosedError (cb untouched) if the inbox is closed.
  std::uint64_t push(Callback& cb);
  /// True if nothing is queued (a moment's answer: other threads may push).
  bool empty() const noexcept {
    std::lock_guard lock(mutex_);
    return bytes_ == 0;
  }

  // ---------------------------------------------------------- loop thread

  /// Moves every queued entry to `ready`, behind what is there; returns how
  /// many bytes they take (0: none). Terminates if the ready queue cannot
  /// grow (out of memory).
  std::size_t drain_into(ReadyQueue& ready) noexcept;
  /// Cancels entry `id` if it is queued here or still in `ready` from the
  /// last batch; returns whether it did. The callable is destroyed at once.
  bool cancel(std::uint64_t id, ReadyQueue& ready) noexcept;
  /// True if entry `id` is still queued (here or in `ready`) but cancelled.
  bool is_cancelled(std::uint64_t id, const ReadyQueue& ready) const noexcept;
  /// Destroys what is queued (outside the lock) and returns whether there was
  /// anything. If there was not and `close_if_empty`, closes the inbox: every
  /// later push throws LoopClosedError.
  bool destroy_queued(bool close_if_empty) noexcept;
  /// Waits until no push is inside its wake-up (a syscall's time at most).
  void wait_for_senders() const noexcept;

 private:
  // Past a buffer's capacity: room for push_words's whole Payload after the
  // smallest entry.
  static constexpr std::size_t kSlack = sizeof(Payload) + ReadyQueue::kHeader - 16;

  unsigned char* slot(std::uint64_t id) const noexcept { return entries_ + (id - first_id_); }
  bool queued(std::uint64_t id) const noexcept { return id - first_id_ < bytes_; }
  // Room for an entry of `bytes`, under the lock; returns where it goes.
  unsigned char* reserve(std::size_t bytes) {
    if (bytes_ + bytes > capacity_) [[unlikely]]
      grow();
    return entries_ + bytes_;
  }
  void grow();
  // Under the lock: checks the inbox is open, has `write` build an entry of
  // `bytes` in place, counts it; then wakes the loop if needed. Returns the
  // entry's id. (Defined in threadsafe_inbox.cpp, its only user.)
  template <class Write>
  std::uint64_t append(std::size_t bytes, Write&& write);
  // Counts the entry of `bytes` just written; true if the loop must be woken.
  bool commit(std::size_t bytes) noexcept {
    if (std::exchange(bytes_, bytes_ + bytes) != 0) return false;
    senders_in_flight_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  void send_wake() noexcept;
  static void destroy_entries(unsigned char* entries, std::size_t bytes) noexcept;

  // Shared with producers: on cache lines of their own, so that pushes do
  // not slow down the loop's hot state.
  alignas(64) mutable InboxLock mutex_;
  unsigned char* entries_ = nullptr;  // guarded, like every field down to the next group
  std::size_t bytes_ = 0;             // of entries queued
  std::size_t capacity_ = 0;          // bytes, kSlack not counted
  std::uint64_t first_id_ = 0;        // the id of entries_[0]
  std::size_t cancelled_ = 0;         // skip markers among the entries
  bool relocate_each_ = false;        // some entry's callable has a relocate call
  bool closed_ = false;
  std::unique_ptr<std::uint64_t[]> storage_;  // owns entries_ (8-aligned)
  std::atomic<int> senders_in_flight_{0};
  uv_async_s* wake_ = nullptr;

  // Loop thread only.
  alignas(64) std::unique_ptr<std::uint64_t[]> spare_;  // swapped with storage_ by each drain
  std::size_t spare_capacity_ = 0;
  struct Batch {
    std::uint64_t first_id;
    std::uint64_t first_offset;
    std::size_t bytes;
  };
  std::vector<Batch> batches_;
  /// The drained batch holding entry `id`, or null.
  const Batch* batch_of(std::uint64_t id) const noexcept {
    for (const Batch& batch : batches_) {
      if (id - batch.first_id < batch.bytes) return &batch;
    }
    return nullptr;
  }
};

}  // namespace eddy::detail
