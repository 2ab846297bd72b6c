// CloudWatch Logs' data: log groups, their streams and events, as files under one folder
// (DIR/logs), so they outlive a restart and `aws logs tail` reads what functions printed.
// One writer (the API's event loop).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cloud {

struct LogEvent {
  int64_t timestamp = 0;       // ms since the epoch, as the event happened
  int64_t ingestion_time = 0;  // ms since the epoch, as it was stored
  std::string message;
};

struct LogStreamInfo {
  std::string name;
  int64_t creation_time = 0;
  int64_t first_event_timestamp = 0;  // 0: no event yet
  int64_t last_event_timestamp = 0;
  int64_t last_ingestion_time = 0;
  int64_t stored_bytes = 0;
};

struct LogGroupInfo {
  std::string name;
  int64_t creation_time = 0;
  int64_t stored_bytes = 0;
};

class LogStore {
 public:
  explicit LogStore(std::string folder);

  // Creates the group if needed. False when it existed already.
  bool create_group(std::string_view group);
  // Creates the stream (and its group) if needed. False when it existed already.
  bool create_stream(std::string_view group, std::string_view stream);
  // Appends one event (creating group and stream as needed).
  void append(std::string_view group, std::string_view stream, int64_t timestamp_ms,
              std::string_view message);
  bool delete_group(std::string_view group);

  std::vector<LogGroupInfo> groups() const;  // by name
  std::optional<std::vector<LogStreamInfo>> streams(
      std::string_view group) const;  // none: no group
  // A stream's events in the order they were appended; nothing when the stream does not exist.
  std::optional<std::vector<LogEvent>> events(std::string_view group,
                                              std::string_view stream) const;

 private:
  // What a stream file held when last read, so listings read only what was appended since.
  struct StreamScan {
    uintmax_t parsed = 0;  // bytes of whole records read
    LogStreamInfo info;
  };

  std::string group_folder(std::string_view group) const;
  std::string stream_file(std::string_view group, std::string_view stream) const;
  bool create_group_locked(std::string_view group);
  bool create_stream_locked(std::string_view group, std::string_view stream);
  std::optional<LogStreamInfo> scan(const std::string& path) const;

  std::string folder_;
  // The function host may write from another thread than the API's.
  mutable std::mutex mutex_;
  mutable std::map<std::string, StreamScan> scans_;  // by file path
};

}  // namespace sluice::cloud
