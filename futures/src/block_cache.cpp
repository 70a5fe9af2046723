// Where BlockCache's blocks come from, and where they go when a thread exits
// (see eddy/detail/block_cache.hpp).
#include "eddy/detail/block_cache.hpp"

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>

namespace eddy::detail {

namespace {

constexpr std::size_t kClasses = kBlockClasses;
constexpr std::size_t kChunk = std::size_t{2} << 20;  // one huge page on x86-64 and arm64
constexpr std::size_t kPiece = 64 * 1024;             // what a thread carves from at a time
constexpr std::uint32_t kBatch = 64;                  // shared free blocks taken at a time
// The bytes of blocks one stack holds before it passes half to the shared pool
// (see push_slow); changed only by tests.
std::atomic<std::size_t> g_stack_limit{std::size_t{64} << 20};

std::size_t class_of(std::size_t block_size) noexcept {
  return block_size / kBlockGranule - 1;
}

/// A free block in the shared pool: the list is threaded through the blocks
/// (only slow paths walk it).
struct Node {
  Node* next;
};

/// What all threads share, under one mutex: the chunk being cut into pieces
/// and the free blocks of exited threads. Made once and never destroyed, so
/// that a thread exiting after static destruction still finds it.
struct Shared {
  std::mutex mutex;
  char* at = nullptr;  // the rest of the chunk being cut
  char* end = nullptr;
  std::size_t chunks = 0;
  /// EDDY_HUGEPAGES=0 keeps every chunk on small pages.
  const bool huge_pages = [] {
    const char* setting = std::getenv("EDDY_HUGEPAGES");
    return setting == nullptr || std::strcmp(setting, "0") != 0;
  }();
  std::array<Node*, kClasses> free{};
  std::array<std::atomic<std::size_t>, kClasses> free_count{};  // read without the mutex
  /// The rests of the pieces of exited threads, carved again before a new
  /// piece is cut (else a thread that lives briefly would strand most of a
  /// piece each time).
  struct Rest {
    Rest* next;
    std::size_t bytes;
  };
  Rest* rests = nullptr;

