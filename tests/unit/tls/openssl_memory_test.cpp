// The block cache behind OpenSSL's allocations (src/tls/openssl_memory.hpp).
#include "tls/openssl_memory.hpp"

#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace sluice::tls {
namespace {

void fill(void* block, size_t size, unsigned char seed) {
  for (size_t i = 0; i < size; ++i)
    static_cast<unsigned char*>(block)[i] = (unsigned char)(seed + i);
}
bool holds(const void* block, size_t size, unsigned char seed) {
  for (size_t i = 0; i < size; ++i)
    if (static_cast<const unsigned char*>(block)[i] != (unsigned char)(seed + i)) return false;
  return true;
}

TEST(OpensslMemory, BlocksOfEverySizeAreAlignedAndDistinct) {
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{100},
                      kMaxCachedBlock - 1, kMaxCachedBlock, kMaxCachedBlock + 1, size_t{70000}}) {
    void* b = cached_malloc(size, __FILE__, __LINE__);
    ASSERT_NE(b, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 16, 0u) << size;
    fill(b, size, static_cast<unsigned char>(size));
    blocks.emplace_back(b, size);
  }
  // No block overlaps another: each still holds what was written into it.
  for (auto [b, size] : blocks) EXPECT_TRUE(holds(b, size, static_cast<unsigned char>(size)));
  for (auto [b, size] : blocks) cached_free(b, __FILE__, __LINE__);
  cached_free(nullptr, __FILE__, __LINE__);  // as free(NULL)
}

TEST(OpensslMemory, FreedSmallBlocksAreReusedUpToTheCap) {
  const size_t before = cached_blocks_on_this_thread();
  void* a = cached_malloc(40, __FILE__, __LINE__);
  cached_free(a, __FILE__, __LINE__);
  EXPECT_EQ(cached_blocks_on_this_thread(), before + 1);
  EXPECT_EQ(cached_malloc(33, __FILE__, __LINE__), a);  // same 48-byte class
  EXPECT_EQ(cached_blocks_on_this_thread(), before);
  cached_free(a, __FILE__, __LINE__);
  // A burst of frees keeps at most the cap (4 KB of 512-byte blocks: 8); the rest go to glibc.
  std::vector<void*> many;
  for (int i = 0; i < 100; ++i) many.push_back(cached_malloc(kMaxCachedBlock, __FILE__, __LINE__));
  const size_t with_none = cached_blocks_on_this_thread();
  for (void* b : many) cached_free(b, __FILE__, __LINE__);
  EXPECT_EQ(cached_blocks_on_this_thread() - with_none, 8u);
  // Large blocks are never kept.
  const size_t now = cached_blocks_on_this_thread();
  cached_free(cached_malloc(kMaxCachedBlock + 1, __FILE__, __LINE__), __FILE__, __LINE__);
  EXPECT_EQ(cached_blocks_on_this_thread(), now);
}

TEST(OpensslMemory, ReallocKeepsTheContentsAcrossClasses) {
  void* b = cached_realloc(nullptr, 10, __FILE__, __LINE__);  // as malloc
  ASSERT_NE(b, nullptr);
  fill(b, 10, 7);
  EXPECT_EQ(cached_realloc(b, 16, __FILE__, __LINE__), b);  // fits its class: in place
  b = cached_realloc(b, 300, __FILE__, __LINE__);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(holds(b, 10, 7));
  fill(b, 300, 9);
  b = cached_realloc(b, 100000, __FILE__, __LINE__);  // small to large
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(holds(b, 300, 9));
  fill(b, 100000, 3);
  b = cached_realloc(b, 200000, __FILE__, __LINE__);  // large to large
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(holds(b, 100000, 3));
  b = cached_realloc(b, 20, __FILE__, __LINE__);  // large shrinks in place
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(holds(b, 20, 3));
  EXPECT_EQ(cached_realloc(b, 0, __FILE__, __LINE__), nullptr);  // as CRYPTO_realloc: freed
}

TEST(OpensslMemory, BlocksFreedByAnotherThreadAndAtThreadExit) {
  // Blocks made on one thread, freed on another that then ends: its lists go back to glibc and
  // nothing it kept is handed out again here.
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i) {
    blocks.push_back(cached_malloc(24, __FILE__, __LINE__));
    fill(blocks.back(), 24, static_cast<unsigned char>(i));
  }
  size_t kept_there = 0;
  std::thread other([&] {
    for (void* b : blocks) cached_free(b, __FILE__, __LINE__);
    kept_there = cached_blocks_on_this_thread();
    // Made and freed there, many times over: no growth beyond the cap.
    for (int i = 0; i < 10000; ++i)
      cached_free(cached_malloc(24, __FILE__, __LINE__), __FILE__, __LINE__);
  });
  other.join();
  EXPECT_EQ(kept_there, 32u);  // 4 KB of 32-byte blocks would be 128; the cap is 32
  // And the reverse: blocks made on other threads are freed here.
  std::vector<void*> theirs(8);
  std::thread maker([&] {
    for (auto& b : theirs) b = cached_malloc(200, __FILE__, __LINE__);
  });
  maker.join();
  for (void* b : theirs) cached_free(b, __FILE__, __LINE__);
}

TEST(OpensslMemory, OpenSslCanNoLongerSwitchOnceItHasAllocated) {
  // This test process has used OpenSSL already (or the cache is off under ASan): the call
  // refuses and OpenSSL goes on with the allocator it has.
  void* b = OPENSSL_malloc(32);
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(use_cached_openssl_memory());
  OPENSSL_free(b);
}

}  // namespace
}  // namespace sluice::tls
