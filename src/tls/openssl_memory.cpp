#include "tls/openssl_memory.hpp"

#include <openssl/crypto.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace sluice::tls {
namespace {

constexpr size_t kHeader = 16;  // keeps glibc's 16-byte alignment for the caller's block
constexpr size_t kStep = 16;
constexpr size_t kClasses = kMaxCachedBlock / kStep;
constexpr uint32_t kLarge = UINT32_MAX;

constexpr size_t class_size(size_t c) {
  return (c + 1) * kStep;
}
// About 4 KB of free blocks per class, at least 4 and at most 32 of them.
constexpr uint32_t class_cap(size_t c) {
  const size_t cap = 4096 / class_size(c);
  return static_cast<uint32_t>(cap < 4 ? 4 : cap > 32 ? 32 : cap);
}

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible and constant-initialized: no guard on access, and still readable (as
// kGone) while other thread-exit destructors run after drain_at_exit's.
struct ThreadCache {
  enum State : uint8_t { kUnused, kActive, kGone };
  FreeBlock* head[kClasses];
  uint32_t count[kClasses];
  State state;
};
thread_local ThreadCache cache{};

uint32_t& header_of(void* block) {
  return *reinterpret_cast<uint32_t*>(static_cast<char*>(block) - kHeader);
}

void drain(ThreadCache& c) {
  for (size_t i = 0; i < kClasses; ++i) {
    while (FreeBlock* b = c.head[i]) {
      c.head[i] = b->next;
      std::free(reinterpret_cast<char*>(b) - kHeader);
    }
    c.count[i] = 0;
  }
}

// Registered with the thread's first use of the cache (a thread_local with a destructor is
// constructed at its first use in each thread).
struct DrainAtExit {
  ThreadCache* owner = nullptr;
  ~DrainAtExit() {
    if (!owner) return;
    drain(*owner);
    owner->state = ThreadCache::kGone;
  }
};
thread_local DrainAtExit drain_at_exit;

void activate() {
  cache.state = ThreadCache::kActive;
  drain_at_exit.owner = &cache;
}

void* fresh(size_t payload, uint32_t header) {
  char* raw = static_cast<char*>(std::malloc(kHeader + payload));
  if (!raw) return nullptr;
  *reinterpret_cast<uint32_t*>(raw) = header;
  return raw + kHeader;
}

}  // namespace

void* cached_malloc(size_t size, const char*, int) {
  if (size > kMaxCachedBlock) return size > SIZE_MAX - kHeader ? nullptr : fresh(size, kLarge);
  const size_t c = size == 0 ? 0 : (size - 1) / kStep;
  if (cache.state == ThreadCache::kActive) {
    if (FreeBlock* b = cache.head[c]) {
      cache.head[c] = b->next;
      --cache.count[c];
      return b;
    }
  } else if (cache.state == ThreadCache::kUnused) {
    activate();
  }
  return fresh(class_size(c), static_cast<uint32_t>(c));
}

void cached_free(void* block, const char*, int) {
  if (!block) return;
  const uint32_t c = header_of(block);
  if (c != kLarge) {
    if (cache.state == ThreadCache::kUnused) activate();
    if (cache.state == ThreadCache::kActive && cache.count[c] < class_cap(c)) {
      auto* b = static_cast<FreeBlock*>(block);
      b->next = cache.head[c];
      cache.head[c] = b;
      ++cache.count[c];
      return;
    }
  }
  std::free(static_cast<char*>(block) - kHeader);
}

void* cached_realloc(void* block, size_t size, const char* file, int line) {
  if (!block) return cached_malloc(size, file, line);
  if (size == 0) {  // as CRYPTO_realloc: frees, returns null
    cached_free(block, file, line);
    return nullptr;
  }
  const uint32_t c = header_of(block);
  if (c == kLarge) {
    if (size > SIZE_MAX - kHeader) return nullptr;
    char* raw =
        static_cast<char*>(std::realloc(static_cast<char*>(block) - kHeader, kHeader + size));
    return raw ? raw + kHeader : nullptr;
  }
  if (size <= class_size(c)) return block;
  void* grown = cached_malloc(size, file, line);
  if (!grown) return nullptr;  // the old block stays the caller's, as with realloc
  std::memcpy(grown, block, class_size(c));
  cached_free(block, file, line);
  return grown;
}

size_t cached_blocks_on_this_thread() {
  size_t n = 0;
  for (size_t i = 0; i < kClasses; ++i) n += cache.count[i];
  return n;
}

bool use_cached_openssl_memory() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return false;
#endif
#endif
  return CRYPTO_set_mem_functions(cached_malloc, cached_realloc, cached_free) == 1;
}

}  // namespace sluice::tls
