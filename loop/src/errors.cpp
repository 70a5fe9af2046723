#include "eddy/errors.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>

namespace eddy {

TaskGroupError::TaskGroupError(std::vector<std::exception_ptr> errors)
    : Error("eddy::TaskGroup: unhandled errors in a TaskGroup (" + std::to_string(errors.size()) +
            (errors.size() == 1 ? " sub-exception)" : " sub-exceptions)")),
      errors_(std::move(errors)) {}

}  // namespace eddy

namespace eddy::detail {

void throw_loop_closed(const char* method) {
  throw LoopClosedError(std::string("eddy::Loop::") + method + ": the loop is closed");
}

void throw_wrong_thread(const char* method) {
  throw_wrong_thread_in((std::string("eddy::Loop::") + method).c_str());
}

void throw_wrong_thread_in(const char* qualified_method) {
  throw WrongThreadError(std::string(qualified_method) +
                         ": called from a thread other than the one running the loop "
                         "(only call_soon_threadsafe may be)");
}

void throw_empty_callable(const char* qualified_method) {
  throw std::invalid_argument(std::string(qualified_method) +
                              ": the callable is empty (a null function pointer or an empty "
                              "std::function)");
}

void throw_invalid_delay(const char* method, double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%g", value);
  throw std::invalid_argument(std::string("eddy::Loop::") + method +
                              ": the time must be finite, got " + text);
}

}  // namespace eddy::detail
