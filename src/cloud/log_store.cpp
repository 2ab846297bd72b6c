#include "cloud/log_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "auth/crypto.hpp"

namespace sluice::cloud {
namespace fs = std::filesystem;
namespace {

// Layout: FOLDER/<group>/.group names the group; FOLDER/<group>/<stream>.events holds a header
// record naming the stream, then one record per event, appended and never rewritten:
//   "sluice-log-group 1 CREATION LENGTH\nNAME\n"
//   "sluice-log-stream 1 CREATION LENGTH\nNAME\n"
//   "TIMESTAMP INGESTION LENGTH\nMESSAGE\n"
// Lengths make any byte safe in names and messages (newlines included).
constexpr std::string_view kGroupMagic = "sluice-log-group";
constexpr std::string_view kStreamMagic = "sluice-log-stream";
constexpr std::string_view kGroupFile = ".group";
constexpr std::string_view kStreamSuffix = ".events";
// File names stay well under NAME_MAX (255) even for 512-character names.
constexpr size_t kMaxEncoded = 180;
constexpr size_t kKeptWhenLong = 160;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A name as a file name: letters, digits, '-', '_' and (not first) '.' stay, every other byte
// is %XX. Long names keep a prefix and a hash of the whole; the header holds the real name.
std::string encode(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isalnum(c) || c == '-' || c == '_' || (c == '.' && i > 0)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (out.size() <= kMaxEncoded) return out;
  size_t cut = kKeptWhenLong;
  const size_t percent = out.rfind('%', cut - 1);
  if (percent != std::string::npos && percent + 3 > cut) cut = percent;  // never split a %XX
  return out.substr(0, cut) + "~" + auth::hex(auth::sha256(name)).substr(0, 16);
}

// One "A B LENGTH\nPAYLOAD\n" record at `pos`: its numbers and payload, and the position after
// it. Nothing when the record is incomplete (a write cut short) or malformed.
struct Record {
  std::string_view magic;  // the header's first word; empty for events
  int64_t first = 0;
  int64_t second = 0;
  std::string_view payload;
  size_t end = 0;
};

bool parse_int(std::string_view text, int64_t& out) {
  const auto [ptr, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && ptr == text.data() + text.size();
}

std::optional<Record> read_record(std::string_view data, size_t pos, bool header) {
  const size_t newline = data.find('\n', pos);
  if (newline == std::string_view::npos) return std::nullopt;
  std::string_view line = data.substr(pos, newline - pos);
  std::vector<std::string_view> words;
  for (size_t start = 0; start <= line.size();) {
    const size_t space = std::min(line.find(' ', start), line.size());
    words.push_back(line.substr(start, space - start));
    start = space + 1;
  }
  Record record;
  int64_t length = 0;
  if (header) {
    // MAGIC 1 CREATION LENGTH
    if (words.size() != 4 || words[1] != "1" || !parse_int(words[2], record.first))
      return std::nullopt;
    record.magic = words[0];
    if (!parse_int(words[3], length)) return std::nullopt;
  } else if (words.size() != 3 || !parse_int(words[0], record.first) ||
             !parse_int(words[1], record.second) || !parse_int(words[2], length)) {
    return std::nullopt;
  }
  if (length < 0) return std::nullopt;
  const size_t payload = newline + 1;
  if (data.size() < payload + static_cast<size_t>(length) + 1 ||
      data[payload + static_cast<size_t>(length)] != '\n')
    return std::nullopt;
  record.payload = data.substr(payload, static_cast<size_t>(length));
  record.end = payload + static_cast<size_t>(length) + 1;
  return record;
}

std::string header_record(std::string_view magic, int64_t creation, std::string_view name) {
  return std::string(magic) + " 1 " + std::to_string(creation) + " " + std::to_string(name.size()) +
         "\n" + std::string(name) + "\n";
}

std::string event_record(int64_t timestamp, int64_t ingestion, std::string_view message) {
  return std::to_string(timestamp) + " " + std::to_string(ingestion) + " " +
         std::to_string(message.size()) + "\n" + std::string(message) + "\n";
}

std::string read_file(const std::string& path, uintmax_t from = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(from));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      throw std::runtime_error("cannot write " + path + ": " + std::strerror(error));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The group a folder holds, from its .group file.
std::optional<LogGroupInfo> read_group(const fs::path& folder) {
  const std::string data = read_file((folder / kGroupFile).string());
  auto record = read_record(data, 0, /*header=*/true);
  if (!record || record->magic != kGroupMagic) return std::nullopt;
  return LogGroupInfo{std::string(record->payload), record->first, 0};
}

}  // namespace

LogStore::LogStore(std::string folder) : folder_(std::move(folder)) {}

std::string LogStore::group_folder(std::string_view group) const {
  return folder_ + "/" + encode(group);
}

std::string LogStore::stream_file(std::string_view group, std::string_view stream) const {
  return group_folder(group) + "/" + encode(stream) + std::string(kStreamSuffix);
}

bool LogStore::create_group(std::string_view group) {
  const std::lock_guard lock(mutex_);
  return create_group_locked(group);
}

bool LogStore::create_group_locked(std::string_view group) {
  const fs::path folder = group_folder(group);
  std::error_code error;
  fs::create_directories(folder_, error);
  if (!fs::create_directory(folder, error) && error)
    throw std::runtime_error("cannot create " + folder.string() + ": " + error.message());
  if (auto existing = read_group(folder); existing && existing->name == group) return false;
  // Written whole, then renamed: a group is either named or not there.
  const std::string temporary = (folder / ".group.new").string();
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + temporary + ": " + std::strerror(errno));
  write_all(fd, header_record(kGroupMagic, now_ms(), group), temporary);
  ::close(fd);
  fs::rename(temporary, folder / kGroupFile);
  return true;
}

bool LogStore::create_stream(std::string_view group, std::string_view stream) {
  const std::lock_guard lock(mutex_);
  return create_stream_locked(group, stream);
}

bool LogStore::create_stream_locked(std::string_view group, std::string_view stream) {
  create_group_locked(group);
  const std::string path = stream_file(group, stream);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  }
  write_all(fd, header_record(kStreamMagic, now_ms(), stream), path);
  ::close(fd);
  return true;
}

