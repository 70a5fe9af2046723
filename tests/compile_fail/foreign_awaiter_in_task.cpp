// co_await of an awaiter that suspends any coroutine (not eddy's) in a task:
// nothing would resume the task through its loop, so it would hang.
// eddy makes this check under clang++ only (see PromiseBase::await_transform).
// compilers: clang
#include <coroutine>

#include <eddy/task.hpp>

// expect-error: co_await of an awaiter that is not eddy's
eddy::Task<int> stuck() {
  co_await std::suspend_always{};
  co_return 1;
}

int main() {}
