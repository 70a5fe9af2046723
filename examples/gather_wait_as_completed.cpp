// gather, wait and as_completed on the factorial demo of asyncio's
// documentation: three tasks compute factorials one step per second, so A
// (2!) ends first, B (3!) second, C (4!) last, and each combinator shows
// what it makes of that.
//
// The loop runs on a VirtualClock: the demo's seconds pass at once and the
// output is the same on every run. Leave out use_clock() for real time.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <eddy/eddy.hpp>

namespace {

double part_start = 0;  // the virtual time at which the current part began

void say(const std::string& text) {
  double t = eddy::get_running_loop().time() - part_start;
  std::printf("  [t=%.0fs] %s\n", t, text.c_str());
}

std::string list(const std::vector<long>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i)
    text.append(i == 0 ? "" : ", ").append(std::to_string(values[i]));
  return text + "]";
}

/// asyncio's factorial(name, number): one step per second.
eddy::Task<long> factorial(std::string name, int number) {
  long f = 1;
  for (int i = 2; i <= number; ++i) {
    say("Task " + name + ": compute factorial(" + std::to_string(number) +
        "), currently i=" + std::to_string(i) + "...");
    co_await eddy::sleep(1);
    f *= i;
  }
  say("Task " + name + ": factorial(" + std::to_string(number) + ") = " + std::to_string(f));
  co_return f;
}

std::vector<eddy::Task<long>> three_factorials() {
  std::vector<eddy::Task<long>> tasks;
  tasks.push_back(factorial("A", 2));
  tasks.push_back(factorial("B", 3));
  tasks.push_back(factorial("C", 4));
  return tasks;
}

std::vector<long> results(std::vector<eddy::Future<long>>& futures) {
  std::vector<long> values;
  for (eddy::Future<long>& f : futures)
    values.push_back(f.result());
  return values;
}

// 1. gather: all three at once; the results come back in argument order.
eddy::Task<> with_gather() {
  auto [a, b, c] = co_await eddy::gather(factorial("A", 2), factorial("B", 3), factorial("C", 4));
  say("gather: " + list({a, b, c}) + " (in argument order)");
}

// 2. wait: the first to finish, then the rest. wait cancels nothing.
eddy::Task<> with_wait() {
  std::vector<eddy::Task<long>> tasks = three_factorials();
  auto first = co_await eddy::wait(std::move(tasks), eddy::ReturnWhen::first_completed);
  say("wait(FIRST_COMPLETED): done " + list(results(first.done)) + "; " +
      std::to_string(first.pending.size()) + " pending");
  auto rest = co_await eddy::wait(first.pending);  // ALL_COMPLETED by default
  say("wait(ALL_COMPLETED): done " + list(results(rest.done)));
}

// 3. as_completed: given in reverse order, taken in the order they finish.
eddy::Task<> with_as_completed() {
  std::vector<eddy::Task<long>> tasks;
  tasks.push_back(factorial("C", 4));
  tasks.push_back(factorial("B", 3));
  tasks.push_back(factorial("A", 2));
  for (eddy::Task<long> next : eddy::as_completed(std::move(tasks))) {
    long value = co_await next;
    say("as_completed: " + std::to_string(value));
  }
}

}  // namespace

int main() {
  auto clock = std::make_shared<eddy::VirtualClock>();
  eddy::Loop loop(eddy::LoopOptions().use_clock(clock));

  std::printf("1. gather(factorial(\"A\", 2), factorial(\"B\", 3), factorial(\"C\", 4))\n");
  part_start = loop.time();
  loop.run_until_complete(with_gather());

  std::printf("2. wait(FIRST_COMPLETED), then wait for the rest\n");
  part_start = loop.time();
  loop.run_until_complete(with_wait());

  std::printf("3. as_completed(C, B, A)\n");
  part_start = loop.time();
  loop.run_until_complete(with_as_completed());

  loop.close();
  return 0;
}
