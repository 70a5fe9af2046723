// Tests of eddy's error types (eddy/errors.hpp): the hierarchy, and messages
// that name the method and the rule broken.
#include <uv.h>

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include <eddy/errors.hpp>
#include <eddy/loop.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using eddy::testing::LoopTest;

// The message of the exception `f` throws, which must be an `E`.
template <class E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "\"" << text << "\" lacks \"" << part << "\"";
}

TEST(Errors, HierarchyMirrorsAsyncio) {
  EXPECT_TRUE((std::is_base_of_v<std::runtime_error, Error>));
  EXPECT_TRUE((std::is_base_of_v<Error, RuntimeError>));
  EXPECT_TRUE((std::is_base_of_v<RuntimeError, LoopClosedError>));
  EXPECT_TRUE((std::is_base_of_v<RuntimeError, LoopRunningError>));
  EXPECT_TRUE((std::is_base_of_v<RuntimeError, WrongThreadError>));
  EXPECT_TRUE((std::is_base_of_v<RuntimeError, NoRunningLoopError>));
  // Distinct: catching one does not catch its siblings.
  EXPECT_FALSE((std::is_base_of_v<LoopClosedError, LoopRunningError>));
  EXPECT_FALSE((std::is_base_of_v<LoopRunningError, LoopClosedError>));
  EXPECT_FALSE((std::is_base_of_v<WrongThreadError, NoRunningLoopError>));
}

TEST(Errors, FutureErrorsAreEddyErrorsButNotLoopRuntimeErrors) {
  EXPECT_TRUE((std::is_base_of_v<Error, InvalidStateError>));
  EXPECT_TRUE((std::is_base_of_v<Error, TimeoutError>));
  EXPECT_FALSE((std::is_base_of_v<RuntimeError, InvalidStateError>));
  EXPECT_FALSE((std::is_base_of_v<RuntimeError, TimeoutError>));
}

TEST(Errors, CancelledErrorIsNotCaughtByACatchOfStdException) {
  // Like asyncio's CancelledError (a BaseException): a generic handler must
  // not swallow a cancellation by accident.
  EXPECT_FALSE((std::is_base_of_v<std::exception, CancelledError>));
  bool caught_as_std = false, caught_by_name = false;
  try {
    try {
      throw CancelledError("stop now");
    } catch (const std::exception&) {
      caught_as_std = true;
    }
  } catch (const CancelledError& e) {
    caught_by_name = true;
    EXPECT_EQ(e.message(), "stop now");
    EXPECT_EQ(e.describe(), "CancelledError: stop now");
  }
  EXPECT_FALSE(caught_as_std);
  EXPECT_TRUE(caught_by_name);
  EXPECT_EQ(CancelledError().describe(), "CancelledError");
}

TEST(Errors, EveryLoopErrorIsCaughtAsEddyErrorAndStdRuntimeError) {
  auto loop = std::make_unique<Loop>(LoopOptions().debug(false));
  loop->close();
  bool as_runtime_error = false, as_error = false, as_std = false;
  try {
    loop->call_soon([] {});
  } catch (const RuntimeError&) {
    as_runtime_error = true;
  }
  try {
    loop->call_soon([] {});
  } catch (const Error&) {
    as_error = true;
  }
  try {
    get_running_loop();
  } catch (const std::runtime_error&) {
    as_std = true;
  }
  EXPECT_TRUE(as_runtime_error);
  EXPECT_TRUE(as_error);
  EXPECT_TRUE(as_std);
}

TEST(Errors, ConstructedErrorsKeepTheirMessage) {
  EXPECT_STREQ(LoopClosedError("x: closed").what(), "x: closed");
  EXPECT_STREQ(WrongThreadError("y").what(), "y");
}

