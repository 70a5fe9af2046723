// eddy's exception types, in one place (mirrors asyncio.exceptions).
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace eddy {

/// Base of every error eddy throws for misuse of its API.
///
/// Messages name the object and the rule broken, for example
/// "eddy::Loop::call_soon: the loop is closed".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The loop was used in a state that forbids the call (asyncio raises RuntimeError).
class RuntimeError : public Error {
 public:
  using Error::Error;
};

/// A scheduling or running call was made on a closed loop.
class LoopClosedError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// run_forever()/run_once() on a loop that is already running, close() on a running
/// loop, or running a loop while another loop runs on the same thread.
class LoopRunningError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// A method that is not thread-safe was called from a thread other than the one
/// running the loop. Checked in every build, not only in debug mode.
class WrongThreadError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// get_running_loop() was called where no loop is running.
class NoRunningLoopError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// Work was handed to an executor that is shut down: submit() after
/// shutdown(), or run_in_executor() on the default executor after
/// shutdown_default_executor(). Mirrors the RuntimeError raised by
/// concurrent.futures ("cannot schedule new futures after shutdown") and by
/// asyncio ("Executor shutdown has been called").
class ExecutorShutdownError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// An operation is not allowed in the object's current state, for example
/// result() on a pending Future or set_result() on a done one.
/// Mirrors: asyncio.InvalidStateError.
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

/// An operation did not finish before its deadline. Mirrors: asyncio.TimeoutError
/// (the builtin TimeoutError since Python 3.11).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// get_nowait() on an empty queue. Mirrors: asyncio.QueueEmpty.
class QueueEmpty : public Error {
 public:
  using Error::Error;
};

/// put_nowait() on a full queue. Mirrors: asyncio.QueueFull.
class QueueFull : public Error {
 public:
  using Error::Error;
};

/// put on a queue that was shut down, or get on one that was shut down and
/// is empty. Mirrors: asyncio.QueueShutDown (Python 3.13).
class QueueShutDown : public Error {
 public:
  using Error::Error;
};

/// The awaited operation was cancelled. Mirrors: asyncio.CancelledError.
///
/// Deliberately *not* derived from std::exception, for the reason asyncio made
/// CancelledError a BaseException in Python 3.8: a generic
/// `catch (const std::exception&)` in user code must not swallow a
/// cancellation by accident. Catch it by name (`catch (const
/// eddy::CancelledError&)`) when you mean to, or with `catch (...)`.
class CancelledError {
 public:
  explicit CancelledError(std::string message = {}) : message_(std::move(message)) {}
  /// A cancellation requested by a scope of a task (a timeout, a TaskGroup):
  /// `origin` identifies the scope, which turns its own cancellation into
  /// its outcome (TimeoutError, TaskGroupError) and lets others through.
  CancelledError(std::string message, const void* origin)
      : message_(std::move(message)), origin_(origin) {}

  /// The message given to cancel(msg); empty if none was given.
  const std::string& message() const noexcept { return message_; }
  /// "CancelledError" or "CancelledError: <message>", for reports.
  std::string describe() const {
    return message_.empty() ? std::string("CancelledError") : "CancelledError: " + message_;
  }
  /// The scope that requested this cancellation, or null for a plain
  /// cancel() (see "Cancellation" in <eddy/task.hpp>).
  const void* origin() const noexcept { return origin_; }

 private:
  std::string message_;
  const void* origin_ = nullptr;
};

/// A Barrier was aborted, or reset while the task waited in it.
/// Mirrors: asyncio.BrokenBarrierError (a RuntimeError in Python; here an
/// Error, not eddy::RuntimeError, which means misuse of the API).
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

/// One or more children of a TaskGroup failed (or its body did): carries
/// every failure, in the order they happened, the body's last. Mirrors the
/// BaseExceptionGroup that asyncio.TaskGroup raises.
class TaskGroupError : public Error {
 public:
  explicit TaskGroupError(std::vector<std::exception_ptr> errors);
  /// The failures; never empty.
  const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

 private:
  std::vector<std::exception_ptr> errors_;
};

namespace detail {
// Builds "eddy::Loop::<method>: <rule>"; the throw helpers are out of line so
// that the hot paths that check for misuse stay small.
[[noreturn]] void throw_loop_closed(const char* method);
[[noreturn]] void throw_wrong_thread(const char* method);
/// The same for a method of another class, named in full ("eddy::Future::set_result").
[[noreturn]] void throw_wrong_thread_in(const char* qualified_method);
[[noreturn]] void throw_invalid_delay(const char* method, double value);
/// std::invalid_argument: "<qualified_method>: the callable is empty (...)".
[[noreturn]] void throw_empty_callable(const char* qualified_method);
/// `error.what()`, or a placeholder where it returns a null pointer, for
/// reports that must not pass one to a string or printf.
inline const char* what_of(const std::exception& error) noexcept {
  const char* what = error.what();
  return what != nullptr ? what : "(what() returned a null pointer)";
}
}  // namespace detail

}  // namespace eddy
