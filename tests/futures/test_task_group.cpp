// Tests for eddy::task_group / eddy::TaskGroup (eddy/task_group.hpp):
// asyncio.TaskGroup's rules in virtual time, nesting with other scopes, and
// the lifetime of what children and blocks hold.
#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <eddy/gather.hpp>
#include <eddy/shield.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task_group.hpp>
#include <eddy/timeout.hpp>

#include "loop_test.hpp"

namespace eddy {
namespace {

using testing::Counted;
using testing::what_of;

class TaskGroupTest : public testing::LoopTest {
 protected:
  /// Runs the loop for `seconds` of virtual time.
  void run_for(double seconds) {
    loop.call_later(seconds, [this] { loop.stop(); });
    loop.run_forever();
  }
};

double now() {
  return get_running_loop().time();
}

Task<int> work(double delay, int value, Counted = {}) {
  Counted local;
  co_await sleep(delay);
  co_return value;
}

Task<int> fail_after(double delay, std::string message, Counted = {}) {
  co_await sleep(delay);
  throw std::runtime_error(message);
}

/// Sleeps `delay`; on a cancel, cleans up for `cleanup` seconds, records
/// `name` in `log`, and rethrows the CancelledError.
Task<int> slow_cleanup(double delay, double cleanup, std::string name,
                       std::vector<std::string>& log) {
  std::exception_ptr cancel;
  try {
    co_await sleep(delay);
    co_return 1;
  } catch (const CancelledError&) {
    cancel = std::current_exception();
  }
  co_await sleep(cleanup);
  log.push_back(name);
  std::rethrow_exception(cancel);
}

/// Sleeps `delay`; a cancel makes it fail with `message` instead.
Task<int> fail_when_cancelled(double delay, std::string message) {
  try {
    co_await sleep(delay);
  } catch (const CancelledError&) {
    throw std::runtime_error(message);
  }
  co_return 0;
}

/// The what() of each error a TaskGroupError carries.
std::vector<std::string> whats(const TaskGroupError& e) {
  std::vector<std::string> out;
  for (const std::exception_ptr& error : e.errors())
    out.push_back(what_of(error));
  return out;
}

/// Runs `task` and returns the errors of the TaskGroupError it must throw.
template <class T>
std::vector<std::string> group_errors(Loop& loop, Task<T> task) {
  try {
    loop.run_until_complete(std::move(task));
  } catch (const TaskGroupError& e) {
    return whats(e);
  }
  ADD_FAILURE() << "no TaskGroupError";
  return {};
}

// ------------------------------------------------------------------ waiting for children

TEST_F(TaskGroupTest, WaitsForEveryChild) {
  std::vector<Future<int>> children;
  auto body = [](std::vector<Future<int>>& out) -> Task<double> {
    double start = now();
    co_await task_group([&](TaskGroup& group) -> Task<> {
      out.push_back(group.create_task(work(2, 1)));
      out.push_back(group.create_task(work(3, 2)));
      out.push_back(group.create_task(work(1, 3)));
      EXPECT_EQ(group.pending(), 3u);
      co_return;  // the group waits here
    });
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(children)), 3.0);  // concurrently
  for (Future<int>& child : children)
    EXPECT_TRUE(child.done());
}

Task<Counted> counted_after(double delay) {
  co_await sleep(delay);
  co_return Counted{};
}

TEST_F(TaskGroupTest, AFinishedChildIsLetGoOfWhileTheGroupRuns) {
  // As asyncio's TaskGroup discards a child as it finishes: a long-lived
  // group (a child per connection) keeps only the children that still run,
  // not every finished child's state and result.
  auto body = []() -> Task<std::vector<int>> {
    std::vector<int> alive;
    co_await task_group([&](TaskGroup& group) -> Task<> {
      for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 100; ++i)
          (void)group.create_task(counted_after(0.5));  // nobody keeps the futures
        co_await sleep(1);
        alive.push_back(Counted::alive());
        alive.push_back(static_cast<int>(group.pending()));
      }
    });
    co_return alive;
  };
  EXPECT_EQ(loop.run_until_complete(body()), (std::vector<int>{0, 0, 0, 0}));
}