TEST_F(LoopTest, LoopClosedMessagesNameTheMethodAndTheRule) {
  loop.close();
  struct Case {
    const char* method;
    std::function<void()> call;
  };
  Case cases[] = {
      {"call_soon", [&] { loop.call_soon([] {}); }},
      {"call_later", [&] { loop.call_later(1.0, [] {}); }},
      {"call_at", [&] { loop.call_at(1.0, [] {}); }},
      {"call_soon_threadsafe", [&] { loop.call_soon_threadsafe([] {}); }},
      {"run_forever", [&] { loop.run_forever(); }},
      {"run_once", [&] { loop.run_once(); }},
  };
  for (const Case& c : cases) {
    std::string message = message_of<LoopClosedError>(c.call);
    expect_contains(message, std::string("eddy::Loop::") + c.method);
    expect_contains(message, "closed");
  }
}

TEST_F(LoopTest, LoopRunningMessagesNameTheMethodAndTheRule) {
  std::string run_forever_message, run_once_message, close_message;
  loop.call_soon([&] {
    run_forever_message = message_of<LoopRunningError>([&] { loop.run_forever(); });
    run_once_message = message_of<LoopRunningError>([&] { loop.run_once(); });
    close_message = message_of<LoopRunningError>([&] { loop.close(); });
  });
  loop.run_once();
  expect_contains(run_forever_message, "run_forever");
  expect_contains(run_forever_message, "already running");
  expect_contains(run_once_message, "run_once");
  expect_contains(run_once_message, "already running");
  expect_contains(close_message, "close");
  expect_contains(close_message, "running");
}

TEST_F(LoopTest, AnotherLoopRunningMessageSaysSo) {
  Loop other(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  std::string message;
  loop.call_soon([&] { message = message_of<LoopRunningError>([&] { other.run_once(); }); });
  loop.run_once();
  expect_contains(message, "run_once");
  expect_contains(message, "another loop");
  other.close();
}

TEST_F(LoopTest, WrongThreadMessageNamesTheMethodAndTheRule) {
  std::string call_soon_message, call_later_message;
  loop.call_soon([&] {
    std::thread other([&] {
      call_soon_message = message_of<WrongThreadError>([&] { loop.call_soon([] {}); });
      call_later_message = message_of<WrongThreadError>([&] { loop.call_later(1.0, [] {}); });
    });
    other.join();
  });
  loop.run_once();
  expect_contains(call_soon_message, "call_soon");
  expect_contains(call_soon_message, "thread");
  expect_contains(call_soon_message, "call_soon_threadsafe");  // says what to use instead
  expect_contains(call_later_message, "call_later");
}

TEST(Errors, NoRunningLoopMessageNamesTheFunction) {
  std::string message = message_of<NoRunningLoopError>([] { get_running_loop(); });
  expect_contains(message, "get_running_loop");
  expect_contains(message, "no running");
}

TEST_F(LoopTest, InvalidDelayMessagesNameTheMethodAndTheValue) {
  std::string later = message_of<std::invalid_argument>(
      [&] { loop.call_later(std::numeric_limits<double>::quiet_NaN(), [] {}); });
  expect_contains(later, "call_later");
  expect_contains(later, "finite");
  expect_contains(later, "nan");
  std::string at = message_of<std::invalid_argument>(
      [&] { loop.call_at(std::numeric_limits<double>::infinity(), [] {}); });
  expect_contains(at, "call_at");
  expect_contains(at, "inf");
  std::string slow =
      message_of<std::invalid_argument>([&] { loop.set_slow_callback_duration(-1.0); });
  expect_contains(slow, "set_slow_callback_duration");
}

TEST_F(LoopTest, ForeignHandleCloseMessageNamesTheRule) {
  uv_timer_t foreign;
  ASSERT_EQ(uv_timer_init(loop.uv_loop(), &foreign), 0);
  std::string message = message_of<RuntimeError>([&] { loop.close(); });
  expect_contains(message, "eddy::Loop::close");
  expect_contains(message, "1 libuv handle");
  expect_contains(message, "close them first");
  uv_close(reinterpret_cast<uv_handle_t*>(&foreign), nullptr);
  loop.close();
}

}  // namespace
}  // namespace eddy
