#include "cloud/log_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace sluice::cloud {
namespace {
namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/sluice-logstore-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

constexpr std::string_view kGroup = "/aws/lambda/meal-planner-test-app";
constexpr std::string_view kStream = "2026/12/05/[$LATEST]0123456789abcdef0123456789abcdef";

TEST(LogStore, GroupsAndStreamsAreCreatedOnce) {
  TempDir dir;
  LogStore store(dir.path + "/logs");
  EXPECT_TRUE(store.groups().empty());
  EXPECT_FALSE(store.streams(kGroup));
  EXPECT_FALSE(store.events(kGroup, kStream));
  EXPECT_TRUE(store.create_group(kGroup));
  EXPECT_FALSE(store.create_group(kGroup));
  EXPECT_TRUE(store.create_stream(kGroup, kStream));
  EXPECT_FALSE(store.create_stream(kGroup, kStream));
  // A stream makes its group.
  EXPECT_TRUE(store.create_stream("other", "s"));
  const auto groups = store.groups();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, kGroup);  // by name: '/' sorts before 'o'
  EXPECT_EQ(groups[1].name, "other");
  EXPECT_GT(groups[0].creation_time, 1700000000000);
  auto streams = store.streams(kGroup);
  ASSERT_TRUE(streams);
  ASSERT_EQ(streams->size(), 1u);
  EXPECT_EQ((*streams)[0].name, kStream);
  EXPECT_EQ((*streams)[0].first_event_timestamp, 0);
  EXPECT_EQ(store.events(kGroup, kStream)->size(), 0u);
}

TEST(LogStore, AppendsAnyBytesAndReadsThemBackAfterARestart) {
  TempDir dir;
  const std::string binary("nul\0byte \xff\xfe end", 15);
  {
    LogStore store(dir.path + "/logs");
    store.append(kGroup, kStream, 1000, "START RequestId: 1\n");
    store.append(kGroup, kStream, 1001, "two\nlines\n");
    store.append(kGroup, kStream, 999, binary);
    store.append(kGroup, "another", 5000, "x");
  }
  LogStore again(dir.path + "/logs");
  auto events = again.events(kGroup, kStream);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].message, "START RequestId: 1\n");
  EXPECT_EQ((*events)[0].timestamp, 1000);
  EXPECT_GT((*events)[0].ingestion_time, 1700000000000);
  EXPECT_EQ((*events)[1].message, "two\nlines\n");
  EXPECT_EQ((*events)[2].message, binary);  // in the order appended
  auto streams = again.streams(kGroup);
  ASSERT_TRUE(streams);
  ASSERT_EQ(streams->size(), 2u);
  EXPECT_EQ((*streams)[0].name, kStream);
  EXPECT_EQ((*streams)[0].first_event_timestamp, 999);
  EXPECT_EQ((*streams)[0].last_event_timestamp, 1001);
  EXPECT_EQ((*streams)[0].stored_bytes, static_cast<int64_t>(19 + 10 + binary.size()));
  EXPECT_EQ(again.groups()[0].stored_bytes, static_cast<int64_t>(19 + 10 + binary.size() + 1));
  // Listings keep up with appends made after they were first read.
  again.append(kGroup, kStream, 2000, "later");
  EXPECT_EQ(again.streams(kGroup)->at(0).last_event_timestamp, 2000);
  EXPECT_EQ(again.events(kGroup, kStream)->size(), 4u);
}

TEST(LogStore, NamesBecomeSafeFileNames) {
  TempDir dir;
  LogStore store(dir.path + "/logs");
  const std::string long_group(512, 'g');
  const std::string long_stream = std::string(300, '/') + std::string(212, 'x');
  store.append(long_group, long_stream, 1, "deep");
  store.append("..", "..", 2, "dots");
  store.append(kGroup, "a/b", 3, "slash");
  store.append(kGroup, "a%2Fb", 4, "percent");
  for (const auto& entry : fs::recursive_directory_iterator(dir.path + "/logs")) {
    EXPECT_LT(entry.path().filename().string().size(), 200u) << entry.path();
    // Everything stays inside the folder.
    EXPECT_TRUE(entry.path().string().starts_with(dir.path + "/logs/")) << entry.path();
  }
  EXPECT_EQ(store.events(long_group, long_stream)->at(0).message, "deep");
  EXPECT_EQ(store.events("..", "..")->at(0).message, "dots");
  EXPECT_EQ(store.events(kGroup, "a/b")->at(0).message, "slash");
  EXPECT_EQ(store.events(kGroup, "a%2Fb")->at(0).message, "percent");
  EXPECT_EQ(store.streams(long_group)->at(0).name, long_stream);
}

TEST(LogStore, AnEventCutShortIsNotRead) {
  TempDir dir;
  LogStore store(dir.path + "/logs");
  store.append("g", "s", 1, "whole");
  EXPECT_EQ(store.streams("g")->at(0).last_event_timestamp, 1);
  std::string file;
  for (const auto& entry : fs::recursive_directory_iterator(dir.path))
    if (entry.path().extension() == ".events") file = entry.path().string();
  ASSERT_FALSE(file.empty());
  std::ofstream(file, std::ios::app) << "5 6 100\nonly part of it";
  EXPECT_EQ(store.events("g", "s")->size(), 1u);
  EXPECT_EQ(store.streams("g")->at(0).last_event_timestamp, 1);
}

TEST(LogStore, DeletesAGroupWithItsStreams) {
  TempDir dir;
  LogStore store(dir.path + "/logs");
  store.append(kGroup, kStream, 1, "x");
  store.append("kept", "s", 1, "y");
  EXPECT_FALSE(store.delete_group("missing"));
  EXPECT_TRUE(store.delete_group(kGroup));
  EXPECT_FALSE(store.delete_group(kGroup));
  EXPECT_FALSE(store.streams(kGroup));
  EXPECT_FALSE(store.events(kGroup, kStream));
  ASSERT_EQ(store.groups().size(), 1u);
  EXPECT_EQ(store.groups()[0].name, "kept");
  // A new group of the same name starts empty.
  store.append(kGroup, kStream, 7, "new");
  EXPECT_EQ(store.events(kGroup, kStream)->size(), 1u);
  EXPECT_EQ(store.streams(kGroup)->at(0).first_event_timestamp, 7);
}

}  // namespace
}  // namespace sluice::cloud
