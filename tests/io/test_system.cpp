// io/system: the free-core count that sizes LibTorch's thread pool by default.
#include <gtest/gtest.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <thread>

#include "io/system.hpp"

namespace attnlens {
namespace {

TEST(FreeCores, OtherRunnableTasksTakeCores) {
  EXPECT_EQ(free_cores("0.00 0.01 0.05 1/120 4242\n", 2), 2);  // only this process runs
  EXPECT_EQ(free_cores("1.00 1.00 1.00 2/120 4242\n", 2), 1);  // another process keeps a core busy
  EXPECT_EQ(free_cores("3.10 2.00 1.00 5/300 4242\n", 2), 1);  // more work than cores: still one thread
  EXPECT_EQ(free_cores("3.10 2.00 1.00 5/300 4242\n", 16), 12);
}

TEST(FreeCores, MalformedTextGivesEveryCore) {
  EXPECT_EQ(free_cores("", 4), 4);
  EXPECT_EQ(free_cores("0.1 0.2 0.3 x/120 1", 4), 4);
  EXPECT_EQ(free_cores("0.1 0.2 0.3 /120 1", 4), 4);
  EXPECT_EQ(free_cores("0.1 0.2 0.3 0/120 1", 4), 4);
  EXPECT_EQ(free_cores("0.1 0.2 0.3 99999999/120 1", 4), 4);
  EXPECT_EQ(free_cores("0.1 0.2 0.3 2/120 1", 0), 1);  // a core count of 0 (unknown) counts as 1
}

TEST(FreeCores, OnThisMachineBetweenOneAndAllCores) {
  const int n = free_cores();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

// GCC says AddressSanitizer with __SANITIZE_ADDRESS__, clang with __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define ATTNLENS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTNLENS_TEST_ASAN 1
#endif
#endif

#if defined(__GLIBC__)
TEST(KeepFreedMemory, LargeBlocksComeFromTheHeapNotFreshMappings) {
#if defined(ATTNLENS_TEST_ASAN)
  GTEST_SKIP() << "AddressSanitizer's allocator replaces glibc's (its mallopt does nothing)";
#endif
  ASSERT_TRUE(keep_freed_memory());
  // 8 MB is above glibc's default mmap threshold in a fresh process (128 KB): by default it would be a mapping of
  // its own (mallinfo2's hblkhd grows), unmapped again on free. With the setting it comes from the heap.
  constexpr std::size_t kSize = 8u << 20;
  const std::size_t mapped_before = mallinfo2().hblkhd;
  void* block = std::malloc(kSize);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before);
  std::free(block);
}
#endif

}  // namespace
}  // namespace attnlens
