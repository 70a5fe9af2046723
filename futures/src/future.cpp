// The out-of-line parts of Future<T> (see eddy/future.hpp).
#include "eddy/future.hpp"

#include <exception>
#include <string>

namespace eddy::detail {

namespace {
const char* state_name(FutureState state) {
  switch (state) {
    case FutureState::pending:
      return "pending";
    case FutureState::cancelled:
      return "cancelled";
    case FutureState::finished:
      return "finished";
  }
  return "?";
}

// What cancelled_error gives when it cannot make its CancelledError: made
// at start-up, so that it is there when memory is not.
const std::exception_ptr kCancelledOutOfMemory = std::make_exception_ptr(
    CancelledError("out of memory (the reason for the cancellation could not be kept)"));
}  // namespace

std::exception_ptr cancelled_error(const char* message) noexcept {
  // Thrown rather than made with make_exception_ptr, which copies the error
  // and hands back its own failure (std::bad_alloc) instead of throwing it.
  try {
    throw CancelledError(message);
  } catch (const CancelledError&) {
    return std::current_exception();
  } catch (...) {
    return kCancelledOutOfMemory;  // the message could not be made
  }
}

bool FutureCore::cancel_requested(std::string) {
  return false;  // only CancelRoute::owner futures get here, and their states override this
}

bool take_cancellation(FutureCore& core) noexcept {
  if (core.state == FutureState::cancelled) return true;
  if (core.state != FutureState::finished || !core.exception) return false;
  try {
    std::rethrow_exception(core.exception);
  } catch (const CancelledError&) {
    core.exception_retrieved = true;
    return true;
  } catch (...) {
    return false;
  }
}

std::string describe(const FutureCore& core) {
  const TaskCore* task = const_cast<FutureCore&>(core).as_task();
  std::string text =
      task != nullptr ? "Task '" + describe_task_name(*task) + "' (" : std::string("Future (");
  text += state_name(core.state);
  if (core.state == FutureState::finished && core.exception) text += " with an exception";
  text += ")";
  return text;  // the creation site travels separately, in ExceptionContext::source
}

void report_unretrieved_exception(FutureCore& core) noexcept {
  try {
    ExceptionContext context;
    bool task = core.as_task() != nullptr;
    context.message =
        task ? "Task exception was never retrieved" : "Future exception was never retrieved";
    context.exception = core.exception;
    context.future = describe(core);
    context.source = core.created;
    core.loop->call_exception_handler(context);
  } catch (...) {
    // Out of memory while describing: call_exception_handler itself never throws.
  }
}

void report_future_error(FutureCore& core, const char* lead, const char* tail) noexcept {
  try {
    ExceptionContext context;
    context.future = describe(core);
    context.message = tail == nullptr ? std::string(lead) : lead + context.future + tail;
    context.exception = std::current_exception();
    context.source = core.created;
    core.loop->call_exception_handler(context);
  } catch (...) {
    // Out of memory while describing: call_exception_handler itself never throws.
  }
}

void report_done_callback_error(FutureCore& core) noexcept {
  report_future_error(core, "Exception in done callback of ", "");
}

void release_last(FutureCore* core) noexcept {
  if (core->state == FutureState::finished && core->exception && !core->exception_retrieved) {
    report_unretrieved_exception(*core);
  }
  core->destroy();
}

void schedule_task_done_callbacks(FutureCore& core) noexcept {
  try {
    schedule_done_callbacks(core);
  } catch (...) {
    // Out of memory queueing them, with nobody left to throw to: they run
    // now, at the end of the task's last step, rather than never (as
    // StepTaskSoon steps a task at once when it cannot queue the step).
    // Only their order against callbacks queued before is lost.
    const std::uint32_t begin = core.scheduled;
    core.scheduled = core.count;
    CallbackRunner(&core, begin, core.count)();
  }
}

void end_orphaned(FutureCore& core, const char* message) noexcept {
  core.route = CancelRoute::future;  // an owner that routed cancel() is going away
  core.exception = cancelled_error(message);
  core.state = FutureState::cancelled;
  if (core.loop->is_closed()) return;
  try {
    schedule_done_callbacks(core);
  } catch (...) {
    // Out of memory: the callbacks stay unscheduled (they run if another
    // done callback is added later, with it). Not run here: this is called
    // from the destructor of what the future followed.
    report_future_error(core, "The done callbacks of ", " could not be scheduled (out of memory)");
  }
}

void drop_done_callbacks(FutureCore& core) noexcept {
  core.first_is_watcher = false;
  core.scheduled = core.count;  // none is ever scheduled from here on
  { DoneCallback gone = std::move(core.first); }
  if (!core.more) return;
  for (std::size_t i = 0; i < core.more->size(); ++i) {  // may grow meanwhile
    DoneCallback gone = std::move((*core.more)[i]);
  }
}

void throw_future_pending(const char* method) {
  throw InvalidStateError(std::string("eddy::Future::") + method +
                          ": the future is pending (not done yet)");
}

void throw_future_empty(const char* method) {
  throw InvalidStateError(std::string("eddy::Future::") + method +
                          ": the Future is empty (default-constructed or moved-from)");
}

void throw_future_done(const char* method, FutureState state) {
  throw InvalidStateError(std::string("eddy::Future::") + method +
                          ": the future is already done (" + state_name(state) + ")");
}

}  // namespace eddy::detail
