// eddy's hot-path promise: no heap allocation per call_soon (in the steady
// state) for a callable of up to three words of captures. This binary replaces
// the global operator new/delete with counting versions to check it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include <eddy/loop.hpp>

namespace {

std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};

void* counted_malloc(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  return std::malloc(size == 0 ? 1 : size);
}

void* counted_aligned_malloc(std::size_t size, std::align_val_t align) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  void* p = nullptr;
  std::size_t alignment = static_cast<std::size_t>(align);
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  if (::posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

// Out of line, so that the compiler does not pair an inlined free() with the
// operator new of the caller and warn about a mismatch.
[[gnu::noinline]] void counted_free(void* p) noexcept {
  std::free(p);
}

// Counts the allocations made while it lives.
class AllocationCounter {
 public:
  AllocationCounter() {
    g_allocations.store(0);
    g_counting.store(true);
  }
  ~AllocationCounter() { g_counting.store(false); }
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  std::uint64_t count() const { return g_allocations.load(); }
};

}  // namespace

// ---------------------------------------------------------------- replacements

void* operator new(std::size_t size) {
  if (void* p = counted_malloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  if (void* p = counted_malloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (void* p = counted_aligned_malloc(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
  if (void* p = counted_aligned_malloc(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return counted_aligned_malloc(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return counted_aligned_malloc(size, align);
}
void operator delete(void* p) noexcept {
  counted_free(p);
}
void operator delete[](void* p) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p);
}

namespace eddy {
namespace {

constexpr int kCalls = 100'000;

// Three words of state, as small callables capture in practice.
struct Words {
  std::uint64_t* sum;
  std::uint64_t a;
  std::uint64_t b;
};

void add_to(std::uint64_t* sum, int n) {
  *sum += static_cast<std::uint64_t>(n);
}

TEST(Allocations, CounterSeesAllocations) {
  // The counting operator new is really in use in this binary.
  std::uint64_t allocations;
  {
    AllocationCounter counter;
    void* p = ::operator new(16);  // a call, not a new-expression: never elided
    allocations = counter.count();
    ::operator delete(p);
  }
  EXPECT_EQ(allocations, 1u);
}

TEST(Allocations, CallSoonWithUpToThreeWordsOfCapturesDoesNotAllocateInTheSteadyState) {
  Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  std::uint64_t sum = 0;
  std::uint64_t* s = &sum;
  static_assert(sizeof(Words) == 3 * sizeof(void*));

  // The measured workload: one burst of kCalls callbacks of one to three
  // words of captures, then many small iterations.
  auto workload = [&] {
    for (int i = 0; i < kCalls / 4; ++i) {
      std::uint64_t one = 1, two = 2;
      loop.call_soon([s] { ++*s; });                                          // one word
      loop.call_soon([s, one] { *s += one; });                                // two words
      loop.call_soon([w = Words{s, one, two}] { *w.sum += w.a + w.b - 2; });  // three words
      loop.call_soon(&add_to, s, 0);                                          // f + args, two words
    }
    loop.run_once();
    for (int round = 0; round < 100; ++round) {
      for (int i = 0; i < kCalls / 100; ++i)
        loop.call_soon([s] { ++*s; });
      loop.run_once();
    }
  };

  // Warm up: the first run grows the ready ring to what the workload needs.
  workload();
  ASSERT_EQ(sum, static_cast<std::uint64_t>(kCalls / 4 * 3 + kCalls));

  sum = 0;
  std::uint64_t allocations;
  {
    AllocationCounter counter;  // the steady state: the same workload again
    workload();
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sum, static_cast<std::uint64_t>(kCalls / 4 * 3 + kCalls));
  loop.close();
}

TEST(Allocations, CallSoonUnderRunForeverDoesNotAllocateInTheSteadyState) {
  Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  std::uint64_t sum = 0;
  std::uint64_t* s = &sum;
  auto run_burst = [&] {
    for (int i = 0; i < kCalls; ++i)
      loop.call_soon([s] { ++*s; });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
  };
  run_burst();  // warm-up
  std::uint64_t allocations;
  {
    AllocationCounter counter;
    run_burst();
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sum, 2u * kCalls);
  loop.close();
}

TEST(Allocations, CallableBiggerThanThreeWordsAllocates) {
  // The counterpart that shows the test above can fail: four words of
  // captures do not fit the inline buffer.
  Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  std::uint64_t sum = 0;
  std::uint64_t* s = &sum;
  for (int i = 0; i < kCalls; ++i)
    loop.call_soon([s] { ++*s; });
  loop.run_once();

  sum = 0;
  std::uint64_t allocations;
  {
    AllocationCounter counter;
    for (int i = 0; i < kCalls; ++i) {
      std::uint64_t a = 1, b = 2, c = 3;
      loop.call_soon([s, a, b, c] { *s += a + b + c - 5; });
    }
    loop.run_once();
    allocations = counter.count();
  }
  EXPECT_GE(allocations, static_cast<std::uint64_t>(kCalls));
  EXPECT_EQ(sum, static_cast<std::uint64_t>(kCalls));
  loop.close();
}

TEST(Allocations, TimersDoNotAllocateInTheSteadyState) {
  Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  std::uint64_t sum = 0;
  std::uint64_t* s = &sum;
  auto schedule = [&] {
    for (int i = 0; i < 10'000; ++i)
      loop.call_later(1.0 + (i % 100) * 0.01, [s] { ++*s; });
  };
  schedule();
  for (int i = 0; i < 200 && loop.stats().timers != 0; ++i)
    loop.run_once();
  ASSERT_EQ(sum, 10'000u);
  std::uint64_t allocations;
  {
    AllocationCounter counter;
    schedule();
    for (int i = 0; i < 200 && loop.stats().timers != 0; ++i)
      loop.run_once();
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sum, 20'000u);
  loop.close();
}

TEST(Allocations, TimersAddedAndCancelledOverAndOverInOneCallbackReuseTheirSlots) {
  // Cancelled timers wait for the next pass's compaction; a callback that
  // keeps adding and cancelling must not grow the timer slab meanwhile.
  Loop loop(LoopOptions().use_clock(std::make_shared<VirtualClock>()).debug(false));
  int fired = 0;
  auto churn = [&loop, &fired] {
    for (int i = 0; i < 100'000; ++i) {
      TimerHandle h = loop.call_later(1.0, [&fired] { ++fired; });
      h.cancel();
    }
  };
  loop.call_soon(churn);  // warm-up: the slab reaches its size
  loop.run_once();
  std::uint64_t allocations;
  {
    AllocationCounter counter;
    loop.call_soon(churn);
    loop.run_once();
    loop.run_once();
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(loop.stats().timers, 0u);
  loop.close();
}

}  // namespace
}  // namespace eddy