TEST_F(TaskGroupTest, ResultsComeThroughTheFuturesOfCreateTask) {
  auto body = []() -> Task<int> {
    Future<int> a, b;
    co_await task_group([&](TaskGroup& group) -> Task<> {
      a = group.create_task(work(1, 20));
      b = group.create_task(work(2, 22));
      EXPECT_EQ(co_await a, 20);  // the block may await a child
      co_return;
    });
    co_return a.result() + b.result();
  };
  EXPECT_EQ(loop.run_until_complete(body()), 42);
}

TEST_F(TaskGroupTest, ABlockThatReturnsAValueGivesItOnceTheChildrenAreDone) {
  auto body = []() -> Task<double> {
    double start = now();
    std::unique_ptr<int> p =
        co_await task_group([](TaskGroup& group) -> Task<std::unique_ptr<int>> {
          group.create_task(work(2, 0));
          co_return std::make_unique<int>(5);
        });
    EXPECT_EQ(*p, 5);
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 2.0);
}

TEST_F(TaskGroupTest, AGroupWithNoChildrenEndsWithItsBlock) {
  auto body = []() -> Task<double> {
    double start = now();
    int v = co_await task_group([](TaskGroup& group) -> Task<int> {
      EXPECT_EQ(group.pending(), 0u);
      co_await sleep(1);
      co_return 3;
    });
    EXPECT_EQ(v, 3);
    co_await task_group([](TaskGroup&) -> Task<> { co_return; });
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 1.0);
}

TEST_F(TaskGroupTest, ChildrenMayBeAddedWhileTheGroupWaitsAtTheEnd) {
  auto body = []() -> Task<double> {
    double start = now();
    co_await task_group([](TaskGroup& group) -> Task<> {
      auto spawner = [](TaskGroup& g) -> Task<int> {
        co_await sleep(1);
        g.create_task(work(2, 0));  // the block has returned; the group waits for it too
        co_return 0;
      };
      group.create_task(spawner(group));
      co_return;
    });
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body()), 3.0);
}

// ------------------------------------------------------------------ failures

TEST_F(TaskGroupTest, TheFirstFailureCancelsTheOtherChildren) {
  std::vector<Future<int>> others;
  auto body = [](std::vector<Future<int>>& out) -> Task<double> {
    double start = now();
    try {
      co_await task_group([&](TaskGroup& group) -> Task<> {
        out.push_back(group.create_task(work(10, 1)));
        group.create_task(fail_after(1, "first"));
        out.push_back(group.create_task(work(20, 2)));
        co_return;
      });
    } catch (const TaskGroupError& e) {
      EXPECT_EQ(whats(e), std::vector<std::string>{"first"});
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(others)), 1.0);
  for (Future<int>& f : others)
    EXPECT_TRUE(f.cancelled());
}

TEST_F(TaskGroupTest, TheFirstFailureCancelsTheBlocksCurrentAwait) {
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      group.create_task(fail_after(1, "child"));
      try {
        co_await sleep(10);
        out.push_back("slept");
      } catch (const CancelledError& e) {
        out.push_back(e.origin() != nullptr ? "cancelled by the group" : "cancelled");
        out.push_back("at " + std::to_string(static_cast<int>(now())));
        throw;
      }
    });
  };
  EXPECT_EQ(group_errors(loop, body(log)), std::vector<std::string>{"child"});
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled by the group", "at 1"}));
}

TEST_F(TaskGroupTest, AwaitingAFailingChildInTheBlockSeesTheGroupsCancel) {
  // As in asyncio: the group's cancel reaches the block before the child's
  // exception does, so the failure is carried once.
  std::string seen;
  auto body = [](std::string& out) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      Future<int> child = group.create_task(fail_after(1, "child"));
      try {
        co_await child;
      } catch (const CancelledError&) {
        out = "CancelledError";
        throw;
      } catch (const std::runtime_error&) {
        out = "runtime_error";
        throw;
      }
    });
  };
  EXPECT_EQ(group_errors(loop, body(seen)), std::vector<std::string>{"child"});
  EXPECT_EQ(seen, "CancelledError");
}

