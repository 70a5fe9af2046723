// Task<T>: eddy's coroutines, and the loop's tasks that run them.
// Mirrors: asyncio coroutines and asyncio.Task.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/concurrent_future.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop.hpp"

namespace eddy {

template <class T = void>
class Task;
class TaskRef;

namespace detail {

class TaskCore;
struct TaskRegistry;
template <class T>
struct TaskPromise;

/// Stands for "no value" where a void result needs an object.
struct NoValue {};

template <class A>
concept HasMemberCoAwait = requires {
  std::declval<A>().operator co_await();
};
template <class A>
concept HasFreeCoAwait = requires {
  operator co_await(std::declval<A>());
};

/// The awaiter that `co_await` makes of an operand of type A, as far as
/// eddy can tell: what its operator co_await returns (a member, or one
/// found by argument-dependent lookup), else the operand itself. (An
/// operator co_await that only a using-directive makes visible at the
/// co_await is not seen here; the language still finds it.)
template <class A>
struct AwaiterOf {
  using type = A;
};
template <HasMemberCoAwait A>
struct AwaiterOf<A> {
  using type = decltype(std::declval<A>().operator co_await());
};
template <class A>
requires(!HasMemberCoAwait<A> && HasFreeCoAwait<A>) struct AwaiterOf<A> {
  using type = decltype(operator co_await(std::declval<A>()));
};

/// An awaitable whose awaiter suspends any coroutine (its await_suspend
/// takes a std::coroutine_handle<>, as std::suspend_always's does). eddy's
/// own awaiters suspend eddy coroutines only: they tell the task what it
/// waits on and resume it through its step. A foreign one does neither, so
/// nothing would resume the task through the loop, and neither a cancel
/// nor a deadline could reach it. (std::suspend_never never suspends: it
/// passes.)
template <class A>
concept ForeignAwaitable =
    !std::is_same_v<std::remove_cvref_t<typename AwaiterOf<A>::type>, std::suspend_never> &&
    requires(std::remove_reference_t<typename AwaiterOf<A>::type> & awaiter,
             std::coroutine_handle<> any) {
  awaiter.await_suspend(any);
};

/// What every eddy coroutine's promise has: a lazy start, and a frame from
/// eddy's block caches. It holds no pointer to its task: every eddy
/// coroutine runs inside its task's step, so the task is TaskCore::current
/// wherever an awaiter asks (8 bytes less in every frame).
struct PromiseBase {
  std::suspend_always initial_suspend() noexcept { return {}; }

  /// Every `co_await` in an eddy coroutine passes here: a foreign awaiter
  /// (ForeignAwaitable) is refused at compile time, where it would hang the
  /// task at run time. The operand is returned as it is, so the language
  /// picks its operator co_await (member or free, from the scope of the
  /// co_await) as it would without this.
  ///
  /// Made under clang++ only, where it costs nothing. g++ 12 copies an
  /// awaiter that await_transform returns by reference (and refuses a
  /// non-copyable one); a wrapper returned by value instead sits beside the
  /// awaiter in the frame, 8 bytes more in every frame that awaits an
  /// awaiter object such as sleep(0)'s: W6's frame went from 64 to 72
  /// bytes (an 80-byte block) and W6 took about 1.05-1.09x the time. CI
  /// builds eddy and its tests with both compilers.
#if defined(__clang__)
  template <class A>
  A&& await_transform(A&& operand) noexcept {
    static_assert(!ForeignAwaitable<A>,
                  "eddy: co_await of an awaiter that is not eddy's (its await_suspend takes any "
                  "std::coroutine_handle<>): nothing would resume the task through its loop, and "
                  "no cancel or timeout could reach it. Await a Future, a Task or an eddy "
                  "awaitable; to wait for a callback, complete a Future from it");
    return static_cast<A&&>(operand);
  }
#endif

  // Frames come from per-thread caches of 16-byte size classes (BlockCache).
  static void* operator new(std::size_t size) {
    tls_last_frame_size = size;
    return allocate_block(size);
  }
  static void operator delete(void* frame, std::size_t size) noexcept {
    deallocate_block(frame, size);
  }
  /// The size of the last frame allocated on this thread (last_frame_size).
  static inline thread_local constinit std::size_t tls_last_frame_size = 0;
};

/// Where a Task coroutine goes when it ends: the coroutine that awaits it
/// inline (an InlineLink in that coroutine's awaiter, which also takes the
/// outcome), or, for the root of a task, root_link.
struct Link {
  std::coroutine_handle<> continuation;  // empty in root_link: a root returns to TaskCore::step
};
/// The Link of every task's root coroutine (never written).
inline constinit Link root_link{};

/// The non-template part of Task<T>'s promise.
struct TaskPromiseBase : PromiseBase {
  /// Null until the coroutine starts (it may start once); then where it
  /// goes when it ends. One pointer for the continuation and the outcome's
  /// place, where two took 16 bytes of every frame.
  Link* link = nullptr;
  bool is_root() const noexcept { return link == &root_link; }

