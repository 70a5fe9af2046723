// The same in an async generator's body.
// eddy makes this check under clang++ only (see PromiseBase::await_transform).
// compilers: clang
#include <coroutine>

#include <eddy/async_generator.hpp>

// expect-error: co_await of an awaiter that is not eddy's
eddy::AsyncGenerator<int> stuck() {
  co_await std::suspend_always{};
  co_yield 1;
}

int main() {}
