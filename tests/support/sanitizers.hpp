// Which sanitizer a test is built with, for tests that scale their work down
// or switch a sanitizer's checks off: EDDY_TEST_ASAN, EDDY_TEST_TSAN (g++
// says so with __SANITIZE_*__, clang++ with __has_feature).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define EDDY_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDDY_TEST_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define EDDY_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EDDY_TEST_TSAN 1
#endif
#endif
