// An async generator: Ticker(delay, to) yields 0, 1, ..., to - 1, sleeping
// `delay` between values (Python: `async def ticker(delay, to)` with `yield`).
//
//     async for i in ticker(0.005, 10): print(i)
//     odd = [i async for i in ticker(0.002, 10) if i % 2]
//
// In C++ the loop is `while (auto i = co_await gen.next())`; the
// comprehension is a small coroutine that collects what passes a filter.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <eddy/eddy.hpp>

namespace {

/// Yields 0 .. to - 1, sleeping `delay` seconds after each value.
eddy::AsyncGenerator<int> ticker(double delay, int to) {
  for (int i = 0; i < to; ++i) {
    co_yield i;
    co_await eddy::sleep(delay);
  }
}

/// `[x async for x in gen if keep(x)]`: the values of `gen` that `keep` accepts.
template <class T, class Keep>
eddy::Task<std::vector<T>> collect_if(eddy::AsyncGenerator<T> gen, Keep keep) {
  std::vector<T> kept;
  while (std::optional<T> x = co_await gen.next()) {
    if (keep(*x)) kept.push_back(std::move(*x));
  }
  co_return kept;
}

std::string join(const std::vector<int>& values) {
  std::string out;
  for (int v : values) {
    if (!out.empty()) out += ' ';
    out += std::to_string(v);
  }
  return out;
}

eddy::Task<> amain() {
  eddy::Loop& loop = eddy::get_running_loop();

  // 1. Iterate: each value arrives after the previous sleep.
  const double start = loop.time();
  eddy::AsyncGenerator<int> ticks = ticker(0.005, 10);
  while (std::optional<int> i = co_await ticks.next())
    std::printf("tick %d\n", *i);
  const double elapsed_ms = (loop.time() - start) * 1e3;
  std::printf("ticker(0.005, 10) is exhausted; it took at least 50 ms: %s\n",
              elapsed_ms >= 49.0 ? "yes" : "no");

  // 2. A filtered "comprehension": odd values only.
  auto is_odd = [](int i) { return i % 2 != 0; };
  std::vector<int> odd = co_await collect_if(ticker(0.002, 10), is_odd);
  std::printf("odd ticks: %s\n", join(odd).c_str());

  // 3. Closing early: stop after three values; destroying the generator
  //    destroys its frame without running the rest.
  std::vector<int> first_three;
  {
    eddy::AsyncGenerator<int> endless = ticker(0.001, 1'000'000);
    while (first_three.size() < 3)
      first_three.push_back(*co_await endless.next());
  }
  std::printf("the first three of a long ticker: %s (closed early)\n", join(first_three).c_str());
}

}  // namespace

int main() {
  eddy::run(amain());
}
