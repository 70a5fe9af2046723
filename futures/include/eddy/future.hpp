// Future<T>: a result that arrives later, on one loop. Mirrors: asyncio.Future.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <queue>
#include <set>
#include <stack>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "eddy/detail/block_cache.hpp"
#include "eddy/detail/callback.hpp"
#include "eddy/errors.hpp"
#include "eddy/loop.hpp"
#include "eddy/source_location.hpp"

namespace eddy {

/// A future's state: pending, then exactly one of cancelled or finished
/// (finished covers both a result and an exception).
enum class FutureState : std::uint8_t { pending, cancelled, finished };

/// Identifies a done callback, for Future::remove_done_callback of the
/// future that gave it. Its high half is drawn from that future's identity,
/// so an id given by one future removes nothing from another (where the same
/// number could name a task's wake-up); 0 is never an id.
using DoneCallbackId = std::uint64_t;

template <class T>
class Future;

namespace detail {
struct FutureAccess;

struct FutureCore;
class TaskCore;  // <eddy/task.hpp>

using DoneCallback = SmallFunction<void(FutureCore&)>;

/// Where Future::cancel on a pending future goes (FutureCore::route).
enum class CancelRoute : std::uint8_t {
  /// The future is cancelled at once (a plain future).
  future,
  /// To cancel_requested(): the owner completes the future (a task asks its
  /// coroutine to stop, a gather cancels its children). set_result and
  /// set_exception from outside are refused.
  owner,
  /// The future is cancelled at once, then cancelled_hook() tells its
  /// producer, inside cancel() rather than one iteration later through a
  /// done callback (an executor job drops or interrupts its work).
  hook,
};

/// The part of a future's shared state that does not depend on T.
///
/// Its virtual functions are what differs between kinds of state (a plain
/// future, a task's, a gather's, an executor job's): how it is destroyed,
/// and what else cancel() does (see CancelRoute). One table pointer serves
/// both, where a destroy function, an owner pointer and a hook pointer took
/// 24 bytes.
///
/// Invariants:
/// - Single-threaded: touched only on the loop's thread, so the reference
///   count is a plain integer.
/// - Done callbacks [0, scheduled) have been handed to call_soon (by a
///   CallbackRunner holding a reference); [scheduled, count) wait for the
///   future to be done. A removed callback is left empty and skipped.
/// - The first done callback is stored inline, so a future with one callback
///   costs one allocation: this state.
struct FutureCore {
  FutureCore(Loop& l, SourceLocation where) noexcept : loop(&l), created(where) {}
  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;

  /// Destroys the state and frees its memory (the last reference went).
  virtual void destroy() noexcept = 0;
  /// Future::cancel on a pending future whose route is CancelRoute::owner.
  /// Returns what cancel() returns.
  virtual bool cancel_requested(std::string message);
  /// After Future::cancel cancelled a future whose route is CancelRoute::hook
  /// (before its done callbacks are scheduled).
  virtual void cancelled_hook() noexcept {}
  /// The task whose future this is, if it is a task's.
  virtual TaskCore* as_task() noexcept { return nullptr; }
  /// A task's future: the task ended and the state is set; leaves the
  /// registry, runs or schedules the done callbacks and drops the
  /// registry's reference (TaskShared). Other futures never get it.
  virtual void end_task() noexcept {}
  /// Destroys a value made by FutureShared::emplace_value that will not be
  /// the result after all (the state stays pending meanwhile).
  virtual void discard_value() noexcept {}

  /// Done callback i (number i + 1, in its DoneCallbackId's low half).
  DoneCallback& callback(std::uint32_t i) noexcept { return i == 0 ? first : (*more)[i - 1]; }

