// A push-style async generator: a running average. Each value sent in with
// `co_await avg.send(x)` comes out of the generator's `co_yield` as
// std::optional<double>; the generator answers with the average so far.
// Python's version (Fluent Python's averager, as an async generator):
//
//     async def averager():
//         total, count, average = 0.0, 0, None
//         while True:
//             term = yield average
//             if term is None: break
//             total += term; count += 1; average = total / count
//
//     avg = averager(); await anext(avg)         # prime it
//     await avg.asend(10)                         # -> 10.0
#include <cstdio>
#include <optional>

#include <eddy/eddy.hpp>

namespace {

/// Yields the mean of every value sent so far (0 before the first). next(),
/// which sends nothing, ends it.
eddy::AsyncGenerator<double, double> averager() {
  double total = 0;
  int count = 0;
  double average = 0;
  for (;;) {
    std::optional<double> term = co_yield average;
    if (!term) break;
    co_await eddy::sleep(0);  // an async generator may await between values
    total += *term;
    ++count;
    average = total / count;
  }
  std::printf("averager: no more terms after %d; closing\n", count);
}

eddy::Task<> amain() {
  eddy::AsyncGenerator<double, double> avg = averager();
  co_await avg.next();  // prime it: run to the first co_yield

  for (int x = 0; x <= 10; ++x) {
    std::optional<double> mean = co_await avg.send(x);
    std::printf("sent %2d -> running mean %.2f\n", x, *mean);
  }

  std::optional<double> after = co_await avg.next();  // sends nothing: it ends
  std::printf("after next(): %s; done: %s\n", after ? "a value" : "nullopt",
              avg.done() ? "yes" : "no");

  // send() before the first next() is an error, as asend() of a value to a
  // just-started Python generator is.
  eddy::AsyncGenerator<double, double> fresh = averager();
  try {
    co_await fresh.send(1.0);
  } catch (const eddy::InvalidStateError& e) {
    std::printf("send before next: InvalidStateError (%s)\n", e.what());
  }
}

}  // namespace

int main() {
  eddy::run(amain());
}
