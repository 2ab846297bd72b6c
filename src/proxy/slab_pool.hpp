// Many alike objects that live long (idle client sessions), packed in pages of their own.
//
// From the general heap, each session object would sit among what its login allocated and
// freed (buffers, coroutine frames, SCRAM state): once that is freed, the pages stay resident
// for the few hundred bytes still in use on each, and malloc_trim can return only pages wholly
// free. Here objects of one size share 64 KB slabs, so 10,000 idle sessions fill about a
// hundred slabs and nothing else; a slab emptied (the parts of sessions that went idle) is
// unmapped.
//
// Under AddressSanitizer the objects come from the general heap, where it checks them.
#pragma once

#include <cstddef>
#include <mutex>
#include <new>

namespace sluice::proxy {

class SlabPool {
 public:
  static constexpr size_t kSlabSize = 64 * 1024;

  explicit SlabPool(size_t object_size);
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;
  // Slabs still mapped are left mapped: objects may outlive the pool (see pool_for()).
  ~SlabPool() = default;

  // Room for one object of the pool's size, aligned for any type. Throws std::bad_alloc.
  void* allocate();
  void deallocate(void* p) noexcept;

  // Slabs mapped now, one of them possibly empty (kept so that one client coming and going
  // does not map and unmap each time).
  size_t mapped_slabs() const;
  size_t objects_per_slab() const { return per_slab_; }

  // The process's pool for objects of type T: made once, never destroyed, so that an object
  // freed late in shutdown still finds it.
  template <class T>
  static SlabPool& pool_for() {
    static SlabPool& pool = *new SlabPool(sizeof(T));
    return pool;
  }

 private:
  struct Slab;
  Slab* map_slab();
  void unlink(Slab* slab);
  void push_front(Slab* slab);

  const size_t object_size_;
  const size_t per_slab_;
  mutable std::mutex mutex_;   // sessions are made on every worker's thread
  Slab* with_room_ = nullptr;  // slabs with a free slot, most recently freed into first
  Slab* spare_ = nullptr;      // an empty slab kept mapped
  size_t mapped_ = 0;
};

// For std::allocate_shared: the object with its control block from the pool of that size;
// anything else (arrays) from the general heap.
template <class T>
struct SlabAllocator {
  using value_type = T;
  SlabAllocator() = default;
  template <class U>
  SlabAllocator(const SlabAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
#ifndef __SANITIZE_ADDRESS__
    if (n == 1) return static_cast<T*>(SlabPool::pool_for<T>().allocate());
#endif
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, [[maybe_unused]] size_t n) noexcept {
#ifndef __SANITIZE_ADDRESS__
    if (n == 1) return SlabPool::pool_for<T>().deallocate(p);
#endif
    ::operator delete(p);
  }
  template <class U>
  bool operator==(const SlabAllocator<U>&) const noexcept {
    return true;
  }
};

// For a class whose objects come from the pool of their size: `new` and `delete` go there.
template <class T>
struct SlabAllocated {
  static void* operator new(size_t size) {
#ifndef __SANITIZE_ADDRESS__
    if (size == sizeof(T)) return SlabPool::pool_for<T>().allocate();
#endif
    return ::operator new(size);
  }
  static void operator delete(void* p, [[maybe_unused]] size_t size) noexcept {
#ifndef __SANITIZE_ADDRESS__
    if (size == sizeof(T)) return SlabPool::pool_for<T>().deallocate(p);
#endif
    ::operator delete(p);
  }
};

}  // namespace sluice::proxy