  Loop* loop;
  std::uint32_t refs = 1;
  FutureState state = FutureState::pending;
  bool exception_retrieved = false;
  /// Done callback 0 is an eddy-internal watcher (a gather's) that only
  /// records the outcome, and it is the only callback: a task that ends
  /// runs it at once instead of one loop iteration later (see
  /// run_task_done_callbacks). Adding a second callback clears it.
  bool first_is_watcher = false;
  /// What cancel() does besides or instead of cancelling (see CancelRoute).
  CancelRoute route = CancelRoute::future;
  std::uint32_t count = 0;      // done callbacks added
  std::uint32_t scheduled = 0;  // done callbacks already handed to call_soon
  /// Next to the counts: a gather watching many children touches only these
  /// first 64 bytes of each.
  DoneCallback first;
  /// The exception of a failed future, or the CancelledError (with its
  /// message) of a cancelled one.
  std::exception_ptr exception;
  SourceLocation created;
  std::unique_ptr<std::vector<DoneCallback>> more;  // callbacks 1.., allocated on demand

 protected:
  ~FutureCore() = default;  // destroy() is the way
};

/// Whether done `core` ended with a CancelledError: cancelled, or finished
/// with one as its exception (a gather whose cancel() its children
/// answered, as asyncio's _GatheringFuture ends). If so, that error counts
/// as retrieved: the caller, a wait that a cancellation interrupted, has
/// seen it (as asyncio's Task.__step and wait_for read the result).
bool take_cancellation(FutureCore& core) noexcept;
/// "Future (pending)" or "Task 'Task-3' (finished with an exception)", for reports.
std::string describe(const FutureCore& core);
/// A task's name (task.cpp).
std::string describe_task_name(const TaskCore& task);
/// Reports a failed future whose exception nobody retrieved to its loop's
/// exception handler (called when the last reference goes away).
void report_unretrieved_exception(FutureCore& core) noexcept;
/// Inside a catch: tells `core`'s loop's exception handler about the
/// exception being handled, with the future's description and creation
/// site. The message is `lead`, or, given a `tail`, lead + the description
/// + tail.
void report_future_error(FutureCore& core, const char* lead, const char* tail = nullptr) noexcept;
/// Reports an exception thrown by a done callback (call inside the catch).
void report_done_callback_error(FutureCore& core) noexcept;
/// Runs one done callback; an exception goes to the loop's exception handler.
inline void run_done_callback(FutureCore& core, DoneCallback& fn) noexcept {
  try {
    fn(core);
  } catch (...) {
    report_done_callback_error(core);
  }
}
/// Runs done callback 0 in place, in the state, and leaves it empty (one
/// indirect call: DoneCallback::call_once); an exception goes to the loop's
/// exception handler.
inline void run_first_done_callback(FutureCore& core) noexcept {
  if (!core.first) return;
  try {
    core.first.call_once(core);
  } catch (...) {
    report_done_callback_error(core);
  }
}

inline void add_ref(FutureCore* core) noexcept {
  ++core->refs;
}
/// release() of the last reference: reports an exception nobody retrieved,
/// then destroys the state.
void release_last(FutureCore* core) noexcept;
inline void release(FutureCore* core) noexcept {
  if (--core->refs == 0) [[unlikely]]
    release_last(core);  // out of line: every handle's destructor inlines release()
}

/// The call_soon entry that runs done callbacks [begin, end) of one future, in
/// order. Holds a reference to the future until it is run or destroyed (a
/// loop closed before running it destroys it: nothing leaks).
class CallbackRunner {
 public:
  CallbackRunner(FutureCore* core, std::uint32_t begin, std::uint32_t end) noexcept
      : core_(core), begin_(begin), end_(end) {
    add_ref(core_);
  }
  CallbackRunner(CallbackRunner&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)), begin_(other.begin_), end_(other.end_) {}
  CallbackRunner& operator=(CallbackRunner&&) = delete;
  ~CallbackRunner() {
    if (core_ != nullptr) release(core_);
  }
  FutureCore& core() const noexcept { return *core_; }
  std::uint32_t begin() const noexcept { return begin_; }
  std::uint32_t end() const noexcept { return end_; }

  void operator()() {
    for (std::uint32_t i = begin_; i != end_; ++i) {
      if (i == 0) {
        // The first callback lives in the state itself, which never moves:
        // run it in place.
        run_first_done_callback(*core_);
      } else {
        // Others live in a vector that a callback may grow: move out first.
        DoneCallback fn = std::move(core_->callback(i));
        if (fn) run_done_callback(*core_, fn);
      }
    }
  }

