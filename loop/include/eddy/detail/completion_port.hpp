// detail::CompletionPort: how work finished on other threads comes back to a
// loop, in batches, over call_soon_threadsafe.
// Internal to eddy (executors use it); users never include it.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

namespace eddy {
class Loop;
}

namespace eddy::detail {

/// A piece of work finished on another thread, travelling back to a loop: an
/// intrusive node that its poster owns until CompletionPort::post. The port
/// calls `complete` exactly once:
/// - `complete(node, true)` on the loop's thread, in a batch: the delivery;
/// - `complete(node, false)` once the port is closed (the loop is closing):
///   on the posting thread, or on the closing thread for a node the port held
///   at that moment. The loop side has let go of the node by then.
struct Completion {
  Completion* next_completion = nullptr;
  void (*complete)(Completion* self, bool delivered) noexcept = nullptr;
};

/// The batching layer of a loop's single cross-thread path.
///
/// Posting a completion appends it to a FIFO under a small mutex (as libuv's
/// threadpool hands results back). Only a post that finds the port idle
/// schedules a drain, through the loop's call_soon_threadsafe: a burst of N
/// completions costs the loop one threadsafe call and one wake-up, not N.
///
/// The drain takes the whole FIFO at once and completes up to kChunk nodes
/// per loop iteration, in posting order, rescheduling itself (call_soon) for
/// the rest: the futures it completes are still in cache when their done
/// callbacks run on the next iteration, and I/O and timers are served between
/// chunks of a large burst.
///
/// Lock order: `mutex_` is held around the call_soon_threadsafe of a post
/// that schedules a drain (the loop's inbox lock is a leaf beneath it), so
/// that close() cannot let the loop go meanwhile; never while a completion
/// runs.
///
/// Life cycle: the owner (a loop extension) creates the port and calls
/// close() exactly once, on the loop's thread, with the number of completions
/// that may still be posted. The port then frees itself when the last of them
/// has been completed; until then a late poster may still use it.
///
/// Invariants:
/// - drain_due_ (under mutex_) is true from the post that scheduled a drain
///   until that drain takes the FIFO; it is false while the FIFO is empty.
/// - pending_ (loop thread only) holds what a drain took and has not yet
///   completed; while it is non-empty a continuation is queued (call_soon)
///   and continuation_due_ is set. Only the continuation completes nodes
///   then, so no iteration completes more than kChunk.
/// - After close(), every node is completed with delivered = false.
class CompletionPort {
 public:
  /// Completions per loop iteration.
  static constexpr std::size_t kChunk = 256;

  static CompletionPort* create(Loop& loop) { return new CompletionPort(loop); }
  CompletionPort(const CompletionPort&) = delete;
  CompletionPort& operator=(const CompletionPort&) = delete;

  /// Hands `node` to the loop. Any thread. After close() the node is completed
  /// at once (delivered = false) on this thread.
  void post(Completion* node) noexcept;

  /// On the loop's thread, as the loop closes: completes the nodes held now
  /// (delivered = false), makes every later post do the same, and frees the
  /// port once `outstanding` completions not yet posted have been. Drains
  /// already scheduled are destroyed unrun by the closing loop.
  void close(std::size_t outstanding) noexcept;

 private:
  explicit CompletionPort(Loop& loop) noexcept : loop_(&loop) {}
  ~CompletionPort() = default;

  void drain(bool continuation) noexcept;
  void release(std::size_t n) noexcept;
  void orphan(Completion* node) noexcept;

  std::mutex mutex_;
  Completion* head_ = nullptr;     // guarded by mutex_: the FIFO of posted nodes
  Completion* tail_ = nullptr;     // guarded by mutex_
  bool drain_due_ = false;         // guarded by mutex_
  bool closed_ = false;            // guarded by mutex_
  Completion* pending_ = nullptr;  // loop thread only: taken, not yet completed
  Completion* pending_tail_ = nullptr;
  bool continuation_due_ = false;  // loop thread only
  Loop* loop_;
  // After close(): completions still to come, plus one for close() itself.
  std::atomic<std::size_t> outstanding_{0};
};

}  // namespace eddy::detail
