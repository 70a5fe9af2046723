// Synchronization primitives for tasks: Lock, Event, Condition, Semaphore,
// BoundedSemaphore, Barrier, and the Acquired<L> guard.
// Mirrors: asyncio.locks (Python 3.12's observable behaviour).
//
// What they share:
// - Every wait is a loop future (Future<void> of the waiting task's loop);
//   acquire() and wait() are eddy coroutines (Task<...>), so they compose
//   with wait_for, timeout, create_task and gather like asyncio's.
// - When nothing has to be waited for (a free lock, a set event), acquire()
//   and wait() return without suspending the task: no loop iteration.
// - Waiters are woken in the order they began to wait (FIFO).
// - A waiter cancelled while it waits leaves the queue at once; a waiter that
//   was woken and is cancelled before it runs gives its wake-up to the next
//   waiter (the lock, the semaphore's unit, the notification), so a
//   cancellation never swallows a wake-up meant for another.
// - Thread safety: none, like asyncio's: use each object from the thread of
//   the loop whose tasks use it. Waiting on one object from tasks of two
//   loops at once throws RuntimeError.
// - Lifetime: an object must outlive every task that waits on it or holds it
//   (as a Future must not outlive its Loop). Closing the loop destroys the
//   frames of tasks still waiting: their waits leave the queues, and a
//   wake-up already given to them is passed on as for a cancellation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "eddy/errors.hpp"
#include "eddy/task.hpp"

namespace eddy {

namespace detail {

class LockWaiter;  // one waiting task (locks.cpp)

/// The waiters of one synchronization object, in arrival order.
///
/// Invariants:
/// - A waiter is in `waiting_` while its future is pending, in `woken_` from
///   the moment the queue set its future's result until its task resumes (or
///   its frame is destroyed). A cancelled waiter is in neither.
/// - Woken waiters that give their wake-up back (cancelled or destroyed
///   before they resumed) call `pass_on(owner)`: the object hands it on.
/// - Loop thread only.
class WaiterQueue {
 public:
  using PassOn = void (*)(void* owner);
  /// `name` prefixes error messages ("eddy::Lock"); `pass_on` may be null.
  WaiterQueue(const char* name, PassOn pass_on, void* owner) noexcept
      : name_(name), pass_on_(pass_on), owner_(owner) {}
  WaiterQueue(const WaiterQueue&) = delete;
  WaiterQueue& operator=(const WaiterQueue&) = delete;
  ~WaiterQueue() = default;

  /// True if some waiter's future is pending.
  bool has_waiting() const noexcept { return waiting_.head != nullptr; }
  /// True if no waiter waits and none was woken without having resumed.
  bool empty() const noexcept { return waiting_.head == nullptr && woken_.head == nullptr; }
  /// Sets the result of the first `n` pending waiters' futures, in arrival
  /// order; returns how many it woke.
  std::size_t wake(std::size_t n);
  void wake_all() { wake(SIZE_MAX); }
  const char* name() const noexcept { return name_; }

 private:
  friend class LockWaiter;
  struct List {
    LockWaiter* head = nullptr;
    LockWaiter* tail = nullptr;
    void push_back(LockWaiter& waiter) noexcept;
    void erase(LockWaiter& waiter) noexcept;
  };
  /// Binds the object to `loop` at its first wait, for good (asyncio's
  /// _LoopBoundMixin); throws RuntimeError for a wait on another loop.
  void check_loop(const Loop& loop);
  void give_back() {
    if (pass_on_ != nullptr) pass_on_(owner_);
  }