 private:
  FutureCore* core_;
  std::uint32_t begin_, end_;
};

/// Before a change that makes `core` done and cannot be undone: room in the
/// ready queue for the call_soon of schedule_done_callbacks, so that out of
/// memory leaves the future pending (std::bad_alloc), not done with its
/// callbacks never run. (Future::finish undoes its change instead.)
inline void prepare_done_callbacks(FutureCore& core) {
  if (core.scheduled != core.count) LoopExtensions::reserve_ready<CallbackRunner>(*core.loop);
}
/// Hands the done callbacks not yet scheduled to call_soon, as one entry.
/// Their order among themselves is registration order; asyncio schedules each
/// separately, which is observably the same since they are scheduled together,
/// except in debug mode, which times the entry as one callback. If call_soon
/// throws (out of memory, a closed loop), nothing changed.
inline void schedule_done_callbacks(FutureCore& core) {
  std::uint32_t begin = core.scheduled;
  while (begin != core.count && !core.callback(begin))
    ++begin;  // removed ones
  if (begin != core.count) core.loop->call_soon(CallbackRunner(&core, begin, core.count));
  core.scheduled = core.count;
}

[[noreturn]] void throw_owned_result_set(const char* method);

/// Cancels a future, or requests a task's cancellation: Future::cancel.
inline bool cancel_core(FutureCore& core, std::string message) {
  if (core.state != FutureState::pending) {
    // asyncio's Future.cancel and Task.cancel: whoever cancels a failed
    // future has seen it fail; its exception is no longer reported.
    core.exception_retrieved = true;
    return false;
  }
  if (core.route == CancelRoute::owner) [[unlikely]]
    return core.cancel_requested(std::move(message));
  prepare_done_callbacks(core);
  core.exception = std::make_exception_ptr(CancelledError(std::move(message)));
  core.state = FutureState::cancelled;
  if (core.route == CancelRoute::hook) [[unlikely]]
    core.cancelled_hook();
  schedule_done_callbacks(core);
  return true;
}

/// The high half of the DoneCallbackIds that Future::add_done_callback gives
/// out for `core`: 32 bits of its address (an id of one live future never
/// matches another's).
inline DoneCallbackId callback_id_tag(const FutureCore& core) noexcept {
  const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&core));
  return ((address >> 4) ^ (address >> 36)) << 32;
}

/// Adds a done callback taking the core (what Future::add_done_callback and
/// eddy's awaiters build on). Returns its number (from 1), which
/// remove_core_done_callback takes.
template <class F>
DoneCallbackId add_core_done_callback(FutureCore& core, F&& fn) {
  const bool was_watcher = core.first_is_watcher;
  if (core.count == 0) {
    core.first.assign(std::forward<F>(fn));  // built in place: no temporary
  } else {
    if (!core.more) core.more = std::make_unique<std::vector<DoneCallback>>();
    core.more->emplace_back(std::forward<F>(fn));
    core.first_is_watcher = false;  // the callbacks' order now shows
  }
  DoneCallbackId id = ++core.count;
  if (core.state != FutureState::pending) {
    try {
      schedule_done_callbacks(core);
    } catch (...) {
      // Not scheduled (out of memory, a closed loop): the callback is not
      // added either, as asyncio's add_done_callback of a done future only
      // schedules it.
      --core.count;
      if (id == 1) {
        core.first.reset();
      } else {
        core.more->pop_back();
      }
      core.first_is_watcher = was_watcher;
      throw;
    }
  }
  return id;
}

/// Removes done callback number `id` unless it was scheduled already (or
/// removed, or never added); returns how many were removed (0 or 1).
inline std::size_t remove_core_done_callback(FutureCore& core, DoneCallbackId id) noexcept {
  if (id == 0 || id > core.count || id - 1 < core.scheduled) return 0;  // unknown or scheduled
  DoneCallback& fn = core.callback(static_cast<std::uint32_t>(id - 1));
  if (!fn) return 0;  // removed already
  fn.reset();
  return 1;
}