TEST_F(TaskGroupTest, TaskGroupErrorCarriesEveryChildFailureInOrder) {
  auto body = []() -> Task<> {
    co_await task_group([](TaskGroup& group) -> Task<> {
      group.create_task(fail_after(1, "a"));
      group.create_task(fail_after(1, "b"));            // at the same time
      group.create_task(fail_when_cancelled(10, "c"));  // while being cancelled
      group.create_task(work(10, 0));
      co_return;
    });
  };
  EXPECT_EQ(group_errors(loop, body()), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(TaskGroupTest, TheBlocksOwnErrorComesLast) {
  auto body = []() -> Task<> {
    co_await task_group([](TaskGroup& group) -> Task<> {
      group.create_task(fail_after(1, "child"));
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
      }
      throw std::runtime_error("block");
    });
  };
  EXPECT_EQ(group_errors(loop, body()), (std::vector<std::string>{"child", "block"}));
}

TEST_F(TaskGroupTest, AChildFailingAfterTheBlockReturnedStillCancelsTheOthers) {
  Future<int> other;
  auto body = [](Future<int>& sibling) -> Task<double> {
    double start = now();
    try {
      co_await task_group([&](TaskGroup& group) -> Task<> {
        group.create_task(fail_after(2, "late"));
        sibling = group.create_task(work(10, 0));
        co_return;
      });
    } catch (const TaskGroupError& e) {
      EXPECT_EQ(whats(e), std::vector<std::string>{"late"});
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(other)), 2.0);
  EXPECT_TRUE(other.cancelled());
}

TEST_F(TaskGroupTest, AChildCancelledOnItsOwnIsNotAFailure) {
  auto body = []() -> Task<int> {
    Future<int> kept;
    co_await task_group([&](TaskGroup& group) -> Task<> {
      Future<int> dropped = group.create_task(work(10, 1));
      kept = group.create_task(work(2, 2));
      co_await sleep(1);
      dropped.cancel();
    });
    co_return kept.result();
  };
  EXPECT_EQ(loop.run_until_complete(body()), 2);
}

TEST_F(TaskGroupTest, ABlockFailureCancelsTheChildrenAndIsCarried) {
  std::vector<Future<int>> children;
  auto body = [](std::vector<Future<int>>& out) -> Task<double> {
    double start = now();
    try {
      co_await task_group([&](TaskGroup& group) -> Task<> {
        out.push_back(group.create_task(work(10, 1)));
        out.push_back(group.create_task(work(20, 2)));
        co_await sleep(1);
        throw std::runtime_error("block failed");
      });
    } catch (const TaskGroupError& e) {
      EXPECT_EQ(whats(e), std::vector<std::string>{"block failed"});
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(children)), 1.0);
  for (Future<int>& f : children)
    EXPECT_TRUE(f.cancelled());
}

TEST_F(TaskGroupTest, ABlockFailureWithNoChildrenIsCarriedToo) {
  auto body = []() -> Task<> {
    co_await task_group([](TaskGroup&) -> Task<> {
      co_await sleep(1);
      throw std::runtime_error("alone");
    });
  };
  EXPECT_EQ(group_errors(loop, body()), std::vector<std::string>{"alone"});
}

// ------------------------------------------------------------------ cancelling the parent

TEST_F(TaskGroupTest, CancellingTheParentCancelsAndAwaitsTheChildren) {
  std::vector<std::string> log;
  std::vector<Future<int>> children;
  auto body = [](std::vector<std::string>& out, std::vector<Future<int>>& kids) -> Task<> {
    try {
      co_await task_group([&](TaskGroup& group) -> Task<> {
        kids.push_back(group.create_task(slow_cleanup(10, 0.5, "a", out)));
        kids.push_back(group.create_task(slow_cleanup(10, 1.0, "b", out)));
        co_await sleep(10);
      });
    } catch (const CancelledError& e) {
      out.push_back("group: " + e.message() + " at " + std::to_string(now()));
      throw;
    }
  };
  double start = loop.time();
  Future<void> task = loop.create_task(body(log, children));
  loop.call_later(1, [&task] { task.cancel("stop"); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(log,
            (std::vector<std::string>{"a", "b", "group: stop at " + std::to_string(start + 2.0)}));
  for (Future<int>& f : children)
    EXPECT_TRUE(f.cancelled());
}

TEST_F(TaskGroupTest, CancellingTheParentWhileTheGroupWaitsAtTheEnd) {
  Future<int> child;
  auto body = [](Future<int>& kid) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      kid = group.create_task(work(10, 0));
      co_return;
    });
  };
  Future<void> task = loop.create_task(body(child));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(child.cancelled());
}

