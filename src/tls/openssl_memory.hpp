// OpenSSL's heap: small blocks from a per-thread cache in front of malloc.
//
// Why: an OpenSSL 3.0 TLS 1.3 handshake allocates and frees about 3,300 blocks, nearly all small
// and most short-lived (parameter arrays, provider contexts, big numbers). Through glibc's malloc
// that costs about 65,000 instructions a handshake more than through this cache (callgrind,
// bench/login_cost.py), which pops and pushes a free list and does nothing else.
//
// How: every block is a glibc block with a 16-byte header that names its size class (blocks up
// to kMaxCachedBlock bytes, in 16-byte steps) or marks it large. A freed small block goes on the
// freeing thread's list for its class, up to a cap of about 4 KB per class (so at most about
// 128 KB per thread); anything else goes back to glibc. A block may be freed by any thread: the
// lists hold glibc blocks, which glibc frees from any thread too. A thread's lists go back to
// glibc when it ends; what OpenSSL frees after that (its own thread-exit cleanup) goes straight
// to glibc. Nothing is zeroed (OpenSSL's zalloc clears what it asks for) and OpenSSL's cleansing
// of secrets before a free is OpenSSL's and unchanged.
#pragma once

#include <cstddef>

namespace sluice::tls {

constexpr size_t kMaxCachedBlock = 512;

// Installs the cache as OpenSSL's allocator (CRYPTO_set_mem_functions). Must come before
// anything else calls OpenSSL: false, and glibc's malloc stays, if OpenSSL has allocated already.
// Under AddressSanitizer it installs nothing (and returns false), so that ASan sees every block.
bool use_cached_openssl_memory();

// The three functions it installs (OpenSSL's signatures); exposed for tests.
void* cached_malloc(size_t size, const char* file, int line);
void* cached_realloc(void* block, size_t size, const char* file, int line);
void cached_free(void* block, const char* file, int line);

// Blocks on the calling thread's lists (for tests).
size_t cached_blocks_on_this_thread();

}  // namespace sluice::tls