/// Future::remove_done_callback: removes the callback that `id` (given by
/// Future::add_done_callback) names if `core` gave it; else returns 0.
inline std::size_t remove_done_callback_by_id(FutureCore& core, DoneCallbackId id) noexcept {
  constexpr DoneCallbackId kNumberBits = 0xffffffffu;  // the low half: the callback's number
  if ((id & ~kNumberBits) != callback_id_tag(core)) return 0;
  return remove_core_done_callback(core, id & kNumberBits);
}

/// Adds an eddy-internal watcher (see FutureCore::first_is_watcher): a done
/// callback that schedules nothing itself and runs no user code, so that it
/// may run inside the completion of a task instead of through call_soon. It
/// is an `F` built from `args`; as the first callback of a pending future
/// (the usual case) it is built in place, without a temporary.
template <class F, class... A>
DoneCallbackId add_core_watcher(FutureCore& core, A&&... args) {
  if (core.count == 0 && core.state == FutureState::pending) [[likely]] {
    core.first.template emplace<F>(std::forward<A>(args)...);
    core.first_is_watcher = true;
    return core.count = 1;
  }
  return add_core_done_callback(core, F(std::forward<A>(args)...));
}

/// schedule_done_callbacks for a task's future that ended, at the end of
/// its last step; out of memory there runs the callbacks at once instead.
void schedule_task_done_callbacks(FutureCore& core) noexcept;
/// A CancelledError carrying `message`, for a future that ends cancelled
/// where nothing may throw. Out of memory, one made at start-up, whose
/// message says so (never a null exception, which result() could not throw).
std::exception_ptr cancelled_error(const char* message) noexcept;
/// Ends pending `core`, whose outcome can no longer come (what it followed
/// was destroyed before it completed): cancelled with a CancelledError
/// carrying `message`, and its done callbacks scheduled, so that whoever
/// awaits it wakes up. On a closed loop nothing could run them: they stay.
/// Out of memory scheduling them is reported to the exception handler (the
/// callbacks stay unscheduled).
void end_orphaned(FutureCore& core, const char* message) noexcept;
/// Destroys the done callbacks of `core`, unrun: its loop is closing, and
/// nothing can run them any more. What waits through one (a gather, a
/// shield) learns that the future is gone, as when its state goes. A
/// callback's destructor may add more: those go too.
void drop_done_callbacks(FutureCore& core) noexcept;
/// A task's future is done: runs its done callbacks, or schedules them.
/// When a watcher is the only callback it runs at once (nothing can observe
/// its order against other callbacks); otherwise every callback goes through
/// call_soon, in registration order, as for any future. The caller holds a
/// reference to `core`. (A task's future is done only here, so none of its
/// callbacks was scheduled before.)
inline void run_task_done_callbacks(FutureCore& core) noexcept {
  if (core.first_is_watcher) [[likely]] {
    core.scheduled = 1;
    run_first_done_callback(core);
    return;
  }
  schedule_task_done_callbacks(core);
}