TEST_F(TaskGroupTest, TheParentsOwnCancelWhileTheGroupDrainsForAnOuterTimeoutIsNotLost) {
  // An enclosing timeout fires inside the group; while the group waits for
  // its children to finish cancelling, the parent's own cancel() arrives. It
  // decides over the timeout (asyncio's counting lets it win): the parent
  // ends cancelled, not with TimeoutError.
  Future<int> child;
  std::string outcome = "none";
  auto nap = [](double seconds) -> Task<> { co_await sleep(seconds); };
  auto slow_to_cancel = [nap]() -> Task<int> {
    bool cancelled = false;
    try {
      co_await sleep(100);
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      co_await shield(create_task(nap(5)));  // takes its time to clean up
      throw CancelledError("cleaned up");
    }
    co_return 0;
  };
  auto body = [&]() -> Task<> {
    try {
      co_await timeout(1, [&](Timeout&) -> Task<> {
        co_await task_group([&](TaskGroup& group) -> Task<> {
          child = group.create_task(slow_to_cancel());
          co_await sleep(100);
        });
      });
      outcome = "returned";
    } catch (const TimeoutError&) {
      outcome = "TimeoutError";
    } catch (const CancelledError& e) {
      outcome = "CancelledError " + e.message();
      throw;
    }
  };
  Future<void> task = loop.create_task(body());
  loop.call_later(2, [&task] { task.cancel("parent"); });  // while the child cleans up
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(outcome, "CancelledError parent");
  EXPECT_TRUE(task.cancelled());
  EXPECT_TRUE(child.cancelled());
}

TEST_F(TaskGroupTest, ChildFailuresDuringAParentCancelGiveTaskGroupError) {
  auto body = []() -> Task<> {
    co_await task_group([](TaskGroup& group) -> Task<> {
      group.create_task(fail_when_cancelled(10, "cleanup failed"));
      group.create_task(work(10, 0));
      co_await sleep(10);
    });
  };
  Future<void> task = loop.create_task(body());
  loop.call_later(1, [&task] { task.cancel(); });
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no TaskGroupError";
  } catch (const TaskGroupError& e) {
    EXPECT_EQ(whats(e), std::vector<std::string>{"cleanup failed"});
  }
  EXPECT_FALSE(task.cancelled());
}

TEST_F(TaskGroupTest, AParentThatCatchesTheCancelGoesOnAfterTheGroup) {
  auto body = []() -> Task<int> {
    try {
      co_await task_group([](TaskGroup& group) -> Task<> {
        group.create_task(work(10, 0));
        co_await sleep(10);
      });
    } catch (const CancelledError&) {
    }
    co_await sleep(1);  // nothing of the group's is left to throw here
    co_return 1;
  };
  Future<int> task = loop.create_task(body());
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_EQ(loop.run_until_complete(task), 1);
}

// ------------------------------------------------------------------ create_task once closed

TEST_F(TaskGroupTest, CreateTaskAfterAFailureThrowsRuntimeErrorAndDestroysTheTask) {
  bool ran = false;
  auto never = [](bool& flag, Counted) -> Task<int> {
    flag = true;
    co_return 0;
  };
  auto body = [&never](bool& flag) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      group.create_task(fail_after(1, "first"));
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
      }
      int alive = Counted::alive();
      EXPECT_THROW(group.create_task(never(flag, Counted{})), RuntimeError);
      EXPECT_EQ(Counted::alive(), alive);  // the Task's frame went at once
    });
  };
  EXPECT_EQ(group_errors(loop, body(ran)), std::vector<std::string>{"first"});
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskGroupTest, CreateTaskAfterTheGroupFinishedThrowsRuntimeErrorAndDestroysTheTask) {
  bool threw = false;
  auto body = [](bool& flag) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      Future<int> last = group.create_task(work(1, 0));
      // Runs after the group saw its last child end, before the parent resumes.
      last.add_done_callback([&group, &flag] {
        try {
          group.create_task(work(1, 0, Counted{}));
        } catch (const RuntimeError&) {
          flag = true;
        }
      });
      co_return;
    });
  };
  loop.run_until_complete(body(threw));
  EXPECT_TRUE(threw);
  EXPECT_EQ(Counted::alive(), 0);
}

