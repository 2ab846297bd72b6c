#include "proxy/slab_pool.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

namespace sluice::proxy {
namespace {

TEST(SlabPool, PacksObjectsAndGivesEmptySlabsBack) {
  SlabPool pool(600);
  const size_t per_slab = pool.objects_per_slab();
  ASSERT_GE(per_slab, 100u);  // 64 KB slabs of 608-byte slots, less a header
  std::vector<void*> objects;
  for (size_t i = 0; i < 3 * per_slab; ++i) {
    void* p = pool.allocate();
    ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u);
    std::memset(p, static_cast<int>(i), 600);  // each object is its own
    objects.push_back(p);
  }
  EXPECT_EQ(pool.mapped_slabs(), 3u);
  EXPECT_EQ(std::set<void*>(objects.begin(), objects.end()).size(), objects.size());
  for (size_t i = 0; i < objects.size(); ++i)
    EXPECT_EQ(*static_cast<unsigned char*>(objects[i]), static_cast<unsigned char>(i)) << i;

  // The second slab emptied: kept as the spare. The third emptied too: unmapped.
  for (size_t i = per_slab; i < 2 * per_slab; ++i) pool.deallocate(objects[i]);
  EXPECT_EQ(pool.mapped_slabs(), 3u);
  for (size_t i = 2 * per_slab; i < 3 * per_slab; ++i) pool.deallocate(objects[i]);
  EXPECT_EQ(pool.mapped_slabs(), 2u);

  // A slot given back is handed out again before any new slab is mapped.
  pool.deallocate(objects[7]);
  EXPECT_EQ(pool.allocate(), objects[7]);
  EXPECT_EQ(pool.mapped_slabs(), 2u);

  for (size_t i = 0; i < per_slab; ++i) pool.deallocate(objects[i]);
  EXPECT_EQ(pool.mapped_slabs(), 1u);  // the spare alone
  // The spare is used before anything is mapped.
  void* again = pool.allocate();
  EXPECT_EQ(pool.mapped_slabs(), 1u);
  pool.deallocate(again);
}

struct Sample {
  explicit Sample(int v) : value(v) {}
  int value;
  char payload[500] = {};
};

struct Counted : SlabAllocated<Counted> {
  int value = 3;
  char payload[300] = {};
};

TEST(SlabPool, AllocatorsServeSharedAndUniqueObjects) {
  std::vector<std::shared_ptr<Sample>> shared;
  std::vector<std::unique_ptr<Counted>> owned;
  for (int i = 0; i < 1000; ++i) {
    shared.push_back(std::allocate_shared<Sample>(SlabAllocator<Sample>{}, i));
    owned.push_back(std::make_unique<Counted>());
  }
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(shared[i]->value, i);
    EXPECT_EQ(owned[i]->value, 3);
  }
  std::weak_ptr<Sample> watched = shared[5];
  shared.clear();
  owned.clear();
  EXPECT_TRUE(watched.expired());
}

}  // namespace
}  // namespace sluice::proxy