  /// A coroutine awaited inline suspends at its end and transfers to its
  /// awaiter, which destroys the frame (its Task). A task's root does not
  /// suspend: its frame is destroyed as it ends, inside the task's step, and
  /// the step learns that the root ended from the task (TaskCore::step).
  struct FinalAwaiter {
    bool root;
    bool await_ready() noexcept { return root; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> self) noexcept {
      return self.promise().link->continuation;
    }
    void await_resume() noexcept;  // the root only: tells the task
  };
  FinalAwaiter final_suspend() noexcept { return {is_root()}; }
};

/// The size of the last coroutine frame allocated on this thread (for
/// benchmarks reporting frame sizes).
std::size_t last_frame_size() noexcept;

template <class P>
concept EddyPromise = std::is_base_of_v<PromiseBase, P>;

/// What a suspended task waits on, as far as a cancellation can interrupt
/// it (TaskCore::interrupt_wait says how for each kind).
enum class WaitKind : std::uint8_t {
  none,     // nothing to interrupt: the request is delivered when the task resumes
  future,   // a future (data: its FutureCore*), cancelled
  timer,    // a sleep's timer (data: the timer's id), cut short
  lock,     // a place in a lock's queue (data: the LockWaiter*), given up
  forever,  // nothing but a cancellation ends it (sleep(inf); no data)
};
/// A task's wait: its kind and the awaiter's datum (a pointer or an id).
struct Waiter {
  WaitKind kind = WaitKind::none;
  std::uintptr_t data = 0;
};
/// Interrupts a lock wait (locks.cpp): true if the wait ends early.
bool interrupt_lock_wait(std::uintptr_t waiter, const std::string& message);

/// A cancellation scope of a task: a timeout or a TaskGroup. Scopes nest
/// lexically and form a stack per task (innermost first).
struct CancelScope {
  CancelScope* parent = nullptr;
  std::string message;
  bool fired = false;      // the scope asked for the task's cancellation
  bool delivered = false;  // ... and that request reached an await
};

/// For code that catches several CancelledErrors before it throws one (a
/// wait that must finish, such as Condition::wait re-acquiring its lock):
/// keeps in `kept` the one that rule 2 of "Cancellation" (<eddy/task.hpp>)
/// lets decide, the task's own cancel() before any scope's, an outer scope's
/// before an inner one's, else the last (as asyncio's Condition.wait keeps
/// the last). Call inside the catch of `caught`;
/// `kept` is empty or holds a CancelledError of the same task.
void keep_deciding_cancellation(std::exception_ptr& kept, const CancelledError& caught);
/// True if a cancellation of origin `origin` decides over one of origin
/// `than` (rule 2): the task's own (null) over a scope's, an enclosing scope
/// over one it encloses.
bool cancellation_outranks(const void* origin, const void* than) noexcept;

/// The task part of a task's shared state that does not depend on T (the
/// other part is its Future's state: both live in one allocation, TaskShared).
///
/// Invariants:
/// - Runs on its loop's thread only. The registry holds one reference to the
///   state while the task is not done. At most one callback that will step
///   the task (StepTask) is outstanding, and only while it is not done.
/// - While suspended, `resume_point` is the innermost suspended coroutine and
///   `waiter` says how to interrupt what it waits on (empty if it cannot be).
/// - Cancellation requests have an origin: the task's own cancel() (external,
///   origin null) or a CancelScope. See "Cancellation" in <eddy/task.hpp>.
class TaskCore {
 public:
  enum Flag : std::uint8_t {
    kPendingExternal = 1,  // cancel() arrived; not yet delivered
    kPendingScope = 2,     // a scope fired; not yet delivered
    kDelegated = 4,        // the current wait was interrupted for a request
    kCancelling = 8,       // request_cancel is interrupting the wait (see there)
    kWalked = 16,          // request_cancel checked the tasks this one awaits (see there)
    kThisWalk = 32,        // ... in the walk going on now
  };

  explicit TaskCore(std::coroutine_handle<> root) noexcept : resume_point_(root), root_(root) {}
  TaskCore(const TaskCore&) = delete;
  TaskCore& operator=(const TaskCore&) = delete;

  Loop& loop() const noexcept { return *future().loop; }
  /// The task's future: part of the same TaskShared, found by its offset.
  FutureCore& future() const noexcept {
    return *reinterpret_cast<FutureCore*>(reinterpret_cast<char*>(const_cast<TaskCore*>(this)) +
                                          future_offset_);
  }
  bool done() const noexcept { return future().state != FutureState::pending; }

  /// Runs the task until it suspends or ends (called from a loop callback).
  void step() noexcept {
    TaskCore* outer = current;
    current = this;
    resume_point_.resume();
    current = outer;
    if (!root_) finish();  // the root ended, and its frame is gone
  }
  /// The first step: a task cancelled before it started never runs its body.
  void first_step() noexcept {
    if (flags_ & kPendingExternal) [[unlikely]]
      return end_before_first_step();
    step();
  }

