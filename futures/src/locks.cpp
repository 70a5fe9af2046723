// The engine of eddy/locks.hpp: the waiter queue, and the coroutines that
// wait on it.
#include "eddy/locks.hpp"

#include <coroutine>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

namespace eddy {
namespace detail {

/// One task waiting on a WaiterQueue: an intrusive node living in the
/// waiting coroutine's frame, and the awaiter that suspends on its future.
///
/// Invariants (see WaiterQueue): idle → waiting (linked in waiting_) →
/// either woken (moved to woken_ by the queue) or cancelled (unlinked by the
/// task's cancellation) → resumed (unlinked by await_resume). A node that is
/// destroyed while linked unlinks itself; a woken one gives its wake-up back.
class LockWaiter {
 public:
  explicit LockWaiter(WaiterQueue& queue) noexcept : queue_(&queue) {}
  LockWaiter(const LockWaiter&) = delete;
  LockWaiter& operator=(const LockWaiter&) = delete;
  ~LockWaiter() {
    if (state_ == State::waiting) {
      queue_->waiting_.erase(*this);
    } else if (state_ == State::woken) {
      // The task's frame goes without having resumed (the loop is closing).
      queue_->woken_.erase(*this);
      queue_->give_back();
    }
  }

  bool await_ready() const noexcept { return false; }
  template <EddyPromise P>
  void await_suspend(std::coroutine_handle<P> at) {
    suspend(*TaskCore::current, at);
  }
  /// Returns once woken; throws CancelledError if the task was cancelled,
  /// after giving a wake-up it already had back to the queue.
  void await_resume() {
    State was = state_;
    if (was == State::woken) queue_->woken_.erase(*this);
    state_ = State::resumed;
    try {
      task_->resumed(was == State::cancelled);
    } catch (...) {
      if (was == State::woken) queue_->give_back();
      throw;
    }
    if (was == State::cancelled) future_.result();  // throws CancelledError
  }

 private:
  friend class WaiterQueue;
  enum class State : std::uint8_t { idle, waiting, woken, cancelled, resumed };

  void suspend(TaskCore& task, std::coroutine_handle<> at) {
    // Everything that may throw comes before the node is linked.
    Loop& loop = task.loop();
    queue_->check_loop(loop);
    future_ = loop.create_future<void>();
    add_core_done_callback(*FutureAccess::shared(future_), StepTask(task));
    queue_->waiting_.push_back(*this);
    state_ = State::waiting;
    task_ = &task;
    task.suspend(at, Waiter{WaitKind::lock,
                            reinterpret_cast<std::uintptr_t>(this)});  // may interrupt at once
  }
  friend bool interrupt_lock_wait(std::uintptr_t waiter, const std::string& message);
  /// The task is cancelled while it waits: the wait ends at once. Once woken,
  /// it cannot be interrupted: the cancel is delivered when the task resumes.
  static bool interrupt(LockWaiter* waiter, const std::string& message) {
    if (waiter->state_ != State::waiting) return false;
    cancel_core(*FutureAccess::shared(waiter->future_), message);
    waiter->queue_->waiting_.erase(*waiter);
    waiter->state_ = State::cancelled;
    return true;
  }
  void wake() {
    future_.set_result();
    queue_->waiting_.erase(*this);
    queue_->woken_.push_back(*this);
    state_ = State::woken;
  }

  WaiterQueue* queue_;
  LockWaiter* prev_ = nullptr;
  LockWaiter* next_ = nullptr;
  Future<void> future_;
  TaskCore* task_ = nullptr;
  State state_ = State::idle;
};

bool interrupt_lock_wait(std::uintptr_t waiter, const std::string& message) {
  return LockWaiter::interrupt(reinterpret_cast<LockWaiter*>(waiter), message);
}

void WaiterQueue::List::push_back(LockWaiter& waiter) noexcept {
  waiter.prev_ = tail;
  waiter.next_ = nullptr;
  (tail != nullptr ? tail->next_ : head) = &waiter;
  tail = &waiter;
}

void WaiterQueue::List::erase(LockWaiter& waiter) noexcept {
  (waiter.prev_ != nullptr ? waiter.prev_->next_ : head) = waiter.next_;
  (waiter.next_ != nullptr ? waiter.next_->prev_ : tail) = waiter.prev_;
  waiter.prev_ = waiter.next_ = nullptr;
}

std::size_t WaiterQueue::wake(std::size_t n) {
  // Setting a result runs nothing inline (done callbacks go through
  // call_soon), so the list cannot change under this loop but by wake().
  std::size_t woke = 0;
  while (woke < n && waiting_.head != nullptr) {
    waiting_.head->wake();
    ++woke;
  }
  return woke;
}

void WaiterQueue::check_loop(const Loop& loop) {
  if (loop_ == nullptr) loop_ = &loop;
  if (loop_ != &loop) throw RuntimeError(std::string(name_) + ": bound to another loop");
}

void report_guard_release_error() noexcept {
  Loop* loop = try_get_running_loop();
  if (loop == nullptr) return;
  try {
    ExceptionContext context;
    context.message = "eddy::Acquired: the guard's destructor could not release what it held";
    context.exception = std::current_exception();
    loop->call_exception_handler(context);
  } catch (...) {
    // Out of memory building the report: nothing more can be done here.
  }
}

}  // namespace detail

// ------------------------------------------------------------ Lock

Task<void> Lock::acquire() {
  if (!locked()) {
    held_ = true;
    co_return;
  }
  co_await detail::LockWaiter(waiters_);
  // release() handed the lock over: locked() stayed true for this task.
  held_ = true;
}

Task<Acquired<Lock>> Lock::acquire_scoped() {
  co_await acquire();
  co_return Acquired<Lock>(*this);
}

void Lock::release() {
  if (!held_) throw RuntimeError("eddy::Lock::release: the lock is not acquired");
  held_ = false;
  waiters_.wake(1);  // hands the lock to the first waiter; with none, it is free
}

// ------------------------------------------------------------ Event

Task<void> Event::wait() {
  if (value_) co_return;
  co_await detail::LockWaiter(waiters_);
}

void Event::set() {
  if (value_) return;
  value_ = true;
  waiters_.wake_all();
}

// ------------------------------------------------------------ Condition

Task<Acquired<Condition>> Condition::acquire_scoped() {
  co_await lock_->acquire();
  co_return Acquired<Condition>(*this);
}

void Condition::check_locked(const char* method) const {
  if (!lock_->held_) {
    throw RuntimeError(std::string("eddy::Condition::") + method + ": the lock is not acquired");
  }
}

Task<void> Condition::wait() {
  check_locked("wait");
  release();
  std::exception_ptr error;
  bool notified = false;
  try {
    detail::LockWaiter waiter(waiters_);
    co_await waiter;
    notified = true;
  } catch (...) {
    error = std::current_exception();  // a notification it had was passed on
  }
  // Re-acquire the lock whatever happened; a cancel meanwhile is remembered
  // and thrown once the lock is held again. Of several, the one that decides
  // by the task's rules: a deadline passing after the task's own cancel()
  // must not turn it into the timeout's TimeoutError.
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError& cancelled) {
      detail::keep_deciding_cancellation(error, cancelled);
    }
  }
  if (error) {
    // Notified, then cancelled while re-acquiring: the notification goes on.
    if (notified) waiters_.wake(1);
    std::rethrow_exception(error);
  }
}

