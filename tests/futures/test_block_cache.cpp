// BlockCache (eddy/detail/block_cache.hpp): the per-thread caches that hold
// future states, task states and coroutine frames.
#include <eddy/detail/block_cache.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace eddy::detail {
namespace {

// Sizes no other test in this program allocates, so that counts are exact.
constexpr std::size_t kOdd = 1328;
constexpr std::size_t kOther = 1360;

// A macro: GTEST_SKIP returns from the test body itself.
#define SKIP_UNDER_ASAN()                                       \
  if (kAddressSanitizer)                                        \
  GTEST_SKIP() << "under AddressSanitizer every block goes to " \
                  "operator new"

TEST(BlockCache, BlocksAreAlignedDistinctAndUsableOverTheirWholeSize) {
  std::vector<unsigned char*> blocks;
  for (int i = 0; i < 3000; ++i) {
    auto* b = static_cast<unsigned char*>(BlockCache<216>::allocate());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 16, 0u);
    std::memset(b, i & 0xff, 216);
    blocks.push_back(b);
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_EQ(blocks[i][0], i & 0xff);
    EXPECT_EQ(blocks[i][215], i & 0xff) << "a later block overlapped block " << i;
  }
  std::vector<unsigned char*> sorted = blocks;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i)
    EXPECT_GE(sorted[i] - sorted[i - 1], 216);
  for (unsigned char* b : blocks)
    BlockCache<216>::deallocate(b);
}

TEST(BlockCache, AFreedBlockIsTheNextOneGivenOnItsThread) {
  SKIP_UNDER_ASAN();
  void* a = BlockCache<96>::allocate();
  void* b = BlockCache<96>::allocate();
  BlockCache<96>::deallocate(a);
  EXPECT_EQ(BlockCache<96>::allocate(), a);
  BlockCache<96>::deallocate(a);
  BlockCache<96>::deallocate(b);
  EXPECT_EQ(BlockCache<96>::allocate(), b);  // last freed, first given
  BlockCache<96>::deallocate(b);
}

TEST(BlockCache, SizesThatRoundToOneBlockShareOneCache) {
  SKIP_UNDER_ASAN();
  void* a = BlockCache<209>::allocate();  // both are 224-byte blocks
  BlockCache<209>::deallocate(a);
  EXPECT_EQ(BlockCache<224>::allocate(), a);
  BlockCache<224>::deallocate(a);
}

// On a thread of its own: takes `n` blocks of kOdd bytes, frees them, exits.
// Returns the blocks' addresses.
std::vector<void*> blocks_of_a_thread_that_exits(int n) {
  std::vector<void*> blocks;
  std::thread([&] {
    for (int i = 0; i < n; ++i)
      blocks.push_back(BlockCache<kOdd>::allocate());
    for (void* b : blocks)
      BlockCache<kOdd>::deallocate(b);
  }).join();
  return blocks;
}

TEST(BlockCache, BlocksAThreadLeavesAtExitGoToOtherThreads) {
  SKIP_UNDER_ASAN();
  const std::size_t before = shared_free_blocks(kOdd);
  std::vector<void*> left = blocks_of_a_thread_that_exits(10);
  EXPECT_GE(shared_free_blocks(kOdd), before + 10);

  // A thread with no free block of its own takes those first.
  std::vector<void*> taken = blocks_of_a_thread_that_exits(10);
  int reused = 0;
  for (void* b : taken)
    reused += std::count(left.begin(), left.end(), b) != 0 ? 1 : 0;
  EXPECT_GT(reused, 0);
}

TEST(BlockCache, ABlockFreedOnAnotherThreadIsReusedThere) {
  SKIP_UNDER_ASAN();
  void* made_here = BlockCache<kOther>::allocate();
  void* reused = nullptr;
  std::thread([&] {
    BlockCache<kOther>::deallocate(made_here);
    reused = BlockCache<kOther>::allocate();
    BlockCache<kOther>::deallocate(reused);
  }).join();
  EXPECT_EQ(reused, made_here);
}

