// gather / gather_settled: one future for many. Mirrors: asyncio.gather.
#pragma once

#include <cstddef>
#include <exception>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/loop.hpp"
#include "eddy/task.hpp"

namespace eddy {

/// A child's result in gather_settled: its value, or its exception (a
/// CancelledError for a cancelled child). Mirrors one item of
/// asyncio.gather(..., return_exceptions=True).
template <class T>
class Outcome {
 public:
  static Outcome of_value(T value) {
    Outcome o;
    o.value_.emplace(std::move(value));
    return o;
  }
  static Outcome of_error(std::exception_ptr error, bool cancelled) {
    Outcome o;
    o.error_ = std::move(error);
    o.cancelled_ = cancelled;
    return o;
  }

  bool has_value() const noexcept { return value_.has_value(); }
  /// True if the child was cancelled (error() is then a CancelledError).
  bool cancelled() const noexcept { return cancelled_; }
  /// The value; rethrows the error if there is none.
  T& value() {
    if (!value_) std::rethrow_exception(error_);
    return *value_;
  }
  const T& value() const {
    if (!value_) std::rethrow_exception(error_);
    return *value_;
  }
  /// The error; null if there is a value.
  const std::exception_ptr& error() const noexcept { return error_; }

 private:
  Outcome() = default;
  std::optional<T> value_;
  std::exception_ptr error_;
  bool cancelled_ = false;
};

namespace detail {
template <class T>
struct CopyableResult<Outcome<T>> : AllCopyable<T> {};
}  // namespace detail

namespace detail {

/// A void result stands as std::monostate in gather's tuples and vectors.
template <class T>
using GatherSlot = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class A>
struct FutureOf;
template <class T>
struct FutureOf<Future<T>> {
  using type = T;
};
template <class T>
struct FutureOf<Task<T>> {
  using type = T;
};
/// Future<T> or Task<T>: what the combinators accept.
template <class A>
concept GatherArg = requires {
  typename FutureOf<std::decay_t<A>>::type;
};
template <class A>
using ResultOf = typename FutureOf<std::decay_t<A>>::type;

/// The loop of `futures` (not empty, none empty), which must all share it:
/// std::invalid_argument naming `who` otherwise (asyncio: ValueError).
template <class T>
Loop& common_loop(const std::vector<Future<T>>& futures, const char* who) {
  Loop& loop = futures.front().get_loop();
  for (const Future<T>& f : futures) {
    if (&f.get_loop() != &loop) {
      throw std::invalid_argument(std::string(who) + ": the futures belong to different loops");
    }
  }
  return loop;
}
/// The delay for a combinator's deadline timer: none for +infinity (asyncio's
/// call_later(inf) never fires), and 0 for a past one, -infinity too
/// (call_later takes only finite delays). NaN passes, for call_later to refuse.
inline std::optional<double> deadline_delay(std::optional<double> timeout) noexcept {
  if (!timeout || *timeout == std::numeric_limits<double>::infinity()) return std::nullopt;
  return *timeout < 0 ? 0.0 : *timeout;
}

/// asyncio.ensure_future: a future stays itself, a task is scheduled on the
/// running loop (create_task), its reports saying `by` made it (a
/// combinator's name: eddy's own headers are no place to point at).
template <class T>
Future<T> ensure_future(Future<T> future, const char* /*by*/) {
  check_not_empty(future);
  return future;
}
template <class T>
Future<T> ensure_future(Task<T> task, const char* by) {
  return get_running_loop().create_task(std::move(task), SourceLocation::made_by(by));
}

/// Cancels `task`, a task that a combinator made of a coroutine argument
/// (ensure_future) and that has not had its first step: its body never
/// runs. For a combinator that could not be set up (out of memory), so that
/// the call changes nothing. A cancel that fails in turn leaves it to run.
inline void cancel_made(FutureCore& task) noexcept {
  try {
    cancel_core(task, {});
  } catch (...) {
  }
}
template <class T>
void cancel_made(std::vector<Future<T>>& tasks) noexcept {
  for (Future<T>& task : tasks) {
    if (task.valid()) cancel_made(FutureAccess::core(task));
  }
}

/// Whether ensure_future makes a task of an argument of type A (a Task).
template <class A>
struct MakesTask : std::false_type {};
template <class T>
struct MakesTask<Task<T>> : std::true_type {};

/// The N tasks that gather made of its coroutine arguments, held while the
/// gather is set up: if that runs out of memory, cancel_all() cancels them
/// (cancel_made). Any other failure (a bad argument) leaves them to run, as
/// asyncio's gather leaves the tasks it made before it raised.
template <std::size_t N>
class MadeTasks {
 public:
  MadeTasks() = default;
  MadeTasks(const MadeTasks&) = delete;
  MadeTasks& operator=(const MadeTasks&) = delete;
  ~MadeTasks() {
    for (std::size_t i = 0; i < count_; ++i)
      detail::release(tasks_[i]);
  }
  /// Passes on `future`, ensure_future's of argument type A, noting it if
  /// ensure_future made it.
  template <class A, class T>
  Future<T> note(Future<T> future) noexcept {
    if constexpr (MakesTask<std::decay_t<A>>::value) {
      FutureCore* task = FutureAccess::shared(future);
      add_ref(task);
      tasks_[count_++] = task;
    }
    return future;
  }
  void cancel_all() noexcept {
    for (std::size_t i = 0; i < count_; ++i)
      cancel_made(*tasks_[i]);
  }