// ------------------------------------------------------------------ nesting

TEST_F(TaskGroupTest, ABlockCatchesTheTimeoutErrorOfATimeoutAroundAGatherAndGoesOn) {
  // The timeout's cancellation reaches the gather, which ends with a
  // CancelledError: the scope converts it, and nothing reaches the group.
  std::vector<std::string> log;
  auto body = [](std::vector<std::string>& out) -> Task<int> {
    co_return co_await task_group([&out](TaskGroup& group) -> Task<int> {
      Future<int> sibling = group.create_task(work(3, 7));
      try {
        co_await timeout(1.0, [](Timeout&) -> Task<> {
          std::vector<Task<int>> children;
          children.push_back(work(5, 1));
          co_await gather(std::move(children));
        });
      } catch (const TimeoutError&) {
        out.push_back("TimeoutError at " + std::to_string(now()));
      }
      co_await sleep(1);
      out.push_back("block done");
      co_return co_await sibling;
    });
  };
  double start = loop.time();
  EXPECT_EQ(loop.run_until_complete(body(log)), 7);
  EXPECT_DOUBLE_EQ(loop.time() - start, 3.0);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].rfind("TimeoutError at ", 0), 0u);
  EXPECT_EQ(log[1], "block done");
}

TEST_F(TaskGroupTest, AnInnerGroupsFailureFailsTheOuterBlock) {
  Future<int> outer_child;
  auto body = [](Future<int>& child) -> Task<> {
    co_await task_group([&](TaskGroup& outer) -> Task<> {
      child = outer.create_task(work(10, 0));
      co_await task_group([](TaskGroup& inner) -> Task<> {
        inner.create_task(fail_after(1, "inner child"));
        co_return;
      });
    });
  };
  try {
    loop.run_until_complete(body(outer_child));
    ADD_FAILURE() << "no TaskGroupError";
  } catch (const TaskGroupError& e) {
    ASSERT_EQ(e.errors().size(), 1u);  // the outer block's error: the inner group's
    try {
      std::rethrow_exception(e.errors()[0]);
    } catch (const TaskGroupError& inner) {
      EXPECT_EQ(whats(inner), std::vector<std::string>{"inner child"});
    }
  }
  EXPECT_TRUE(outer_child.cancelled());
}

TEST_F(TaskGroupTest, AnOuterGroupsCancelPassesThroughAnInnerGroup) {
  Future<int> inner_child;
  std::vector<std::string> log;
  auto body = [](Future<int>& kid, std::vector<std::string>& out) -> Task<> {
    co_await task_group([&](TaskGroup& outer) -> Task<> {
      outer.create_task(fail_after(1, "outer child"));
      try {
        co_await task_group([&](TaskGroup& inner) -> Task<> {
          kid = inner.create_task(work(10, 0));
          co_await sleep(10);
        });
      } catch (const TaskGroupError&) {
        out.push_back("inner TaskGroupError");
        throw;
      } catch (const CancelledError&) {
        out.push_back("inner passed the cancel on");
        throw;
      }
    });
  };
  EXPECT_EQ(group_errors(loop, body(inner_child, log)), std::vector<std::string>{"outer child"});
  EXPECT_EQ(log, std::vector<std::string>{"inner passed the cancel on"});
  EXPECT_TRUE(inner_child.cancelled());
}

TEST_F(TaskGroupTest, ATimeoutAroundAGroupCancelsItsChildren) {
  Future<int> child;
  auto body = [](Future<int>& kid) -> Task<double> {
    double start = now();
    try {
      co_await timeout(1.0, [&](Timeout&) -> Task<> {
        co_await task_group([&](TaskGroup& group) -> Task<> {
          kid = group.create_task(work(10, 0));
          co_return;
        });
      });
    } catch (const TimeoutError&) {
    }
    co_return now() - start;
  };
  EXPECT_DOUBLE_EQ(loop.run_until_complete(body(child)), 1.0);
  EXPECT_TRUE(child.cancelled());
}