  List waiting_;
  List woken_;
  const char* name_;
  PassOn pass_on_;
  void* owner_;
  const Loop* loop_ = nullptr;  // bound at the first wait
};

/// In a catch block: reports that an Acquired guard's destructor could not
/// release, to the running loop's exception handler (dropped if none runs).
void report_guard_release_error() noexcept;

}  // namespace detail

/// What acquire_scoped() gives: an acquisition of a Lock, Semaphore or
/// Condition, released when the guard is destroyed. Mirrors: the exit of
/// `async with lock:`.
///
///     {
///       eddy::Acquired<eddy::Lock> held = co_await lock.acquire_scoped();
///       co_await use_the_resource();
///     }  // released here, also when use_the_resource() throws or is cancelled
///
/// Move-only; a moved-from or default-constructed guard holds nothing.
/// release() releases early (asyncio's verb: it is not unique_lock::release,
/// which would let go without unlocking) and throws what the object's
/// release() throws, or RuntimeError if the guard holds nothing.
///
/// The destructor cannot throw: if the object's release() fails there (it was
/// also released through another path, a misuse), the error goes to the
/// running loop's exception handler, as a failing callback's would. A guard
/// destroyed when the loop closes (its task's frame is destroyed) releases
/// like any other, which may wake the next waiter; a task destroyed inside
/// Condition::wait() does not hold the lock its guard names, so errors there,
/// with no loop running, are dropped.
template <class L>
class [[nodiscard]] Acquired {
 public:
  Acquired() noexcept = default;
  /// Adopts an acquisition the caller already made.
  explicit Acquired(L& held) noexcept : held_(&held) {}
  Acquired(Acquired&& other) noexcept : held_(std::exchange(other.held_, nullptr)) {}
  Acquired& operator=(Acquired&& other) {
    if (this != &other) {
      if (held_ != nullptr) std::exchange(held_, nullptr)->release();
      held_ = std::exchange(other.held_, nullptr);
    }
    return *this;
  }
  ~Acquired() {
    if (held_ == nullptr) return;
    try {
      held_->release();
    } catch (...) {
      detail::report_guard_release_error();
    }
  }

  /// True while the guard holds an acquisition.
  bool owns() const noexcept { return held_ != nullptr; }
  explicit operator bool() const noexcept { return owns(); }
  /// Releases now. Throws RuntimeError if the guard holds nothing.
  void release() {
    if (held_ == nullptr) throw RuntimeError("eddy::Acquired::release: the guard holds nothing");
    std::exchange(held_, nullptr)->release();
  }

 private:
  L* held_ = nullptr;
};

/// A mutual-exclusion lock for tasks. Mirrors: asyncio.Lock.
///
///     co_await lock.acquire();
///     try { ... } catch (...) { lock.release(); throw; }
///     lock.release();
///     // or: auto held = co_await lock.acquire_scoped();
///
/// - acquire() takes a free lock without suspending; otherwise the task waits
///   in FIFO order. No barging: release() hands the lock straight to the
///   first waiter, so the lock stays locked() and a later acquire() queues
///   behind the waiters even before the woken one runs. (asyncio's Lock
///   reports locked() false during that hand-off, though it does not let
///   anyone barge in either; eddy's reports who will hold it, as asyncio's
///   Semaphore does.)
/// - Not owned by a task, as asyncio's: any code may release() it.
/// - Cancellation: a waiter cancelled while it waits leaves the queue; one
///   that was handed the lock and is cancelled before it runs hands it on to
///   the next waiter (or unlocks it), then throws CancelledError.
/// - Thread safety: none; loop thread only.
/// - Throws: release() throws RuntimeError unless a task holds the lock
///   (an unlocked lock, or one handed to a waiter that has not resumed yet:
///   asyncio's release() finds it unlocked then too); acquire() throws
///   RuntimeError once the lock has waited on another loop.
class Lock {
 public:
  Lock() noexcept : waiters_("eddy::Lock", &Lock::pass_on, this) {}
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// Waits until the lock is free, then takes it. Mirrors: Lock.acquire.
  Task<void> acquire();
  /// acquire(), then a guard that releases the lock when destroyed.
  /// Mirrors: `async with lock:`.
  Task<Acquired<Lock>> acquire_scoped();
  /// Unlocks, or hands the lock to the first waiter. Mirrors: Lock.release.
  void release();
  /// True if a task holds the lock or it was handed to a woken waiter.
  /// Mirrors: Lock.locked.
  bool locked() const noexcept { return held_ || !waiters_.empty(); }

 private:
  friend class Condition;
  // held_: a task holds the lock. From release() to the woken waiter's
  // resumption nobody holds it, and nobody may release it; locked() is then
  // still true, as while any waiter waits (a release with waiters hands the
  // lock over instead of freeing it).
  static void pass_on(void* self) { static_cast<Lock*>(self)->waiters_.wake(1); }

  detail::WaiterQueue waiters_;
  bool held_ = false;
};

/// A flag that tasks can wait to become set. Mirrors: asyncio.Event.
///
/// - wait() on a set event returns without suspending. set() wakes every
///   task waiting at that moment, in FIFO order; they return from wait()
///   even if clear() is called before they run.
/// - Cancellation: a cancelled waiter throws CancelledError; since set()
///   wakes everyone, no other waiter is affected.
/// - Thread safety: none; loop thread only (from another thread, go through
///   call_soon_threadsafe).
/// - Throws: wait() throws RuntimeError once tasks of another loop waited.
class Event {
 public:
  Event() noexcept : waiters_("eddy::Event", nullptr, nullptr) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Returns once the flag is set. Mirrors: Event.wait.
  Task<void> wait();
  /// Sets the flag and wakes every waiter. Mirrors: Event.set.
  void set();
  /// Resets the flag; later wait()s wait again. Mirrors: Event.clear.
  void clear() noexcept { value_ = false; }
  /// Mirrors: Event.is_set.
  bool is_set() const noexcept { return value_; }

