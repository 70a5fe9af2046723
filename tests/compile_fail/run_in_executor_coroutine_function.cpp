// A worker thread would only make the coroutine, never run its body.
#include <eddy/executor.hpp>
#include <eddy/task.hpp>

eddy::Task<int> work() {
  co_return 1;
}

// expect-error: fn is a coroutine function
void submit(eddy::Loop& loop) {
  (void)loop.run_in_executor(&work);
}
int main() {}