void Condition::notify(std::size_t n) {
  check_locked("notify");
  waiters_.wake(n);
}

void Condition::notify_all() {
  check_locked("notify_all");
  waiters_.wake_all();
}

// ------------------------------------------------------------ Semaphore

Semaphore::Semaphore(std::int64_t value, std::int64_t bound, const char* name)
    : waiters_(name, &Semaphore::pass_on, this), value_(value), bound_(bound) {
  if (value < 0) {
    throw std::invalid_argument(std::string(name) + ": the initial value must be >= 0, not " +
                                std::to_string(value));
  }
}

Task<void> Semaphore::acquire() {
  if (!locked()) {
    --value_;
    co_return;
  }
  std::exception_ptr error;
  try {
    co_await detail::LockWaiter(waiters_);
  } catch (...) {
    error = std::current_exception();  // a unit it had was given back
  }
  // Tasks that came while this one was woken queued behind it (FIFO): wake
  // as many as there are free units.
  wake_while_free();
  if (error) std::rethrow_exception(error);
}

Task<Acquired<Semaphore>> Semaphore::acquire_scoped() {
  co_await acquire();
  co_return Acquired<Semaphore>(*this);
}

void Semaphore::release() {
  if (bound_ >= 0 && value_ >= bound_) {
    throw std::invalid_argument(std::string(waiters_.name()) +
                                "::release: released more times than acquired");
  }
  if (value_ == INT64_MAX) [[unlikely]] {
    // Python's counter has no bound; eddy's stops at INT64_MAX units.
    throw std::overflow_error(std::string(waiters_.name()) +
                              "::release: the counter would exceed INT64_MAX");
  }
  ++value_;
  wake_while_free();
}

void Semaphore::wake_while_free() {
  while (value_ > 0 && waiters_.has_waiting()) {
    waiters_.wake(1);  // the unit is the woken waiter's from now on
    --value_;
  }
}

void Semaphore::pass_on(void* self) {
  auto* semaphore = static_cast<Semaphore*>(self);
  ++semaphore->value_;
  semaphore->wake_while_free();
}

// ------------------------------------------------------------ Barrier

Barrier::Barrier(std::size_t parties)
    : waiters_("eddy::Barrier", nullptr, nullptr), parties_(parties) {
  if (parties == 0) throw std::invalid_argument("eddy::Barrier: parties must be > 0");
}

Task<std::size_t> Barrier::wait() {
  // A round still leaving, or resetting: wait for it to end.
  while (state_ == State::draining || state_ == State::resetting) {
    co_await detail::LockWaiter(waiters_);
  }
  if (state_ == State::broken)
    throw BrokenBarrierError("eddy::Barrier::wait: the barrier is broken");
  std::size_t index = count_++;
  // However this task leaves (index, error, cancel, frame destroyed), the
  // last one out of a round lets the next one fill.
  struct Leave {
    Barrier* barrier;
    ~Leave() { barrier->leave(); }
  } leave{this};
  if (index + 1 == parties_) {
    state_ = State::draining;
    waiters_.wake_all();
    co_return index;
  }
  while (state_ == State::filling) {
    co_await detail::LockWaiter(waiters_);
  }
  if (state_ == State::broken || state_ == State::resetting) {
    throw BrokenBarrierError("eddy::Barrier::wait: the barrier was aborted or reset");
  }
  co_return index;
}

void Barrier::leave() {
  if (--count_ != 0) return;
  if (state_ == State::draining || state_ == State::resetting) state_ = State::filling;
  waiters_.wake_all();
}

void Barrier::reset() {
  state_ = count_ > 0 ? State::resetting : State::filling;
  waiters_.wake_all();
}

void Barrier::abort() {
  state_ = State::broken;
  waiters_.wake_all();
}

}  // namespace eddy