  /// An awaiter suspends coroutine `at` of this task on `waiter`.
  void suspend(std::coroutine_handle<> at, Waiter waiter) noexcept {
    resume_point_ = at;
    wait_kind_ = waiter.kind;
    wait_data_ = waiter.data;
    if (flags_ & (kPendingExternal | kPendingScope)) [[unlikely]]
      redeliver();
  }
  /// An awaiter that suspended resumes: throws CancelledError if a
  /// cancellation is due at this await. `interrupted` says whether the wait
  /// itself ended because of an interruption (a cancelled future, a timer cut
  /// short), `wait_message` the message it carries.
  void resumed(bool interrupted) {
    wait_kind_ = WaitKind::none;
    if (flags_ != 0) [[unlikely]]
      deliver(interrupted);
  }
  /// resumed() after a wait on `awaited`, which is done: the wait was
  /// interrupted if it ended with a CancelledError (take_cancellation: a
  /// gather cancelled for this task's request ends finished with one), which
  /// then counts as retrieved. If the task's own cancel() was passed on to
  /// it, the awaiter throws that CancelledError itself, with its message
  /// (what the awaited task ended with), as asyncio's Task.__step rethrows
  /// the awaited future's.
  void resumed_from(FutureCore& awaited) {
    wait_kind_ = WaitKind::none;
    if (flags_ != 0) [[unlikely]] {
      const bool interrupted = take_cancellation(awaited);
      deliver(interrupted, interrupted);
    }
  }
  /// The root coroutine ended (its final suspend point, which does not
  /// suspend): its frame is destroyed as the coroutine returns.
  void root_ended() noexcept { root_ = {}; }
  /// Whether the current wait was interrupted for a cancellation
  /// (interrupt_wait returned true). Valid until resumed().
  bool wait_interrupted() const noexcept { return (flags_ & kDelegated) != 0; }

  /// Requests cancellation from `scope` (null: the task's own cancel()).
  /// Returns false if the task is done.
  bool request_cancel(CancelScope* scope, std::string message);
  /// Scopes: push on entry, pop on exit (lexical order).
  void push_scope(CancelScope& scope) noexcept {
    scope.parent = scopes_;
    scopes_ = &scope;
  }
  void pop_scope(CancelScope& scope) noexcept;
  /// At a scope's exit: if the task's own cancel() is pending, consumes it
  /// and returns its message (the scope then raises CancelledError instead
  /// of its own outcome: a cancel from outside wins).
  std::optional<std::string> take_pending_external();

  const std::string& name() const;
  void set_name(std::string name);
  /// What most tasks never need, allocated on first use: a name (given, or
  /// asked for) and the state of cancellation requests.
  struct Cold;
  /// A Cold holding `name`, made before the task (create_task must not
  /// throw once the task exists); adopt_cold hands it over, before the task
  /// has made one of its own.
  static std::unique_ptr<Cold> named(std::string name);
  void adopt_cold(std::unique_ptr<Cold> cold) noexcept;
  /// Counts the loop's tasks from 1, in creation order.
  std::uint64_t creation_number() const noexcept;

  /// The task whose step is running on this thread, if any.
  static inline thread_local TaskCore* current = nullptr;

 protected:
  ~TaskCore();  // destroyed as part of its TaskShared
  /// Records where the task's future lives (TaskShared's constructor).
  void bind_future(FutureCore& future) noexcept {
    const std::ptrdiff_t offset = reinterpret_cast<char*>(&future) - reinterpret_cast<char*>(this);
    future_offset_ = static_cast<std::int16_t>(offset);  // a few dozen bytes, either way
  }
  /// Completes the task's future: the root coroutine has ended, and left its
  /// value or exception there (TaskPromise).
  void finish() noexcept {
    FutureCore& future = this->future();
    if (future.exception || (flags_ & kPendingExternal)) [[unlikely]] {
      finish_unusually(future);
    } else {
      future.state = FutureState::finished;
    }
    future.end_task();
  }
  /// finish() for a root coroutine that threw (the future ends cancelled
  /// for a CancelledError, else finished with the exception), or that
  /// returned while a cancel() it never saw was pending (the future ends
  /// cancelled, as asyncio's Task.__step does).
  void finish_unusually(FutureCore& future) noexcept;
  /// Ends the task's future cancelled by the task's own cancel(), which is
  /// pending (consumed here): before its first step, or as it returns.
  void end_cancelled_by_pending_cancel(FutureCore& future) noexcept;
  /// first_step() of a task cancelled before it started.
  void end_before_first_step() noexcept;
  /// Interrupts the current wait for a cancellation carrying `message`:
  /// true if the wait will end early because of it (the awaited future was
  /// cancelled, the timer was cut short).
  bool interrupt_wait(const std::string& message);
  /// After the future's state is set: frees the frame of a task that never
  /// started, leaves the registry and runs or schedules the done callbacks.
  /// The caller then drops the registry's reference (TaskShared::end_task).
  void leave_registry(FutureCore& future) noexcept;
  /// leave_registry for a task that never started: its frame goes.
  [[gnu::noinline]] void destroy_unstarted_root() noexcept { std::exchange(root_, {}).destroy(); }
  void redeliver() noexcept;
  /// The callback that goes on with a request_cancel cut short by its depth.
  struct RedeliverSoon;
  /// The task whose future this one awaits, if it awaits a pending task.
  TaskCore* awaited_task() const noexcept;
  /// Follows awaited_task() from this task; throws RuntimeError if it comes
  /// back to a task of the cancellation being passed on (a cycle).
  void check_awaited_chain();
  /// Throws the CancelledError due at this await, if any. `awaited_throws`:
  /// the wait ended with a CancelledError that the awaiter rethrows when
  /// this returns (resumed_from).
  void deliver(bool interrupted, bool awaited_throws = false);
  // Marks the scope requests pending now as delivered: the CancelledError
  // being thrown, the task's own, answers them.
  void fold_scope_requests() noexcept;

  struct CancelState {
    std::string external_message;
    const CancelScope* delegated_origin = nullptr;  // null: external
    std::string delegated_message;
  };
  Cold& cold() const;
  /// The Cold that a pending or delegated request made (see cancel_state).
  Cold& made_cold() const noexcept { return *reinterpret_cast<Cold*>(cold_or_number_); }
  CancelState& cancel_state();

