// A narrated tour of eddy: callbacks, timers, a call from another thread, the
// exception handler, futures, blocking work on the thread pool, and
// coroutine tasks. Run it with `scripts/example.sh`.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include <eddy/eddy.hpp>

using namespace std::chrono_literals;

int main() {
  eddy::Loop loop;
  const double start = loop.time();
  auto say = [&](const char* text) {
    std::printf("[%6.1f ms] %s\n", (loop.time() - start) * 1e3, text);
  };

  // 1. call_soon: callbacks run in FIFO order on the next iteration.
  loop.call_soon([&] { say("call_soon: first"); });
  loop.call_soon([&] {
    say("call_soon: second (it schedules a third, which waits for the next iteration)");
    loop.call_soon([&] { say("call_soon: third"); });
  });

  // 2. Timers: by deadline, not by the order they were scheduled in.
  loop.call_later(30ms, [&] { say("call_later(30 ms)"); });
  loop.call_later(0.010, [&] { say("call_later(0.010 s): seconds as a double work too"); });
  auto cancelled = loop.call_later(20ms, [&] { say("never printed: this timer is cancelled"); });
  cancelled.cancel();

  // 3. Exceptions never escape the loop: they go to the exception handler.
  loop.set_exception_handler([&](eddy::Loop&, const eddy::ExceptionContext& context) {
    std::printf("           exception handler: %s\n", context.message.c_str());
  });
  loop.call_later(40ms, [] { throw std::runtime_error("a callback failed"); });

  // 4. Another thread hands work to the loop with call_soon_threadsafe.
  std::thread worker;
  loop.call_later(50ms, [&] {
    say("starting a worker thread");
    worker = std::thread([&] {
      std::this_thread::sleep_for(10ms);  // pretend to do blocking work
      loop.call_soon_threadsafe([&] {
        say("call_soon_threadsafe: the worker's result arrived on the loop thread");
        loop.stop();
      });
    });
  });

  loop.run_forever();  // returns after stop()
  worker.join();

  // 5. Futures: a result that arrives later. Done callbacks run on the loop.
  eddy::Future<int> answer = loop.create_future<int>();
  answer.add_done_callback([&](eddy::Future<int>& f) {
    say(("future done callback: the answer is " + std::to_string(f.result())).c_str());
  });
  loop.call_later(20ms, [answer]() mutable { answer.set_result(42); });
  int value = loop.run_until_complete(answer);  // runs the loop until the future is done
  std::printf("           run_until_complete returned %d\n", value);

  // 6. A result computed on another thread, awaited on the loop: wrap_future
  //    turns a thread-safe ConcurrentFuture into a loop Future.
  eddy::ConcurrentFuture<std::string> job;
  std::thread computer([job]() mutable {
    std::this_thread::sleep_for(10ms);
    job.set_result("computed on a worker thread");
  });
  std::string computed = loop.run_until_complete(eddy::wrap_future(job, loop));
  say(("wrap_future: " + computed).c_str());
  computer.join();

  // 7. Coroutines: a Task runs when awaited or scheduled with create_task;
  //    co_await suspends it while the loop runs other work.
  auto brew = [&](std::string what, std::chrono::milliseconds delay) -> eddy::Task<std::string> {
    co_await eddy::sleep(delay);
    say(("task: " + what + " is ready").c_str());
    co_return what;
  };
  auto breakfast = [&]() -> eddy::Task<std::string> {
    auto tea = loop.create_task(brew("tea", 30ms), "tea");  // both run at once
    auto toast = loop.create_task(brew("toast", 10ms), "toast");
    std::string served = co_await toast + " and " + co_await tea;
    // 8. Cancellation: wait_for gives up after 20 ms, cancels the slow task
    //    at its await and throws TimeoutError.
    try {
      co_await eddy::wait_for(brew("soup", 1000ms), 0.020);
    } catch (const eddy::TimeoutError&) {
      say("wait_for: the soup took too long and was cancelled");
    }
    co_return served;
  };
  say(("run_until_complete(task): " + loop.run_until_complete(breakfast())).c_str());

  // 9. Blocking work without blocking the loop: run_in_executor runs it on
  //    eddy's thread pool and hands the result back as a loop Future.
  eddy::Future<long> sum = loop.run_in_executor(
      [](long n) {
        long total = 0;
        for (long i = 1; i <= n; ++i)
          total += i;  // stands for anything that blocks: a file, a library call
        return total;
      },
      1000000L);
  say(("run_in_executor: 1 + ... + 1000000 = " + std::to_string(loop.run_until_complete(sum)))
          .c_str());

  //    A job whose function takes a std::stop_token can be cancelled while it
  //    runs: cancelling its future requests stop on the token.
  eddy::Future<int> endless = loop.run_in_executor([](std::stop_token stop) {
    int rounds = 0;
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(1ms);  // one blocking step at a time
      ++rounds;
    }
    return rounds;
  });
  loop.call_later(20ms, [endless]() mutable { endless.cancel(); });
  try {
    loop.run_until_complete(endless);
  } catch (const eddy::CancelledError&) {
    say("run_in_executor: the endless job was cancelled");
  }
  // Before closing, shut the default executor down: its threads join once the
  // endless job has seen the stop request and returned.
  loop.run_until_complete(loop.shutdown_default_executor());
  say("shutdown_default_executor: the pool's threads have joined");

  eddy::LoopStats stats = loop.stats();
  std::printf("in all: %llu loop iterations ran %llu callbacks\n",
              static_cast<unsigned long long>(stats.iterations),
              static_cast<unsigned long long>(stats.callbacks_run));
  loop.close();
  return 0;
}
