// Queue, LifoQueue, PriorityQueue: hand items between tasks.
// Mirrors: asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue.
#pragma once

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "eddy/detail/waiters.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop.hpp"
#include "eddy/task.hpp"

namespace eddy {
namespace detail {

/// First in, first out.
template <class T>
class FifoStore {
 public:
  void push(T item) { items_.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  std::deque<T> items_;
};

/// Last in, first out.
template <class T>
class LifoStore {
 public:
  void push(T item) { items_.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  std::vector<T> items_;
};

/// Smallest first by `Compare` (a binary heap; move-only items work).
template <class T, class Compare>
class PriorityStore {
 public:
  void push(T item) {
    items_.push_back(std::move(item));
    std::push_heap(items_.begin(), items_.end(), after());
  }
  T pop() {
    std::pop_heap(items_.begin(), items_.end(), after());
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  // std's heaps keep the largest on top: order by "comes after".
  auto after() const {
    return [this](const T& a, const T& b) { return compare_(b, a); };
  }
  std::vector<T> items_;
  Compare compare_;
};

}  // namespace detail

/// A queue of items between tasks of one loop. Mirrors: asyncio.Queue (with
/// Python 3.13's shutdown). Queue, LifoQueue and PriorityQueue differ only
/// in the order items come out.
///
/// - `co_await put(x)` waits while the queue is full; `co_await get()` waits
///   while it is empty. Neither suspends when it need not (as in asyncio).
///   Waiters are served in the order they came; a cancelled waiter never
///   swallows a wake-up meant for another.
/// - put_nowait throws QueueFull, get_nowait throws QueueEmpty.
/// - task_done() / `co_await join()`: join waits until every item put was
///   marked done; too many task_done() calls throw std::invalid_argument
///   (asyncio's ValueError).
/// - shutdown(immediate): later puts throw QueueShutDown; gets throw it
///   once the queue is empty (immediate: at once, the items are dropped and
///   count as done). Waiting puts and gets wake up and throw it.
/// - maxsize 0 means unbounded. Move-only items work.
///
/// Thread safety: none; use it from tasks of one loop (it binds to the loop
/// of the first task that waits on it).
template <class T, class Store>
class BasicQueue {
 public:
  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  std::size_t qsize() const noexcept { return store_.size(); }
  std::size_t maxsize() const noexcept { return maxsize_; }
  bool empty() const noexcept { return store_.size() == 0; }
  bool full() const noexcept { return maxsize_ != 0 && store_.size() >= maxsize_; }

  /// Puts `item` without waiting. Throws QueueShutDown after shutdown(),
  /// QueueFull if the queue is full.
  void put_nowait(T item) {
    if (shutdown_) throw QueueShutDown("eddy::Queue::put_nowait: the queue was shut down");
    if (full()) throw QueueFull("eddy::Queue::put_nowait: the queue is full");
    store_.push(std::move(item));
    ++unfinished_;
    detail::wake_next(getters_);
  }
  /// Takes an item without waiting. Throws QueueEmpty if there is none
  /// (QueueShutDown if the queue was also shut down).
  T get_nowait() {
    if (empty()) {
      if (shutdown_) throw QueueShutDown("eddy::Queue::get_nowait: the queue was shut down");
      throw QueueEmpty("eddy::Queue::get_nowait: the queue is empty");
    }
    T item = store_.pop();
    detail::wake_next(putters_);
    return item;
  }

  /// Awaitable: puts `item`, waiting while the queue is full.
  class PutAwaiter {
   public:
    PutAwaiter(BasicQueue& queue, T item) : queue_(&queue), item_(std::move(item)) {}
    bool await_ready() const noexcept { return !queue_->full(); }
    template <detail::EddyPromise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> at) {
      slow_ = queue_->put_slow(std::move(*item_));
      inner_.emplace(slow_.operator co_await());
      inner_->await_ready();
      return inner_->await_suspend(at);
    }
    void await_resume() {
      if (inner_) return inner_->await_resume();
      queue_->put_nowait(std::move(*item_));
    }

   private:
    BasicQueue* queue_;
    std::optional<T> item_;
    Task<void> slow_;
    std::optional<typename Task<void>::Awaiter> inner_;
  };
  /// Awaitable: takes an item, waiting while the queue is empty.
  class GetAwaiter {
   public:
    explicit GetAwaiter(BasicQueue& queue) : queue_(&queue) {}
    bool await_ready() const noexcept { return !queue_->empty(); }
    template <detail::EddyPromise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> at) {
      slow_ = queue_->get_slow();
      inner_.emplace(slow_.operator co_await());
      inner_->await_ready();
      return inner_->await_suspend(at);
    }
    T await_resume() {
      if (inner_) return inner_->await_resume();
      return queue_->get_nowait();
    }

