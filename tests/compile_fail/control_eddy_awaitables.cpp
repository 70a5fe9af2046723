// Control: every kind of eddy awaitable compiles inside a task and inside an
// async generator (the refusals below must come from the misuse alone).
#include <eddy/eddy.hpp>

eddy::Task<int> child() {
  co_return 1;
}

eddy::AsyncGenerator<int> numbers(eddy::Queue<int>& queue) {
  co_yield co_await queue.get();
  co_await eddy::sleep(0);
}

eddy::Task<int> parent(eddy::Queue<int>& queue, eddy::Lock& lock, eddy::Event& event,
                       eddy::ConcurrentFuture<int> concurrent) {
  eddy::Loop& loop = eddy::get_running_loop();
  eddy::Future<int> future = loop.create_future<int>();
  int sum = co_await future;          // a Future, as an lvalue
  sum += co_await std::move(future);  // ... and as an rvalue
  eddy::Task<int> task = child();
  sum += co_await task;        // a Task, as an lvalue
  sum += co_await child();     // ... and as a prvalue
  sum += co_await concurrent;  // a ConcurrentFuture
  co_await eddy::sleep(0);     // eddy's own awaiters
  sum += co_await eddy::sleep(0, 2);
  co_await queue.put(3);
  sum += co_await queue.get();
  co_await lock.acquire();
  lock.release();
  co_await event.wait();
  eddy::AsyncGenerator<int> gen = numbers(queue);
  while (auto item = co_await gen.next())
    sum += *item;
  sum += co_await eddy::wait_for(queue.get(), 1.0);
  sum += co_await eddy::wait_for(child(), 1.0);
  co_return sum;
}

int main() {}
