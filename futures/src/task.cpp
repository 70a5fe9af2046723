// The out-of-line parts of tasks (see eddy/task.hpp): cancellation, the
// loop's task registry, and the frame cache.
#include "eddy/task.hpp"

#include "eddy/handle.hpp"
#include "eddy/run.hpp"
#include "eddy/sleep.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace eddy {
namespace detail {

// ------------------------------------------------------------ cancellation

TaskCore::Cold& TaskCore::cold() const {
  if ((cold_or_number_ & 1) != 0) {
    auto made = std::make_unique<Cold>();
    made->number = cold_or_number_ >> 1;
    cold_or_number_ = reinterpret_cast<std::uintptr_t>(made.release());
  }
  return made_cold();
}

TaskCore::CancelState& TaskCore::cancel_state() {
  return cold().cancel;
}

std::unique_ptr<TaskCore::Cold> TaskCore::named(std::string name) {
  auto cold = std::make_unique<Cold>();
  cold->name.emplace(std::move(name));
  return cold;
}

namespace {
// True if scope `outer` encloses scope `inner`.
bool encloses(const CancelScope* outer, const CancelScope* inner) noexcept {
  for (const CancelScope* s = inner->parent; s != nullptr; s = s->parent) {
    if (s == outer) return true;
  }
  return false;
}
// The outermost scope that fired and whose request has not reached an await.
CancelScope* outermost_undelivered(CancelScope* innermost) noexcept {
  CancelScope* found = nullptr;
  for (CancelScope* s = innermost; s != nullptr; s = s->parent) {
    if (s->fired && !s->delivered) found = s;
  }
  return found;
}
}  // namespace

bool cancellation_outranks(const void* origin, const void* than) noexcept {
  if (than == nullptr) return false;  // the task's own cancel() is outranked by nothing
  if (origin == nullptr) return true;
  return encloses(static_cast<const CancelScope*>(origin), static_cast<const CancelScope*>(than));
}

void keep_deciding_cancellation(std::exception_ptr& kept, const CancelledError& caught) {
  if (kept) {
    try {
      std::rethrow_exception(kept);
    } catch (const CancelledError& earlier) {
      if (cancellation_outranks(earlier.origin(), caught.origin())) return;
    } catch (...) {
      return;  // not a cancellation: it stays
    }
  }
  kept = std::current_exception();  // `caught`, the exception being handled
}

namespace {
void mark_delivered(CancelScope* innermost) noexcept {
  for (CancelScope* s = innermost; s != nullptr; s = s->parent) {
    if (s->fired) s->delivered = true;
  }
}
}  // namespace

bool TaskCore::interrupt_wait(const std::string& message) {
  switch (wait_kind_) {
    case WaitKind::none:
      return false;
    case WaitKind::future:
      return cancel_core(*reinterpret_cast<FutureCore*>(wait_data_), message);
    case WaitKind::timer: {
      // A sleep: its timer is cut short, and the task steps at once. Room
      // for the step first: out of memory then leaves the sleep as it was.
      LoopExtensions::reserve_ready<StepTask>(loop());
      Handle timer = HandleAccess::timer(loop(), static_cast<std::uint64_t>(wait_data_));
      if (!timer.cancel()) return false;
      loop().call_soon(StepTask(*this));
      return true;
    }
    case WaitKind::lock:
      return interrupt_lock_wait(wait_data_, message);
    case WaitKind::forever:
      // Nothing to undo: the task steps at once (once: the wait is over).
      loop().call_soon(StepTask(*this));  // first: if it throws, the wait stays
      wait_kind_ = WaitKind::none;
      return true;
  }
  return false;
}

namespace {
// Passing a cancellation on down a chain of tasks awaiting each other
// recurses (request_cancel -> interrupt_wait -> the awaited task's
// request_cancel): past this depth the rest goes on from the next loop
// iteration, so that no chain overflows the stack (asyncio raises
// RecursionError at about 1000).
constexpr int kMaxCancelDepth = 256;
thread_local int cancel_depth = 0;
// The tasks marked kWalked by the cancellation being passed on now (cleared
// as its outermost request_cancel returns).
thread_local std::vector<TaskCore*> walked;
// While a RedeliverSoon runs: the tasks its cancellation went through before.
thread_local std::size_t continuation_hops = 0;

[[noreturn]] void throw_cancel_cycle(const TaskCore& task) {
  throw RuntimeError(
      "eddy: cancelling a task that awaits itself through a cycle of tasks; "
      "the cancellation came back to " +
      describe_task_name(task));
}
}  // namespace

TaskCore* TaskCore::awaited_task() const noexcept {
  if (wait_kind_ != WaitKind::future) return nullptr;
  FutureCore* awaited = reinterpret_cast<FutureCore*>(wait_data_);
  if (awaited->state != FutureState::pending || awaited->route != CancelRoute::owner) {
    return nullptr;
  }
  return awaited->as_task();
}

void TaskCore::check_awaited_chain() {
  // A chain of tasks awaiting each other is passed on task by task, deeper
  // than the stack allows at once (kMaxCancelDepth); so it is followed here
  // first, in a loop. It is a cycle if it comes back to a task of this walk
  // (kThisWalk) or to one whose request_cancel is on the stack (kCancelling).
  // It ends at a task this cancellation walked already (its chain did not
  // come back: a second way to it, as through a gather, is no cycle), or at
  // one a cancellation already reached (its wait interrupted, or its request
  // pending): that one walked on from it, or goes on from it by passes
  // (RedeliverSoon), whose count of hops bounds a cycle made since. So
  // cancelling every task of a long chain one by one (eddy::run's clean-up,
  // a gather's or a TaskGroup's cancel) walks it once.
  const std::size_t start = walked.size();
  struct Unmark {
    std::size_t start;
    ~Unmark() {
      for (std::size_t i = start; i < walked.size(); ++i)
        walked[i]->flags_ &= static_cast<std::uint8_t>(~kThisWalk);
    }
  } unmark{start};
  for (TaskCore* t = this; t != nullptr; t = t->awaited_task()) {
    if ((t->flags_ & (kCancelling | kThisWalk)) != 0) throw_cancel_cycle(*t);
    if ((t->flags_ & (kWalked | kDelegated | kPendingExternal | kPendingScope)) != 0) break;
    walked.push_back(t);  // first: it may allocate, and only what it holds is undone
    t->flags_ |= kWalked | kThisWalk;
  }
}

/// Holds the task's future (one reference) until the next iteration, then
/// interrupts its wait for the request left pending (redeliver), if the task
/// is still waiting.
/// `hops`: the tasks the cancellation went through to get here. More than
/// the loop ever held at once means it went round a cycle that the checks
/// of one pass cannot see (one through two gathers, longer than a pass).
struct TaskCore::RedeliverSoon {
  RedeliverSoon(TaskCore& task, std::size_t hops_so_far) noexcept
      : future(&task.future()), hops(hops_so_far) {
    add_ref(future);
  }
  RedeliverSoon(RedeliverSoon&& other) noexcept
      : future(std::exchange(other.future, nullptr)), hops(other.hops) {}
  RedeliverSoon& operator=(RedeliverSoon&&) = delete;
  ~RedeliverSoon() {
    if (future != nullptr) release(future);
  }
  void operator()() const noexcept {
    TaskCore* task = future->as_task();
    if (task == nullptr || task->done()) return;
    continuation_hops = hops;
    task->redeliver();
    continuation_hops = 0;
  }
  FutureCore* future;
  std::size_t hops;
};

bool TaskCore::request_cancel(CancelScope* scope, std::string message) {
  if (done()) return false;
  // The outermost request_cancel of a cancellation undoes the kWalked marks.
  struct Walk {
    bool outermost = cancel_depth == 0;
    Walk() = default;
    Walk(const Walk&) = delete;
    Walk& operator=(const Walk&) = delete;
    ~Walk() {
      if (!outermost) return;
      for (TaskCore* t : walked)
        t->flags_ &= static_cast<std::uint8_t>(~kWalked);
      walked.clear();
    }
  } walk;
  // The request came back round a cycle of tasks awaiting each other, which
  // no cancellation can end (asyncio's Task.cancel recurses until
  // RecursionError): the caller's cancel() throws. The tasks of the cycle
  // are left as they were; what the cancellation reached on other ways
  // before (another child of a gather) stays cancelled.
  if ((flags_ & kCancelling) != 0) [[unlikely]]
    throw_cancel_cycle(*this);
  CancelState& state = cancel_state();
  // Past kMaxCancelDepth the request stays pending (below) and goes on from
  // the next iteration.
  bool interrupted = false;
  if (cancel_depth < kMaxCancelDepth) [[likely]] {
    // (A pass that goes on from an earlier one, RedeliverSoon, does not walk
    // again: the first walk covered the chain, and the count of hops bounds
    // a cycle made since. Nor does the task where a pass stops: a walk from
    // there would go down the rest of the chain for every cancel() that
    // reaches it, as eddy::run's clean-up makes one for each task.)
    if ((flags_ & kWalked) == 0 && continuation_hops == 0) check_awaited_chain();
    struct Depth {
      TaskCore& task;
      explicit Depth(TaskCore& t) noexcept : task(t) {
        ++cancel_depth;
        task.flags_ |= kCancelling;
      }
      ~Depth() {
        --cancel_depth;
        task.flags_ &= static_cast<std::uint8_t>(~kCancelling);
      }
      Depth(const Depth&) = delete;
      Depth& operator=(const Depth&) = delete;
    } depth(*this);
    interrupted = interrupt_wait(message);
  } else {
    const std::size_t hops = continuation_hops + kMaxCancelDepth;
    const TaskRegistry* registry = find_task_registry(loop());
    if (registry != nullptr && hops > registry->used) throw_cancel_cycle(*this);
    loop().call_soon(RedeliverSoon(*this, hops));
  }
  if (scope != nullptr) {  // (after: a throw above leaves the scope as it was)
    scope->fired = true;
    scope->message = message;
  }
  if (interrupted) {
    // The wait ends early; the await throws CancelledError for the origin
    // that matters most: the task's own cancel(), else the outermost scope.
    bool replace =
        (flags_ & kDelegated) == 0 || cancellation_outranks(scope, state.delegated_origin);
    if (replace) {
      state.delegated_origin = scope;
      state.delegated_message = std::move(message);
    }
    flags_ |= kDelegated;
    if (scope != nullptr) scope->delivered = true;
    return true;
  }
  if (scope != nullptr) {
    flags_ |= kPendingScope;
  } else {
    flags_ |= kPendingExternal;
    state.external_message = std::move(message);
  }
  return true;
}

void TaskCore::redeliver() noexcept {
  // A request is pending and the task suspends on a new wait: interrupt it
  // at once, as asyncio cancels the future a task yields while _must_cancel.
  if (wait_kind_ == WaitKind::none) return;  // delivered when the task resumes
  CancelState& state = made_cold().cancel;
  CancelScope* scope = nullptr;
  const std::string* message = &state.external_message;
  if ((flags_ & kPendingExternal) == 0) {
    scope = outermost_undelivered(scopes_);
    if (scope == nullptr) {
      flags_ &= static_cast<std::uint8_t>(~kPendingScope);
      return;
    }
    message = &scope->message;
  }
  bool interrupted = false;
  try {
    interrupted = interrupt_wait(*message);
  } catch (...) {
    // Out of memory scheduling the wake-up, or RuntimeError from a cycle of
    // tasks awaiting each other (there is no cancel() to throw it from
    // here): the request stays pending, delivered if the task ever resumes,
    // and the exception handler hears of it.
    continuation_hops = 0;  // a cancel() made by the handler starts afresh
    report_future_error(future(), "A task's cancellation could not be passed on to what it awaits");
  }
  if (!interrupted) return;
  state.delegated_origin = scope;
  state.delegated_message = *message;
  flags_ |= kDelegated;
  if (scope == nullptr) {
    flags_ &= static_cast<std::uint8_t>(~kPendingExternal);
  } else {
    mark_delivered(scopes_);
    flags_ &= static_cast<std::uint8_t>(~kPendingScope);
  }
}

void TaskCore::deliver(bool interrupted, bool awaited_throws) {
  CancelState& state = made_cold().cancel;
  // The request that ended this wait (delegated) competes with requests that
  // arrived after the wait had already ended (pending): rule 2 decides.
  const bool ended_by_request = (flags_ & kDelegated) != 0 && interrupted;
  if ((flags_ & kPendingExternal) && interrupted &&
      !(ended_by_request && state.delegated_origin != nullptr)) [[unlikely]] {
    // cancel() came again after the wait had already ended with a
    // cancellation of its own: the task's earlier cancel(), passed on, or
    // the awaited future's, cancelled elsewhere. That CancelledError is the
    // one thrown, and the later request goes with it, as asyncio's
    // Task.__step keeps a CancelledError it is given when _must_cancel.
    flags_ &= static_cast<std::uint8_t>(~(kPendingExternal | kDelegated));
    state.external_message.clear();
    fold_scope_requests();
    if (ended_by_request && !awaited_throws) {
      throw CancelledError(std::exchange(state.delegated_message, {}));
    }
    state.delegated_message.clear();
    return;  // the awaiter throws the awaited future's CancelledError
  }
  if ((flags_ & kPendingExternal) || (ended_by_request && state.delegated_origin == nullptr)) {
    // The task's own cancel() wins, and answers the scopes' requests due at
    // this await too: one CancelledError for all, as asyncio's Task.__step
    // throws one for every cancel() that came before the task resumed.
    const bool passed_on = (flags_ & kPendingExternal) == 0;  // and answered by the awaited
    std::string& message = passed_on ? state.delegated_message : state.external_message;
    flags_ &= static_cast<std::uint8_t>(~(kPendingExternal | kDelegated));
    fold_scope_requests();
    if (passed_on && awaited_throws) {
      // The awaited task (or future) ended with a CancelledError: that one,
      // with its own message, is thrown by the awaiter, as asyncio rethrows
      // it (the awaited task may have caught ours and raised another).
      message.clear();
      return;
    }
    throw CancelledError(std::exchange(message, {}));
  }
  flags_ &= static_cast<std::uint8_t>(~kDelegated);
  if (flags_ & kPendingScope) {
    flags_ &= static_cast<std::uint8_t>(~kPendingScope);
    if (CancelScope* scope = outermost_undelivered(scopes_)) {
      mark_delivered(scopes_);
      // A delegated scope's request wins only if it is the outer one (it is a
      // scope's here: the task's own cancel() was thrown above).
      if (!ended_by_request || encloses(scope, state.delegated_origin)) {
        throw CancelledError(scope->message, scope);
      }
    }
  }
  if (ended_by_request) {
    throw CancelledError(std::exchange(state.delegated_message, {}), state.delegated_origin);
  }
  // Otherwise the awaited operation finished despite the cancel: its outcome
  // stands (asyncio's rule when a task's awaited future ignores the cancel).
}

void TaskCore::fold_scope_requests() noexcept {
  if ((flags_ & kPendingScope) == 0) return;
  mark_delivered(scopes_);  // they fired: each scope still sees expired()
  flags_ &= static_cast<std::uint8_t>(~kPendingScope);
}

void TaskCore::pop_scope(CancelScope& scope) noexcept {
  scopes_ = scope.parent;
  if (flags_ & kPendingScope) {
    if (outermost_undelivered(scopes_) == nullptr) {
      flags_ &= static_cast<std::uint8_t>(~kPendingScope);
    }
  }
}

std::optional<std::string> TaskCore::take_pending_external() {
  if ((flags_ & kPendingExternal) == 0) return std::nullopt;
  flags_ &= static_cast<std::uint8_t>(~kPendingExternal);
  return std::exchange(made_cold().cancel.external_message, {});
}

void throw_owned_result_set(const char* method) {
  throw RuntimeError(std::string("eddy::Future::") + method +
                     ": this future is set by its task or gather, not from outside");
}

// ------------------------------------------------------------ stepping

void StepTaskSoon::operator()() const noexcept {
  try {
    task_->loop().call_soon(StepTask(*task_));
  } catch (...) {
    task_->step();  // out of memory queueing it: step now rather than never
  }
}

void suspend_on_timer(Loop& loop, TaskCore& task, std::coroutine_handle<> at, double delay) {
  if (delay == std::numeric_limits<double>::infinity()) {
    // asyncio.sleep(math.inf): no timer (a virtual clock would jump to it),
    // only a cancellation ends the wait.
    task.suspend(at, Waiter{WaitKind::forever, 0});
    return;
  }
  TimerHandle timer = loop.call_later(delay, StepTaskSoon(task));
  static_assert(sizeof(std::uintptr_t) >= sizeof(std::uint64_t));
  task.suspend(at, Waiter{WaitKind::timer, static_cast<std::uintptr_t>(HandleAccess::id(timer))});
}

void throw_awaits_itself() {
  throw RuntimeError("eddy: a task cannot await its own future");
}

void throw_await_empty_future() {
  throw InvalidStateError("eddy: co_await on an empty Future");
}

std::uint64_t next_task_number_block() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1024, std::memory_order_relaxed);
}