   private:
    BasicQueue* queue_;
    Task<T> slow_;
    std::optional<typename Task<T>::Awaiter> inner_;
  };

  /// `co_await put(item)`: waits while full. Throws QueueShutDown after
  /// shutdown() (also while waiting). Mirrors: asyncio.Queue.put.
  PutAwaiter put(T item) { return PutAwaiter(*this, std::move(item)); }
  /// `T item = co_await get()`: waits while empty. Throws QueueShutDown once
  /// shut down and empty. Mirrors: asyncio.Queue.get.
  GetAwaiter get() { return GetAwaiter(*this); }

  /// Marks one item taken with get() as processed. Mirrors:
  /// asyncio.Queue.task_done. Throws std::invalid_argument if called more
  /// times than items were put.
  void task_done() {
    if (unfinished_ == 0) {
      throw std::invalid_argument("eddy::Queue::task_done: called too many times");
    }
    if (--unfinished_ == 0) detail::wake_all(joiners_);
  }
  /// Waits until every item put has been marked with task_done(). Mirrors:
  /// asyncio.Queue.join: once the count of unfinished items reaches zero,
  /// every join() waiting returns, even if more items are put before it
  /// resumes (asyncio waits on an Event that was set).
  Task<void> join() {
    if (unfinished_ > 0) {
      Future<void> joiner = waiter_future();
      joiners_.push_back(joiner);
      Enrolled enrolled{joiners_, joiner};  // a cancelled join leaves nothing behind
      co_await joiner;                      // woken only when the count reaches zero
    }
  }

  /// Shuts the queue down. Mirrors: asyncio.Queue.shutdown (Python 3.13).
  void shutdown(bool immediate = false) {
    shutdown_ = true;
    if (immediate) {
      while (!empty()) {
        (void)store_.pop();
        if (unfinished_ > 0) --unfinished_;
      }
      if (unfinished_ == 0) detail::wake_all(joiners_);
    }
    detail::wake_all(getters_);
    detail::wake_all(putters_);
  }
  bool is_shut_down() const noexcept { return shutdown_; }

 private:
  Future<void> waiter_future() {
    Loop& running = get_running_loop();
    if (loop_ == nullptr) loop_ = &running;
    if (loop_ != &running) {
      throw RuntimeError("eddy::Queue: the queue is bound to another loop");
    }
    return running.create_future<void>();
  }
  /// Takes a waiter that was not woken out of its queue as the waiting
  /// frame leaves: cancelled, or destroyed suspended (its loop closed). A
  /// waiter left behind would later be woken on a loop that is gone. (A
  /// woken one was taken out by whoever woke it.)
  struct Enrolled {
    std::deque<Future<void>>& waiters;
    const Future<void>& waiter;
    bool in_queue = true;
    ~Enrolled() {
      if (in_queue && !(waiter.done() && !waiter.cancelled())) detail::forget(waiters, waiter);
    }
  };
  // Waits on `waiter` in `waiters`; on a cancel, leaves the queue as if it
  // never waited and passes on a wake-up it had received.
  template <class Ready>
  Task<void> wait_in(std::deque<Future<void>>& waiters, Ready ready) {
    Future<void> waiter = waiter_future();
    waiters.push_back(waiter);
    Enrolled enrolled{waiters, waiter};
    std::exception_ptr error;
    try {
      co_await waiter;
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      bool woken = waiter.done() && !waiter.cancelled();
      waiter.cancel();
      detail::forget(waiters, waiter);
      enrolled.in_queue = false;
      if (woken && ready()) detail::wake_next(waiters);
      std::rethrow_exception(error);
    }
  }
  Task<void> put_slow(T item) {
    while (full()) {
      if (shutdown_) throw QueueShutDown("eddy::Queue::put: the queue was shut down");
      co_await wait_in(putters_, [this] { return !full(); });
    }
    put_nowait(std::move(item));
  }
  Task<T> get_slow() {
    while (empty()) {
      if (shutdown_) throw QueueShutDown("eddy::Queue::get: the queue was shut down");
      co_await wait_in(getters_, [this] { return !empty(); });
    }
    co_return get_nowait();
  }

  Store store_;
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  bool shutdown_ = false;
  Loop* loop_ = nullptr;
  std::deque<Future<void>> getters_;
  std::deque<Future<void>> putters_;
  std::deque<Future<void>> joiners_;
};

/// First in, first out. Mirrors: asyncio.Queue.
template <class T>
using Queue = BasicQueue<T, detail::FifoStore<T>>;
/// Last in, first out. Mirrors: asyncio.LifoQueue.
template <class T>
using LifoQueue = BasicQueue<T, detail::LifoStore<T>>;
/// Smallest first by `Compare` (by default std::less: the smallest item).
/// Mirrors: asyncio.PriorityQueue. Equal items come out in no set order.
template <class T, class Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, detail::PriorityStore<T, Compare>>;

}  // namespace eddy