void LogStore::append(std::string_view group, std::string_view stream, int64_t timestamp_ms,
                      std::string_view message) {
  const std::lock_guard lock(mutex_);
  const std::string path = stream_file(group, stream);
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    create_stream_locked(group, stream);
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  // One write per event: O_APPEND puts it whole at the end.
  write_all(fd, event_record(timestamp_ms, now_ms(), message), path);
  ::close(fd);
}

bool LogStore::delete_group(std::string_view group) {
  const std::lock_guard lock(mutex_);
  const std::string folder = group_folder(group);
  auto existing = read_group(folder);
  if (!existing || existing->name != group) return false;
  std::erase_if(scans_, [&](const auto& entry) { return entry.first.starts_with(folder + "/"); });
  fs::remove_all(folder);
  return true;
}

std::optional<LogStreamInfo> LogStore::scan(const std::string& path) const {
  std::error_code error;
  const uintmax_t size = fs::file_size(path, error);
  if (error) {
    scans_.erase(path);
    return std::nullopt;
  }
  StreamScan& scan = scans_[path];
  if (size < scan.parsed) scan = StreamScan{};  // replaced under us: read it again
  if (size > scan.parsed) {
    // Only what was appended since the last look.
    const std::string data = read_file(path, scan.parsed);
    size_t pos = 0;
    if (scan.parsed == 0) {
      auto header = read_record(data, 0, /*header=*/true);
      if (!header || header->magic != kStreamMagic) {
        scans_.erase(path);
        return std::nullopt;
      }
      scan.info.name = std::string(header->payload);
      scan.info.creation_time = header->first;
      pos = header->end;
    }
    while (auto event = read_record(data, pos, /*header=*/false)) {
      LogStreamInfo& info = scan.info;
      if (info.first_event_timestamp == 0 || event->first < info.first_event_timestamp)
        info.first_event_timestamp = event->first;
      info.last_event_timestamp = std::max(info.last_event_timestamp, event->first);
      info.last_ingestion_time = std::max(info.last_ingestion_time, event->second);
      info.stored_bytes += static_cast<int64_t>(event->payload.size());
      pos = event->end;
    }
    scan.parsed += pos;  // an incomplete last record is read again next time
  }
  return scan.info;
}

std::vector<LogGroupInfo> LogStore::groups() const {
  const std::lock_guard lock(mutex_);
  std::vector<LogGroupInfo> out;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder_, error)) {
    if (!entry.is_directory()) continue;
    auto group = read_group(entry.path());
    if (!group) continue;
    for (const auto& stream : fs::directory_iterator(entry.path(), error))
      if (stream.path().extension() == kStreamSuffix)
        if (auto info = scan(stream.path().string())) group->stored_bytes += info->stored_bytes;
    out.push_back(std::move(*group));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::optional<std::vector<LogStreamInfo>> LogStore::streams(std::string_view group) const {
  const std::lock_guard lock(mutex_);
  const std::string folder = group_folder(group);
  auto existing = read_group(folder);
  if (!existing || existing->name != group) return std::nullopt;
  std::vector<LogStreamInfo> out;
  std::error_code error;
  for (const auto& stream : fs::directory_iterator(folder, error))
    if (stream.path().extension() == kStreamSuffix)
      if (auto info = scan(stream.path().string())) out.push_back(std::move(*info));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::optional<std::vector<LogEvent>> LogStore::events(std::string_view group,
                                                      std::string_view stream) const {
  const std::lock_guard lock(mutex_);
  const std::string path = stream_file(group, stream);
  if (!fs::exists(path)) return std::nullopt;
  const std::string data = read_file(path);
  auto header = read_record(data, 0, /*header=*/true);
  if (!header || header->magic != kStreamMagic || header->payload != stream) return std::nullopt;
  std::vector<LogEvent> out;
  size_t pos = header->end;
  while (auto event = read_record(data, pos, /*header=*/false)) {
    out.push_back(LogEvent{event->first, event->second, std::string(event->payload)});
    pos = event->end;
  }
  return out;
}

}  // namespace sluice::cloud
