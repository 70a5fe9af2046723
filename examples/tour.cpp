// A narrated tour of eddy's event loop: callbacks, timers, a call from another
// thread, and the exception handler. Run it with `scripts/example.sh`.
#include <chrono>
#include <cstdio>
#include <stdexcept>
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

  eddy::LoopStats stats = loop.stats();
  std::printf("stopped after %llu iterations and %llu callbacks\n",
              static_cast<unsigned long long>(stats.iterations),
              static_cast<unsigned long long>(stats.callbacks_run));
  loop.close();
  return 0;
}
