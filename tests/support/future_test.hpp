// Shared support for the futures/ suites: a LoopTest whose run() cannot hang,
// and futures that complete at given virtual times.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <eddy/future.hpp>

#include "loop_test.hpp"

namespace eddy::testing {

class FutureTest : public LoopTest {
 protected:
  /// loop.run_until_complete with a safety net: a test whose tasks would wait
  /// forever fails instead of hanging (the loop is stopped at a far virtual
  /// deadline, and run_until_complete throws).
  template <class A>
  auto run(A&& awaitable) {
    struct Guard {
      TimerHandle timer;
      ~Guard() { timer.cancel(); }
    } guard{loop.call_later(1e6, [this] {
      ADD_FAILURE() << "the test's tasks still waited after 1e6 virtual seconds";
      loop.stop();
    })};
    return loop.run_until_complete(std::forward<A>(awaitable));
  }
  /// A future that gets `v` at virtual time `t`.
  Future<int> value_at(double t, int v) {
    Future<int> f = loop.create_future<int>();
    loop.call_later(t, [f, v]() mutable { f.set_result(v); });
    return f;
  }
  /// A future that fails with runtime_error(what) at virtual time `t`.
  Future<int> failure_at(double t, std::string what) {
    Future<int> f = loop.create_future<int>();
    loop.call_later(t, [f, what]() mutable { f.set_exception(std::runtime_error(what)); });
    return f;
  }
};

}  // namespace eddy::testing
