// TaskGroup: structured concurrency. Mirrors: asyncio.TaskGroup.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/task.hpp"

namespace eddy {

/// The children of a task_group() block. Mirrors: asyncio.TaskGroup.
///
///     co_await eddy::task_group([&](eddy::TaskGroup& group) -> eddy::Task<> {
///       auto a = group.create_task(fetch("a"));
///       auto b = group.create_task(fetch("b"));
///       co_return;  // the group waits for a and b here
///     });
///
/// Rules (asyncio's):
/// - The block's exit waits until every child is done.
/// - The first child that fails (an exception other than CancelledError)
///   cancels the other children and the block's current await; the group
///   then throws TaskGroupError carrying every child failure (and the
///   block's own, last). A child that is cancelled is not a failure.
/// - If the block itself fails, the children are cancelled and awaited, and
///   TaskGroupError carries its error.
/// - If the calling task is cancelled (by its own cancel() or an enclosing
///   scope), the children are cancelled and awaited, then CancelledError
///   propagates — unless children failed: TaskGroupError wins. A cancel
///   that arrives while a failed group waits for its children to end is
///   answered by the TaskGroupError too (as in asyncio).
/// - create_task throws RuntimeError once the group is shutting down (a
///   failure cancelled the rest) or finished; the Task is then destroyed.
class TaskGroup {
 public:
  explicit TaskGroup(detail::TaskCore& parent)
      : parent_(&parent), alive_(std::make_shared<TaskGroup*>(this)) {
    parent.push_scope(scope_);
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() {
    // The block's exit waits for every child, so no child is left to call
    // back, except when that wait itself failed (out of memory): the
    // children then go on without the group, and their failures are
    // reported as never retrieved.
    *alive_ = nullptr;
    parent_->pop_scope(scope_);
  }

  /// Schedules `task` as a child (Loop::create_task on the parent's loop).
  template <class T>
  Future<T> create_task(Task<T> task, std::string name = {},
                        SourceLocation where = SourceLocation::current()) {
    if (aborting_) throw RuntimeError("eddy::TaskGroup::create_task: the group is shutting down");
    if (exiting_ && pending_ == 0) {
      throw RuntimeError("eddy::TaskGroup::create_task: the group is finished");
    }
    // Room first: nothing may throw once the child exists (room for its
    // failure too, and for every other running child's).
    children_.reserve(children_.size() + 1);
    free_slots_.reserve(children_.size() + 1);
    errors_.reserve(errors_.size() + pending_ + 1);
    Future<T> future = parent_->loop().create_task(std::move(task), std::move(name), where);
    detail::FutureCore& core = *detail::FutureAccess::shared(future);
    std::size_t slot = children_.size();
    if (free_slots_.empty()) {
      children_.emplace_back(*core.as_task());
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
      children_[slot] = TaskRef(*core.as_task());
    }
    ++pending_;
    detail::add_core_done_callback(core, [group = alive_, slot](detail::FutureCore& child) {
      if (*group != nullptr) (*group)->on_child_done(slot, child);
    });
    return future;
  }

  /// Children not done yet.
  std::size_t pending() const noexcept { return pending_; }

 private:
  template <class F>
  friend std::invoke_result_t<F&, TaskGroup&> task_group(F block);

  void on_child_done(std::size_t slot, detail::FutureCore& child) {
    // Let go of a finished child at once (asyncio's _on_task_done discards
    // it): a long-lived group keeps only the children that still run.
    children_[slot] = TaskRef();
    free_slots_.push_back(slot);  // within the room reserved by create_task
    --pending_;
    if (pending_ == 0 && all_done_.valid() && !all_done_.done()) all_done_.set_result();
    if (child.state == FutureState::cancelled || !child.exception) return;
    child.exception_retrieved = true;
    errors_.push_back(child.exception);  // within the room reserved by create_task
    if (!aborting_ && !parent_cancel_requested_) {
      abort();
      parent_cancel_requested_ = true;
      parent_->request_cancel(&scope_, {});
    }
  }
  void abort() {
    aborting_ = true;
    for (TaskRef& child : children_) {
      if (child && !child.done()) child.cancel();
    }
  }

  detail::TaskCore* parent_;
  detail::CancelScope scope_;
  std::vector<TaskRef> children_;        // the children not done yet; empty slots are free
  std::vector<std::size_t> free_slots_;  // of children_, reused first
  std::vector<std::exception_ptr> errors_;
  std::size_t pending_ = 0;
  bool exiting_ = false;
  bool aborting_ = false;
  bool parent_cancel_requested_ = false;
  Future<void> all_done_;
  /// This group while it lives, null after: what the children's done
  /// callbacks call (see ~TaskGroup).
  std::shared_ptr<TaskGroup*> alive_;
};

/// Runs `block(group)` (a callable returning a Task) with a TaskGroup and
/// returns the block's result once every child is done. See TaskGroup for
/// the rules. Mirrors: `async with asyncio.TaskGroup() as group:`.
template <class F>
std::invoke_result_t<F&, TaskGroup&> task_group(F block) {
  using T = typename std::invoke_result_t<F&, TaskGroup&>::value_type;
  detail::TaskCore& task = co_await detail::ThisTask{};
  TaskGroup group(task);
  std::optional<CancelledError> propagate;  // a cancellation from outside the group
  std::exception_ptr block_error;
  std::optional<std::conditional_t<std::is_void_v<T>, detail::NoValue, T>> result;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await block(group);
      result.emplace();
    } else {
      result.emplace(co_await block(group));
    }
  } catch (const CancelledError& error) {
    if (error.origin() != &group.scope_) propagate = error;
  } catch (...) {
    block_error = std::current_exception();
  }
  group.exiting_ = true;
  if ((propagate || block_error) && !group.aborting_) group.abort();
  while (group.pending_ > 0) {
    group.all_done_ = task.loop().create_future<void>();
    try {
      co_await group.all_done_;
    } catch (const CancelledError& error) {
      // As asyncio's TaskGroup.__aexit__: a cancellation from outside
      // counts only if nothing had made the group abort yet (a failed child
      // or block wins over it, and one that came first stays).
      if (error.origin() != &group.scope_ && !group.aborting_) {
        propagate = error;
        group.abort();
      } else if (propagate && detail::cancellation_outranks(error.origin(), propagate->origin())) {
        // Already leaving for a cancellation from outside: one that decides
        // over it (the task's own cancel() after an enclosing timeout fired)
        // takes its place, as asyncio's counting lets it win.
        propagate = error;
      }
    }
  }
  if (propagate && group.errors_.empty()) throw *propagate;  // asyncio's order
  if (block_error) group.errors_.push_back(block_error);
  if (!group.errors_.empty()) throw TaskGroupError(std::move(group.errors_));
  if constexpr (!std::is_void_v<T>) co_return std::move(*result);
}

}  // namespace eddy