 private:
  FutureCore* tasks_[N];  // [0, count_) hold a reference
  std::size_t count_ = 0;
};
/// A gather of futures only: nothing to note.
template <>
class MadeTasks<0> {
 public:
  template <class A, class T>
  Future<T> note(Future<T> future) noexcept {
    return future;
  }
  void cancel_all() noexcept {}
};

/// Completes a future whose owner sets it (no owner check, no rethrow).
template <class T, class V>
void complete_owned(Future<T>& future, V&& value) {
  FutureShared<T>& core = *FutureAccess::shared(future);
  prepare_done_callbacks(core);
  if constexpr (!std::is_void_v<T>) core.emplace_value(std::forward<V>(value));
  core.route = CancelRoute::future;
  core.state = FutureState::finished;
  schedule_done_callbacks(core);
}
/// Fails a future whose owner sets it: finished, with `error` (also a
/// CancelledError: a gather's future is never cancelled itself).
inline void fail_owned(FutureCore& core, std::exception_ptr error) {
  prepare_done_callbacks(core);
  core.exception = std::move(error);
  core.route = CancelRoute::future;
  core.state = FutureState::finished;
  schedule_done_callbacks(core);
}

/// A handle to a child (its result type is T) that takes over a reference
/// the caller holds.
template <class T>
Future<T> adopt_child(FutureCore* child) {
  return FutureAccess::adopt(static_cast<FutureShared<T>*>(child));
}

/// The value of `child`, done without an exception, read in place (as
/// take_result would give it: a copy, or moved out when T cannot be copied).
/// For a done callback: no checks, no reference taken.
template <class T>
GatherSlot<T> value_of(FutureCore& child) {
  if constexpr (std::is_void_v<T>) {
    return std::monostate{};
  } else if constexpr (kCopyableResult<T>) {
    return static_cast<FutureShared<T>&>(child).value();
  } else {
    return std::move(static_cast<FutureShared<T>&>(child).value());
  }
}

/// The slot of a child done without an exception; takes over the caller's
/// reference to it.
template <class T>
GatherSlot<T> slot_of(FutureCore* core) {
  Future<T> child = adopt_child<T>(core);  // released on return
  return value_of<T>(*core);
}

/// The outcome of a done child; takes over the caller's reference to it.
template <class T>
Outcome<GatherSlot<T>> outcome_of(FutureCore* core) {
  if (core->state == FutureState::cancelled || core->exception) {
    Future<T> child = adopt_child<T>(core);
    core->exception_retrieved = true;
    return Outcome<GatherSlot<T>>::of_error(core->exception, core->state == FutureState::cancelled);
  }
  return Outcome<GatherSlot<T>>::of_value(slot_of<T>(core));
}

/// The state of one gather, shared by the children's done callbacks (an
/// intrusive, non-atomic count: everything runs on the loop's thread).
///
/// Rules (asyncio's _GatheringFuture): the first child that fails (default
/// form) or is cancelled on its own decides the outer future at once; the
/// others keep running and their exceptions count as retrieved (as do all
/// of them in the settled form). Otherwise the outer future gets every
/// result, in argument order, when the last child is done. cancel() on the
/// outer future cancels every child that is not done; the outer future then
/// ends with a CancelledError. In both cases, as in asyncio, that
/// CancelledError is the outer future's exception: it is finished, not
/// cancelled() (asyncio: "the outer Future is *not* cancelled").
///
/// Ownership: the children's done callbacks hold the state; the state holds
/// a child only once it is done (for collect()), so a child that never
/// completes makes no cycle. Such a child that goes away (the loop closed,
/// or nobody could complete it any more) destroys its callback unrun, and
/// the state forgets it; when every callback is gone, the outer future ends
/// cancelled if it is still pending.
template <class R>
class GatherState;

/// A gather's outer future: cancel() on it goes to the gather, which cancels
/// the children. Owned while the gather decides its outcome.
template <class R>
struct GatherFuture final : FutureShared<R> {
  GatherFuture(Loop& on, GatherState<R>& owner) noexcept
      : FutureShared<R>(on, SourceLocation::made_by("eddy::gather")), gather(&owner) {
    this->route = CancelRoute::owner;
  }
  void destroy() noexcept override {
    this->~GatherFuture();
    BlockCache<sizeof(GatherFuture)>::deallocate(this);
  }
  bool cancel_requested(std::string message) override {
    return gather->cancel_requested(std::move(message));
  }

