// Producers and consumers handing items over an eddy::Queue (asyncio.Queue).
//
// 1. One producer, one consumer, an unbounded queue: the producer puts ten
//    items, each after some pretend I/O, then a sentinel; the consumer takes
//    items until it sees the sentinel.
// 2. A bounded queue (maxsize 3) and three consumers: the producer waits
//    while the queue is full; each consumer calls task_done() per item, and
//    join() tells the producer when every item was processed.
//
// The delays are real but short (milliseconds) and come from a fixed-seed
// std::mt19937. What is printed does not depend on timing.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <eddy/eddy.hpp>

using namespace std::chrono_literals;

namespace {

constexpr int kItems = 10;
constexpr int kSentinel = -1;  // asyncio code often puts None

/// An item and how long its pretend I/O took.
struct Item {
  int id;
  int io_ms;
};

// ------------------------------------------ 1. a sentinel ends the work

eddy::Task<> produce(eddy::Queue<Item>& queue, std::mt19937& rng) {
  std::uniform_int_distribution<int> io_ms(1, 8);
  for (int id = 1; id <= kItems; ++id) {
    Item item{id, io_ms(rng)};
    co_await eddy::sleep(std::chrono::milliseconds(item.io_ms));  // pretend to read it
    co_await queue.put(item);
  }
  Item sentinel{kSentinel, 0};
  co_await queue.put(sentinel);
}

eddy::Task<int> consume(eddy::Queue<Item>& queue) {
  int taken = 0;
  for (;;) {
    Item item = co_await queue.get();  // waits while the queue is empty
    if (item.id == kSentinel) break;
    ++taken;
    std::printf("consumer: item %d (its pretend I/O took %d ms)\n", item.id, item.io_ms);
  }
  std::printf("consumer: got the sentinel after %d items; done\n", taken);
  co_return taken;
}

eddy::Task<> with_a_sentinel() {
  std::printf("== 1. one producer, one consumer, a sentinel at the end ==\n");
  std::mt19937 rng(2024);
  eddy::Queue<Item> queue;  // unbounded
  eddy::Future<int> consumer = eddy::create_task(consume(queue));
  co_await produce(queue, rng);
  int taken = co_await consumer;
  std::printf("main: the consumer took %d items; %zu left in the queue\n", taken, queue.qsize());
}

// ------------------------------ 2. bounded queue, workers, task_done/join

eddy::Task<> worker(eddy::Queue<int>& queue, std::vector<int>& squares, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> work_ms(5, 15);
  for (;;) {  // runs until cancelled
    int n = co_await queue.get();
    co_await eddy::sleep(std::chrono::milliseconds(work_ms(rng)));  // work on it
    squares[static_cast<std::size_t>(n)] = n * n;
    queue.task_done();
  }
}

eddy::Task<> with_join() {
  std::printf("== 2. a bounded queue (maxsize 3), three consumers, task_done/join ==\n");
  eddy::Queue<int> queue(3);
  std::vector<int> squares(kItems + 1, 0);
  std::vector<eddy::Future<void>> workers;
  for (unsigned w = 1; w <= 3; ++w)
    workers.push_back(eddy::create_task(worker(queue, squares, w)));

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> io_ms(0, 2);  // faster than the workers
  std::size_t largest = 0;
  for (int n = 1; n <= kItems; ++n) {
    co_await eddy::sleep(std::chrono::milliseconds(io_ms(rng)));
    co_await queue.put(n);  // waits while three items are queued
    if (queue.qsize() > largest) largest = queue.qsize();
  }
  std::printf("producer: put %d items; the queue never held more than 3: %s\n", kItems,
              largest <= 3 ? "yes" : "no");

  co_await queue.join();  // until task_done() was called for every item
  std::printf("join: every item was marked done\n");
  std::string line = "squares:";
  for (int n = 1; n <= kItems; ++n) {
    line += ' ';
    line += std::to_string(squares[static_cast<std::size_t>(n)]);
  }
  std::printf("%s\n", line.c_str());

  for (auto& w : workers)
    w.cancel();  // the workers loop forever: cancel them
  int cancelled = 0;
  for (auto& w : workers) {
    try {
      co_await w;
    } catch (const eddy::CancelledError&) {
      ++cancelled;
    }
  }
  std::printf("main: %d workers cancelled\n", cancelled);
}

eddy::Task<> amain() {
  co_await with_a_sentinel();
  co_await with_join();
}

}  // namespace

int main() {
  eddy::run(amain());
}
