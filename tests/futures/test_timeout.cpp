// Tests for eddy::timeout / eddy::timeout_at / eddy::Timeout
// (eddy/timeout.hpp): asyncio.timeout's rules in virtual time, and the
// nesting rules of cancellation scopes ("Cancellation" in eddy/task.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/gather.hpp>
#include <eddy/timeout.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using namespace std::chrono_literals;

class TimeoutTest : public testing::LoopTest {
 protected:
  /// Runs the loop for `seconds` of virtual time.
  void run_for(double seconds) {
    loop.call_later(seconds, [this] { loop.stop(); });
    loop.run_forever();
  }
};

/// The virtual time since `start`, in the running task's loop.
double since(double start) {
  return get_running_loop().time() - start;
}

/// Cancels the running task from a callback at loop time `when`.
void cancel_me_at(double when, std::string message) {
  get_running_loop().call_at(when,
                             [me = current_task(), message]() mutable { me.cancel(message); });
}

/// A task that sleeps `delay`, ignoring (and counting) any cancellation, then
/// returns `value`.
Task<int> ignore_cancel(double delay, int value, int& cancels) {
  double end = get_running_loop().time() + delay;
  while (get_running_loop().time() < end) {
    try {
      co_await sleep(end - get_running_loop().time());
    } catch (const CancelledError&) {
      ++cancels;
    }
  }
  co_return value;
}

/// Sleeps `delay`, then returns `value`.
Task<int> work_for(double delay, int value) {
  co_await sleep(delay);
  co_return value;
}

/// Awaits, within timeout(limit), a gather (or gather_settled) of `child`.
Task<> gather_within(double limit, Task<int> child, bool settled = false) {
  co_await timeout(limit, [&child, settled](Timeout&) -> Task<> {
    std::vector<Task<int>> children;
    children.push_back(std::move(child));
    if (settled) {
      co_await gather_settled(std::move(children));
    } else {
      co_await gather(std::move(children));
    }
  });
}

// ------------------------------------------------------------------ in time, and not

TEST_F(TimeoutTest, ReturnsTheBlockResultWhenItFinishesInTime) {
  auto body = []() -> Task<int> {
    co_return co_await timeout(2.0, [](Timeout&) -> Task<int> {
      co_await sleep(1);
      co_return 42;
    });
  };
  EXPECT_EQ(loop.run_until_complete(body()), 42);
  EXPECT_EQ(loop.stats().timers, 0u);  // the deadline's timer went with the block
}

TEST_F(TimeoutTest, ThrowsTimeoutErrorWhenTheDeadlinePasses) {
  double start = loop.time();
  bool expired = false;
  auto body = [](bool& expired_out) -> Task<> {
    co_await timeout(1.5, [&expired_out](Timeout& t) -> Task<> {
      EXPECT_FALSE(t.expired());
      try {
        co_await sleep(10);
      } catch (...) {
        expired_out = t.expired();
        throw;
      }
      ADD_FAILURE() << "the sleep outlived the deadline";
    });
  };
  EXPECT_THROW(loop.run_until_complete(body(expired)), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 1.5);
  EXPECT_TRUE(expired);
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(TimeoutTest, TheBlockSeesCancelledErrorFromItsOwnScope) {
  const void* origin = nullptr;
  const void* scope = nullptr;
  auto body = [](const void*& origin_out, const void*& scope_out) -> Task<> {
    co_await timeout(1.0, [&](Timeout& t) -> Task<> {
      scope_out = &t.scope();
      try {
        co_await sleep(10);
      } catch (const CancelledError& e) {
        origin_out = e.origin();
        throw;
      }
    });
  };
  EXPECT_THROW(loop.run_until_complete(body(origin, scope)), TimeoutError);
  ASSERT_NE(scope, nullptr);
  EXPECT_EQ(origin, scope);
}

TEST_F(TimeoutTest, ABlockThatCatchesTheCancelAndReturnsGivesItsValue) {
  auto body = []() -> Task<int> {
    double start = get_running_loop().time();
    int v = co_await timeout(1.0, [](Timeout& t) -> Task<int> {
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
      }
      EXPECT_TRUE(t.expired());
      co_await sleep(1);  // the request was delivered once: nothing more is thrown
      co_return 7;
    });
    EXPECT_DOUBLE_EQ(since(start), 2.0);
    co_return v;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 7);
}

TEST_F(TimeoutTest, WhatTheBlockAwaitsMayFinishDespiteTheCancel) {
  // The block awaits a task that ignores cancellation: its result stands.
  int cancels = 0;
  auto body = [](int& count) -> Task<int> {
    co_return co_await timeout(1.0, [&count](Timeout& t) -> Task<int> {
      int v = co_await create_task(ignore_cancel(3, 5, count));
      EXPECT_TRUE(t.expired());
      co_return v;
    });
  };
  EXPECT_EQ(loop.run_until_complete(body(cancels)), 5);
  EXPECT_EQ(cancels, 1);
}