  GatherState<R>* gather;  // valid while the route is CancelRoute::owner

 private:
  ~GatherFuture() = default;
};

template <class R>
class GatherState {
 public:
  GatherState(Loop& loop, std::size_t children, bool settled)
      : outer(make_outer(loop, *this)), count_(children), settled_(settled) {}
  GatherState(const GatherState&) = delete;
  GatherState& operator=(const GatherState&) = delete;
  virtual ~GatherState() {
    FutureCore& core = *FutureAccess::shared(outer);
    if (core.state == FutureState::pending) {
      // A child that went away pending ended an open gather at once (see
      // child_gone); this is the gather abandoned as it started, whose
      // future nobody was given. Ended all the same: no future is destroyed
      // pending with callbacks that would never run.
      end_orphaned(core, kChildGone);
    }
  }

  /// cancel() on the outer future, which is pending.
  bool cancel_requested(std::string message) {
    // Cancelling a child may finish it, but its done callbacks never run
    // inside cancel() (a watcher runs early only at the end of a task's
    // step), so nothing changes under this loop.
    bool any = false;
    for (std::size_t i = 0; i < count_; ++i) {
      FutureCore* child = this->child(i);
      if (child != nullptr && cancel_core(*child, message)) any = true;
    }
    if (any && !cancel_requested_) {
      cancel_requested_ = true;
      cancel_message_ = std::move(message);
    }
    return any;
  }

  /// Child `index` is done (its done callback runs). `S` is the final state
  /// class, through which the calls below are direct. A child that finished
  /// with a value while the gather is still deciding takes the short way,
  /// inline in its watcher; everything else goes out of line.
  template <class S>
  void child_done(std::size_t index, FutureCore& child) {
    if (child.state == FutureState::finished && !child.exception && open_) [[likely]] {
      ++finished_;
      try {
        static_cast<S&>(*this).store(index, child);
      } catch (...) {
        return store_failed<S>(index);
      }
      if (finished_ == count_) [[unlikely]]
        last_child_done<S>();
      return;
    }
    child_done_otherwise<S>(index, child);
  }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) [[unlikely]]
      destroy();
  }

  Future<R> outer;

 protected:
  /// Child `index` is done and its outcome counts: the derived state keeps
  /// it for collect(), or takes its outcome now (then forgets it).
  virtual void store(std::size_t index, FutureCore& child) = 0;
  /// Child `index`, or null once forgotten (done and taken, or gone).
  virtual FutureCore* child(std::size_t index) const noexcept = 0;
  /// Child `index` is done (its outcome taken or not counted) or went away:
  /// the state no longer looks at it.
  virtual void forget(std::size_t index) noexcept = 0;
  /// Adds the done callback of `child`, child number i; `self` is the final
  /// state (this).
  template <class S>
  void watch(S* self, std::size_t i, FutureCore& child) {
    add_ref();
    add_core_watcher<Watch<S>>(child, self, i);
  }
  /// The gather failed to start (a child of another loop) after some
  /// children got their callbacks: those stay, and do nothing but mark the
  /// children's exceptions retrieved (as asyncio's gather leaves them).
  void abandon() noexcept { open_ = false; }
  /// The outer result, once every child is done and stored.
  virtual R collect() = 0;