void TaskCore::end_before_first_step() noexcept {
  // Cancelled before it started: its body never runs.
  end_cancelled_by_pending_cancel(future());
  future().end_task();
}

namespace {
bool is_cancellation(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace

void TaskCore::finish_unusually(FutureCore& future) noexcept {
  if (future.exception) {
    future.state =
        is_cancellation(future.exception) ? FutureState::cancelled : FutureState::finished;
    return;
  }
  // Returned with the task's own cancel() pending: the request wins over the
  // value, which goes.
  future.discard_value();
  end_cancelled_by_pending_cancel(future);
}

void TaskCore::end_cancelled_by_pending_cancel(FutureCore& future) noexcept {
  flags_ &= static_cast<std::uint8_t>(~kPendingExternal);
  future.exception = std::make_exception_ptr(
      CancelledError(std::exchange(made_cold().cancel.external_message, {})));
  future.state = FutureState::cancelled;
}

std::string describe_task_name(const TaskCore& task) {
  return task.name();
}

const std::string& TaskCore::name() const {
  Cold& c = cold();
  if (!c.name) c.name.emplace("Task-" + std::to_string(c.number));
  return *c.name;
}

void TaskCore::set_name(std::string name) {
  cold().name = std::move(name);
}

// ------------------------------------------------------------ registry

TaskRegistry::~TaskRegistry() = default;

void TaskRegistry::grow() {
  const std::uint32_t bigger = capacity == 0 ? 64 : 2 * capacity;
  if (bigger <= capacity) throw std::length_error("eddy: too many tasks on one loop");
  auto table = std::make_unique_for_overwrite<std::uintptr_t[]>(bigger);
  std::copy(slots.get(), slots.get() + used, table.get());
  slots = std::move(table);
  capacity = bigger;
}

bool TaskRegistry::loop_closing() noexcept {
  bool released = false;
  for (std::uint32_t i = 0; i < used; ++i) {  // frames destroyed may add tasks
    TaskCore* found = at(i);
    if (found == nullptr) continue;
    TaskCore& task = *found;
    remove(task);
    released = true;
    // The frame goes first: its destructors may still use the task.
    if (task.root_) std::exchange(task.root_, {}).destroy();
    FutureCore& future = task.future();
    if (future.state == FutureState::pending) {
      future.exception = cancelled_error("the loop was closed");
      future.state = FutureState::cancelled;  // no callbacks: the loop is closing
      // They can never run: they go now, so that a gather or a shield that
      // follows the task ends too, even while someone holds its future.
      drop_done_callbacks(future);
    }
    release(&future);
  }
  return released;
}

namespace {
/// The task that the queued callback with `table` and `captures` steps, if
/// it steps one: a task's step, or a future's done callbacks among which
/// one wakes a task (the first such task).
TaskCore* task_stepped_by(const void* table, void* captures) noexcept {
  if (table == Callback::table_of<StepTask>()) return &static_cast<StepTask*>(captures)->task();
  if (table == Callback::table_of<FirstStep>()) return &static_cast<FirstStep*>(captures)->task();
  if (table == Callback::table_of<CallbackRunner>()) {
    const auto& runner = *static_cast<const CallbackRunner*>(captures);
    for (std::uint32_t i = runner.begin(); i != runner.end(); ++i) {
      if (const StepTask* step = runner.core().callback(i).target_if<StepTask>())
        return &step->task();
    }
  }
  return nullptr;
}
}  // namespace

void* TaskRegistry::subject_of(const void* table, void* captures) noexcept {
  TaskCore* task = task_stepped_by(table, captures);
  if (task == nullptr) return nullptr;
  FutureCore* future = &task->future();
  add_ref(future);  // the step may end the task
  return future;
}

void TaskRegistry::describe_subject(void* subject, ExceptionContext& context) const {
  const FutureCore& future = *static_cast<FutureCore*>(subject);
  context.future = describe(future);
  context.source = future.created;
}

void TaskRegistry::release_subject(void* subject) noexcept {
  release(static_cast<FutureCore*>(subject));
}

TaskRegistry& make_task_registry(Loop& loop) {
  return static_cast<TaskRegistry&>(LoopExtensions::set(
      loop, ExtensionSlot::tasks, std::make_unique<TaskRegistry>(), "create_task"));
}

void run_task_factory(TaskRegistry& registry, TaskCore& task) {
  try {
    std::function<void(TaskRef)> factory = registry.factory;  // it may replace itself
    factory(TaskRef(task));
  } catch (...) {
    // As in asyncio, where the factory makes the task: a task whose factory
    // failed never runs its body (it ends cancelled at its first step).
    task.request_cancel(nullptr, "eddy: the task factory failed");
    throw;
  }
}

// ------------------------------------------------------------ frames

std::size_t last_frame_size() noexcept {
  return PromiseBase::tls_last_frame_size;
}

}  // namespace detail

// ------------------------------------------------------------ public

detail::TaskCore& TaskRef::checked(const char* method) const {
  if (task_ == nullptr) {
    throw InvalidStateError(std::string("eddy::TaskRef::") + method + ": the TaskRef is empty");
  }
  return *task_;
}

TaskRef current_task() noexcept {
  detail::TaskCore* task = detail::TaskCore::current;
  return task != nullptr ? TaskRef(*task) : TaskRef();
}

std::vector<TaskRef> all_tasks(const Loop& loop) {
  detail::LoopExtensions::check_thread(loop, "eddy::all_tasks");
  std::vector<TaskRef> tasks;
  if (detail::TaskRegistry* registry = detail::find_task_registry(loop)) {
    std::vector<detail::TaskCore*> found;
    found.reserve(registry->used);  // at least the tasks registered
    for (std::uint32_t i = 0; i < registry->used; ++i) {
      if (detail::TaskCore* t = registry->at(i)) found.push_back(t);
    }
    std::sort(found.begin(), found.end(), [](const detail::TaskCore* a, const detail::TaskCore* b) {
      return a->creation_number() < b->creation_number();
    });
    tasks.reserve(found.size());
    for (detail::TaskCore* t : found)
      tasks.emplace_back(*t);
  }
  return tasks;
}

std::vector<TaskRef> all_tasks() {
  return all_tasks(get_running_loop());
}

void Loop::set_task_factory(std::function<void(TaskRef)> factory) {
  check_usable("set_task_factory");
  detail::task_registry(*this).factory = std::move(factory);
}

std::function<void(TaskRef)> Loop::get_task_factory() const {
  detail::LoopExtensions::check_thread(*this, "eddy::Loop::get_task_factory");
  detail::TaskRegistry* registry = detail::find_task_registry(*this);
  return registry != nullptr ? registry->factory : nullptr;
}

}  // namespace eddy

