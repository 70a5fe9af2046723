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

/// The number of size classes BlockCache keeps.
inline constexpr std::size_t kBlockClasses = kLargestCachedBlock / kBlockGranule;

/// One thread's free blocks of one size class: a stack of pointers (see
/// BlockCache). Trivially destructible, so that a thread_local of it needs no
/// guard.
struct FreeBlocks {
  void** blocks = nullptr;
  std::uint32_t size = 0;
  std::uint32_t capacity = 0;
  /// Blocks taken minus blocks freed on this thread (blocks passed to the
  /// shared pool count as taken): below zero, the stack holds blocks that
  /// came from other threads. Tells a thread that frees what others make
  /// from one that frees its own, however many (see push_slow).
  std::int64_t net = 0;

  /// Called when the stack is empty: returns a block of its size class,
  /// taken from those that exited threads left (the stack is refilled with
  /// more of them) or newly carved. Throws std::bad_alloc.
  void* take_slow();
  /// Called when the stack is full: grows it and pushes `block` or, when the
  /// thread is exiting or memory is short, gives `block` to the blocks
  /// shared by all threads.
  void push_slow(void* block) noexcept;
};

/// This thread's stack of free blocks of size class `size_class` (blocks of
/// (size_class + 1) * kBlockGranule bytes).
inline FreeBlocks& free_blocks(std::size_t size_class) noexcept {
  static thread_local FreeBlocks stacks[kBlockClasses];  // trivially destructible: no guard
  return stacks[size_class];
}

/// The free blocks that exited threads left, for one block size (tests).
std::size_t shared_free_blocks(std::size_t block_size) noexcept;
/// Bytes mapped for blocks so far, by all threads (tests).
std::size_t mapped_block_bytes() noexcept;
/// Sets how many bytes of free blocks one stack holds before it passes the
/// older half to the shared pool (64 MiB); returns the previous limit (tests).
std::size_t set_block_stack_limit(std::size_t bytes) noexcept;

/// How many allocations ahead take_block prefetches the block it will return.
inline constexpr std::uint32_t kTakeAhead = 16;

/// Asks for the cache lines of a block of `bytes` bytes, for writing.
[[gnu::always_inline]] inline void prefetch_block_for_write(const void* block,
                                                            std::size_t bytes) noexcept {
  const char* at = static_cast<const char*>(block);
  for (std::size_t offset = 0; offset < bytes; offset += 64)
    __builtin_prefetch(at + offset, 1);
  __builtin_prefetch(at + bytes - 1, 1);  // the last line, when the block straddles one more
}

/// A block of size class `size_class` (see free_blocks); the fast path of
/// BlockCache, also used directly where the size is known only at run time.
///
/// It also prefetches, for writing, the block that the allocation kTakeAhead
/// after this one will return: a burst of allocations (a hundred thousand
/// tasks created in one callback) writes every line of blocks that went out
/// of cache when they were freed, and each store then waits for its line.
/// Prefetched, those lines arrive while the blocks before are filled (W6:
/// creating a task went from about 24 to 19 ns).
[[gnu::always_inline]] inline void* take_block(std::size_t size_class) {
  FreeBlocks& s = free_blocks(size_class);
  ++s.net;
  if (s.size == 0) [[unlikely]]
    return s.take_slow();  // (a tail call with one argument: a short fast path)
  if (s.size > kTakeAhead)
    prefetch_block_for_write(s.blocks[s.size - 1 - kTakeAhead], (size_class + 1) * kBlockGranule);
  return s.blocks[--s.size];
}
[[gnu::always_inline]] inline void give_block(std::size_t size_class, void* block) noexcept {
  FreeBlocks& s = free_blocks(size_class);
  --s.net;
  if (s.size == s.capacity) [[unlikely]]
    return s.push_slow(block);
  s.blocks[s.size++] = block;
}

/// A block of at least `size` bytes (16-aligned): from this thread's stack of
/// its size class, or from operator new for size 0, for sizes over
/// kLargestCachedBlock and under AddressSanitizer (see BlockCache).
[[gnu::always_inline]] inline void* allocate_block(std::size_t size) {
  if (kAddressSanitizer || size - 1 >= kLargestCachedBlock) return ::operator new(size);
  return take_block((size - 1) / kBlockGranule);
}
/// Frees a block from allocate_block(size).
[[gnu::always_inline]] inline void deallocate_block(void* block, std::size_t size) noexcept {
  if (kAddressSanitizer || size - 1 >= kLargestCachedBlock) return ::operator delete(block);
  give_block((size - 1) / kBlockGranule, block);
}

/// A per-thread cache of blocks of one size, for the objects an event loop
/// makes and drops by the thousand: future and task states, coroutine frames.
///
/// - Blocks are carved from chunks of 2 MiB that are never given back to the
///   system, in the order they are asked for (a task's frame and its state
///   end up side by side), with no malloc header between them. Every chunk
///   after the first is backed by transparent huge pages where the kernel
///   allows it (madvise; EDDY_HUGEPAGES=0 turns that off): a burst of a
///   hundred thousand tasks then walks its states without a TLB miss per
///   page.
/// - A freed block goes onto the freeing thread's stack of free pointers for
///   its 16-byte size class, and the next allocation of that class on that
///   thread takes it back. Taking a block does not read the block (a list
///   threaded through the blocks would make each allocation wait for the
///   previous block's cache miss).
/// - A thread that exits hands its free blocks to a pool shared by all
///   threads, which refills a thread's empty stack before new blocks are
///   carved, and the rest of its piece to the next thread that needs one
///   (a thread that lives briefly strands nothing). So memory stays at the process's peak of live
///   blocks of each size, as a loop's ready ring and timer slab stay at theirs, and is never lost:
///   a block may be freed on any thread.
/// - A thread whose stack of one size holds 64 MiB of free blocks, at least
///   half of which other threads made (it frees what they make, such as the
///   frames of coroutines started elsewhere), passes the older half to the
///   shared pool, where the threads that make them take them back. A thread
///   freeing its own blocks keeps them all (FreeBlocks::net).
/// - Under AddressSanitizer every block comes from, and goes back to,
///   operator new / delete, so that a use after free is still reported.
template <std::size_t Size>
class BlockCache {
  static_assert(Size >= sizeof(void*));

 public:
  static void* allocate() { return allocate_block(Size); }
  static void deallocate(void* block) noexcept { deallocate_block(block, Size); }
};

}  // namespace eddy::detail
