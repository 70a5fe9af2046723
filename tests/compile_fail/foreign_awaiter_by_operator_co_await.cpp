// The same through a type whose operator co_await gives a foreign awaiter.
// eddy makes this check under clang++ only (see PromiseBase::await_transform).
// compilers: clang
#include <coroutine>

#include <eddy/task.hpp>

struct Later {
  std::suspend_always operator co_await() const noexcept { return {}; }
};

// expect-error: co_await of an awaiter that is not eddy's
eddy::Task<void> stuck() {
  co_await Later{};
}

int main() {}