// ------------------------------------------------------------ run

namespace eddy::detail {

TaskCore& TaskRefAccess::core(const TaskRef& task) {
  return task.checked("core");
}

FutureCore& task_future(const TaskRef& task) {
  return TaskRefAccess::core(task).future();
}

void cancel_all_tasks(Loop& loop) {
  std::vector<TaskRef> tasks = all_tasks(loop);
  if (tasks.empty()) return;
  // A cancel() that throws (tasks awaiting each other in a cycle: nothing can
  // end them) leaves its task to close(); the others are cancelled and waited
  // for all the same, and the first such error is thrown at the end.
  std::exception_ptr error;
  std::erase_if(tasks, [&](TaskRef& task) {
    try {
      task.cancel();
      return false;
    } catch (...) {
      if (!error) error = std::current_exception();
      return true;
    }
  });
  if (!tasks.empty()) {
    // Run until every one is done: one future completed by the last of them.
    Future<void> all_done = loop.create_future<void>();
    auto left = std::make_shared<std::size_t>(tasks.size());
    for (TaskRef& task : tasks) {
      add_core_done_callback(task_future(task), [left, all_done](FutureCore&) mutable {
        if (--*left == 0) all_done.set_result();
      });
    }
    loop.run_until_complete(all_done);
  }
  for (TaskRef& task : tasks) {
    FutureCore& future = task_future(task);
    if (future.state == FutureState::finished && future.exception) {
      future.exception_retrieved = true;
      ExceptionContext context;
      context.message = "unhandled exception during eddy::run() shutdown";
      context.exception = future.exception;
      context.future = describe(future);
      context.source = future.created;
      loop.call_exception_handler(context);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace eddy::detail