TEST_F(TimeoutTest, AcceptsATaskAsTheBlock) {
  auto work = [](double delay) -> Task<int> {
    co_await sleep(delay);
    co_return 3;
  };
  auto body = [&work]() -> Task<int> {
    int v = co_await timeout(2.0, work(1));
    EXPECT_THROW(co_await timeout(2.0, work(5)), TimeoutError);
    co_return v;
  };
  EXPECT_EQ(loop.run_until_complete(body()), 3);
}

TEST_F(TimeoutTest, AcceptsChronoDurations) {
  auto body = []() -> Task<double> {
    double start = get_running_loop().time();
    EXPECT_THROW(co_await timeout(250ms, [](Timeout&) -> Task<> { co_await sleep(1); }),
                 TimeoutError);
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 0.25);
}

TEST_F(TimeoutTest, TheDeadlineCountsFromWhenTheBlockStarts) {
  auto body = []() -> Task<> {
    double start = get_running_loop().time();
    Task<> later = timeout(2.0, [start](Timeout& t) -> Task<> {
      EXPECT_DOUBLE_EQ(t.when().value() - start, 3.0);
      co_return;
    });
    co_await sleep(1);
    co_await std::move(later);
  };
  loop.run_until_complete(body());
}

TEST_F(TimeoutTest, ANaNDelayThrowsInvalidArgumentAndLeavesNoScopeBehind) {
  auto body = []() -> Task<> {
    EXPECT_THROW(co_await timeout(std::nan(""), [](Timeout&) -> Task<> { co_return; }),
                 std::invalid_argument);
    // A later timeout whose request has to wait for the task to resume looks
    // through the task's scopes: only live ones may be there (ASan checks).
    Loop& l = get_running_loop();
    co_await timeout(std::nullopt, [&l](Timeout& t) -> Task<> {
      Future<void> wake = l.create_future();
      double due = l.time() + 1.0;
      l.call_at(due, [wake]() mutable { wake.set_result(); });
      t.reschedule(due);  // fires after `wake` is set, before the task resumes
      co_await wake;
      ADD_FAILURE() << "the deadline was lost";
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
}

// ------------------------------------------------------------------ Timeout::reschedule

TEST_F(TimeoutTest, RescheduleLaterGivesTheBlockMoreTime) {
  auto body = []() -> Task<double> {
    double start = get_running_loop().time();
    co_await timeout(1.0, [](Timeout& t) -> Task<> {
      co_await sleep(0.5);
      t.reschedule(t.when().value() + 2.0);
      co_await sleep(2.0);  // ends at 2.5, before the new deadline at 3.0
      EXPECT_FALSE(t.expired());
    });
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 2.5);
}

TEST_F(TimeoutTest, RescheduleEarlierExpiresSooner) {
  double start = loop.time();
  auto body = []() -> Task<> {
    co_await timeout(10.0, [](Timeout& t) -> Task<> {
      co_await sleep(0.5);
      t.reschedule(get_running_loop().time() + 1.0);
      EXPECT_DOUBLE_EQ(t.when().value(), get_running_loop().time() + 1.0);
      co_await sleep(5);
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 1.5);
}

TEST_F(TimeoutTest, RescheduleToAPastTimeExpiresAtTheNextAwait) {
  double start = loop.time();
  auto body = []() -> Task<> {
    co_await timeout(10.0, [](Timeout& t) -> Task<> {
      co_await sleep(1);
      t.reschedule(0.0);
      co_await sleep(5);
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 1.0);
}

TEST_F(TimeoutTest, RescheduleToNulloptRemovesTheDeadline) {
  auto body = []() -> Task<double> {
    double start = get_running_loop().time();
    co_await timeout(1.0, [](Timeout& t) -> Task<> {
      t.reschedule(std::nullopt);
      EXPECT_EQ(t.when(), std::nullopt);
      co_await sleep(100);
      EXPECT_FALSE(t.expired());
    });
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 100.0);
}

TEST_F(TimeoutTest, RescheduleToNaNThrowsAndKeepsTheDeadline) {
  double start = loop.time();
  auto body = []() -> Task<> {
    co_await timeout(1.0, [](Timeout& t) -> Task<> {
      std::optional<double> before = t.when();
      EXPECT_THROW(t.reschedule(std::nan("")), std::invalid_argument);
      EXPECT_EQ(t.when(), before);
      co_await sleep(10);
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 1.0);
}

TEST_F(TimeoutTest, RescheduleAfterExpiryThrowsRuntimeError) {
  auto body = []() -> Task<int> {
    co_return co_await timeout(1.0, [](Timeout& t) -> Task<int> {
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
      }
      EXPECT_TRUE(t.expired());
      EXPECT_THROW(t.reschedule(get_running_loop().time() + 10), RuntimeError);
      EXPECT_THROW(t.reschedule(std::nullopt), RuntimeError);
      co_return 1;
    });
  };
  EXPECT_EQ(loop.run_until_complete(body()), 1);
}

TEST_F(TimeoutTest, ExpiredIsFalseUntilTheDeadlinePasses) {
  auto body = []() -> Task<> {
    co_await timeout(2.0, [](Timeout& t) -> Task<> {
      co_await sleep(1.9);
      EXPECT_FALSE(t.expired());
      try {
        co_await sleep(1);
      } catch (const CancelledError&) {
        EXPECT_TRUE(t.expired());
        throw;
      }
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
}

// ------------------------------------------------------------------ no deadline, absolute
// deadlines

TEST_F(TimeoutTest, NulloptNeverExpires) {
  auto body = []() -> Task<double> {
    double start = get_running_loop().time();
    int v = co_await timeout(std::nullopt, [](Timeout& t) -> Task<int> {
      EXPECT_EQ(t.when(), std::nullopt);
      co_await sleep(1e6);
      EXPECT_FALSE(t.expired());
      co_return 1;
    });
    EXPECT_EQ(v, 1);
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1e6);
}

TEST_F(TimeoutTest, AnInfiniteDelayNeverExpiresAndRescheduleToInfinityRemovesTheDeadline) {
  // asyncio schedules call_at(inf), which never fires; eddy sets no timer.
  auto body = []() -> Task<double> {
    const double inf = std::numeric_limits<double>::infinity();
    double start = get_running_loop().time();
    co_await timeout(inf, [inf](Timeout& t) -> Task<> {
      EXPECT_EQ(t.when(), inf);
      co_await sleep(1e6);
      t.reschedule(get_running_loop().time() + 1);
      t.reschedule(inf);
      co_await sleep(10);
      EXPECT_FALSE(t.expired());
    });
    co_await timeout_at(inf, [](Timeout&) -> Task<> { co_await sleep(1); });
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1e6 + 11);
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(TimeoutTest, MinusInfinityExpiresAtTheFirstAwait) {
  auto body = []() -> Task<> {
    co_await timeout(-std::numeric_limits<double>::infinity(),
                     [](Timeout&) -> Task<> { co_await sleep(1); });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
}

TEST_F(TimeoutTest, TimeoutAtUsesAnAbsoluteDeadline) {
  double deadline = loop.time() + 2.0;
  auto body = [](double when) -> Task<> {
    co_await sleep(0.5);  // an absolute deadline does not move with the start
    co_await timeout_at(when, [when](Timeout& t) -> Task<> {
      EXPECT_EQ(t.when(), when);
      co_await sleep(10);
    });
  };
  EXPECT_THROW(loop.run_until_complete(body(deadline)), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time(), deadline);
}

TEST_F(TimeoutTest, TimeoutAtInTimeReturnsTheValue) {
  auto work = []() -> Task<int> {
    co_await sleep(1);
    co_return 9;
  };
  auto body = [&work](double when) -> Task<int> { co_return co_await timeout_at(when, work()); };
  EXPECT_EQ(loop.run_until_complete(body(loop.time() + 2)), 9);
}

TEST_F(TimeoutTest, TimeoutAtAlreadyPastExpiresAtTheFirstAwait) {
  double start = loop.time();
  auto body = [](double when) -> Task<> {
    co_await sleep(5);
    co_await timeout_at(when, [](Timeout&) -> Task<> { co_await sleep(10); });
  };
  EXPECT_THROW(loop.run_until_complete(body(start + 1)), TimeoutError);
  EXPECT_DOUBLE_EQ(loop.time() - start, 5.0);
}

TEST_F(TimeoutTest, ADeadlineAlreadyPastExpiresEvenASleepZero) {
  // asyncio: `async with timeout(-1): await sleep(0)` raises TimeoutError;
  // the expiry is queued before the block's own yield.
  auto body = []() -> Task<> {
    co_await timeout(-1.0, [](Timeout&) -> Task<> { co_await sleep(0); });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  auto at = [](double when) -> Task<> {
    co_await timeout_at(when, [](Timeout&) -> Task<> { co_await sleep(0); });
  };
  EXPECT_THROW(loop.run_until_complete(at(loop.time())), TimeoutError);
}

TEST_F(TimeoutTest, ABlockThatNeverYieldsIsNotCutShortByAPastDeadline) {
  auto body = []() -> Task<int> {
    co_return co_await timeout(-1.0, [](Timeout&) -> Task<int> { co_return 4; });
  };
  EXPECT_EQ(loop.run_until_complete(body()), 4);
}

// ------------------------------------------------------------------ nesting (rules 1 and 2)

TEST_F(TimeoutTest, InnerExpiresFirstAndItsTimeoutErrorIsCaughtInsideTheOuter) {
  auto body = []() -> Task<double> {
    double start = get_running_loop().time();
    co_await timeout(5.0, [](Timeout& outer) -> Task<> {
      bool caught = false;
      try {
        co_await timeout(1.0, [](Timeout&) -> Task<> { co_await sleep(10); });
      } catch (const TimeoutError&) {
        caught = true;
      }
      EXPECT_TRUE(caught);
      EXPECT_FALSE(outer.expired());
      co_await sleep(1);  // the outer scope goes on, undisturbed
    });
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 2.0);
}

TEST_F(TimeoutTest, OuterExpiresFirstAndItsTimeoutErrorPassesThroughTheInner) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    co_await timeout(1.0, [&out](Timeout& outer) -> Task<> {
      try {
        co_await timeout(5.0, [&](Timeout& inner) -> Task<> {
          try {
            co_await sleep(10);
          } catch (const CancelledError& e) {
            out.push_back(e.origin() == &outer.scope() ? "outer's cancel" : "other cancel");
            EXPECT_FALSE(inner.expired());
            throw;
          }
        });
      } catch (const TimeoutError&) {
        out.push_back("inner converted it");
      } catch (const CancelledError&) {
        out.push_back("passed through");
        throw;
      }
    });
  };
  EXPECT_THROW(loop.run_until_complete(body(log)), TimeoutError);
  EXPECT_EQ(log, (std::vector<std::string>{"outer's cancel", "passed through"}));
}

/// An outer and an inner timeout that are due at the same moment; the inner
/// block catches the inner TimeoutError and would go on, so the outer
/// deadline matters. `inner_first` makes the inner's timer fire first.
Task<std::vector<std::string>> both_due_at_once(bool inner_first) {
  std::vector<std::string> log;
  double due = get_running_loop().time() + 1.0;
  co_await timeout_at(inner_first ? std::nullopt : std::optional<double>(due),
                      [&](Timeout& outer) -> Task<> {
                        try {
                          co_await timeout_at(due, [&](Timeout&) -> Task<> {
                            if (inner_first) outer.reschedule(due);  // a timer after the inner's
                            try {
                              co_await sleep(10);
                            } catch (const CancelledError& e) {
                              log.push_back(e.origin() == &outer.scope() ? "outer" : "inner");
                              throw;
                            }
                          });
                        } catch (const TimeoutError&) {
                          log.push_back("inner TimeoutError");
                        }
                        co_await sleep(10);
                        log.push_back("outer block went past its deadline");
                      });
  co_return log;
}

TEST_F(TimeoutTest, BothDueAtOnceTheOutermostWins) {
  auto body = []() -> Task<> { EXPECT_THROW(co_await both_due_at_once(false), TimeoutError); };
  loop.run_until_complete(body());
}

TEST_F(TimeoutTest, BothDueAtOnceTheOutermostWinsWhicheverTimerFiresFirst) {
  auto body = []() -> Task<> { EXPECT_THROW(co_await both_due_at_once(true), TimeoutError); };
  loop.run_until_complete(body());
}

TEST_F(TimeoutTest, TheInnerBlockSeesTheOutermostCancelWhenBothAreDue) {
  for (bool inner_first : {false, true}) {
    SCOPED_TRACE(inner_first ? "inner timer first" : "outer timer first");
    std::vector<std::string> seen;
    auto body = [](bool first, std::vector<std::string>& out) -> Task<> {
      double due = get_running_loop().time() + 1.0;
      co_await timeout_at(first ? std::nullopt : std::optional<double>(due),
                          [&](Timeout& outer) -> Task<> {
                            co_await timeout_at(due, [&](Timeout&) -> Task<> {
                              if (first) outer.reschedule(due);
                              try {
                                co_await sleep(10);
                              } catch (const CancelledError& e) {
                                out.push_back(e.origin() == &outer.scope() ? "outer" : "inner");
                                throw;
                              }
                            });
                          });
    };
    EXPECT_THROW(loop.run_until_complete(body(inner_first, seen)), TimeoutError);
    EXPECT_EQ(seen, std::vector<std::string>{"outer"});
  }
}

// ------------------------------------------------------------------ cancel from outside (rules 2
// and 3)

// A gather cancelled for the scope's request ends finished with a
// CancelledError (asyncio's _GatheringFuture), not cancelled: the scope still
// owns that cancellation and converts it.
TEST_F(TimeoutTest, ADeadlineWhileAwaitingAGatherThrowsTimeoutErrorAndCancelsTheChildren) {
  std::vector<std::string> reports;  // the gather's CancelledError was seen: never reported
  loop.set_exception_handler(
      [&reports](Loop&, const ExceptionContext& context) { reports.push_back(context.message); });
  std::vector<Future<int>> children;
  double start = loop.time();
  auto body = [](std::vector<Future<int>>& out) -> Task<> {
    co_await timeout(1.0, [&out](Timeout& t) -> Task<> {
      out.push_back(create_task(work_for(5, 1)));
      out.push_back(create_task(work_for(6, 2)));
      try {
        co_await gather(std::vector<Future<int>>(out));
      } catch (const CancelledError& e) {
        EXPECT_TRUE(t.expired());
        throw;
      }
    });
  };
  Future<void> task = loop.create_task(body(children));
  EXPECT_THROW(loop.run_until_complete(task), TimeoutError);
  EXPECT_FALSE(task.cancelled());  // it failed with TimeoutError; nobody cancelled it
  EXPECT_DOUBLE_EQ(loop.time() - start, 1.0);
  ASSERT_EQ(children.size(), 2u);
  EXPECT_TRUE(children[0].cancelled());
  EXPECT_TRUE(children[1].cancelled());
  EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST_F(TimeoutTest, ADeadlineWhileAwaitingAGatherWhoseChildrenReturnAnywayThrowsTimeoutError) {
  // The children answer the cancel with values: the gather still ends with a
  // CancelledError (asyncio's rule), which the scope converts.
  int cancels = 0;
  EXPECT_THROW(loop.run_until_complete(gather_within(1.0, ignore_cancel(3, 5, cancels))),
               TimeoutError);
  EXPECT_EQ(cancels, 1);
}

TEST_F(TimeoutTest, ADeadlineWhileAwaitingASettledGatherThrowsTimeoutError) {
  EXPECT_THROW(loop.run_until_complete(gather_within(1.0, work_for(5, 1), true)), TimeoutError);
}

TEST_F(TimeoutTest, ACancelFromOutsideWhileAwaitingAGatherIsCancelledError) {
  Future<void> task = loop.create_task(gather_within(5.0, work_for(10, 1)));
  loop.call_later(1, [&task] { task.cancel("outside"); });
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "outside");
  }
  EXPECT_TRUE(task.cancelled());
}

TEST_F(TimeoutTest, ACancelFromOutsideIsCancelledErrorNotTimeoutError) {
  std::string message;
  auto body = [](std::string& out) -> Task<> {
    try {
      co_await timeout(5.0, [](Timeout& t) -> Task<> {
        try {
          co_await sleep(10);
        } catch (const CancelledError& e) {
          EXPECT_EQ(e.origin(), nullptr);
          EXPECT_FALSE(t.expired());
          throw;
        }
      });
    } catch (const CancelledError& e) {
      out = e.message();
      throw;
    }
  };
  Future<void> task = loop.create_task(body(message));
  loop.call_later(1, [&task] { task.cancel("outside"); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(message, "outside");
  EXPECT_EQ(loop.stats().timers, 0u);
}

TEST_F(TimeoutTest, ACancelArrivingAfterTheDeadlineFiredButBeforeTheTaskResumedWins) {
  std::string message;
  auto body = [](std::string& out) -> Task<> {
    try {
      co_await timeout(1.0, [](Timeout& t) -> Task<> {
        cancel_me_at(t.when().value(), "outside");  // a timer after the deadline's
        co_await sleep(10);
      });
    } catch (const CancelledError& e) {
      out = e.message();
      throw;
    }
  };
  EXPECT_THROW(loop.run_until_complete(body(message)), CancelledError);
  EXPECT_EQ(message, "outside");
}

TEST_F(TimeoutTest, ACancelArrivingJustBeforeTheDeadlineWins) {
  std::string message;
  auto body = [](std::string& out) -> Task<> {
    double due = get_running_loop().time() + 1.0;
    cancel_me_at(due, "outside");  // a timer before the deadline's
    try {
      co_await timeout_at(due, [](Timeout&) -> Task<> { co_await sleep(10); });
    } catch (const CancelledError& e) {
      out = e.message();
      throw;
    }
  };
  EXPECT_THROW(loop.run_until_complete(body(message)), CancelledError);
  EXPECT_EQ(message, "outside");
}

TEST_F(TimeoutTest, ACancelPendingWhenTheScopeConvertsItsOwnCancelWins) {
  // Rule 3: the block catches its scope's CancelledError, the task is then
  // cancelled (here by itself), and the block lets the timeout's cancel go.
  auto body = []() -> Task<> {
    co_await timeout(1.0, [](Timeout& t) -> Task<> {
      try {
        co_await sleep(10);
      } catch (const CancelledError& e) {
        EXPECT_EQ(e.origin(), &t.scope());
        current_task().cancel("self");
        throw;
      }
    });
  };
  Future<void> task = loop.create_task(body());
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  try {
    task.result();
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "self");
  }
}

TEST_F(TimeoutTest, ACancelAndADeadlineDueAtOneAwaitAreAnsweredByOneCancelledError) {
  // asyncio throws one CancelledError for every cancel() that came before
  // the task resumed: the deadline's request is answered by the task's own
  // cancel, and the block's next await is not cut short.
  auto body = []() -> Task<double> {
    Loop& l = get_running_loop();
    double start = l.time();
    bool expired = false;
    co_await timeout(std::nullopt, [&](Timeout& t) -> Task<> {
      t.reschedule(l.time() - 1);  // expires through call_soon
      current_task().cancel("outside");
      try {
        co_await sleep(0);
        ADD_FAILURE() << "the await should have thrown";
      } catch (const CancelledError& e) {
        EXPECT_EQ(e.origin(), nullptr);
        EXPECT_EQ(e.message(), "outside");
      }
      co_await sleep(1);  // whole
      expired = t.expired();
    });
    EXPECT_TRUE(expired);
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1.0);
}

TEST_F(TimeoutTest, TheCleanupOfACancelFromOutsideRunsToItsEndWhenTheDeadlineFollowsIt) {
  // A cancel and the deadline at one moment, the cancel's timer first. The
  // block cleans up, then lets the CancelledError go: the task ends
  // cancelled, as in asyncio, not with TimeoutError.
  bool cleaned_up = false;
  auto body = [](bool& cleaned) -> Task<> {
    double due = get_running_loop().time() + 1.0;
    cancel_me_at(due, "outside");  // a timer before the deadline's
    co_await timeout_at(due, [&](Timeout&) -> Task<> {
      std::exception_ptr cancel;
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
        cancel = std::current_exception();
      }
      co_await sleep(0.5);  // not cut short by the deadline's request
      cleaned = true;
      std::rethrow_exception(cancel);
    });
  };
  Future<void> task = loop.create_task(body(cleaned_up));
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(cleaned_up);
  EXPECT_TRUE(task.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 1.5);
}

TEST_F(TimeoutTest, ACancelledTaskThatCatchesTheCancelCanGoOn) {
  auto body = []() -> Task<int> {
    try {
      co_await timeout(5.0, [](Timeout&) -> Task<> { co_await sleep(10); });
    } catch (const CancelledError&) {
    }
    co_await sleep(1);
    co_return 2;
  };
  Future<int> task = loop.create_task(body());
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_EQ(loop.run_until_complete(task), 2);
}

// ------------------------------------------------------------------ after the scope (rule 4)

TEST_F(TimeoutTest, NoCancellationLeaksPastTheScope) {
  auto body = []() -> Task<double> {
    double start = get_running_loop().time();
    // Expired, caught inside, returned normally.
    co_await timeout(1.0, [](Timeout&) -> Task<> {
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
      }
    });
    // Expired while awaiting a task that ignored the cancel.
    int cancels = 0;
    co_await timeout(
        1.0, [&](Timeout&) -> Task<> { co_await create_task(ignore_cancel(2, 0, cancels)); });
    EXPECT_EQ(cancels, 1);
    // Expired, TimeoutError caught outside.
    try {
      co_await timeout(1.0, [](Timeout&) -> Task<> { co_await sleep(10); });
    } catch (const TimeoutError&) {
    }
    co_await sleep(5);  // whole: nothing left over from the scopes above
    co_await sleep(0);
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1 + 2 + 1 + 5);
}

TEST_F(TimeoutTest, ARequestThatWasNotDeliveredIsWithdrawnWithTheScope) {
  // The deadline and a cancel from outside both fall due while the block
  // waits on a future that is already done: the cancel is thrown, and the
  // deadline's request, never delivered, leaves with the scope.
  auto body = []() -> Task<double> {
    Loop& l = get_running_loop();
    double start = l.time();
    try {
      co_await timeout(std::nullopt, [&](Timeout& t) -> Task<> {
        Future<void> wake = l.create_future();
        double due = l.time() + 1.0;
        l.call_at(due, [wake]() mutable { wake.set_result(); });
        t.reschedule(due);
        cancel_me_at(due, "outside");
        co_await wake;
        ADD_FAILURE() << "the await should have thrown";
      });
    } catch (const CancelledError& e) {
      EXPECT_EQ(e.origin(), nullptr);
      EXPECT_EQ(e.message(), "outside");
    }
    co_await sleep(2);
    co_await sleep(0);
    co_return since(start);
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 3.0);
}

// ------------------------------------------------------------------ asyncio's scenarios

// test_foreign_exception_passed: an exception from the block passes unchanged.
TEST_F(TimeoutTest, AnExceptionFromTheBlockPassesThroughUnexpired) {
  bool expired = true;
  auto body = [](bool& out) -> Task<> {
    co_await timeout(0.01, [&out](Timeout& t) -> Task<> {
      out = t.expired();
      throw std::logic_error("key error");
      co_return;
    });
  };
  EXPECT_THROW(loop.run_until_complete(body(expired)), std::logic_error);
  EXPECT_FALSE(expired);
}

// test_foreign_exception_on_timeout: an exception thrown by the block's
// cleanup after the deadline replaces the TimeoutError.
TEST_F(TimeoutTest, AnExceptionFromTheCleanupAfterTheDeadlineWinsOverTimeoutError) {
  auto crash = []() -> Task<> {
    try {
      co_await sleep(1);
    } catch (...) {
    }
    throw std::domain_error("division by zero");
  };
  auto body = [&crash]() -> Task<> {
    co_await timeout(0.01, [&crash](Timeout&) -> Task<> { co_await crash(); });
  };
  EXPECT_THROW(loop.run_until_complete(body()), std::domain_error);
  EXPECT_DOUBLE_EQ(loop.time(), 0.01);
}

// test_foreign_cancel_doesnt_timeout_if_not_expired
TEST_F(TimeoutTest, ATaskThatCancelsItselfInTheBlockGetsCancelledErrorUnexpired) {
  bool expired = true;
  auto body = [](bool& out) -> Task<> {
    co_await timeout(10, [&out](Timeout& t) -> Task<> {
      current_task().cancel();
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
        out = t.expired();
        throw;
      }
    });
  };
  Future<void> task = loop.create_task(body(expired));
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_FALSE(expired);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_outer_task_is_not_cancelled: a task that caught the TimeoutError ends
// normally.
TEST_F(TimeoutTest, ATaskThatCatchesTheTimeoutErrorIsNotCancelled) {
  auto outer = []() -> Task<> {
    EXPECT_THROW(co_await timeout(0.001, [](Timeout&) -> Task<> { co_await sleep(10); }),
                 TimeoutError);
  };
  Future<void> task = loop.create_task(outer());
  loop.run_until_complete(task);
  EXPECT_TRUE(task.done());
  EXPECT_FALSE(task.cancelled());
}

// test_nested_timeouts: two scopes with one deadline: only the outer raises
// TimeoutError, the inner block sees CancelledError, both have expired.
TEST_F(TimeoutTest, TwoScopesWithOneDeadlineBothExpireAndOnlyTheOuterRaises) {
  bool inner_cancelled = false, inner_expired = false, outer_expired = false;
  auto body = [&]() -> Task<> {
    double deadline = get_running_loop().time() + 0.01;
    try {
      co_await timeout_at(deadline, [&](Timeout& cm1) -> Task<> {
        try {
          co_await timeout_at(deadline, [&](Timeout& cm2) -> Task<> {
            try {
              co_await sleep(10);
            } catch (const CancelledError&) {
              inner_expired = cm2.expired();
              outer_expired = cm1.expired();
              throw;
            }
          });
        } catch (const CancelledError&) {
          inner_cancelled = true;
          throw;
        }
      });
    } catch (const TimeoutError&) {
      co_return;
    }
    ADD_FAILURE() << "no TimeoutError";
  };
  loop.run_until_complete(body());
  EXPECT_TRUE(inner_cancelled);
  EXPECT_TRUE(inner_expired);
  EXPECT_TRUE(outer_expired);
}

// test_timeout_zero: timeout(0) expires at the first await; when() is the start.
TEST_F(TimeoutTest, AZeroTimeoutExpiresAtTheFirstAwait) {
  std::optional<double> when;
  bool expired = false;
  auto body = [&]() -> Task<> {
    co_await timeout(0, [&](Timeout& cm) -> Task<> {
      when = cm.when();
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
        expired = cm.expired();
        throw;
      }
    });
  };
  auto pause = []() -> Task<> { co_await sleep(0.5); };
  loop.run_until_complete(pause());
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_TRUE(expired);
  ASSERT_TRUE(when.has_value());
  EXPECT_DOUBLE_EQ(*when, 0.5);
  EXPECT_DOUBLE_EQ(loop.time(), 0.5);
}

// test_reschedule: another task moves the deadline, then removes it, then
// cancels the task: CancelledError, and the scope never expired.
TEST_F(TimeoutTest, AnotherTaskMayRescheduleTheDeadlineAndThenCancel) {
  Future<Timeout*> entered = loop.create_future<Timeout*>();
  bool expired = true;
  double deadline1 = loop.time() + 10;
  double deadline2 = deadline1 + 20;
  auto f = [&]() -> Task<> {
    co_await timeout_at(deadline1, [&](Timeout& cm) -> Task<> {
      entered.set_result(&cm);
      try {
        co_await sleep(50);
      } catch (const CancelledError&) {
        expired = cm.expired();
        throw;
      }
    });
  };
  auto main = [&]() -> Task<> {
    Future<void> task = create_task(f());
    Timeout* cm = co_await entered;
    EXPECT_EQ(cm->when(), deadline1);
    cm->reschedule(deadline2);
    EXPECT_EQ(cm->when(), deadline2);
    cm->reschedule(std::nullopt);
    EXPECT_EQ(cm->when(), std::nullopt);
    task.cancel();
    EXPECT_THROW(co_await task, CancelledError);
  };
  loop.run_until_complete(main());
  EXPECT_FALSE(expired);
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// test_nested_timeout_in_finally: after its deadline, the block's cleanup
// runs a timeout of its own, which expires and raises TimeoutError there;
// the outer one still ends in TimeoutError.
TEST_F(TimeoutTest, ATimeoutInTheCleanupOfAnExpiredBlockWorks) {
  bool inner_timed_out = false;
  auto body = [&]() -> Task<> {
    co_await timeout(0.01, [&](Timeout&) -> Task<> {
      std::exception_ptr cancel;
      try {
        co_await sleep(1);
      } catch (const CancelledError&) {
        cancel = std::current_exception();
      }
      try {
        co_await timeout(0.01, [](Timeout&) -> Task<> { co_await sleep(10); });
      } catch (const TimeoutError&) {
        inner_timed_out = true;
      }
      if (cancel) std::rethrow_exception(cancel);
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_TRUE(inner_timed_out);
  EXPECT_DOUBLE_EQ(loop.time(), 0.02);
}

// test_timeout_after_cancellation: a task that caught its cancel can still
// time out in a later scope.
TEST_F(TimeoutTest, ATaskThatCaughtItsCancelCanTimeOutLater) {
  auto body = []() -> Task<> {
    try {
      current_task().cancel();
      co_await sleep(1);
    } catch (const CancelledError&) {
    }
    EXPECT_THROW(co_await timeout(0.0, [](Timeout&) -> Task<> { co_await sleep(1); }),
                 TimeoutError);
  };
  Future<void> task = loop.create_task(body());
  loop.run_until_complete(task);
  EXPECT_FALSE(task.cancelled());
}

// test_cancel_in_timeout_after_cancellation
TEST_F(TimeoutTest, ATaskThatCaughtItsCancelAndCancelsItselfAgainInAScopeGetsCancelledError) {
  auto body = []() -> Task<> {
    try {
      current_task().cancel();
      co_await sleep(1);
    } catch (const CancelledError&) {
    }
    EXPECT_THROW(co_await timeout(1.0,
                                  [](Timeout&) -> Task<> {
                                    current_task().cancel();
                                    co_await sleep(2);
                                  }),
                 CancelledError);
  };
  Future<void> task = loop.create_task(body());
  loop.run_until_complete(task);
  EXPECT_FALSE(task.cancelled());
  EXPECT_DOUBLE_EQ(loop.time(), 0.0);
}

// Timeout._on_timeout + Task.__step: the deadline falls due after the
// awaited future was set but before the task resumed (its wake-up is
// scheduled): the await throws CancelledError and the scope TimeoutError.
TEST_F(TimeoutTest, ADeadlineAfterTheAwaitedFutureIsDoneButBeforeTheTaskResumedTimesOut) {
  Future<int> f = loop.create_future<int>();
  bool got_value = false;
  auto body = [&]() -> Task<> {
    double due = get_running_loop().time() + 1.0;
    get_running_loop().call_at(due, [f]() mutable { f.set_result(1); });  // before the deadline
    co_await timeout_at(due, [&](Timeout&) -> Task<> {
      co_await f;
      got_value = true;
    });
  };
  EXPECT_THROW(loop.run_until_complete(body()), TimeoutError);
  EXPECT_FALSE(got_value);
}

// ------------------------------------------------------------------ asyncio 3.12 details

// asyncio.sleep's wake-up comes one iteration after its timer (a
// call_later that sets a future; Task.__wakeup goes through call_soon), so a
// deadline due at the same moment, whose timer comes after the sleep's, still
// cancels the block: Timeout._on_timeout -> Task.cancel finds the sleep's
// future done, sets _must_cancel, Task.__step throws CancelledError at the
// sleep, and Timeout.__aexit__ raises TimeoutError.
TEST_F(TimeoutTest, ADeadlineDueWithTheEndOfASleepStillTimesOutTheBlock) {
  Future<Timeout*> entered = loop.create_future<Timeout*>();
  std::vector<std::string> log;
  auto f = [&]() -> Task<> {
    co_await timeout(std::nullopt, [&](Timeout& cm) -> Task<> {
      entered.set_result(&cm);
      co_await sleep(1);
      log.push_back("went past the sleep");
    });
  };
  auto main = [&]() -> Task<> {
    Future<void> task = create_task(f());
    Timeout* cm = co_await entered;  // the block now sleeps until now + 1
    cm->reschedule(get_running_loop().time() + 1);
    EXPECT_THROW(co_await task, TimeoutError);
  };
  loop.run_until_complete(main());
  EXPECT_TRUE(log.empty());
}

// ------------------------------------------------------------------ lifetimes

Task<int> hold_and_sleep(Counted, double delay) {
  Counted local;
  co_await sleep(delay);
  co_return 1;
}

// A block that captures by value is named before the co_await: g++ 12
// destroys the captures of a closure created inside a co_await expression
// twice (a compiler bug; clang is right).
Task<int> in_timeout(Counted c, double limit, double delay) {
  auto block = [c](Timeout&) { return hold_and_sleep(c, 0); };
  int a = co_await timeout(limit, std::move(block));
  int b = co_await timeout(limit, hold_and_sleep(Counted{}, delay));
  co_return a + b;
}

TEST_F(TimeoutTest, FramesAndCapturesAreDestroyedOnceOnSuccess) {
  EXPECT_EQ(loop.run_until_complete(in_timeout(Counted{}, 5, 1)), 2);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_GT(Counted::constructed, 4);
}

TEST_F(TimeoutTest, FramesAndCapturesAreDestroyedOnceOnTimeout) {
  EXPECT_THROW(loop.run_until_complete(in_timeout(Counted{}, 1, 5)), TimeoutError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TimeoutTest, FramesAndCapturesAreDestroyedOnceOnException) {
  auto body = [](Counted c) -> Task<> {
    auto block = [c](Timeout&) -> Task<> {
      Counted local;
      co_await sleep(1);
      throw std::runtime_error("block failed");
    };
    co_await timeout(5.0, std::move(block));
  };
  EXPECT_THROW(loop.run_until_complete(body(Counted{})), std::runtime_error);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TimeoutTest, FramesAndCapturesAreDestroyedOnceOnCancel) {
  Future<int> task = loop.create_task(in_timeout(Counted{}, 5, 3));
  loop.call_later(2, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TimeoutTest, ClosingTheLoopDestroysTasksInATimeoutOnceAndCancelsTheirFutures) {
  Future<int> task = loop.create_task(in_timeout(Counted{}, 50, 10));
  run_for(1);
  EXPECT_GT(Counted::alive(), 0);
  EXPECT_EQ(loop.stats().timers, 2u);  // the deadline and the sleep
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(task.cancelled());
}

}  // namespace
}  // namespace eddy
