// Out-of-memory injection for tests: replaces the global operator new and
// delete with versions that make one chosen allocation of this thread throw
// std::bad_alloc. Include it in exactly one source file of a test program
// (it defines the replacements).
//
// A test sweeps the allocations a call makes: for k = 1, 2, ... it sets the
// scene, arms the k-th allocation to fail, makes the call, disarms and checks
// what must hold either way; the sweep ends at the first k that the call no
// longer reaches (fired() stays false).
//
// eddy's block caches take their blocks from mmap in the plain build, so
// there the allocations of future and task states and of frames do not go
// through operator new; under AddressSanitizer they do (see README, Memory).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace eddy::testing {

class FailingAllocator {
 public:
  /// The `k`-th operator new of this thread from now on throws (k >= 1).
  static void arm(long k) noexcept {
    countdown_ = k;
    fired_ = false;
  }
  static void disarm() noexcept { countdown_ = 0; }
  /// Whether the armed allocation was reached (and failed).
  static bool fired() noexcept { return fired_; }
  /// For the replacements below.
  static bool fail_now() noexcept {
    if (countdown_ <= 0 || --countdown_ != 0) return false;
    fired_ = true;
    return true;
  }

 private:
  static inline thread_local long countdown_ = 0;
  static inline thread_local bool fired_ = false;
};

/// Disarms when it goes (a failed expectation must not leave the next
/// allocation armed).
struct DisarmAtExit {
  DisarmAtExit() = default;
  DisarmAtExit(const DisarmAtExit&) = delete;
  DisarmAtExit& operator=(const DisarmAtExit&) = delete;
  ~DisarmAtExit() { FailingAllocator::disarm(); }
};

namespace failing_allocator_detail {
inline void* allocate(std::size_t size, std::size_t alignment) {
  if (FailingAllocator::fail_now()) throw std::bad_alloc();
  if (size == 0) size = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size);
  } else if (::posix_memalign(&p, alignment, size) != 0) {
    p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
// Out of line, so that the compiler does not pair an inlined free() with
// the operator new of the caller and warn about a mismatch.
[[gnu::noinline]] inline void deallocate(void* p) noexcept {
  std::free(p);
}
}  // namespace failing_allocator_detail

}  // namespace eddy::testing

void* operator new(std::size_t size) {
  return eddy::testing::failing_allocator_detail::allocate(size, 0);
}
void* operator new[](std::size_t size) {
  return eddy::testing::failing_allocator_detail::allocate(size, 0);
}
void* operator new(std::size_t size, std::align_val_t align) {
  return eddy::testing::failing_allocator_detail::allocate(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return eddy::testing::failing_allocator_detail::allocate(size, static_cast<std::size_t>(align));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return eddy::testing::failing_allocator_detail::allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return ::operator new(size, std::nothrow);
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  try {
    return eddy::testing::failing_allocator_detail::allocate(size, static_cast<std::size_t>(align));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return ::operator new(size, align, std::nothrow);
}
void operator delete(void* p) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete[](void* p) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete(void* p, std::size_t) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  eddy::testing::failing_allocator_detail::deallocate(p);
}