/// Whether a result is copied out of a future (else it is moved out):
/// std::is_copy_constructible, except that it looks into the standard
/// containers, container adaptors and value wrappers, whose copy
/// constructors are declared even for a move-only element (a vector of
/// unique_ptr: the range form of gather gives such vectors). It does not
/// look into a class of yours: a class holding such a container is copyable
/// for the compiler until it says otherwise (`S(const S&) = delete;
/// S(S&&) = default;`).
template <class T>
struct CopyableResult : std::is_copy_constructible<T> {};
/// True if every one of T... is (a container's elements, a tuple's members).
template <class... T>
struct AllCopyable : std::bool_constant<(CopyableResult<T>::value && ...)> {};
template <class T, class A>
struct CopyableResult<std::vector<T, A>> : AllCopyable<T> {};
template <class T, class A>
struct CopyableResult<std::deque<T, A>> : AllCopyable<T> {};
template <class T, class A>
struct CopyableResult<std::list<T, A>> : AllCopyable<T> {};
template <class T, class A>
struct CopyableResult<std::forward_list<T, A>> : AllCopyable<T> {};
template <class K, class V, class C, class A>
struct CopyableResult<std::map<K, V, C, A>> : AllCopyable<K, V> {};
template <class K, class V, class C, class A>
struct CopyableResult<std::multimap<K, V, C, A>> : AllCopyable<K, V> {};
template <class K, class C, class A>
struct CopyableResult<std::set<K, C, A>> : AllCopyable<K> {};
template <class K, class C, class A>
struct CopyableResult<std::multiset<K, C, A>> : AllCopyable<K> {};
template <class K, class V, class H, class E, class A>
struct CopyableResult<std::unordered_map<K, V, H, E, A>> : AllCopyable<K, V> {};
template <class K, class V, class H, class E, class A>
struct CopyableResult<std::unordered_multimap<K, V, H, E, A>> : AllCopyable<K, V> {};
template <class K, class H, class E, class A>
struct CopyableResult<std::unordered_set<K, H, E, A>> : AllCopyable<K> {};
template <class K, class H, class E, class A>
struct CopyableResult<std::unordered_multiset<K, H, E, A>> : AllCopyable<K> {};
template <class T, class C>
struct CopyableResult<std::queue<T, C>> : AllCopyable<C> {};
template <class T, class C>
struct CopyableResult<std::stack<T, C>> : AllCopyable<C> {};
template <class T, class C, class L>
struct CopyableResult<std::priority_queue<T, C, L>> : AllCopyable<C> {};
template <class A, class B>
struct CopyableResult<std::pair<A, B>> : AllCopyable<A, B> {};
template <class... T>
struct CopyableResult<std::tuple<T...>> : AllCopyable<T...> {};
template <class T>
struct CopyableResult<std::optional<T>> : AllCopyable<T> {};
template <class... T>
struct CopyableResult<std::variant<T...>> : AllCopyable<T...> {};
template <class T, std::size_t N>
struct CopyableResult<std::array<T, N>> : AllCopyable<T> {};
template <class T>
inline constexpr bool kCopyableResult = CopyableResult<T>::value;

/// A future's state with room for its value. The value exists exactly while
/// the future is finished without an exception (has_value()): the state
/// itself says so, where a std::optional would spend a flag and, for a value
/// of 8 bytes, 8 bytes of padding.
template <class T>
struct FutureShared : FutureCore {
  static_assert(
      alignof(T) <= kBlockGranule,
      "eddy: a Future or Task result aligned to more than 16 bytes is not supported "
      "(future and task states are 16-byte aligned blocks); wrap it in a std::unique_ptr");
  FutureShared(Loop& l, SourceLocation where) noexcept : FutureCore(l, where) {}
  /// A plain future's state (make_future) is this class itself; the others
  /// derive from it and override destroy().
  void destroy() noexcept override {
    this->FutureShared::~FutureShared();
    BlockCache<sizeof(FutureShared)>::deallocate(this);
  }
  void discard_value() noexcept override {
    if constexpr (!std::is_trivially_destructible_v<T>) value_.~T();
  }

 protected:
  ~FutureShared() {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      if (has_value()) value_.~T();
    }
  }

 public:
  bool has_value() const noexcept { return state == FutureState::finished && !exception; }
  /// Makes the value; the caller then marks the state finished (if this
  /// throws, nothing was made and the future is still pending).
  template <class... A>
  void emplace_value(A&&... args) {
    ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<A>(args)...);
  }
  /// The value (has_value()).
  T& value() noexcept { return value_; }

 private:
  union {
    T value_;
  };
};
template <>
struct FutureShared<void> : FutureCore {
  using FutureCore::FutureCore;
  void destroy() noexcept override {
    this->FutureShared::~FutureShared();
    BlockCache<sizeof(FutureShared)>::deallocate(this);
  }

 protected:
  ~FutureShared() = default;
};

struct FutureAccess;  // below Future

[[noreturn]] void throw_future_pending(const char* method);
[[noreturn]] void throw_future_empty(const char* method);
[[noreturn]] void throw_future_done(const char* method, FutureState state);

}  // namespace detail