 private:
  /// child_done for a child that failed or was cancelled, or one done after
  /// the gather was decided or abandoned.
  template <class S>
  [[gnu::noinline]] void child_done_otherwise(std::size_t index, FutureCore& child) {
    S& self = static_cast<S&>(*this);
    ++finished_;
    if (settled_ && child.state == FutureState::finished) child.exception_retrieved = true;
    FutureCore& out = *FutureAccess::shared(outer);
    if (!open_) {  // decided (the outer future is done) or abandoned
      if (child.state == FutureState::finished) child.exception_retrieved = true;
      self.forget(index);
      return;
    }
    if (!settled_) {
      if (child.state == FutureState::cancelled) {
        // Its CancelledError becomes the outer future's exception: the
        // gather is not cancelled itself (asyncio's rule).
        self.forget(index);
        open_ = false;
        fail_owned(out, child.exception);
        return;
      }
      if (child.exception) {
        child.exception_retrieved = true;
        self.forget(index);
        open_ = false;
        fail_owned(out, child.exception);
        return;
      }
    }
    try {
      self.store(index, child);
    } catch (...) {
      return store_failed<S>(index);
    }
    if (finished_ == count_) last_child_done<S>();
  }
  /// Taking child `index`'s outcome threw (a copy constructor that throws;
  /// called inside the catch): the gather fails with that exception, as it
  /// would for a child that failed, rather than hand on an empty slot.
  template <class S>
  [[gnu::noinline]] void store_failed(std::size_t index) {
    static_cast<S&>(*this).forget(index);
    open_ = false;
    fail_owned(*FutureAccess::shared(outer), std::current_exception());
  }
  /// Every child is done and stored: the outer future gets its outcome.
  template <class S>
  [[gnu::noinline]] void last_child_done() {
    open_ = false;
    if (cancel_requested_) {
      // Every child answered the cancel (some maybe with a result): the
      // outer future ends with a CancelledError, as its exception.
      fail_owned(*FutureAccess::shared(outer),
                 std::make_exception_ptr(CancelledError(std::move(cancel_message_))));
    } else {
      try {
        complete_owned(outer, static_cast<S&>(*this).collect());
      } catch (...) {
        // Collecting threw (copying a value out of a child, in the tuple
        // form): the gather fails with that exception.
        FutureCore& out = *FutureAccess::shared(outer);
        if (out.state != FutureState::pending) throw;
        fail_owned(out, std::current_exception());
      }
    }
  }

  /// A child went away pending (its callback was destroyed unrun): it can
  /// never complete, so neither can the gather, which ends cancelled at once
  /// if it is still open (whatever the other children do).
  [[gnu::noinline]] void child_gone() noexcept {
    if (!open_) return;
    open_ = false;
    end_orphaned(*FutureAccess::shared(outer), kChildGone);
  }
  static constexpr const char* kChildGone =
      "eddy::gather: a child was destroyed before it completed (its loop closed, or nothing else "
      "held it)";

  /// Out of line, so that a child's callback that lets go of a reference
  /// does not carry the whole state's destruction.
  [[gnu::noinline]] void destroy() noexcept { delete this; }

  template <class S>
  class Watch {  // a child's done callback; holds a reference to the state
   public:
    Watch(S* state, std::size_t index) noexcept : state_(state), index_(index) {}
    Watch(Watch&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)), index_(other.index_) {}
    Watch& operator=(Watch&&) = delete;
    ~Watch() {
      if (state_ != nullptr) {
        if (index_ != kRan) {
          // Destroyed unrun: the child goes away pending, and is forgotten.
          state_->forget(index_);
          state_->child_gone();
        }
        state_->release();
      }
    }
    void operator()(FutureCore& child) const {
      state_->template child_done<S>(index_, child);
      index_ = kRan;  // child_done forgot the child, or keeps it (TupleGather)
    }

   private:
    static constexpr std::size_t kRan = ~std::size_t{0};
    S* state_;
    mutable std::size_t index_;  // kRan once run
  };

  static Future<R> make_outer(Loop& loop, GatherState& state) {
    void* block = BlockCache<sizeof(GatherFuture<R>)>::allocate();
    return FutureAccess::adopt<R>(::new (block) GatherFuture<R>(loop, state));
  }

  const std::size_t count_;  // of children
  std::size_t refs_ = 0;
  std::size_t finished_ = 0;
  bool settled_;
  bool cancel_requested_ = false;
  std::string cancel_message_;  // of the first cancel() that reached a child
  /// Neither abandoned nor decided (the gather has not completed the outer
  /// future, which only it completes, and clears this first).
  bool open_ = true;
};

