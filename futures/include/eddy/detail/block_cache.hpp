// BlockCache: where future states, task states and coroutine frames live.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace eddy::detail {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

/// Blocks are carved in multiples of this (operator new's alignment).
inline constexpr std::size_t kBlockGranule = 16;
/// The largest block BlockCache keeps; larger sizes go to operator new.
inline constexpr std::size_t kLargestCachedBlock = 4096;

/// One thread's free blocks of one size: a stack of pointers (see BlockCache).
/// Trivially destructible, so that a thread_local of it needs no guard.
struct FreeBlocks {
  void** blocks = nullptr;
  std::uint32_t size = 0;
  std::uint32_t capacity = 0;
  bool registered = false;  // the thread's releaser knows this stack
  bool released = false;    // ... and has emptied it: the thread is exiting

  /// Called when the stack is empty: returns a block of `block_size` bytes
  /// and refills the stack with more, taken from those that exited threads
  /// left or newly carved. Throws std::bad_alloc.
  void* take_slow(std::size_t block_size);
  /// Called when the stack is full, to free `block`: grows the stack and
  /// returns true, or (the thread is exiting, or memory is short) gives
  /// `block` to the blocks shared by all threads and returns false.
  bool make_room(std::size_t block_size, void* block) noexcept;
};

/// The free blocks that exited threads left, for one block size (tests).
std::size_t shared_free_blocks(std::size_t block_size) noexcept;

/// A per-thread cache of blocks of one size, for the objects an event loop
/// makes and drops by the thousand: future and task states, coroutine frames.
///
/// - Blocks are carved, many at a time, from chunks of 2 MiB that are never
///   given back to the system. Every chunk after the first is backed by
///   transparent huge pages where the kernel allows it (madvise): a burst of
///   a hundred thousand tasks then walks its states without a TLB miss per
///   page, which on a memory-bound run is about a quarter of the time. Blocks
///   carved together are contiguous, with no malloc header between them.
/// - A freed block goes onto the freeing thread's stack of free pointers, and
///   the next allocation of that size on that thread takes it back. Taking a
///   block does not read the block (a list threaded through the blocks would
///   make each allocation wait for the previous block's cache miss).
/// - A thread that exits hands its free blocks to a pool shared by all
///   threads, which refills a thread's empty stack before new blocks are
///   carved. So memory stays at the process's peak of live blocks of each
///   size, as a loop's ready ring and timer slab stay at theirs, and is never
///   lost: a block may be freed on any thread.
/// - Under AddressSanitizer every block comes from, and goes back to,
///   operator new / delete, so that a use after free is still reported.
template <std::size_t Block>
inline FreeBlocks& free_blocks() noexcept {
  static thread_local FreeBlocks s;  // trivially destructible: valid until the thread ends
  return s;
}

template <std::size_t Size>
class BlockCache {
  static_assert(Size >= sizeof(void*));
  static constexpr std::size_t kBlock = (Size + kBlockGranule - 1) / kBlockGranule * kBlockGranule;
  static constexpr bool kEnabled = !kAddressSanitizer && kBlock <= kLargestCachedBlock;
  // One stack per block size (not per Size): at most one per size class.
  static FreeBlocks& state() noexcept { return free_blocks<kBlock>(); }

 public:
  static void* allocate() {
    if constexpr (!kEnabled) {
      return ::operator new(Size);
    } else {
      FreeBlocks& s = state();
      if (s.size == 0) [[unlikely]]
        return s.take_slow(kBlock);
      return s.blocks[--s.size];
    }
  }
  static void deallocate(void* block) noexcept {
    if constexpr (!kEnabled) {
      ::operator delete(block);
    } else {
      FreeBlocks& s = state();
      if (s.size == s.capacity) [[unlikely]] {
        if (!s.make_room(kBlock, block)) return;
      }
      s.blocks[s.size++] = block;
    }
  }
};

}  // namespace eddy::detail