TEST_F(TaskGroupTest, AFailureInsideATimeoutInTheBlockIsTheGroupsNotATimeout) {
  auto body = []() -> Task<> {
    co_await task_group([](TaskGroup& group) -> Task<> {
      group.create_task(fail_after(1, "child"));
      co_await timeout(5.0, [](Timeout& t) -> Task<> {
        try {
          co_await sleep(10);
        } catch (const CancelledError& e) {
          EXPECT_NE(e.origin(), &t.scope());
          throw;
        }
      });
    });
  };
  EXPECT_EQ(group_errors(loop, body()), std::vector<std::string>{"child"});
}

// ------------------------------------------------------------------ asyncio's scenarios

// test_cancel_children_on_child_error: three children failing at once are
// all carried; the slow child and the block's await are cancelled; the code
// after the group never runs.
TEST_F(TaskGroupTest, ChildrenFailingAtOnceAreAllCarriedAndTheRestCancelled) {
  int num = 0;
  bool t2_cancel = false, runner_cancel = false;
  auto foo2 = [](bool& cancelled) -> Task<int> {
    try {
      co_await sleep(5);
    } catch (const CancelledError&) {
      cancelled = true;
      throw;
    }
    co_return 1;
  };
  auto runner = [&]() -> Task<> {
    co_await task_group([&](TaskGroup& g) -> Task<> {
      (void)g.create_task(fail_after(0.1, "zero"));
      (void)g.create_task(fail_after(0.1, "zero"));
      (void)g.create_task(fail_after(0.1, "zero"));
      (void)g.create_task(foo2(t2_cancel));
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
        runner_cancel = true;
        throw;
      }
    });
    num += 10;
  };
  EXPECT_EQ(group_errors(loop, runner()), (std::vector<std::string>{"zero", "zero", "zero"}));
  EXPECT_EQ(num, 0);
  EXPECT_TRUE(t2_cancel);
  EXPECT_TRUE(runner_cancel);
}

// test_cancellation: a parent cancelled with a message ends with that
// message; every child saw the cancel.
TEST_F(TaskGroupTest, AParentCancelledWithAMessagePropagatesThatMessage) {
  int num = 0;
  auto foo = [](int& count) -> Task<int> {
    try {
      co_await sleep(5);
    } catch (const CancelledError&) {
      ++count;
      throw;
    }
    co_return 0;
  };
  auto runner = [&]() -> Task<> {
    co_await task_group([&](TaskGroup& g) -> Task<> {
      for (int i = 0; i < 5; ++i)
        (void)g.create_task(foo(num));
      co_return;
    });
  };
  Future<void> r = loop.create_task(runner());
  loop.call_later(0.1, [r]() mutable {
    EXPECT_FALSE(r.done());
    r.cancel("test");
  });
  try {
    loop.run_until_complete(r);
    ADD_FAILURE() << "no CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "test");
  }
  EXPECT_TRUE(r.cancelled());
  EXPECT_EQ(num, 5);
}

// test_taskgroup_13: the outer group's child fails while an inner group waits
// for its own child: the inner group is cancelled (its child too) and the
// outer error carries only the failure, not a nested group error.
TEST_F(TaskGroupTest, AnOuterChildFailureCancelsAnInnerGroupWaitingAtItsEnd) {
  auto runner = []() -> Task<> {
    co_await task_group([](TaskGroup& g1) -> Task<> {
      (void)g1.create_task(fail_after(0.1, "0.1"));
      co_await task_group([](TaskGroup& g2) -> Task<> {
        (void)g2.create_task(fail_after(10, "10"));
        co_return;
      });
    });
  };
  EXPECT_EQ(group_errors(loop, runner()), std::vector<std::string>{"0.1"});
  EXPECT_DOUBLE_EQ(loop.time(), 0.1);
}

// test_taskgroup_15 (3.12): the block catches a cancel from outside and
// cleans up; a child fails meanwhile, which cancels the cleanup: the child's
// failure wins over the cancel.
TEST_F(TaskGroupTest, AChildFailureDuringTheBlocksCleanupOfAnOutsideCancelWins) {
  auto runner = []() -> Task<> {
    co_await task_group([](TaskGroup& g1) -> Task<> {
      (void)g1.create_task(fail_after(0.3, "zero"));
      bool cancelled = false;
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
        cancelled = true;
      }
      if (cancelled) {
        co_await sleep(0.5);  // cut short at 0.3 by the group
        ADD_FAILURE() << "the cleanup was not cancelled";
      }
    });
  };
  Future<void> r = loop.create_task(runner());
  loop.call_later(0.1, [r]() mutable { r.cancel(); });
  EXPECT_THROW(loop.run_until_complete(r), TaskGroupError);
  EXPECT_DOUBLE_EQ(loop.time(), 0.3);
}