 private:
  detail::WaiterQueue waiters_;
  bool value_ = false;
};

/// A condition variable for tasks: wait until notified, holding a Lock.
/// Mirrors: asyncio.Condition.
///
///     auto held = co_await cond.acquire_scoped();
///     co_await cond.wait_for([&] { return !items.empty(); });
///     take(items);
///
/// - Uses its own Lock, or the one given (which must outlive it);
///   acquire(), acquire_scoped(), release() and locked() are that lock's.
/// - wait() releases the lock, waits for a notify, and re-acquires the lock
///   before it returns — also when it is cancelled: it then re-acquires the
///   lock (a second cancel during that is remembered) and throws the last
///   CancelledError while holding it, as asyncio does.
/// - notify(n) wakes the first n waiters in FIFO order, notify_all() all of
///   them; the woken re-acquire the lock in the same order.
/// - Cancellation: a waiter that was notified and is cancelled before it
///   returns from wait() passes its notification to the next waiter
///   (asyncio 3.13's fix of a lost notify; a "spurious" wake-up for that
///   waiter, which condition-variable code allows).
/// - Thread safety: none; loop thread only.
/// - Throws: wait(), notify() and notify_all() throw RuntimeError unless a
///   task holds the lock (any task: asyncio's check; not while it is handed
///   to a waiter that has not resumed; wait() throws at the co_await,
///   before suspending).
class Condition {
 public:
  /// With a Lock of its own.
  Condition() : own_lock_(std::in_place), lock_(&*own_lock_), waiters_(kName, &pass_on, this) {}
  /// With `lock`, which may be shared by several conditions.
  explicit Condition(Lock& lock) noexcept : lock_(&lock), waiters_(kName, &pass_on, this) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// The lock's acquire(). Mirrors: Condition.acquire.
  Task<void> acquire() { return lock_->acquire(); }
  /// acquire(), then a guard that releases the lock when destroyed.
  /// Mirrors: `async with cond:`.
  Task<Acquired<Condition>> acquire_scoped();
  /// The lock's release(). Mirrors: Condition.release.
  void release() { lock_->release(); }
  /// The lock's locked(). Mirrors: Condition.locked.
  bool locked() const noexcept { return lock_->locked(); }

  /// Releases the lock, waits to be notified, re-acquires the lock.
  /// Mirrors: Condition.wait.
  Task<void> wait();
  /// Waits (as wait(), repeatedly) until `predicate()` is true, and returns
  /// its last value; a predicate that is true at once returns at once
  /// (without the lock being checked, as asyncio). Mirrors: Condition.wait_for.
  template <class Predicate>
  Task<std::decay_t<std::invoke_result_t<Predicate&>>> wait_for(Predicate predicate);
  /// Wakes up to `n` waiters. Mirrors: Condition.notify.
  void notify(std::size_t n = 1);
  /// Wakes every waiter. Mirrors: Condition.notify_all.
  void notify_all();

 private:
  static constexpr const char* kName = "eddy::Condition";
  static void pass_on(void* self) { static_cast<Condition*>(self)->waiters_.wake(1); }
  void check_locked(const char* method) const;