/// gather over a range: Future<std::vector<Slot or Outcome>>.
template <class T, bool Settled>
class VectorGather final
    : public GatherState<
          std::vector<std::conditional_t<Settled, Outcome<GatherSlot<T>>, GatherSlot<T>>>> {
 public:
  using Item = std::conditional_t<Settled, Outcome<GatherSlot<T>>, GatherSlot<T>>;
  friend GatherState<std::vector<Item>>;  // calls the overrides directly
  /// Takes over the caller's vector of children: its handles become the
  /// state's table of children (see children_). Last, once nothing else
  /// can throw: a constructor that throws (out of memory) leaves the vector
  /// to the caller.
  VectorGather(Loop& loop, std::vector<Future<T>>& children)
      : GatherState<std::vector<Item>>(loop, children.size(), Settled),
        items_(children.size()),
        children_(std::move(children)) {}
  ~VectorGather() override {
    // Each child was forgotten by now (its callback, run or destroyed unrun,
    // held the state); the handles are emptied all the same, as they hold
    // no reference (a pass that compiles to one memset).
    for (std::size_t i = 0; i < unowned_; ++i)
      FutureAccess::detach(children_[i]);
  }

  // watch_children asks for the state of the child this many places ahead,
  // so that its cache misses overlap instead of coming one after another.
  static constexpr std::size_t kAhead = 16;
  /// Checks, watches and lets go of each child in one pass: with many
  /// children, their states are out of cache, and each pass over them costs
  /// a cache miss per child. A child of another loop stops the pass and
  /// throws std::invalid_argument; the children before it keep callbacks
  /// that do nothing (asyncio's gather does the same).
  void watch_children(Loop& loop) {
    // Locals: the stores into each child would otherwise make the compiler
    // read the vector's pointers again every time.
    Future<T>* const children = children_.data();
    const std::size_t n = children_.size();
    std::size_t i = 0;
    try {
      for (; i < n; ++i) {
        if (i + kAhead < n) {
          const auto* later =
              reinterpret_cast<const char*>(FutureAccess::shared(children[i + kAhead]));
          // Watching reads and writes the state's first 64 bytes only: the
          // line of its first and of its last byte (one line when aligned).
          __builtin_prefetch(later, 1);
          __builtin_prefetch(later + 63, 1);
        }
        FutureCore* child = FutureAccess::shared(children[i]);
        if (child->loop != &loop) [[unlikely]]
          throw std::invalid_argument("eddy::gather: the futures belong to different loops");
        this->watch(this, i, *child);
        // Lets go of the handle's reference now, while the state is in
        // cache; the handle keeps the pointer. Releasing it may end a child
        // nobody else holds, whose callback then forgets it (so the handle
        // counts as unowned first).
        unowned_ = i + 1;
        detail::release(child);
      }
    } catch (...) {
      this->abandon();
      // The state lives on while the children before this one have its
      // callbacks: it must hold none of the rest (one may be an earlier
      // child given again, which would then hold the state in a cycle).
      for (std::size_t j = i; j < children_.size(); ++j)
        children_[j] = Future<T>();
      throw;
    }
  }

 private:
  FutureCore* child(std::size_t index) const noexcept override {
    return FutureAccess::shared(children_[index]);
  }
  void forget(std::size_t index) noexcept override {
    // (A handle past unowned_ is still a reference: a callback that failed
    // to be added is destroyed as the pass throws, which then empties it.)
    if (index < unowned_) FutureAccess::detach(children_[index]);
  }
  // A child's outcome is taken as soon as it is done, so that its state can
  // go at once rather than live until the last child is done.
  void store(std::size_t index, FutureCore& child) override {
    if constexpr (Settled) {
      detail::add_ref(&child);  // taken over by outcome_of
      items_[index].emplace(outcome_of<T>(&child));
    } else if constexpr (kInPlace) {
      items_[index] = value_of<T>(child);  // child_done passed no failure here
    } else {
      items_[index].emplace(value_of<T>(child));
    }
    this->forget(index);
  }
  std::vector<Item> collect() override {
    if constexpr (kInPlace) {
      return std::move(items_);
    } else {
      std::vector<Item> results;
      results.reserve(items_.size());
      for (std::optional<Item>& item : items_)
        results.push_back(std::move(*item));
      std::vector<std::optional<Item>>().swap(items_);
      return results;
    }
  }

  // Items that cost nothing to make empty (numbers, pointers, monostate)
  // are stored straight into the result vector, which collect() hands over:
  // no second vector, no copy. Others wait in optionals.
  static constexpr bool kInPlace =
      std::is_trivially_default_constructible_v<Item> && std::is_nothrow_move_assignable_v<Item>;
  std::vector<std::conditional_t<kInPlace, Item, std::optional<Item>>>
      items_;  // child i's outcome, once done
  /// The children, in argument order: the caller's vector of handles, so
  /// that a gather of many allocates no table of its own. Handles
  /// [0, unowned_) hold a bare pointer, not a reference (the state holds no
  /// child that is not done: no cycle through a child that never ends), and
  /// are emptied when forgotten; a pass stopped by an error empties the
  /// rest, which were references.
  std::vector<Future<T>> children_;
  std::size_t unowned_ = 0;
};