  /// A fresh 2 MiB chunk, aligned to 2 MiB so that it can be one huge page.
  /// The first stays on small pages: a program that makes a few futures
  /// should not pay 2 MiB of memory for them. (The kernel zeroes a huge page
  /// at its first touch; on a virtual machine whose host has taken the
  /// memory back, that touch can cost far more than 512 small pages would.)
  void new_chunk() {
    void* mapped =
        ::mmap(nullptr, 2 * kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    const auto raw = reinterpret_cast<std::uintptr_t>(mapped);
    const std::uintptr_t base = (raw + kChunk - 1) & ~(kChunk - 1);
    const std::size_t head = base - raw;
    if (head != 0) ::munmap(mapped, head);
    if (kChunk - head != 0) ::munmap(reinterpret_cast<void*>(base + kChunk), kChunk - head);
#ifdef MADV_HUGEPAGE
    if (chunks != 0 && huge_pages) ::madvise(reinterpret_cast<void*>(base), kChunk, MADV_HUGEPAGE);
#endif
    ++chunks;
    at = reinterpret_cast<char*>(base);
    end = at + kChunk;
  }

  /// `bytes` (a multiple of the granule, at most kChunk) from the chunk.
  /// Throws std::bad_alloc. Caller holds the mutex.
  char* cut(std::size_t bytes) {
    if (static_cast<std::size_t>(end - at) < bytes) {
      give_back(at, static_cast<std::size_t>(end - at));
      at = end;  // given back: not to be cut again if the next chunk cannot be had
      new_chunk();
    }
    char* piece = at;
    at += bytes;
    return piece;
  }

  /// Caller holds the mutex.
  void put(std::size_t block_size, void* block) noexcept {
    const std::size_t c = class_of(block_size);
    free[c] = ::new (block) Node{free[c]};
    free_count[c].store(free_count[c].load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  }
  /// Up to `wanted` free blocks into `out`; returns how many. Caller holds the mutex.
  std::uint32_t take_free(std::size_t block_size, std::uint32_t wanted, void** out) noexcept {
    const std::size_t c = class_of(block_size);
    std::uint32_t n = 0;
    while (n < wanted && free[c] != nullptr) {
      Node* node = free[c];
      free[c] = node->next;
      node->~Node();
      out[n++] = node;
    }
    free_count[c].store(free_count[c].load(std::memory_order_relaxed) - n,
                        std::memory_order_relaxed);
    return n;
  }

  /// Keeps [from, from + bytes) for the next thread that needs a piece.
  /// Caller holds the mutex.
  void keep_rest(char* from, std::size_t bytes) noexcept {
    if (bytes < sizeof(Rest)) return give_back(from, bytes);
    rests = ::new (from) Rest{rests, bytes};
  }
  /// A piece with room for a block of `block_size` bytes: a kept rest if one
  /// is large enough (those that are not become free blocks), else a new
  /// piece. Throws std::bad_alloc. Caller holds the mutex.
  std::pair<char*, char*> piece_for(std::size_t block_size) {
    while (rests != nullptr) {
      Rest* rest = rests;
      rests = rest->next;
      const std::size_t bytes = rest->bytes;
      rest->~Rest();
      char* from = reinterpret_cast<char*>(rest);
      if (bytes >= block_size) return {from, from + bytes};
      give_back(from, bytes);
    }
    char* fresh = cut(kPiece);
    return {fresh, fresh + kPiece};
  }

  /// Unused memory [at, at + bytes) becomes free blocks of the largest sizes
  /// that fit, so that nothing carved is ever lost. Caller holds the mutex.
  void give_back(char* from, std::size_t bytes) noexcept {
    while (bytes >= kBlockGranule) {
      const std::size_t block = bytes < kLargestCachedBlock ? bytes : kLargestCachedBlock;
      put(block, from);
      from += block;
      bytes -= block;
    }
  }
};

Shared& shared() {
  static Shared* const s = new Shared;  // never destroyed (see Shared)
  return *s;
}

/// The piece of a chunk this thread carves new blocks from, in the order
/// they are asked for (a task's frame and its state end up side by side).
struct Piece {
  char* at = nullptr;
  char* end = nullptr;
};
thread_local Piece t_piece;  // trivially destructible

/// Whether this thread's releaser exists, and whether it has run.
struct ThreadState {
  bool registered = false;
  bool released = false;  // the thread is exiting: its stacks are gone
};
thread_local ThreadState t_state;  // trivially destructible

/// Empties this thread's stacks into the shared pool, and keeps the rest of
/// its piece for the next thread that needs one, when the thread exits.
struct Releaser {
  ~Releaser() {
    Shared& s = shared();
    std::lock_guard<std::mutex> lock(s.mutex);
    for (std::size_t c = 0; c < kClasses; ++c) {
      FreeBlocks& stack = free_blocks(c);
      for (std::uint32_t b = 0; b < stack.size; ++b)
        s.put((c + 1) * kBlockGranule, stack.blocks[b]);
      std::free(static_cast<void*>(stack.blocks));
      stack = {};
    }
    s.keep_rest(t_piece.at, static_cast<std::size_t>(t_piece.end - t_piece.at));
    t_piece = {};
    t_state.released = true;
  }
};

void register_thread() noexcept {
  if (t_state.registered) return;
  t_state.registered = true;
  static thread_local Releaser releaser;
  (void)releaser;
}

/// The size of the blocks `stack` holds (one of this thread's stacks).
std::size_t block_size_of(const FreeBlocks& stack) noexcept {
  return static_cast<std::size_t>(&stack - &free_blocks(0) + 1) * kBlockGranule;
}

/// Makes room for `wanted` more pointers; false if memory is short.
bool reserve(FreeBlocks& stack, std::uint32_t wanted) noexcept {
  if (stack.capacity - stack.size >= wanted) return true;
  std::uint32_t capacity = stack.capacity == 0 ? 2 * kBatch : 2 * stack.capacity;
  while (capacity - stack.size < wanted)
    capacity *= 2;
  void* grown = std::realloc(static_cast<void*>(stack.blocks), capacity * sizeof(void*));
  if (grown == nullptr) return false;
  stack.blocks = static_cast<void**>(grown);
  stack.capacity = capacity;
  return true;
}

}  // namespace

void* FreeBlocks::take_slow() {
  const std::size_t block_size = block_size_of(*this);
  register_thread();
  Shared& s = shared();
  if (t_state.released) {  // a block made during the thread's exit: no stack, no piece
    std::lock_guard<std::mutex> lock(s.mutex);
    void* block = nullptr;
    if (s.take_free(block_size, 1, &block) == 1) return block;
    return s.cut(block_size);
  }
  // Blocks that exited threads left come first.
  if (s.free_count[class_of(block_size)].load(std::memory_order_relaxed) != 0 &&
      reserve(*this, kBatch)) {
    std::lock_guard<std::mutex> lock(s.mutex);
    size += s.take_free(block_size, kBatch, blocks + size);
    if (size != 0) return blocks[--size];
  }
  Piece& p = t_piece;
  if (static_cast<std::size_t>(p.end - p.at) < block_size) [[unlikely]] {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto [from, end] = s.piece_for(block_size);
    s.give_back(p.at, static_cast<std::size_t>(p.end - p.at));  // less than a block
    p.at = from;
    p.end = end;
  }
  void* block = p.at;
  p.at += block_size;
  return block;
}

void FreeBlocks::push_slow(void* block) noexcept {
  const std::size_t block_size = block_size_of(*this);
  register_thread();
  Shared& s = shared();
  if (!t_state.released) {
    // A thread that frees more than it makes (blocks made on other threads,
    // such as the frames of coroutines started elsewhere) passes the older
    // half of a full stack to the shared pool, where the threads that make
    // them take them back, instead of growing without bound. A thread whose
    // stack holds its own blocks, however many, keeps them: it will take
    // them again, and passing them on would make both sides walk cold
    // blocks (the pool's list runs through them).
    if (size >= 2 && -net >= static_cast<std::int64_t>(size / 2) &&
        size * block_size >= g_stack_limit.load(std::memory_order_relaxed)) {
      const std::uint32_t half = size / 2;
      net += half;  // as if taken
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        for (std::uint32_t i = 0; i < half; ++i)
          s.put(block_size, blocks[i]);
      }
      std::memmove(blocks, blocks + half, (size - half) * sizeof(void*));
      size -= half;
      blocks[size++] = block;
      return;
    }
    if (reserve(*this, 1)) {
      blocks[size++] = block;
      return;
    }
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.put(block_size, block);
}

std::size_t set_block_stack_limit(std::size_t bytes) noexcept {
  return g_stack_limit.exchange(bytes, std::memory_order_relaxed);
}

std::size_t mapped_block_bytes() noexcept {
  Shared& s = shared();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.chunks * kChunk;
}

std::size_t shared_free_blocks(std::size_t block_size) noexcept {
  return shared().free_count[class_of(block_size)].load(std::memory_order_relaxed);
}

}  // namespace eddy::detail
