// A loop running on its own thread, fed from the main thread while it runs:
// coroutines with run_coroutine_threadsafe (each gives a thread-safe
// ConcurrentFuture the main thread can block on) and plain callbacks with
// call_soon_threadsafe. Mirrors asyncio's
//
//     loop = asyncio.new_event_loop()
//     threading.Thread(target=loop.run_forever).start()
//     future = asyncio.run_coroutine_threadsafe(coro(), loop)
//     future.result()
//     loop.call_soon_threadsafe(callback)
//     loop.call_soon_threadsafe(loop.stop)
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <eddy/eddy.hpp>

namespace {

std::thread::id loop_thread_id;  // written on the loop thread before any use below

const char* on_loop_thread() {
  return std::this_thread::get_id() == loop_thread_id ? "yes" : "no";
}

eddy::Task<int> slow_square(int x) {
  co_await eddy::sleep(0.002);  // the loop runs other work meanwhile
  co_return x* x;
}

eddy::Task<std::string> where_am_i() {
  co_await eddy::sleep(0);
  co_return std::string("on the loop thread: ") + on_loop_thread();
}

/// Tells `started` when it runs, sleeps an hour unless cancelled, and tells
/// `report` how it ended.
eddy::Task<> waits_forever(eddy::ConcurrentFuture<void> started,
                           eddy::ConcurrentFuture<std::string> report) {
  started.set_result();
  try {
    co_await eddy::sleep(3600);
    report.set_result("slept an hour");
  } catch (const eddy::CancelledError&) {
    report.set_result(std::string("CancelledError at its sleep, on the loop thread: ") +
                      on_loop_thread());
    throw;
  }
}

}  // namespace

int main() {
  eddy::Loop loop;
  std::thread runner([&] {
    loop_thread_id = std::this_thread::get_id();
    loop.run_forever();  // until stop() is called on this thread
  });
  std::printf("main: the loop runs on its own thread\n");

  // 1. A coroutine handed over from this thread; block on its result.
  eddy::ConcurrentFuture<int> squared = eddy::run_coroutine_threadsafe(slow_square(7), loop);
  std::printf("main: run_coroutine_threadsafe(slow_square(7)) -> %d\n", squared.result());
  std::printf("main: where_am_i() says it ran %s\n",
              eddy::run_coroutine_threadsafe(where_am_i(), loop).result().c_str());

  // 2. Several at once: they run concurrently on the loop.
  std::vector<eddy::ConcurrentFuture<int>> many;
  for (int x = 1; x <= 5; ++x)
    many.push_back(eddy::run_coroutine_threadsafe(slow_square(x), loop));
  std::string results;
  for (auto& f : many) {
    results += ' ';
    results += std::to_string(f.result());
  }
  std::printf("main: five coroutines at once ->%s\n", results.c_str());

  // 3. Plain callbacks: run in the order they were handed over, on the loop
  //    thread. A ConcurrentFuture carries their answer back.
  eddy::ConcurrentFuture<std::string> order;
  auto log = std::make_shared<std::string>();
  for (const char* name : {"a", "b", "c"}) {
    loop.call_soon_threadsafe([log, name] { *log += name; });
  }
  loop.call_soon_threadsafe([log, order]() mutable {
    order.set_result(*log + " (on the loop thread: " + on_loop_thread() + ")");
  });
  std::printf("main: call_soon_threadsafe callbacks ran in order: %s\n", order.result().c_str());

  // 4. Cancelling from this thread cancels the task on the loop's thread.
  eddy::ConcurrentFuture<void> started;
  eddy::ConcurrentFuture<std::string> report;
  eddy::ConcurrentFuture<void> sleeper =
      eddy::run_coroutine_threadsafe(waits_forever(started, report), loop);
  started.result();  // it runs: a cancel now reaches it at its sleep
  sleeper.cancel();
  std::printf("main: cancelled the sleeping coroutine; it got %s\n", report.result().c_str());
  try {
    sleeper.result();
  } catch (const eddy::CancelledError&) {
    std::printf("main: its ConcurrentFuture is cancelled too\n");
  }

  // 5. Stop the loop from here, join its thread, close it.
  loop.call_soon_threadsafe([&] { loop.stop(); });
  runner.join();
  loop.close();
  std::printf("main: loop stopped, thread joined, loop closed\n");
}
