// detail::CompletionPort (see eddy/detail/completion_port.hpp): a lock-free
// stack of finished work in front of Loop::call_soon_threadsafe.
#include "eddy/detail/completion_port.hpp"

#include "eddy/loop.hpp"

namespace eddy::detail {

void CompletionPort::post(Completion* node) noexcept {
  // Fast path: the stack is non-empty, so a drain is already due; push and go.
  Completion* head = head_.load(std::memory_order_acquire);
  while (head != nullptr) {
    if (head == closed_marker()) {
      orphan(node);
      return;
    }
    node->next_completion = head;
    if (head_.compare_exchange_weak(head, node, std::memory_order_release,
                                    std::memory_order_acquire)) {
      return;
    }
  }
  // Slow path: the stack looks empty. Under post_mutex_, so that close() cannot
  // free the port (or let the loop go) between our push and our call_soon_threadsafe.
  std::unique_lock lock(post_mutex_);
  if (closed_) {
    lock.unlock();  // before orphan(): the last release frees the mutex
    orphan(node);
    return;
  }
  head = head_.load(std::memory_order_acquire);
  do {
    node->next_completion = head;  // (never the closed marker: closed_ is false under the lock)
  } while (!head_.compare_exchange_weak(head, node, std::memory_order_release,
                                        std::memory_order_acquire));
  if (head == nullptr) {
    // Empty -> non-empty: schedule the one drain. The loop cannot be closed
    // yet (close() takes post_mutex_ before the loop closes its inbox), so
    // this does not throw LoopClosedError; an allocation failure of the inbox
    // terminates (noexcept), as losing the drain would strand the stack.
    loop_->call_soon_threadsafe([port = this] { port->drain(); });
  }
}

void CompletionPort::drain() noexcept {
  Completion* list = head_.exchange(nullptr, std::memory_order_acquire);
  // The stack holds the newest first: reverse it to complete in posting order.
  Completion* ordered = nullptr;
  while (list != nullptr) {
    Completion* next = list->next_completion;
    list->next_completion = ordered;
    ordered = list;
    list = next;
  }
  while (ordered != nullptr) {
    Completion* next = ordered->next_completion;
    ordered->complete(ordered, true);
    ordered = next;
  }
}

void CompletionPort::close(std::size_t outstanding) noexcept {
  // Published by the exchange below to every poster that sees the marker.
  outstanding_.store(outstanding + 1, std::memory_order_relaxed);
  {
    std::lock_guard lock(post_mutex_);  // waits for a poster inside its slow path
    closed_ = true;
  }
  Completion* list = head_.exchange(closed_marker(), std::memory_order_acq_rel);
  std::size_t completed = 0;
  while (list != nullptr) {
    Completion* next = list->next_completion;
    list->complete(list, false);
    ++completed;
    list = next;
  }
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