/// A result that arrives later, bound to one loop. Mirrors: asyncio.Future.
///
/// A Future is a shared handle (copies refer to the same state; one heap
/// allocation per future, non-atomic reference count). Move-only result types
/// work: result() returns a reference you may move from.
///
/// Rules (asyncio's):
/// - result() / exception() on a pending future throw InvalidStateError; on a
///   cancelled one they throw CancelledError carrying the cancel message;
///   result() on a failed future rethrows the stored exception (the same
///   object each time).
/// - set_result / set_exception on a done future throw InvalidStateError.
/// - cancel(msg) returns true only if it changed the state.
/// - set_result, set_exception and cancel from a thread other than the one
///   running the loop throw WrongThreadError and change nothing (from
///   another thread, complete it through call_soon_threadsafe).
/// - Done callbacks are scheduled with call_soon, in registration order,
///   never run inline by set_result / set_exception / cancel; one added to a
///   done future is scheduled at once. A callback that throws goes to the
///   loop's exception handler.
/// - A failed future whose exception was never retrieved (by result(),
///   exception(), or a done callback that calls them) is reported to the
///   loop's exception handler when its last reference goes away, with the
///   site where it was created.
///
/// Thread safety: none, like asyncio's; use it on its loop's thread (see
/// ConcurrentFuture for cross-thread results). A Future must not outlive its Loop.
template <class T>
class Future {
  static_assert(!std::is_reference_v<T>,
                "eddy::Future<T&> is not supported: use a pointer or std::reference_wrapper");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>,
                "eddy::Future<const T> is not supported: use Future<T>");
  using Shared = detail::FutureShared<T>;

 public:
  using value_type = T;

  /// An empty handle; every method but valid() needs a future from
  /// Loop::create_future.
  Future() noexcept = default;
  Future(const Future& other) noexcept : shared_(other.shared_) {
    if (shared_ != nullptr) detail::add_ref(shared_);
  }
  Future(Future&& other) noexcept : shared_(std::exchange(other.shared_, nullptr)) {}
  Future& operator=(Future other) noexcept {
    std::swap(shared_, other.shared_);
    return *this;
  }
  ~Future() {
    if (shared_ != nullptr) detail::release(shared_);
  }

  /// True if this handle refers to a future.
  bool valid() const noexcept { return shared_ != nullptr; }
  /// The methods below throw InvalidStateError on an empty handle
  /// (default-constructed or moved-from).
  FutureState state() const { return core("state").state; }
  bool done() const { return core("done").state != FutureState::pending; }
  bool cancelled() const { return core("cancelled").state == FutureState::cancelled; }
  Loop& get_loop() const { return *core("get_loop").loop; }

  /// The result. Throws as described above. (A Future is a handle, as a
  /// shared_ptr is: a const one still reaches the shared result.)
  std::add_lvalue_reference_t<T> result() const {
    check_result_ready("result");
    if (shared_->exception) {
      shared_->exception_retrieved = true;
      std::rethrow_exception(shared_->exception);
    }
    if constexpr (!std::is_void_v<T>) return shared_->value();
  }

  /// The stored exception, or null if the future has a result.
  std::exception_ptr exception() const {
    check_result_ready("exception");
    shared_->exception_retrieved = true;
    return shared_->exception;
  }

  /// Marks the future finished with `value` and schedules its done callbacks.
  template <class U = T>
  requires(!std::is_void_v<U>) void set_result(U value) {
    check_pending("set_result");
    detail::LoopExtensions::check_thread(*shared_->loop, "eddy::Future::set_result");
    shared_->emplace_value(std::move(value));
    try {
      finish();
    } catch (const std::bad_alloc&) {
      shared_->discard_value();  // still pending: the value goes
      throw;
    }
  }
  void set_result() requires std::is_void_v<T> {
    check_pending("set_result");
    detail::LoopExtensions::check_thread(*shared_->loop, "eddy::Future::set_result");
    finish();
  }

  /// Marks the future failed with `error` (not null) and schedules its done callbacks.
  void set_exception(std::exception_ptr error) {
    check_pending("set_exception");
    detail::LoopExtensions::check_thread(*shared_->loop, "eddy::Future::set_exception");
    if (!error) throw std::invalid_argument("eddy::Future::set_exception: the exception is null");
    shared_->exception = std::move(error);
    try {
      finish();
    } catch (const std::bad_alloc&) {
      shared_->exception = nullptr;  // still pending
      throw;
    }
  }
  /// Same, from an exception object: `f.set_exception(std::runtime_error("x"))`.
  /// (`nullptr` is not an exception object: it goes to the overload above.)
  template <class E>
  requires(std::is_base_of_v<std::exception, std::decay_t<E>> ||
           std::is_same_v<std::decay_t<E>, CancelledError>) void set_exception(E&& error) {
    set_exception(std::make_exception_ptr(std::forward<E>(error)));
  }

  /// Cancels the future and schedules its done callbacks. Returns false (and
  /// does nothing) if it was already done.
  ///
  /// The future of a task (Loop::create_task) is not cancelled at once: the
  /// task is asked to cancel (see <eddy/task.hpp>), and true is returned if
  /// it was not done.
  bool cancel(std::string message = {}) {
    detail::FutureCore& state = core("cancel");
    detail::LoopExtensions::check_thread(*state.loop, "eddy::Future::cancel");
    return detail::cancel_core(state, std::move(message));
  }

  /// Adds `fn`, called as `fn(future)` or `fn()` once the future is done (on
  /// the loop, through call_soon). Returns an id for remove_done_callback.
  /// Never allocates for a callable of up to three pointers of captures when
  /// it is the future's first callback.
  template <class F>
  DoneCallbackId add_done_callback(F&& fn) {
    static_assert(
        std::is_invocable_v<std::decay_t<F>&, Future&> || std::is_invocable_v<std::decay_t<F>&>,
        "a done callback takes (Future<T>&) or nothing");
    detail::check_callable(fn, "eddy::Future::add_done_callback");
    auto wrapped = [fn = std::forward<F>(fn)](detail::FutureCore& core) mutable {
      if constexpr (std::is_invocable_v<std::decay_t<F>&, Future&>) {
        // The callback gets a handle that borrows the runner's reference (no
        // count round trip). If the callback moved or reassigned it, that
        // reference went with it: take another one for the runner.
        Shared* shared = static_cast<Shared*>(&core);
        Future self(shared, Adopt{});
        struct GiveBack {
          Future& self;
          Shared* shared;
          ~GiveBack() {
            if (self.shared_ == shared) {
              self.shared_ = nullptr;
            } else {
              detail::add_ref(shared);
            }
          }
        } give_back{self, shared};
        std::invoke(fn, self);
      } else {
        std::invoke(fn);
      }
    };
    detail::FutureCore& core = this->core("add_done_callback");
    return detail::callback_id_tag(core) | detail::add_core_done_callback(core, std::move(wrapped));
  }

  /// Removes a done callback that has not been scheduled yet. Returns how many
  /// were removed (0 or 1); a removed callback never runs. An id that this
  /// future did not give (another future's, say) removes nothing: 0, as
  /// asyncio's remove_done_callback of a function it does not hold.
  std::size_t remove_done_callback(DoneCallbackId id) {
    return detail::remove_done_callback_by_id(this->core("remove_done_callback"), id);
  }

  /// Where the future was created (Loop::create_future's caller).
  SourceLocation created_at() const { return core("created_at").created; }

 private:
  friend class Loop;
  friend struct detail::FutureAccess;
  // Takes over a reference to `shared` that the caller already holds.
  struct Adopt {};
  Future(Shared* shared, Adopt) noexcept : shared_(shared) {}

  detail::FutureCore& core(const char* method) const {
    if (shared_ == nullptr) [[unlikely]]
      detail::throw_future_empty(method);
    return *shared_;
  }
  void check_pending(const char* method) const {
    if (core(method).state != FutureState::pending)
      detail::throw_future_done(method, shared_->state);
    if (shared_->route == detail::CancelRoute::owner) [[unlikely]]
      detail::throw_owned_result_set(method);
  }
  void check_result_ready(const char* method) const {
    if (core(method).state == FutureState::pending) detail::throw_future_pending(method);
    if (shared_->state == FutureState::cancelled) std::rethrow_exception(shared_->exception);
  }
  /// Marks the future finished and schedules its done callbacks; if that
  /// fails (out of memory), the future is pending again and this throws.
  /// (Undone after the fact rather than room made first: no cost when it
  /// does not fail.)
  void finish() {
    shared_->state = FutureState::finished;
    try {
      detail::schedule_done_callbacks(*shared_);
    } catch (const std::bad_alloc&) {
      shared_->state = FutureState::pending;
      throw;
    }  // (a closed loop's LoopClosedError leaves it done, as asyncio does)
  }

  Shared* shared_ = nullptr;

  template <class U>
  friend Future<U> make_future(Loop&, SourceLocation);
  friend struct detail::FutureAccess;
};

