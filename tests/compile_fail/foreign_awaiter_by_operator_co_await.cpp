// The same through a type whose operator co_await gives a foreign awaiter.
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