  // 48 bytes: with the future's state and a small value, a TaskShared takes
  // 160 bytes (every pass over many tasks reads them).
  std::coroutine_handle<> resume_point_;
  std::coroutine_handle<> root_;  // null once the root ended (its frame is gone)
  std::uintptr_t wait_data_ = 0;  // the current Waiter's datum
  CancelScope* scopes_ = nullptr;
  std::uint32_t slot_ = 0;  // in the registry's slots
  std::uint8_t flags_ = 0;
  WaitKind wait_kind_ = WaitKind::none;  // the current Waiter's kind
  std::int16_t future_offset_ = 0;       // from this TaskCore to its FutureCore
  /// The Cold, made on first use; until then the creation number, tagged:
  /// 2 * number + 1 (a Cold is at least 8-aligned, so the low bit tells).
  mutable std::uintptr_t cold_or_number_ = 1;

  friend struct TaskRegistry;
};

inline void TaskPromiseBase::FinalAwaiter::await_resume() noexcept {
  TaskCore::current->root_ended();
}

/// A loop callback that steps a task (a bare pointer: 16 bytes in the ready
/// queue, nothing to destroy).
///
/// It holds no reference: a task has at most one step callback outstanding
/// (queued, on a timer, or as a done callback of what it awaits), only while
/// it is not done, and the registry holds a reference to the task's state
/// until it is done. A callback dropped unrun (loop close) touches nothing.
class StepTask {
 public:
  explicit StepTask(TaskCore& task) noexcept : task_(&task) {}
  void operator()() const noexcept { task_->step(); }
  void operator()(FutureCore&) const noexcept { task_->step(); }  // as a done callback
  TaskCore& task() const noexcept { return *task_; }

 protected:
  TaskCore* task_;
};

/// The loop callback of a task's first step (create_task).
class FirstStep : public StepTask {
 public:
  using StepTask::StepTask;
  void operator()() const noexcept { task_->first_step(); }
};

/// The timer callback of a sleep: queues the task's step (the next pass
/// runs it), as asyncio's sleep timer completes a future whose wake-up goes
/// through call_soon. So a timer due at the same moment runs before the
/// task resumes, and a cancel() or deadline due then is thrown at the sleep.
class StepTaskSoon : public StepTask {
 public:
  using StepTask::StepTask;
  void operator()() const noexcept;
};

/// The number of the next task created on this thread: "Task-<number>".
/// Numbers are unique in the process, across loops, as asyncio's one
/// module-level counter makes them; each thread takes them from a shared
/// counter 1024 at a time, so that a task costs no atomic operation. On one
/// thread they increase in creation order.
std::uint64_t next_task_number_block() noexcept;
inline std::uint64_t next_task_number() noexcept {
  struct Numbers {
    std::uint64_t next = 0, end = 0;
  };
  static thread_local Numbers numbers;  // trivially destructible: no guard
  if (numbers.next == numbers.end) [[unlikely]] {
    numbers.next = next_task_number_block();
    numbers.end = numbers.next + 1024;
  }
  return numbers.next++;
}

/// The loop's tasks, kept alive until they end (the loop's task extension).
///
/// A dense table of slots, so that adding and removing a task touch only the
/// table, not other tasks' memory. A slot holds its task's TaskCore* (which
/// is 8-aligned: low bit 0) or, free, the index of the next free slot,
/// tagged (next << 1 | 1): the free slots form a stack threaded through the
/// table, and a freed slot is reused first. One array, where a table and a
/// separate stack of free indices touched two.
struct TaskRegistry : LoopExtension {
  static constexpr std::uint32_t kNoFreeSlot = ~std::uint32_t{0};

  ~TaskRegistry() override;
  /// Makes sure the next add() does not allocate.
  void reserve_slot() {
    if (free_slot == kNoFreeSlot && used == capacity) [[unlikely]]
      grow();
  }
  /// Registers `task` (after reserve_slot), and gives it its creation number
  /// (before any Cold of its own: see TaskCore::adopt_cold).
  void add(TaskCore& task) noexcept {
    std::uint32_t slot = free_slot;
    if (slot != kNoFreeSlot) {
      free_slot = static_cast<std::uint32_t>(slots[slot] >> 1);
    } else {
      slot = used++;
    }
    slots[slot] = reinterpret_cast<std::uintptr_t>(&task);
    task.slot_ = slot;
    task.cold_or_number_ = static_cast<std::uintptr_t>(next_task_number()) << 1 | 1;
  }
  void remove(TaskCore& task) noexcept {
    slots[task.slot_] = std::uintptr_t{free_slot} << 1 | 1;
    free_slot = task.slot_;
  }
  /// The task in slot i, or null if the slot is free (i < used).
  TaskCore* at(std::uint32_t i) const noexcept {
    return (slots[i] & 1) != 0 ? nullptr : reinterpret_cast<TaskCore*>(slots[i]);
  }
  /// Destroys the frames of tasks that can no longer run; their futures end
  /// cancelled (no callbacks run: the loop is closing).
  bool loop_closing() noexcept override;
  /// Debug mode: a queued callback that steps a task (its first step, a
  /// wake-up, or done callbacks among which one wakes a task) runs for that
  /// task; the token is its future's state, with a reference.
  void* subject_of(const void* table, void* captures) noexcept override;
  void describe_subject(void* subject, ExceptionContext& context) const override;
  void release_subject(void* subject) noexcept override;