  std::optional<Lock> own_lock_;
  Lock* lock_;
  detail::WaiterQueue waiters_;
};

template <class Predicate>
Task<std::decay_t<std::invoke_result_t<Predicate&>>> Condition::wait_for(Predicate predicate) {
  auto result = predicate();
  while (!result) {
    co_await wait();
    result = predicate();
  }
  co_return result;
}

/// A counter of units that tasks acquire and release; acquire() waits while
/// none is left. Mirrors: asyncio.Semaphore.
///
/// - acquire() takes a unit without suspending unless locked(); otherwise it
///   waits in FIFO order. release() gives the unit straight to the first
///   waiter. No barging (asyncio 3.11+): while tasks wait — or were woken and
///   have not run yet — acquire() queues behind them even if units are free;
///   each woken waiter, when it runs, wakes as many queued ones as units allow.
/// - Cancellation: a waiter cancelled while it waits leaves the queue; one
///   that was given a unit and is cancelled before it runs gives the unit
///   back, and it goes to the next waiter.
/// - Thread safety: none; loop thread only.
/// - Throws: a negative initial value throws std::invalid_argument (asyncio:
///   ValueError); acquire() throws RuntimeError once tasks of another loop
///   waited on it.
class Semaphore {
 public:
  explicit Semaphore(std::int64_t value = 1) : Semaphore(value, -1, "eddy::Semaphore") {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Waits for a unit and takes it. Mirrors: Semaphore.acquire.
  Task<void> acquire();
  /// acquire(), then a guard that releases the unit when destroyed.
  /// Mirrors: `async with semaphore:`.
  Task<Acquired<Semaphore>> acquire_scoped();
  /// Returns a unit (to the first waiter, if any). Mirrors: Semaphore.release.
  /// A BoundedSemaphore throws std::invalid_argument when this would exceed
  /// its initial value; any semaphore throws std::overflow_error (and
  /// changes nothing) when the count would exceed INT64_MAX.
  void release();
  /// True if acquire() would wait: no unit is free, or tasks wait (or were
  /// woken and have not run yet). Mirrors: Semaphore.locked.
  bool locked() const noexcept { return value_ == 0 || !waiters_.empty(); }

 protected:
  /// `bound` < 0: unbounded.
  Semaphore(std::int64_t value, std::int64_t bound, const char* name);

 private:
  // Invariants: value_ >= 0 counts free units; a woken waiter's unit is
  // already subtracted. value_ > 0 with waiters waiting lasts only until the
  // woken waiter ahead of them runs (it wakes them: wake_while_free).
  static void pass_on(void* self);
  void wake_while_free();

  detail::WaiterQueue waiters_;
  std::int64_t value_;
  std::int64_t bound_;
};

/// A Semaphore whose release() refuses to go above the initial value.
/// Mirrors: asyncio.BoundedSemaphore.
///
/// Throws: a negative initial value, or a release() that would exceed it,
/// throws std::invalid_argument (asyncio: ValueError). Otherwise as Semaphore.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1)
      : Semaphore(value, value, "eddy::BoundedSemaphore") {}
};

/// A barrier: tasks wait until `parties` of them have arrived, then all go
/// on. Reusable: once all of a round have left, the next round fills.
/// Mirrors: asyncio.Barrier.
///
/// - wait() returns the caller's arrival index in its round, 0 to parties-1;
///   the last to arrive returns at once (without suspending), the others are
///   woken in arrival order. A task arriving while a round is still leaving
///   (woken tasks that have not run yet) or resetting waits, then joins the
///   next round.
/// - abort() breaks the barrier: current and later wait()s throw
///   BrokenBarrierError until reset(). reset() returns it to its empty state;
///   tasks waiting at that moment throw BrokenBarrierError (new arrivals wait
///   until those have left). Both take effect
///   at once (asyncio's are coroutines only to take the barrier's internal
///   lock, which eddy does not need).
/// - Cancellation: a waiting task that is cancelled leaves its round
///   (n_waiting() drops); one woken by the last arrival but cancelled before
///   it runs throws CancelledError, not its index, and the round still ends.
/// - Thread safety: none; loop thread only.
/// - Throws: parties == 0 throws std::invalid_argument (asyncio: ValueError).
class Barrier {
 public:
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits until `parties` tasks wait; returns this one's arrival index.
  /// Mirrors: Barrier.wait.
  Task<std::size_t> wait();
  /// Back to empty; waiting tasks throw BrokenBarrierError. Mirrors: Barrier.reset.
  void reset();
  /// Breaks the barrier. Mirrors: Barrier.abort.
  void abort();

  /// Mirrors: Barrier.parties.
  std::size_t parties() const noexcept { return parties_; }
  /// Tasks waiting in the round that is filling. Mirrors: Barrier.n_waiting.
  std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }
  /// Mirrors: Barrier.broken.
  bool broken() const noexcept { return state_ == State::broken; }

 private:
  // filling: tasks arrive. draining: the round is complete and its tasks
  // leave. resetting: reset() while tasks were in the barrier; they leave
  // with BrokenBarrierError. broken: abort().
  enum class State : std::uint8_t { filling, draining, resetting, broken };
  void leave();

  detail::WaiterQueue waiters_;
  std::size_t parties_;
  std::size_t count_ = 0;  // tasks in the barrier: waiting, or woken and not yet gone
  State state_ = State::filling;
};

}  // namespace eddy