TEST(BlockCache, ShortLivedThreadsWhoseBlocksAreFreedElsewhereDoNotGrowMemory) {
  // A thread that makes a block (a coroutine frame, say) which another
  // thread frees carves it from a piece of a chunk; when it exits, the rest
  // of its piece must serve the next such thread, not be lost.
  SKIP_UNDER_ASAN();
  constexpr std::size_t kFrame = 1200;
  auto one_thread = [] {
    void* frame = nullptr;
    std::thread([&] { frame = BlockCache<kFrame>::allocate(); }).join();
    return frame;
  };
  std::vector<void*> frames;
  for (int i = 0; i < 10; ++i)
    frames.push_back(one_thread());  // warms up: a chunk is mapped if needed
  const std::size_t mapped = mapped_block_bytes();
  for (int i = 0; i < 2000; ++i)  // 2000 pieces of 64 KiB would be 125 MiB
    frames.push_back(one_thread());
  EXPECT_LE(mapped_block_bytes(), mapped + (std::size_t{4} << 20));
  for (void* frame : frames)
    BlockCache<kFrame>::deallocate(frame);  // onto this thread's stack
}

TEST(BlockCache, AThreadThatFreesWhatAnotherMakesPassesBlocksBack) {
  // One thread makes blocks, another frees them, round after round: without
  // a limit the freeing thread's stack would hold every block ever made and
  // the making thread would carve new ones forever.
  SKIP_UNDER_ASAN();
  constexpr std::size_t kFrame = 1232;
  const std::size_t previous = set_block_stack_limit(std::size_t{1} << 20);
  const std::size_t mapped = mapped_block_bytes();
  std::vector<void*> made;
  std::mutex mutex;
  std::condition_variable cv;
  int round = 0;  // odd: the maker's turn is over, the blocks are in `made`
  std::thread maker([&] {
    for (int r = 0; r < 20; ++r) {
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [&] { return round % 2 == 0; });
      for (int i = 0; i < 2000; ++i)  // 2.4 MB a round: 48 MB in all
        made.push_back(BlockCache<kFrame>::allocate());
      ++round;
      cv.notify_all();
    }
  });
  for (int r = 0; r < 20; ++r) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return round % 2 == 1; });
    for (void* block : made)
      BlockCache<kFrame>::deallocate(block);
    made.clear();
    ++round;
    cv.notify_all();
  }
  maker.join();
  EXPECT_LE(mapped_block_bytes(), mapped + (std::size_t{8} << 20));
  set_block_stack_limit(previous);
}

TEST(BlockCache, AThreadFreeingItsOwnBlocksKeepsThemAllPastTheLimit) {
  // One thread makes more blocks of a size than the limit, then frees them,
  // round after round (a million futures alive at once does this): they are
  // its own, so they stay on its stack for the next round instead of going
  // through the shared pool, and nothing new is mapped after the first round.
  SKIP_UNDER_ASAN();
  constexpr std::size_t kSize = 1456;  // a class no other test uses
  const std::size_t previous = set_block_stack_limit(std::size_t{1} << 20);
  std::thread([] {
    std::vector<void*> made;
    std::size_t mapped = 0;
    for (int r = 0; r < 5; ++r) {
      for (int i = 0; i < 2000; ++i)  // 2.9 MB a round, the limit being 1 MiB
        made.push_back(BlockCache<kSize>::allocate());
      if (r == 0) mapped = mapped_block_bytes();
      for (void* block : made)
        BlockCache<kSize>::deallocate(block);
      made.clear();
      EXPECT_EQ(shared_free_blocks(kSize), 0u) << "round " << r;
    }
    EXPECT_EQ(mapped_block_bytes(), mapped);
  }).join();
  set_block_stack_limit(previous);
}

TEST(BlockCache, BlocksLargerThanTheLargestClassComeFromOperatorNew) {
  // Not cached, but still usable and freed (LeakSanitizer checks the free).
  void* big = BlockCache<kLargestCachedBlock + 1>::allocate();
  std::memset(big, 1, kLargestCachedBlock + 1);
  BlockCache<kLargestCachedBlock + 1>::deallocate(big);
}

TEST(BlockCache, ManyThreadsMakingAndFreeingBlocksLoseNone) {
  // Under ThreadSanitizer (CI) this also checks the shared pool's locking.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int round = 0; round < 20; ++round) {
        std::vector<void*> blocks;
        for (int i = 0; i < 500; ++i) {
          void* b = BlockCache<160>::allocate();
          std::memset(b, round, 160);
          blocks.push_back(b);
        }
        for (void* b : blocks)
          BlockCache<160>::deallocate(b);
      }
    });
  }
  for (std::thread& t : threads)
    t.join();
  // Threads that ran one after another reused each other's blocks; the last
  // one to exit left at least all of its own.
  if (!kAddressSanitizer) {
    EXPECT_GE(shared_free_blocks(160), 500u);
  }
}

}  // namespace
}  // namespace eddy::detail