  std::unique_ptr<std::uintptr_t[]> slots;
  std::uint32_t used = 0;                 // slots [0, used) were handed out at some point
  std::uint32_t capacity = 0;             // of slots
  std::uint32_t free_slot = kNoFreeSlot;  // the top of the free slots' stack
  std::function<void(TaskRef)> factory;

 private:
  void grow();  // doubles the table (at least 64 slots)
};

struct TaskCore::Cold {
  std::uint64_t number = 0;         // creation_number()
  std::optional<std::string> name;  // "Task-<number>" once asked for, unless given
  CancelState cancel;
};
inline TaskCore::~TaskCore() {
  if ((cold_or_number_ & 1) == 0) delete &made_cold();
}
inline std::uint64_t TaskCore::creation_number() const noexcept {
  return (cold_or_number_ & 1) != 0 ? cold_or_number_ >> 1 : made_cold().number;
}
inline void TaskCore::adopt_cold(std::unique_ptr<Cold> cold) noexcept {
  cold->number = creation_number();
  cold_or_number_ = reinterpret_cast<std::uintptr_t>(cold.release());
}

inline TaskRegistry* find_task_registry(const Loop& loop) noexcept {
  return static_cast<TaskRegistry*>(LoopExtensions::get(loop, ExtensionSlot::tasks));
}
inline void TaskCore::leave_registry(FutureCore& future) noexcept {
  if (root_) [[unlikely]]
    destroy_unstarted_root();
  find_task_registry(*future.loop)->remove(*this);
  run_task_done_callbacks(future);
}
/// Installs the loop's registry (create_task's first call).
TaskRegistry& make_task_registry(Loop& loop);
/// The loop's registry, made on first use.
inline TaskRegistry& task_registry(Loop& loop) {
  if (TaskRegistry* registry = find_task_registry(loop)) [[likely]]
    return *registry;
  return make_task_registry(loop);
}
void run_task_factory(TaskRegistry& registry, TaskCore& task);

/// A task's shared state: its Future<T>'s state and the task, one allocation.
template <class T>
struct TaskShared final : FutureShared<T>, TaskCore {
  TaskShared(Loop& loop, SourceLocation where, std::coroutine_handle<> root)
      : FutureShared<T>(loop, where), TaskCore(root) {
    this->route = CancelRoute::owner;
    bind_future(static_cast<FutureCore&>(*this));
  }

  void destroy() noexcept override {
    this->~TaskShared();
    BlockCache<sizeof(TaskShared)>::deallocate(this);
  }
  /// The end of a task, once its future's state is set: leave_registry,
  /// then the registry's reference goes. One call per type, so that a state
  /// with nothing for its destructors to release goes back to its cache
  /// right here (where a task's end took a call to TaskCore and a virtual
  /// call to destroy()); any other goes through release_last().
  void end_task() noexcept override {
    leave_registry(*this);  // the frame is gone from here on (root_ is null)
    if (--this->refs != 0) return;
    if (!this->exception && !this->more && !this->first && (cold_or_number_ & 1) != 0 &&
        std::is_trivially_destructible_v<T>) [[likely]] {
      // Nothing for the destructors to release: the block goes back as it is.
      BlockCache<sizeof(TaskShared)>::deallocate(this);
      return;
    }
    release_last(this);  // out of line: the short way above keeps few registers
  }
  bool cancel_requested(std::string message) override {
    return request_cancel(nullptr, std::move(message));
  }
  TaskCore* as_task() noexcept override { return this; }

 private:
  ~TaskShared() {
    if (root_) root_.destroy();  // defensive: the registry ends every task first
  }
};

/// Where a coroutine awaited inline leaves its outcome: in the awaiter, which
/// lives in the awaiting coroutine's frame. (A task's root coroutine leaves
/// it in the task's future instead, so that its own frame holds no room for
/// a result: see TaskPromise.)
template <class T>
struct InlineResult {
  std::optional<T> value;
  std::exception_ptr error;
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};
template <>
struct InlineResult<void> {
  std::exception_ptr error;
  void take() {
    if (error) std::rethrow_exception(error);
  }
};
/// The Link of a Task<T> awaited inline, with the room for its outcome.
template <class T>
struct InlineLink : Link {
  InlineResult<T> result;
};

/// The promise of Task<T>. Its outcome goes to its awaiter's InlineLink when
/// the coroutine is awaited inline, else (the root of a task) straight into
/// the task's future, whose state then says it is finished
/// (TaskCore::finish).
template <class T>
struct TaskPromise : TaskPromiseBase {
  Task<T> get_return_object() noexcept;
  template <class U = T>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& result) {
    if (!is_root()) {
      inline_result().value.emplace(std::forward<U>(result));
    } else {
      root_future().emplace_value(std::forward<U>(result));
    }
  }
  void unhandled_exception() noexcept {
    (!is_root() ? inline_result().error : root_future().exception) = std::current_exception();
  }
  InlineResult<T>& inline_result() noexcept { return static_cast<InlineLink<T>*>(link)->result; }
  /// The future of the task this coroutine is the root of (the running one).
  static FutureShared<T>& root_future() noexcept {
    return static_cast<TaskShared<T>&>(*TaskCore::current);
  }
};
template <>
struct TaskPromise<void> : TaskPromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept {
    (!is_root() ? inline_result().error : TaskCore::current->future().exception) =
        std::current_exception();
  }
  InlineResult<void>& inline_result() noexcept {
    return static_cast<InlineLink<void>*>(link)->result;
  }
};

