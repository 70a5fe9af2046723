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
/// Posting a completion is a lock-free push onto a stack. Only the push that
/// finds the stack empty schedules a drain, through the loop's
/// call_soon_threadsafe; the drain takes the whole stack at once and completes
/// its nodes in posting order. A burst of N completions thus costs the loop one
/// threadsafe call and one wake-up, not N.
///
/// Lock order: `post_mutex_` is taken only by a push that finds the stack
/// empty (around its call_soon_threadsafe, whose inbox lock is a leaf beneath
/// it) and by close(); never while a completion runs.
///
/// Memory orders: a push publishes its node with a release CAS; the drain's
/// acquire exchange sees everything the posting thread wrote before posting.
/// close() swaps in a "closed" marker (acq_rel): a poster that loads the
/// marker (acquire) sees everything the loop thread did before closing.
///
/// Life cycle: the owner (a loop extension) creates the port and calls
/// close() exactly once, on the loop's thread, with the number of completions
/// that may still be posted. The port then frees itself when the last of them
/// has been completed; until then a late poster may still use it.
///
/// Invariants:
/// - The stack is non-empty exactly while one drain is due: scheduled, or
///   about to be scheduled by the poster holding post_mutex_.
/// - After close(), every node is completed with delivered = false.
class CompletionPort {
 public:
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

  static Completion* closed_marker() noexcept {
    static Completion marker;
    return &marker;
  }
  void drain() noexcept;
  void release(std::size_t n) noexcept;
  void orphan(Completion* node) noexcept;

  std::atomic<Completion*> head_{nullptr};
  std::mutex post_mutex_;
  bool closed_ = false;  // guarded by post_mutex_
  Loop* loop_;
  // After close(): completions still to come, plus one for close() itself.
  std::atomic<std::size_t> outstanding_{0};
};

}  // namespace eddy::detail
