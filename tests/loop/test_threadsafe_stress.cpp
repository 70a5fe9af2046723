// Stress tests of Loop::call_soon_threadsafe: many producers, nothing lost,
// nothing doubled, order kept per producer; and producers racing close().
// Meant to run under ThreadSanitizer and AddressSanitizer too.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <eddy/loop.hpp>

#include "sanitizers.hpp"

namespace eddy {
namespace {

using namespace std::chrono_literals;

constexpr int kProducers = 4;
#ifdef EDDY_TEST_TSAN
// TSan slows the mutex-heavy producers by an order of magnitude or more.
constexpr std::uint32_t kPerProducer = 50'000;
#else
constexpr std::uint32_t kPerProducer = 250'000;
#endif

// State touched only on the loop's thread (by the callbacks).
struct Received {
  Loop* loop = nullptr;
  std::array<std::uint32_t, kProducers> next{};  // next expected sequence number
  std::array<std::uint64_t, kProducers> count{};
  std::uint64_t total = 0;
  std::uint64_t out_of_order = 0;  // a sequence number seen twice, early or late
};

TEST(ThreadsafeStress, EveryCallbackFromFourProducersRunsExactlyOnceInProducerOrder) {
  Loop loop;  // the real clock: producers and the loop race for real
  Received received;
  received.loop = &loop;
  std::atomic<bool> running{false};
  std::atomic<int> failed_posts{0};

  bool timed_out = false;
  TimerHandle watchdog = loop.call_later(120.0, [&] {
    timed_out = true;
    loop.stop();
  });
  loop.call_soon([&] { running = true; });

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      while (!running.load())
        std::this_thread::yield();
      Received* r = &received;
      for (std::uint32_t seq = 0; seq < kPerProducer; ++seq) {
        try {
          loop.call_soon_threadsafe([r, p, seq] {
            if (r->next[p] != seq) ++r->out_of_order;
            r->next[p] = seq + 1;
            ++r->count[p];
            if (++r->total == std::uint64_t{kProducers} * kPerProducer) r->loop->stop();
          });
        } catch (...) {
          ++failed_posts;
        }
      }
    });
  }
  loop.run_forever();
  for (std::thread& t : producers)
    t.join();
  watchdog.cancel();

  EXPECT_FALSE(timed_out) << "only " << received.total << " callbacks arrived";
  EXPECT_EQ(failed_posts.load(), 0);
  EXPECT_EQ(received.out_of_order, 0u);
  EXPECT_EQ(received.total, std::uint64_t{kProducers} * kPerProducer);
  for (int p = 0; p < kProducers; ++p) {
    EXPECT_EQ(received.next[p], kPerProducer) << "producer " << p;
    EXPECT_EQ(received.count[p], kPerProducer) << "producer " << p;
  }
  // Nothing left behind, nothing doubled later.
  loop.run_once();
  EXPECT_EQ(received.total, std::uint64_t{kProducers} * kPerProducer);
  loop.close();
}

// Counts live instances across threads.
struct Tracked {
  std::atomic<long>* alive;
  explicit Tracked(std::atomic<long>* a) : alive(a) { ++*alive; }
  Tracked(const Tracked& o) : alive(o.alive) { ++*alive; }
  Tracked(Tracked&& o) noexcept : alive(o.alive) { ++*alive; }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { --*alive; }
};

TEST(ThreadsafeStress, ProducersRacingCloseGetLoopClosedErrorAndNothingLeaks) {
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    Loop loop;
    std::atomic<long> alive{0};
    std::atomic<std::uint64_t> accepted{0};
    std::uint64_t ran = 0;  // loop thread only
    std::atomic<bool> closed{false};
    std::array<std::atomic<bool>, kProducers> got_closed_error{};
    std::array<std::atomic<bool>, kProducers> accepted_after_close{};
    std::atomic<int> producers_started{0};
    std::atomic<bool> gave_up{false};

    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p] {
        ++producers_started;
        auto deadline = std::chrono::steady_clock::now() + 60s;
        for (std::uint64_t i = 0;; ++i) {
          bool closed_before = closed.load();
          try {
            loop.call_soon_threadsafe([t = Tracked(&alive), &ran, &loop] {
              if (++ran == 2000) loop.stop();
            });
            ++accepted;
            if (closed_before) accepted_after_close[p] = true;
          } catch (const LoopClosedError&) {
            got_closed_error[p] = true;
            break;
          }
          if ((i & 1023) == 0 && std::chrono::steady_clock::now() > deadline) {
            gave_up = true;
            break;
          }
        }
      });
    }
    while (producers_started.load() != kProducers)
      std::this_thread::yield();
    loop.run_forever();  // until 2000 callbacks ran; producers keep posting
    loop.close();        // while they still post
    closed = true;
    for (std::thread& t : producers)
      t.join();

    EXPECT_FALSE(gave_up.load()) << "a producer never saw the loop closed";
    for (int p = 0; p < kProducers; ++p) {
      EXPECT_TRUE(got_closed_error[p].load()) << "producer " << p;
      EXPECT_FALSE(accepted_after_close[p].load()) << "producer " << p;
    }
    EXPECT_GE(ran, 2000u);
    EXPECT_LE(ran, accepted.load());
    EXPECT_EQ(alive.load(), 0) << "callbacks leaked (> 0) or destroyed twice (< 0)";
  }
}

TEST(ThreadsafeStress, ProducersRacingCloseOfALoopThatNeverRan) {
  Loop loop;
  std::atomic<long> alive{0};
  std::atomic<int> started{0};
  std::atomic<int> closed_errors{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      ++started;
      auto deadline = std::chrono::steady_clock::now() + 60s;
      for (;;) {
        try {
          loop.call_soon_threadsafe([t = Tracked(&alive)] {});
        } catch (const LoopClosedError&) {
          ++closed_errors;
          return;
        }
        if (std::chrono::steady_clock::now() > deadline) return;
      }
    });
  }
  while (started.load() != kProducers)
    std::this_thread::yield();
  std::this_thread::sleep_for(1ms);  // let the inbox fill
  loop.close();
  for (std::thread& t : producers)
    t.join();
  EXPECT_EQ(closed_errors.load(), kProducers);
  EXPECT_EQ(alive.load(), 0);
}

}  // namespace
}  // namespace eddy
