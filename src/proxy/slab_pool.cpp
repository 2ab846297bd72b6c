#include "proxy/slab_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <utility>

namespace sluice::proxy {
namespace {
constexpr size_t kAlign = alignof(std::max_align_t);
constexpr size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}
}  // namespace

// At the start of each slab (slabs are aligned to their size: an object's slab is its address
// rounded down).
struct SlabPool::Slab {
  Slab* prev = nullptr;
  Slab* next = nullptr;
  void* free_list = nullptr;  // slots given back, each holding the next one's address
  size_t carved = 0;          // slots ever handed out (those past it were never touched)
  size_t used = 0;
  bool listed = false;  // in with_room_
};

namespace {
constexpr size_t kHeader = 64;  // the Slab, then the objects
static_assert(kHeader % kAlign == 0);
}  // namespace

SlabPool::SlabPool(size_t object_size)
    : object_size_(round_up(object_size < sizeof(void*) ? sizeof(void*) : object_size, kAlign)),
      per_slab_((kSlabSize - kHeader) / object_size_) {
  static_assert(sizeof(Slab) <= kHeader);
  if (per_slab_ == 0) throw std::bad_alloc();
}

SlabPool::Slab* SlabPool::map_slab() {
  // Twice the size, then the unaligned ends unmapped: the slab is aligned to its size.
  void* raw =
      mmap(nullptr, 2 * kSlabSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = round_up(start, kSlabSize);
  if (aligned > start) munmap(raw, aligned - start);
  if (const uintptr_t end = start + 2 * kSlabSize; end > aligned + kSlabSize)
    munmap(reinterpret_cast<void*>(aligned + kSlabSize), end - aligned - kSlabSize);
  ++mapped_;
  return new (reinterpret_cast<void*>(aligned)) Slab;
}

void SlabPool::unlink(Slab* slab) {
  if (slab->prev) slab->prev->next = slab->next;
  if (slab->next) slab->next->prev = slab->prev;
  if (with_room_ == slab) with_room_ = slab->next;
  slab->prev = slab->next = nullptr;
  slab->listed = false;
}

void SlabPool::push_front(Slab* slab) {
  slab->prev = nullptr;
  slab->next = with_room_;
  if (with_room_) with_room_->prev = slab;
  with_room_ = slab;
  slab->listed = true;
}

void* SlabPool::allocate() {
  std::lock_guard lock(mutex_);
  if (!with_room_) push_front(spare_ ? std::exchange(spare_, nullptr) : map_slab());
  Slab* slab = with_room_;
  void* p;
  if (slab->free_list) {
    p = slab->free_list;
    slab->free_list = *static_cast<void**>(p);
  } else {
    p = reinterpret_cast<char*>(slab) + kHeader + slab->carved++ * object_size_;
  }
  if (++slab->used == per_slab_) unlink(slab);
  return p;
}

void SlabPool::deallocate(void* p) noexcept {
  if (!p) return;
  std::lock_guard lock(mutex_);
  auto* slab = reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(p) & ~(kSlabSize - 1));
  *static_cast<void**>(p) = slab->free_list;
  slab->free_list = p;
  if (!slab->listed) push_front(slab);
  if (--slab->used > 0) return;
  // Empty: unmapped (or kept as the spare), so that its pages go back to the system.
  unlink(slab);
  if (!spare_) {
    // Kept mapped, its pages returned all the same: made anew on first touch.
    madvise(slab, kSlabSize, MADV_DONTNEED);
    spare_ = new (slab) Slab;
    return;
  }
  --mapped_;
  munmap(slab, kSlabSize);
}

size_t SlabPool::mapped_slabs() const {
  std::lock_guard lock(mutex_);
  return mapped_;
}

}  // namespace sluice::proxy