/// What awaiting its own future throws: asyncio's "Task cannot await on
/// itself" RuntimeError (eddy throws it at the await itself).
[[noreturn]] void throw_awaits_itself();
/// What `co_await` on an empty Future throws (InvalidStateError).
[[noreturn]] void throw_await_empty_future();

/// Awaits a future from inside a task: resumes the task when it is done.
template <class T>
class FutureAwaiter {
 public:
  explicit FutureAwaiter(Future<T> future) : future_(std::move(future)) {}

  bool await_ready() const {
    const FutureCore* core = FutureAccess::shared(future_);
    if (core == nullptr) [[unlikely]]
      throw_await_empty_future();
    return core->state != FutureState::pending;
  }
  template <EddyPromise P>
  void await_suspend(std::coroutine_handle<P> at) {
    suspend_on(*TaskCore::current, at);
  }
  decltype(auto) await_resume() {
    if (task_ != nullptr) task_->resumed_from(*FutureAccess::shared(future_));
    return take_result(future_);
  }

 private:
  void suspend_on(TaskCore& task, std::coroutine_handle<> at) {
    FutureCore* core = FutureAccess::shared(future_);
    if (core->as_task() == &task) [[unlikely]]
      throw_awaits_itself();
    if (core->loop != &task.loop()) [[unlikely]]
      throw std::invalid_argument("eddy: a task awaited a future of another loop");
    add_core_done_callback(*core, StepTask(task));
    task_ = &task;
    task.suspend(at, Waiter{WaitKind::future, reinterpret_cast<std::uintptr_t>(core)});
  }

  Future<T> future_;
  TaskCore* task_ = nullptr;  // set once suspended
};

/// Awaits a ConcurrentFuture from inside a task: wraps it onto the task's loop.
template <class T>
class ConcurrentFutureAwaiter {
 public:
  explicit ConcurrentFutureAwaiter(ConcurrentFuture<T> future) : concurrent_(std::move(future)) {}
  bool await_ready() const noexcept { return false; }
  template <EddyPromise P>
  bool await_suspend(std::coroutine_handle<P> at) {
    inner_.emplace(wrap_future(std::move(concurrent_), TaskCore::current->loop(),
                               SourceLocation::made_by("co_await eddy::ConcurrentFuture")));
    if (inner_->await_ready()) return false;
    inner_->await_suspend(at);
    return true;
  }
  decltype(auto) await_resume() { return inner_->await_resume(); }

 private:
  ConcurrentFuture<T> concurrent_;
  std::optional<FutureAwaiter<T>> inner_;
};

/// Gives a coroutine its TaskCore without suspending: co_await ThisTask{}.
struct ThisTask {
  TaskCore* task = nullptr;
  bool await_ready() const noexcept { return false; }
  template <EddyPromise P>
  bool await_suspend(std::coroutine_handle<P>) noexcept {
    task = TaskCore::current;
    return false;
  }
  TaskCore& await_resume() const noexcept { return *task; }
};

}  // namespace detail

