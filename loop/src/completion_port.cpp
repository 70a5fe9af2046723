// detail::CompletionPort (see eddy/detail/completion_port.hpp): a mutex-guarded
// FIFO of finished work in front of Loop::call_soon_threadsafe.
#include "eddy/detail/completion_port.hpp"

#include "eddy/loop.hpp"

namespace eddy::detail {

void CompletionPort::post(Completion* node) noexcept {
  node->next_completion = nullptr;
  std::unique_lock lock(mutex_);
  if (closed_) {
    lock.unlock();  // before orphan(): the last release frees the mutex
    orphan(node);
    return;
  }
  if (tail_ != nullptr) {
    tail_->next_completion = node;
  } else {
    head_ = node;
  }
  tail_ = node;
  if (!drain_due_) {
    // Idle -> busy: schedule the one drain, still under the lock so that
    // close() cannot let the loop go meanwhile (close() takes the lock before
    // the loop closes its inbox, so this does not throw LoopClosedError; an
    // allocation failure of the inbox terminates, as losing the drain would
    // strand the FIFO).
    drain_due_ = true;
    loop_->call_soon_threadsafe([port = this] { port->drain(false); });
  }
}

void CompletionPort::drain(bool continuation) noexcept {
  {
    // Take what was posted, after what an earlier drain left (the order kept).
    std::lock_guard lock(mutex_);
    if (head_ != nullptr) {
      if (pending_ == nullptr) {
        pending_ = head_;
      } else {
        pending_tail_->next_completion = head_;
      }
      pending_tail_ = tail_;
      head_ = tail_ = nullptr;
    }
    drain_due_ = false;  // the next post schedules a new drain
  }
  if (continuation) {
    continuation_due_ = false;
  } else if (continuation_due_) {
    return;  // a continuation is queued: it delivers this iteration's chunk
  }
  for (std::size_t n = 0; n != kChunk && pending_ != nullptr; ++n) {
    Completion* node = pending_;
    pending_ = node->next_completion;
    // Posted by other threads, the nodes are cold here: fetch the next one
    // while this one completes.
    if (pending_ != nullptr) __builtin_prefetch(pending_);
    node->complete(node, true);
  }
  if (pending_ != nullptr) {
    continuation_due_ = true;
    loop_->call_soon([port = this] { port->drain(true); });  // the rest on the next iteration
  }
}

void CompletionPort::close(std::size_t outstanding) noexcept {
  Completion* list;
  {
    std::lock_guard lock(mutex_);  // waits for a poster inside its call_soon_threadsafe
    outstanding_.store(outstanding + 1, std::memory_order_relaxed);
    closed_ = true;
    list = head_;
    head_ = tail_ = nullptr;
  }
  std::size_t completed = 0;
  for (Completion* chain : {pending_, list}) {
    while (chain != nullptr) {
      Completion* next = chain->next_completion;
      chain->complete(chain, false);
      ++completed;
      chain = next;
    }
  }
  pending_ = pending_tail_ = nullptr;
  release(completed + 1);
}

void CompletionPort::orphan(Completion* node) noexcept {
  node->complete(node, false);
  release(1);
}

void CompletionPort::release(std::size_t n) noexcept {
  if (outstanding_.fetch_sub(n, std::memory_order_acq_rel) == n) delete this;
}

}  // namespace eddy::detail
