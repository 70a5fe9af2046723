// wait_for of a foreign awaiter: neither the deadline nor a cancel could reach it.
#include <coroutine>

#include <eddy/wait_for.hpp>

// expect-error: eddy::wait_for: not an eddy awaitable
eddy::Task<void> stuck() {
  co_await eddy::wait_for(std::suspend_always{}, 1.0);
}

int main() {}