TEST_F(TaskGroupTest, AChildFailureAndAnOutsideCancelAtOneAwaitInterruptTheBlockOnce) {
  // The block awaits a task; a cancel from outside and a child's failure
  // reach the block before it resumes. One CancelledError answers both, and
  // the block's cleanup runs to its end (asyncio: the same).
  std::vector<std::string> log;
  auto runner = [](std::vector<std::string>& out) -> Task<> {
    Loop& l = get_running_loop();
    Future<void> trigger = l.create_future();
    auto failer = [](Future<void> f) -> Task<> {
      co_await f;
      throw std::runtime_error("child");
    };
    co_await task_group([&](TaskGroup& group) -> Task<> {
      (void)group.create_task(failer(trigger));
      Future<int> other = create_task(work(10, 0));
      l.call_later(1, [trigger, me = current_task()]() mutable {
        trigger.set_exception(std::make_exception_ptr(std::runtime_error("failed")));
        me.cancel("outside");
      });
      try {
        co_await other;
      } catch (const CancelledError& e) {
        out.push_back("caught " + e.message());
      }
      co_await sleep(0.5);  // whole
      out.push_back("cleanup done");
    });
  };
  Future<void> task = loop.create_task(runner(log));
  try {
    loop.run_until_complete(task);
    ADD_FAILURE() << "no TaskGroupError";
  } catch (const TaskGroupError& e) {
    EXPECT_EQ(whats(e), std::vector<std::string>{"failed"});
  }
  EXPECT_EQ(log, (std::vector<std::string>{"caught outside", "cleanup done"}));
  EXPECT_DOUBLE_EQ(loop.time(), 1.5);
}

// test_taskgroup_18: a block that turns the parent's cancel into another
// exception ends the group with that exception carried.
TEST_F(TaskGroupTest, ABlockThatTurnsTheCancelIntoAnErrorGivesTaskGroupError) {
  int num = 0;
  auto runner = [](int& count) -> Task<> {
    co_await task_group([&count](TaskGroup&) -> Task<> {
      try {
        co_await sleep(10);
      } catch (const CancelledError&) {
        count += 10;
        throw std::runtime_error("my exc");
      }
    });
  };
  Future<void> r = loop.create_task(runner(num));
  loop.call_later(0.1, [r]() mutable { r.cancel(); });
  try {
    loop.run_until_complete(r);
    ADD_FAILURE() << "no TaskGroupError";
  } catch (const TaskGroupError& e) {
    EXPECT_EQ(whats(e), std::vector<std::string>{"my exc"});
  }
  EXPECT_EQ(num, 10);
}

// test_taskgroup_19: the block's await, cancelled by a child's failure,
// fails in its cleanup: both failures are carried.
TEST_F(TaskGroupTest, ABlockFailingInItsCleanupAfterAChildFailureCarriesBoth) {
  auto nested = []() -> Task<> {
    try {
      co_await sleep(10);
    } catch (...) {
    }
    throw std::runtime_error("my exc");
  };
  auto runner = [&nested]() -> Task<> {
    co_await task_group([&nested](TaskGroup& g) -> Task<> {
      (void)g.create_task(fail_after(0.1, "zero"));
      co_await nested();
    });
  };
  EXPECT_EQ(group_errors(loop, runner()), (std::vector<std::string>{"zero", "my exc"}));
}

// test_taskgroup_25: children that keep adding children until another one
// fails: the group ends with that failure only.
TEST_F(TaskGroupTest, ChildrenThatAddChildrenStopWhenAnotherFails) {
  int nhydras = 0;
  std::function<Task<int>(TaskGroup&)> hydra = [&](TaskGroup& g) -> Task<int> {
    ++nhydras;
    co_await sleep(0.01);
    (void)g.create_task(hydra(g));
    (void)g.create_task(hydra(g));
    co_return 0;
  };
  auto hercules = [&]() -> Task<int> {
    while (nhydras < 10)
      co_await sleep(0.015);
    throw std::runtime_error("zero");
  };
  auto runner = [&]() -> Task<> {
    co_await task_group([&](TaskGroup& g) -> Task<> {
      (void)g.create_task(hydra(g));
      (void)g.create_task(hercules());
      co_return;
    });
  };
  EXPECT_EQ(group_errors(loop, runner()), std::vector<std::string>{"zero"});
  EXPECT_GE(nhydras, 10);
}