/// gather over arguments: Future<std::tuple<...>>.
template <bool Settled, class... T>
class TupleGather final
    : public GatherState<
          std::tuple<std::conditional_t<Settled, Outcome<GatherSlot<T>>, GatherSlot<T>>...>> {
 public:
  using Result = std::tuple<std::conditional_t<Settled, Outcome<GatherSlot<T>>, GatherSlot<T>>...>;
  friend GatherState<Result>;  // calls the overrides directly
  TupleGather(Loop& loop, const Future<T>&... children)
      : GatherState<Result>(loop, sizeof...(T), Settled) {
    ((&children.get_loop() == &loop
          ? void()
          : throw std::invalid_argument("eddy::gather: the futures belong to different loops")),
     ...);
    std::size_t i = 0;
    ((cores_[i++] = FutureAccess::shared(children)), ...);
  }
  ~TupleGather() override {
    for (std::size_t i = 0; i < sizeof...(T); ++i) {
      if (kept_[i]) detail::release(cores_[i]);
    }
  }
  /// Adds the done callbacks.
  void watch_children() {
    for (std::size_t i = 0; i < sizeof...(T); ++i)
      this->watch(this, i, *cores_[i]);
  }

 private:
  /// Keeps the child, referenced, for collect().
  void store(std::size_t index, FutureCore& child) override {
    detail::add_ref(&child);  // released by take(), or with the state
    kept_[index] = true;
  }
  FutureCore* child(std::size_t index) const noexcept override { return cores_[index]; }
  void forget(std::size_t index) noexcept override {
    if (!kept_[index]) cores_[index] = nullptr;  // a kept child's callback ends after store()
  }
  /// Child `index`, done, with the state's reference to it, which the
  /// caller takes over (one pass over the children instead of two).
  FutureCore* take(std::size_t index) noexcept {
    kept_[index] = false;
    return cores_[index];
  }
  Result collect() override {
    return [this]<std::size_t... I>(std::index_sequence<I...>) {
      if constexpr (Settled) {
        return Result(outcome_of<T>(this->take(I))...);
      } else {
        return Result(slot_of<T>(this->take(I))...);
      }
    }
    (std::index_sequence_for<T...>{});
  }

  /// The children, in argument order; null for one that went away pending.
  /// Not owned until kept_ (done, and referenced by the state).
  FutureCore* cores_[sizeof...(T)] = {};
  bool kept_[sizeof...(T)] = {};
};

/// Builds a gather's state and watches `children` (the futures). The range
/// form's state takes over the vector and lets go of each reference as it
/// goes (VectorGather::watch_children); the argument form's handles stay
/// alive meanwhile.
template <class State, class... C>
auto start_gather(Loop& loop, C&... children) {
  auto* state = new State(loop, children...);
  state->add_ref();  // held while we set up
  auto outer = state->outer;
  try {
    if constexpr (requires { state->watch_children(loop); }) {
      state->watch_children(loop);
    } else {
      state->watch_children();
    }
  } catch (...) {
    state->release();
    throw;
  }
  state->release();
  return outer;
}

template <bool Settled, class... A>
auto gather_args(A&&... args) {
  MadeTasks<(std::size_t{0} + ... + (MakesTask<std::decay_t<A>>::value ? 1 : 0))> made;
  try {
    // Braced: the tasks are scheduled in argument order (as asyncio does).
    std::tuple<Future<ResultOf<A>>...> futures{
        made.template note<A>(ensure_future(std::forward<A>(args), "eddy::gather"))...};
    Loop& loop = std::get<0>(futures).get_loop();
    return std::apply(
        [&](auto&... f) { return start_gather<TupleGather<Settled, ResultOf<A>...>>(loop, f...); },
        futures);
  } catch (const std::bad_alloc&) {
    made.cancel_all();  // the call changes nothing
    throw;
  }
}