namespace detail {
/// For eddy's own building blocks (tasks, combinators, executors): a Future
/// handle from a shared state, and back.
struct FutureAccess {
  /// Takes over a reference the caller holds.
  template <class T>
  static Future<T> adopt(FutureShared<T>* shared) noexcept {
    return Future<T>(shared, typename Future<T>::Adopt{});
  }
  template <class T>
  static FutureShared<T>* shared(const Future<T>& future) noexcept {
    return future.shared_;
  }
  template <class T>
  static FutureCore& core(Future<T>& future) noexcept {
    return *future.shared_;
  }
  /// Empties the handle and returns its pointer, with the reference it held
  /// (or without one, for a handle whose reference its owner let go: a
  /// VectorGather's table of children).
  template <class T>
  static FutureShared<T>* detach(Future<T>& future) noexcept {
    return std::exchange(future.shared_, nullptr);
  }
};
}  // namespace detail

/// A new pending future bound to `loop`. Same as loop.create_future<T>().
template <class T = void>
Future<T> make_future(Loop& loop, SourceLocation where = SourceLocation::current()) {
  using Shared = detail::FutureShared<T>;
  void* block = detail::BlockCache<sizeof(Shared)>::allocate();
  return Future<T>(::new (block) Shared(loop, where), typename Future<T>::Adopt{});
}