// test_taskgroup_task_name
TEST_F(TaskGroupTest, CreateTaskGivesTheChildItsName) {
  auto runner = []() -> Task<std::string> {
    std::string name;
    co_await task_group([&name](TaskGroup& g) -> Task<> {
      (void)g.create_task(work(0, 1), "yolo");
      name = all_tasks().back().name();
      co_return;
    });
    co_return name;
  };
  EXPECT_EQ(loop.run_until_complete(runner()), "yolo");
}

// ------------------------------------------------------------------ asyncio 3.12 details

// asyncio.TaskGroup._aexit (3.12) records a CancelledError
// caught while it waits for the children only `if not self._aborting`; a
// failing block has already aborted the group, so a cancel of the parent during
// that wait is not propagated, and the block's error is raised in the
// ExceptionGroup.
TEST_F(TaskGroupTest, ABlockFailureWinsOverAParentCancelWhileTheGroupWaitsForChildren) {
  std::vector<std::string> log;
  auto runner = [](std::vector<std::string>& out) -> Task<> {
    co_await task_group([&out](TaskGroup& g) -> Task<> {
      (void)g.create_task(slow_cleanup(10, 1, "child", out));
      co_await sleep(0.1);
      throw std::runtime_error("block failed");
    });
  };
  Future<void> r = loop.create_task(runner(log));
  loop.call_later(0.5, [r]() mutable { r.cancel(); });  // the child still cleans up
  try {
    loop.run_until_complete(r);
    ADD_FAILURE() << "no exception";
  } catch (const TaskGroupError& e) {
    EXPECT_EQ(whats(e), std::vector<std::string>{"block failed"});
  } catch (const CancelledError&) {
    ADD_FAILURE() << "CancelledError instead of TaskGroupError";
  }
  EXPECT_EQ(log, std::vector<std::string>{"child"});
  EXPECT_DOUBLE_EQ(loop.time(), 1.1);
}

// ------------------------------------------------------------------ lifetimes

Task<int> group_of_counted(double block_delay, bool fail) {
  co_return co_await task_group([=](TaskGroup& group) -> Task<int> {
    Counted in_block;
    group.create_task(work(2, 1, Counted{}));
    group.create_task(work(3, 2, Counted{}));
    co_await sleep(block_delay);
    if (fail) throw std::runtime_error("block failed");
    co_return 3;
  });
}

TEST_F(TaskGroupTest, FramesAreDestroyedOnceOnSuccess) {
  EXPECT_EQ(loop.run_until_complete(group_of_counted(1, false)), 3);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_GE(Counted::constructed, 5);
}

TEST_F(TaskGroupTest, FramesAreDestroyedOnceOnFailure) {
  EXPECT_THROW(loop.run_until_complete(group_of_counted(1, true)), TaskGroupError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskGroupTest, FramesAreDestroyedOnceOnCancel) {
  Future<int> task = loop.create_task(group_of_counted(10, false));
  loop.call_later(1, [&task] { task.cancel(); });
  EXPECT_THROW(loop.run_until_complete(task), CancelledError);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST_F(TaskGroupTest, ClosingTheLoopDestroysTheParentAndChildrenOnceAndCancelsTheirFutures) {
  std::vector<Future<int>> children;
  auto body = [](std::vector<Future<int>>& kids, Counted) -> Task<> {
    co_await task_group([&](TaskGroup& group) -> Task<> {
      kids.push_back(group.create_task(work(10, 1, Counted{})));
      kids.push_back(group.create_task(work(20, 2, Counted{})));
      co_return;
    });
  };
  Future<void> task = loop.create_task(body(children, Counted{}));
  run_for(1);
  EXPECT_EQ(Counted::alive(), 5);  // the parent's argument, two per child
  loop.close();
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_TRUE(task.cancelled());
  for (Future<int>& f : children)
    EXPECT_TRUE(f.cancelled());
}

}  // namespace
}  // namespace eddy