/// An eddy coroutine: the return type of every function that co_awaits.
/// Mirrors: a Python coroutine object (`async def`).
///
/// Lazy and move-only: nothing runs until the Task is awaited or handed to
/// Loop::create_task. `co_await task` runs it inline in the awaiting task,
/// with symmetric transfer: no trip through the ready queue, and no stack
/// growth however deep chains of awaits go. A Task can be awaited once.
///
/// Inside a Task, `co_await` works on Future<T>, Task<T>, ConcurrentFuture<T>
/// (wrapped onto the task's loop), and eddy's awaitables (sleep, wait_for,
/// timeout, shield, task groups). Awaiting a future of another loop throws
/// std::invalid_argument.
///
/// Example:
///
///     eddy::Task<int> answer() { co_await eddy::sleep(0.1); co_return 42; }
///     int v = loop.run_until_complete(answer());
///
/// Destroying a Task that has not run destroys its frame (and what the frame
/// captured) without running it.
///
/// Alignment: frames and task states are 16-byte aligned. A result type
/// aligned to more is refused at compile time; a local or parameter aligned
/// to more than 16 bytes inside a coroutine is not supported (C++20 gives a
/// coroutine's allocator no alignment: g++ 12 misaligns such locals with
/// the default allocator too).
///
/// Tasks (Loop::create_task) and their cancellation. Mirrors asyncio.Task:
/// - create_task schedules the first step with call_soon; each later step
///   runs from the callback that woke the task (a future's done callback, a
///   timer), on the loop's thread. The loop keeps the task alive until it
///   ends; dropping its Future does not stop it. A task that fails and whose
///   exception nobody retrieves is reported like a future
///   ("Task exception was never retrieved").
/// - `future.cancel(msg)` on a task's future asks the task to cancel and
///   returns true unless it is done. If the task is suspended, what it awaits
///   is cancelled (a future, a task's future, a sleep); the `co_await` there
///   throws CancelledError(msg), which the coroutine may catch and go on.
///   A CancelledError that leaves the task ends it cancelled. A task
///   cancelled before its first step never runs its body.
/// - If what the task awaits finishes despite the cancel (an awaited task
///   that caught its CancelledError and returned), its result stands: the
///   request was passed on and answered. If it ends with another
///   CancelledError (it raised its own, or was cancelled again elsewhere),
///   that one, with its message, is what the task's await throws.
///   (A scope's request passed on keeps its origin: see rule 1 below.)
/// - A request that cannot be passed on (the task awaits sleep(0), or has
///   not suspended yet) is delivered at the task's next suspension: the
///   await there throws CancelledError. Each request is delivered once.
///   A coroutine that returns before that (cancel() came during its last
///   step) ends the task cancelled, its value dropped, as asyncio's
///   Task.__step does; one that throws ends with its exception.
/// - A request passed on down a chain of tasks awaiting each other goes on
///   from the next loop iteration every 256 tasks, so no chain overflows
///   the stack (asyncio raises RecursionError at about 1000). A request
///   that would come back round to a task it is cancelling (tasks awaiting
///   each other in a cycle, which no cancellation can end) makes cancel()
///   throw RuntimeError (asyncio: RecursionError). The tasks of the cycle
///   are left as they were; what the request reached on other ways first
///   (another child of a gather in the cycle) stays cancelled, as in
///   asyncio. A cycle through two gathers or more, longer than 256 tasks,
///   is seen only as the request goes round it: cancel() returns true, and
///   the RuntimeError goes to the exception handler once the request has
///   passed more tasks than the loop ever held.
/// - Loop close with tasks pending destroys their frames (destructors run
///   once) and leaves their futures cancelled ("the loop was closed").
///
/// Nesting, without asyncio's uncancel() counting. A timeout or TaskGroup
/// is a *scope* of the task it runs in. Every cancellation has an origin:
/// the task's own cancel(), or one scope; the CancelledError carries it
/// (CancelledError::origin(), null for cancel()). The rules:
/// 1. A scope converts only CancelledErrors of its own origin, at its exit
///    (timeout: into TimeoutError; TaskGroup: into its outcome). All others
///    pass through it untouched.
/// 2. When several requests are due at one await, the one thrown is the
///    task's own cancel(), else the outermost scope's: inner scopes let it
///    pass (rule 1), so the outermost cause decides. That one CancelledError
///    answers them all: a scope whose request it answered does not cancel
///    the block's next await (its expired() stays true), as asyncio throws
///    one CancelledError for every cancel() made before the task resumed,
///    so that the cleanup of a cancel from outside runs to its end even
///    when a deadline falls due with it. If the await had
///    already ended with a CancelledError of the task's own cancel() or of
///    the awaited future (cancelled elsewhere), a later cancel() is answered
///    by that one, with its message (asyncio's Task.__step keeps it too).
///    One difference in messages: when a deadline cancelled the awaited
///    future and the task's cancel("X") comes before the task resumes,
///    eddy throws CancelledError("X") (the cancel() decides, by this rule),
///    where asyncio rethrows the awaited future's, with an empty message.
/// 3. When a scope converts its cancellation while the task's own cancel()
///    is still pending, it throws CancelledError instead (a cancel from
///    outside always wins over a timeout).
/// 4. A scope's request that was not delivered when the scope exits is
///    withdrawn with it; nothing leaks into the code after the scope.
template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;
  static_assert(!std::is_reference_v<T>, "Task<T&> is not supported: return a pointer");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>,
                "eddy::Task<const T> is not supported: return a T");

  /// An empty task; valid() is false.
  Task() noexcept = default;
  Task(Task&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
  Task& operator=(Task other) noexcept {
    std::swap(frame_, other.frame_);
    return *this;
  }
  ~Task() {
    if (frame_) frame_.destroy();
  }

  bool valid() const noexcept { return static_cast<bool>(frame_); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
    bool await_ready() const {
      if (!frame_) throw InvalidStateError("eddy::Task: co_await on an empty Task");
      if (frame_.promise().link != nullptr) {
        throw InvalidStateError("eddy::Task: co_await on a Task that already ran");
      }
      return false;
    }
    template <detail::EddyPromise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiting) noexcept {
      link_.continuation = awaiting;
      frame_.promise().link = &link_;
      return frame_;
    }
    T await_resume() { return link_.result.take(); }

   private:
    std::coroutine_handle<promise_type> frame_;
    detail::InlineLink<T> link_;  // where the coroutine goes back to, and leaves its outcome
  };
  Awaiter operator co_await() & noexcept { return Awaiter(frame_); }
  Awaiter operator co_await() && noexcept { return Awaiter(frame_); }

  /// Gives up the frame (for create_task).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(frame_, {}); }
  /// Takes ownership of a frame.
  static Task adopt(std::coroutine_handle<promise_type> frame) noexcept { return Task(frame); }

 private:
  friend struct detail::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
  std::coroutine_handle<promise_type> frame_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

/// `co_await future` inside a Task: the future's result (a copy, or moved out
/// for move-only types), its exception rethrown, or CancelledError.
template <class T>
detail::FutureAwaiter<T> operator co_await(Future<T> future) {
  return detail::FutureAwaiter<T>(std::move(future));
}
/// `co_await concurrent_future` inside a Task: wrapped onto the task's loop
/// (asyncio.wrap_future), so cancelling the task cancels it.
template <class T>
detail::ConcurrentFutureAwaiter<T> operator co_await(ConcurrentFuture<T> future) {
  return detail::ConcurrentFutureAwaiter<T>(std::move(future));
}

namespace detail {
struct TaskRefAccess {
  static TaskCore& core(const TaskRef& task);
};
/// The future of the task `task` refers to (for eddy's own helpers).
FutureCore& task_future(const TaskRef& task);
}  // namespace detail

