// The spinner: a task animates on stderr while a blocking job runs on the
// thread pool (run_in_executor); when the job is done the spinner is
// cancelled and the result printed. asyncio's classic "thinking!" demo.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <eddy/eddy.hpp>

using namespace std::chrono_literals;

// Blocking work: stands for a slow library call, a file, a computation.
long slow_function() {
  std::this_thread::sleep_for(300ms);
  return 42;
}

eddy::Task<int> spin(std::string message) {
  const char frames[] = "|/-\\";
  int turns = 0;
  try {
    for (int i = 0;; ++i) {
      std::fprintf(stderr, "\r%c %s", frames[i % 4], message.c_str());
      ++turns;
      co_await eddy::sleep(0.05);
    }
  } catch (const eddy::CancelledError&) {
    std::fprintf(stderr, "\r%*s\r", static_cast<int>(message.size()) + 2, "");  // erase the line
    throw;
  }
}

eddy::Task<long> supervisor() {
  eddy::Loop& loop = eddy::get_running_loop();
  eddy::Future<int> spinner = loop.create_task(spin("thinking!"), "spinner");
  std::printf("spinner object: task %s\n", eddy::all_tasks(loop).back().name().c_str());
  long result = co_await loop.run_in_executor(&slow_function);  // the loop keeps spinning
  spinner.cancel();
  try {
    co_await spinner;
  } catch (const eddy::CancelledError&) {
    std::printf("spinner cancelled\n");
  }
  co_return result;
}

int main() {
  long answer = eddy::run(supervisor());
  std::printf("Answer: %ld\n", answer);
  return 0;
}