namespace detail {
/// What the combinators (gather, wait, wait_for, shield, ...) check first.
template <class T>
void check_not_empty(const Future<T>& future) {
  if (!future.valid()) throw InvalidStateError("eddy: a combinator was given an empty Future");
}

/// The result of a done future as a value: a copy, or moved out of the
/// state when T cannot be copied; its exception rethrown.
template <class T>
T take_result(Future<T>& future) {
  if constexpr (std::is_void_v<T>) {
    future.result();
  } else if constexpr (kCopyableResult<T>) {
    return future.result();
  } else {
    return std::move(future.result());
  }
}

/// Completes pending `target` with the outcome of done `source` (each a
/// Future or a ConcurrentFuture of the same T): cancelled, its exception, or
/// its value (a copy, or moved out when T cannot be copied). If taking the
/// value throws (a copy constructor that throws), `target` fails with that
/// exception instead of staying pending.
template <class T, template <class> class Source, template <class> class Target>
void follow_outcome(Source<T>& source, Target<T>& target) {
  if (source.cancelled()) {
    target.cancel();
  } else if (std::exception_ptr error = source.exception()) {
    target.set_exception(error);
  } else if constexpr (std::is_void_v<T>) {
    target.set_result();
  } else {
    try {
      if constexpr (kCopyableResult<T>) {
        target.set_result(source.result());
      } else {
        target.set_result(std::move(source.result()));
      }
    } catch (...) {
      if (target.done()) throw;
      target.set_exception(std::current_exception());
    }
  }
}
}  // namespace detail

template <class T>
auto Loop::create_future(SourceLocation where) {
  check_thread("create_future");
  return make_future<T>(*this, where);
}

template <class T>
T Loop::run_until_complete(Future<T> future) {
  // asyncio checks these first, even for a future that is already done.
  check_can_run("run_until_complete");
  if (&future.get_loop() != this) {
    throw std::invalid_argument(
        "eddy::Loop::run_until_complete: the future belongs to another loop");
  }
  // Even a done future runs the loop for one iteration (its callback is
  // scheduled at once), as asyncio's does: what is queued runs, and a
  // stop() made before is consumed.
  DoneCallbackId id = future.add_done_callback([this] { stop(); });
  try {
    run_forever();
  } catch (...) {
    future.remove_done_callback(id);
    throw;
  }
  future.remove_done_callback(id);
  if (!future.done()) {
    throw RuntimeError(
        "eddy::Loop::run_until_complete: the loop stopped before the future completed");
  }
  return detail::take_result(future);
}

}  // namespace eddy