/// A reference to a task of a loop, whatever its result type: what
/// current_task() and all_tasks() return. Mirrors: asyncio.Task's
/// non-future methods. Empty (false) when there is no task.
class TaskRef {
 public:
  TaskRef() noexcept = default;
  explicit TaskRef(detail::TaskCore& task) noexcept : task_(&task) {
    detail::add_ref(&task.future());
  }
  TaskRef(const TaskRef& other) noexcept : TaskRef() {
    if (other.task_ != nullptr) *this = TaskRef(*other.task_);
  }
  TaskRef(TaskRef&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  TaskRef& operator=(TaskRef other) noexcept {
    std::swap(task_, other.task_);
    return *this;
  }
  ~TaskRef() {
    if (task_ != nullptr) detail::release(&task_->future());
  }

  explicit operator bool() const noexcept { return task_ != nullptr; }
  friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.task_ == b.task_; }

  /// The task's name: the one given to create_task, or "Task-<n>" (n unique
  /// in the process, increasing in creation order on one thread). Mirrors:
  /// asyncio.Task.get_name.
  const std::string& name() const { return checked("name").name(); }
  void set_name(std::string name) { checked("set_name").set_name(std::move(name)); }
  /// Same as cancel() on the task's future. Mirrors: asyncio.Task.cancel.
  bool cancel(std::string message = {}) {
    detail::FutureCore& future = checked("cancel").future();
    detail::LoopExtensions::check_thread(*future.loop, "eddy::TaskRef::cancel");
    return detail::cancel_core(future, std::move(message));
  }
  bool done() const { return checked("done").done(); }
  bool cancelled() const { return checked("cancelled").future().state == FutureState::cancelled; }
  Loop& get_loop() const { return checked("get_loop").loop(); }

 private:
  friend struct detail::TaskRefAccess;
  detail::TaskCore& checked(const char* method) const;
  detail::TaskCore* task_ = nullptr;
};

/// The task running on this thread, or an empty TaskRef outside any task.
/// Mirrors: asyncio.current_task.
TaskRef current_task() noexcept;
/// The loop's tasks that are not done, by task number (the N of "Task-N"):
/// creation order for the tasks made on one thread (a thread takes numbers
/// in blocks). Mirrors: asyncio.all_tasks. Like every method but
/// call_soon_threadsafe, it is for the loop's thread: from another thread
/// while the loop runs it throws WrongThreadError (a TaskRef's count is not
/// atomic; asyncio tolerates that call, for monitoring tools: post it to the
/// loop with call_soon_threadsafe instead).
std::vector<TaskRef> all_tasks(const Loop& loop);
/// all_tasks() of the running loop (NoRunningLoopError if none).
std::vector<TaskRef> all_tasks();

template <class T>
Future<T> Loop::create_task(Task<T> task, SourceLocation where) {
  return start_task(task, static_cast<std::unique_ptr<detail::TaskCore::Cold>*>(nullptr), where);
}

template <class T>
Future<T> Loop::create_task(Task<T> task, std::string name, SourceLocation where) {
  if (name.empty()) return create_task(std::move(task), where);
  std::unique_ptr<detail::TaskCore::Cold> cold = detail::TaskCore::named(std::move(name));
  return start_task(task, &cold, where);
}

template <class T, class Named>
Future<T> Loop::start_task(Task<T>& task, Named* named, SourceLocation where) {
  check_usable("create_task");
  if (!task.valid()) throw InvalidStateError("eddy::Loop::create_task: the Task is empty");
  auto frame = task.release();
  Task<T> owned = Task<T>::adopt(frame);  // owns the frame until the task state does
  if (frame.promise().link != nullptr) {
    task = std::move(owned);  // give it back: the caller's Task still owns it
    throw InvalidStateError("eddy::Loop::create_task: the Task already ran");
  }
  // Everything that may throw comes before the task is registered.
  detail::TaskRegistry& registry = detail::task_registry(*this);
  registry.reserve_slot();
  using Shared = detail::TaskShared<T>;
  void* block = detail::BlockCache<sizeof(Shared)>::allocate();
  Shared* shared = ::new (block) Shared(*this, where, owned.release());
  try {
    call_soon_checked(detail::FirstStep(*shared));  // the ready queue may have to grow
  } catch (...) {
    shared->destroy();  // and the frame with it
    throw;
  }
  frame.promise().link = &detail::root_link;  // noexcept from here
  registry.add(*shared);                      // takes the state's first reference: the registry's
  if (named != nullptr) shared->adopt_cold(std::move(*named));
  detail::add_ref(shared);
  Future<T> future = detail::FutureAccess::adopt<T>(shared);
  if (registry.factory) [[unlikely]]
    detail::run_task_factory(registry, *shared);
  return future;
}

template <class T>
T Loop::run_until_complete(Task<T> task, SourceLocation where) {
  // Refused before the task is made, as asyncio checks before it wraps the
  // coroutine: a refused call schedules nothing (the Task is destroyed unrun).
  check_can_run("run_until_complete");
  return run_until_complete(create_task(std::move(task), where));
}

/// Schedules `task` on the running loop. Mirrors: asyncio.create_task.
template <class T>
Future<T> create_task(Task<T> task, SourceLocation where = SourceLocation::current()) {
  return get_running_loop().create_task(std::move(task), where);
}
/// The same, with a name.
template <class T>
Future<T> create_task(Task<T> task, std::string name,
                      SourceLocation where = SourceLocation::current()) {
  return get_running_loop().create_task(std::move(task), std::move(name), where);
}

}  // namespace eddy