/// `futures` is taken over unless this throws.
template <bool Settled, class T>
auto gather_range(std::vector<Future<T>>& futures) {
  using State = VectorGather<T, Settled>;
  if (futures.empty()) {
    // asyncio: done at once with an empty list, on the running loop.
    Future<std::vector<typename State::Item>> done =
        get_running_loop().create_future<std::vector<typename State::Item>>(
            SourceLocation::made_by("eddy::gather"));
    done.set_result({});
    return done;
  }
  for (const Future<T>& f : futures)
    check_not_empty(f);
  Loop& loop = futures.front().get_loop();
  return start_gather<State>(loop, futures);
}

/// The tasks of `tasks` (ensure_future). If making one runs out of memory,
/// those made before it are cancelled (cancel_made); any other failure (an
/// empty Task) leaves them to run, as asyncio's ensure_future loop does.
template <class T>
std::vector<Future<T>> schedule_all(std::vector<Task<T>> tasks, const char* by) {
  std::vector<Future<T>> futures;
  futures.reserve(tasks.size());
  try {
    for (Task<T>& task : tasks)
      futures.push_back(ensure_future(std::move(task), by));
  } catch (const std::bad_alloc&) {
    cancel_made(futures);
    throw;
  }
  return futures;
}

/// gather_range over the tasks schedule_all made: if the gather cannot be
/// set up for lack of memory, they are cancelled (cancel_made).
template <bool Settled, class T>
auto gather_made(std::vector<Future<T>> tasks) {
  try {
    return gather_range<Settled>(tasks);
  } catch (const std::bad_alloc&) {
    cancel_made(tasks);  // (empty if the gather took them over)
    throw;
  }
}

}  // namespace detail

/// One future for the results of all `awaitables` (futures or tasks; a task
/// is scheduled first with create_task), as a std::tuple in argument order
/// (a void result is std::monostate). Mirrors: asyncio.gather.
///
/// - The first child that fails makes the gather fail with its exception;
///   the other children keep running (asyncio's rule).
/// - A child cancelled on its own makes the gather end with its
///   CancelledError; the other children keep running.
/// - Cancelling the gather's future cancels every child that is not done;
///   the gather then ends with a CancelledError carrying the message.
/// - Either way the CancelledError is the gather future's exception: await
///   or result() throws it, exception() returns it, and cancelled() is
///   false, as asyncio's gather future "is *not* cancelled".
/// - All children must belong to one loop (std::invalid_argument otherwise).
template <detail::GatherArg... A>
requires(sizeof...(A) > 0) auto gather(A&&... awaitables) {
  return detail::gather_args<false>(std::forward<A>(awaitables)...);
}
/// The range form: Future<std::vector<T>>, results in the range's order.
/// Empty input: done at once with an empty vector (on the running loop).
/// The gather keeps the vector as its table of children (pass it with
/// std::move: a copy costs a reference count per child), and holds no
/// reference to a child that is not done.
template <class T>
auto gather(std::vector<Future<T>> futures) {
  return detail::gather_range<false>(futures);
}
template <class T>
auto gather(std::vector<Task<T>> tasks) {
  return detail::gather_made<false>(detail::schedule_all(std::move(tasks), "eddy::gather"));
}

/// gather that never fails because a child did: each slot is an Outcome<T>
/// holding the child's value or exception (CancelledError for a cancelled
/// child). Mirrors: asyncio.gather(..., return_exceptions=True). Cancelling
/// it still cancels the children and ends it with a CancelledError (as its
/// exception, as for gather).
template <detail::GatherArg... A>
requires(sizeof...(A) > 0) auto gather_settled(A&&... awaitables) {
  return detail::gather_args<true>(std::forward<A>(awaitables)...);
}
template <class T>
auto gather_settled(std::vector<Future<T>> futures) {
  return detail::gather_range<true>(futures);
}
template <class T>
auto gather_settled(std::vector<Task<T>> tasks) {
  return detail::gather_made<true>(detail::schedule_all(std::move(tasks), "eddy::gather"));
}

}  // namespace eddy
