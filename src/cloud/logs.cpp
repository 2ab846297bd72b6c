#include "cloud/logs.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "auth/crypto.hpp"
#include "cloud/api.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

// A response holds at most 1 MB of events (each counted with 26 bytes of overhead, as
// PutLogEvents counts them) and at most 10,000 of them.
constexpr size_t kMaxResponseBytes = 1048576;
constexpr size_t kEventOverhead = 26;
constexpr int64_t kMaxEvents = 10000;
constexpr int64_t kDay = 24 * 3600 * 1000;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

ApiError invalid(const std::string& message) {
  return ApiError("InvalidParameterException", message);
}

ApiError group_not_found() {
  return ApiError("ResourceNotFoundException", "The specified log group does not exist.");
}

ApiError stream_not_found() {
  return ApiError("ResourceNotFoundException", "The specified log stream does not exist.");
}

ApiError bad_token() {
  return invalid("The specified nextToken is invalid.");
}

std::string validation(std::string_view value, std::string_view member,
                       std::string_view constraint) {
  return "1 validation error detected: Value '" + std::string(value) + "' at '" +
         std::string(member) + "' failed to satisfy constraint: " + std::string(constraint);
}

std::optional<std::string> string_member(const json::object& input, std::string_view name) {
  const auto* v = input.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw invalid("The parameter " + std::string(name) + " must be a string.");
  return std::string(v->as_string());
}

std::optional<int64_t> long_member(const json::object& input, std::string_view name) {
  const auto* v = input.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(v->as_uint64());
  if (v->is_double() && v->as_double() == static_cast<double>(static_cast<int64_t>(v->as_double())))
    return static_cast<int64_t>(v->as_double());
  throw invalid("The parameter " + std::string(name) + " must be a whole number.");
}

bool bool_member(const json::object& input, std::string_view name) {
  const auto* v = input.if_contains(name);
  if (!v || v->is_null()) return false;
  if (!v->is_bool()) throw invalid("The parameter " + std::string(name) + " must be a boolean.");
  return v->as_bool();
}

int64_t limit_member(const json::object& input, int64_t max, int64_t otherwise) {
  const auto limit = long_member(input, "limit");
  if (!limit) return otherwise;
  if (*limit < 1)
    throw invalid(validation(std::to_string(*limit), "limit",
                             "Member must have value greater than or equal to 1"));
  if (*limit > max)
    throw invalid(
        validation(std::to_string(*limit), "limit",
                   "Member must have value less than or equal to " + std::to_string(max)));
  return *limit;
}

void check_length(std::string_view value, std::string_view member) {
  if (value.empty())
    throw invalid(validation(value, member, "Member must have length greater than or equal to 1"));
  if (value.size() > 512)
    throw invalid(validation(value, member, "Member must have length less than or equal to 512"));
}

void check_group_name(std::string_view name, std::string_view member = "logGroupName") {
  check_length(name, member);
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("._-/#").find(c) == std::string_view::npos)
      throw invalid(validation(
          name, member, "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"));
}

void check_stream_name(std::string_view name, std::string_view member = "logStreamName") {
  check_length(name, member);
  if (name.find_first_of(":*") != std::string_view::npos)
    throw invalid(
        validation(name, member, "Member must satisfy regular expression pattern: [^:*]*"));
}

std::string required_string(const json::object& input, std::string_view name) {
  auto value = string_member(input, name);
  if (!value) throw invalid(validation("null", name, "Member must not be null"));
  return *value;
}

// logGroupName, or logGroupIdentifier (a name or the group's ARN).
std::string group_of(const json::object& input) {
  auto name = string_member(input, "logGroupName");
  auto identifier = string_member(input, "logGroupIdentifier");
  if (name && identifier)
    throw invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.");
  if (identifier) {
    std::string group = *identifier;
    if (group.starts_with("arn:")) {
      const size_t at = group.find(":log-group:");
      if (at == std::string::npos) throw invalid("Invalid log group ARN: " + group);
      group = group.substr(at + 11);
      if (group.ends_with(":*")) group.resize(group.size() - 2);
    }
    check_group_name(group, "logGroupIdentifier");
    return group;
  }
  if (!name) throw invalid("Either logGroupName or logGroupIdentifier must be specified.");
  check_group_name(*name);
  return *name;
}

std::string group_arn(std::string_view region, std::string_view account, std::string_view group) {
  return "arn:aws:logs:" + std::string(region) + ":" + std::string(account) +
         ":log-group:" + std::string(group);
}

// Opaque pagination tokens: a cursor, base64-encoded.
std::string make_token(const std::string& cursor) {
  return auth::base64_encode(cursor);
}

std::string read_token(const std::string& token) {
  auto cursor = auth::base64_decode(token);
  if (!cursor) throw bad_token();
  return *cursor;
}

// "f/" or "b/" and a position, 56 digits as CloudWatch's tokens have.
std::string position_token(char direction, size_t position) {
  char digits[64];
  std::snprintf(digits, sizeof digits, "%056zu", position);
  return std::string(1, direction) + "/" + digits;
}

// Messages are returned as JSON strings: bytes that are not UTF-8 (a process may print
// anything) become U+FFFD, so every client can decode the response.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = length > 0 && i + length <= text.size();
    for (size_t k = 1; ok && k < length; ++k)
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok && length > 1) {
      // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
      uint32_t code = c & (0x7F >> length);
      for (size_t k = 1; k < length; ++k)
        code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = code >= kSmallest[length] && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
    }
    if (!ok) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

// A stream's events ordered by timestamp (stable: equal timestamps keep the order they came in),
// each with its index in the stream.
std::vector<std::pair<size_t, LogEvent>> by_time(std::vector<LogEvent> events) {
  std::vector<std::pair<size_t, LogEvent>> out;
  out.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) out.emplace_back(i, std::move(events[i]));
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second.timestamp < b.second.timestamp;
  });
  return out;
}

json::object output_event(const LogEvent& event) {
  return {{"timestamp", event.timestamp},
          {"message", valid_utf8(event.message)},
          {"ingestionTime", event.ingestion_time}};
}

// 56 digits, stable across calls: the timestamp, the stream (a hash of its name) and the
// event's index in it. `aws logs tail --follow` tells events apart by it.
std::string event_id(int64_t timestamp, std::string_view stream, size_t index) {
  const std::string digest = auth::sha256(stream);
  uint64_t stream_hash = 0;
  for (size_t i = 0; i < 8; ++i)
    stream_hash = (stream_hash << 8) | static_cast<unsigned char>(digest[i]);
  char digits[64];
  std::snprintf(digits, sizeof digits, "%016lld%020llu%020zu",
                static_cast<long long>(std::max<int64_t>(timestamp, 0)),
                static_cast<unsigned long long>(stream_hash), index);
  return digits;
}

}  // namespace

FilterPattern::FilterPattern(std::string_view pattern) {
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < pattern.size() && std::isspace(static_cast<unsigned char>(pattern[i]))) ++i;
  };
  skip_spaces();
  if (i < pattern.size() && (pattern[i] == '{' || pattern[i] == '['))
    throw invalid(
        "sluice supports unstructured filter patterns only (terms, \"quoted phrases\", ?term, "
        "-term), not JSON or space-delimited ones.");
  while (skip_spaces(), i < pattern.size()) {
    std::vector<std::string>* kind = &required_;
    if (pattern[i] == '?' || pattern[i] == '-') {
      kind = pattern[i] == '?' ? &any_of_ : &excluded_;
      ++i;
    }
    std::string term;
    if (i < pattern.size() && pattern[i] == '"') {
      const size_t start = i++;
      bool closed = false;
      for (; i < pattern.size(); ++i) {
        if (pattern[i] == '\\' && i + 1 < pattern.size()) {
          term += pattern[++i];
        } else if (pattern[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          term += pattern[i];
        }
      }
      if (!closed)
        throw invalid("Invalid character(s) in term '" + std::string(pattern.substr(start)) + "'");
    } else {
      while (i < pattern.size() && !std::isspace(static_cast<unsigned char>(pattern[i])))
        term += pattern[i++];
    }
    if (!term.empty()) kind->push_back(std::move(term));
  }
}

bool FilterPattern::matches(std::string_view message) const {
  for (const auto& term : required_)
    if (message.find(term) == std::string_view::npos) return false;
  for (const auto& term : excluded_)
    if (message.find(term) != std::string_view::npos) return false;
  if (any_of_.empty()) return true;
  for (const auto& term : any_of_)
    if (message.find(term) != std::string_view::npos) return true;
  return false;
}

json::object Logs::handle(std::string_view operation, const json::object& input,
                          std::string_view region) {
  if (operation == "CreateLogGroup") return create_group(input);
  if (operation == "CreateLogStream") return create_stream(input);
  if (operation == "PutLogEvents") return put_events(input);
  if (operation == "DeleteLogGroup") return delete_group(input);
  if (operation == "DescribeLogGroups") return describe_groups(input, region);
  if (operation == "DescribeLogStreams") return describe_streams(input, region);
  if (operation == "GetLogEvents") return get_events(input);
  if (operation == "FilterLogEvents") return filter_events(input);
  throw ApiError("UnknownOperationException",
                 "sluice does not implement logs " + std::string(operation) + ".");
}

std::string Logs::resource_arn(std::string_view operation, const json::object& input,
                               std::string_view region, std::string_view account_id) {
  try {
    if (operation == "DescribeLogGroups") return group_arn(region, account_id, "*");
    const std::string group = group_of(input);
    if (auto stream = string_member(input, "logStreamName");
        stream && (operation == "CreateLogStream" || operation == "PutLogEvents" ||
                   operation == "GetLogEvents"))
      return group_arn(region, account_id, group) + ":log-stream:" + *stream;
    return group_arn(region, account_id, group) + ":*";
  } catch (const ApiError&) {
    return "*";  // the operation itself will say what is wrong with its input
  }
}

std::vector<LogStreamInfo> Logs::streams_of(const std::string& group) {
  auto streams = store_.streams(group);
  if (!streams) throw group_not_found();
  return std::move(*streams);
}

json::object Logs::create_group(const json::object& input) {
  const std::string group = required_string(input, "logGroupName");
  check_group_name(group);
  if (!store_.create_group(group))
    throw ApiError("ResourceAlreadyExistsException", "The specified log group already exists");
  return {};
}

json::object Logs::create_stream(const json::object& input) {
  const std::string group = group_of(input);
  const std::string stream = required_string(input, "logStreamName");
  check_stream_name(stream);
  streams_of(group);
  if (!store_.create_stream(group, stream))
    throw ApiError("ResourceAlreadyExistsException", "The specified log stream already exists");
  return {};
}

json::object Logs::put_events(const json::object& input) {
  const std::string group = group_of(input);
  const std::string stream = required_string(input, "logStreamName");
  check_stream_name(stream);
  const auto* events = input.if_contains("logEvents");
  if (!events || !events->is_array())
    throw invalid(validation("null", "logEvents", "Member must not be null"));
  const json::array& list = events->as_array();
  if (list.empty())
    throw invalid(
        validation("[]", "logEvents", "Member must have length greater than or equal to 1"));
  if (static_cast<int64_t>(list.size()) > kMaxEvents)
    throw invalid(
        validation("[...]", "logEvents", "Member must have length less than or equal to 10000"));
  std::vector<std::pair<int64_t, std::string>> batch;
  size_t bytes = 0;
  for (const auto& item : list) {
    if (!item.is_object()) throw invalid("Each log event must be an object.");
    const auto timestamp = long_member(item.as_object(), "timestamp");
    const auto message = string_member(item.as_object(), "message");
    if (!timestamp)
      throw invalid(validation("null", "logEvents.member.timestamp", "Member must not be null"));
    if (!message || message->empty())
      throw invalid(validation(message ? "" : "null", "logEvents.member.message",
                               message ? "Member must have length greater than or equal to 1"
                                       : "Member must not be null"));
    if (!batch.empty() && *timestamp < batch.back().first)
      throw invalid("Log events in a single PutLogEvents request must be in chronological order.");
    bytes += message->size() + kEventOverhead;
    batch.emplace_back(*timestamp, *message);
  }
  if (bytes > kMaxResponseBytes)
    throw invalid("Upload too large: " + std::to_string(bytes) + " bytes exceeds limit of " +
                  std::to_string(kMaxResponseBytes));
  if (batch.back().first - batch.front().first > kDay)
    throw invalid(
        "The batch of log events in a single PutLogEvents request cannot span more than "
        "24 hours.");

  const std::vector<LogStreamInfo> streams = streams_of(group);
  if (std::none_of(streams.begin(), streams.end(),
                   [&](const LogStreamInfo& s) { return s.name == stream; }))
    throw stream_not_found();

  // As CloudWatch Logs: events more than 14 days old or 2 hours ahead are rejected (and said
  // so), the others stored.
  const int64_t now = now_ms();
  std::optional<size_t> too_old_end, too_new_start;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].first < now - 14 * kDay) {
      too_old_end = i;
      continue;
    }
    if (batch[i].first > now + 2 * 3600 * 1000) {
      if (!too_new_start) too_new_start = i;
      continue;
    }
    store_.append(group, stream, batch[i].first, batch[i].second);
  }
  char token[64];
  std::snprintf(token, sizeof token, "%056lld", static_cast<long long>(now));
  json::object out{{"nextSequenceToken", token}};
  if (too_old_end || too_new_start) {
    json::object rejected;
    if (too_old_end) rejected["tooOldLogEventEndIndex"] = static_cast<int64_t>(*too_old_end + 1);
    if (too_new_start) rejected["tooNewLogEventStartIndex"] = static_cast<int64_t>(*too_new_start);
    out["rejectedLogEventsInfo"] = rejected;
  }
  return out;
}

json::object Logs::delete_group(const json::object& input) {
  const std::string group = required_string(input, "logGroupName");
  check_group_name(group);
  if (!store_.delete_group(group)) throw group_not_found();
  return {};
}

json::object Logs::describe_groups(const json::object& input, std::string_view region) {
  const auto prefix = string_member(input, "logGroupNamePrefix");
  const auto pattern = string_member(input, "logGroupNamePattern");
  if (prefix && pattern)
    throw invalid(
        "LogGroup name prefix and LogGroup name pattern are mutually exclusive "
        "parameters.");
  if (prefix) check_group_name(*prefix, "logGroupNamePrefix");
  const int64_t limit = limit_member(input, 50, 50);
  const auto token = string_member(input, "nextToken");
  const std::string after = token ? read_token(*token) : "";
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  json::array groups;
  std::optional<std::string> last;
  bool more = false;
  for (const LogGroupInfo& group : store_.groups()) {
    if (prefix && !group.name.starts_with(*prefix)) continue;
    if (pattern && lower(group.name).find(lower(*pattern)) == std::string::npos) continue;
    if (token && group.name <= after) continue;
    if (static_cast<int64_t>(groups.size()) == limit) {
      more = true;
      break;
    }
    const std::string arn = group_arn(region, account_id_, group.name);
    groups.push_back(json::object{{"logGroupName", group.name},
                                  {"creationTime", group.creation_time},
                                  {"metricFilterCount", 0},
                                  {"arn", arn + ":*"},
                                  {"storedBytes", group.stored_bytes},
                                  {"logGroupClass", "STANDARD"},
                                  {"logGroupArn", arn}});
    last = group.name;
  }
  json::object out{{"logGroups", groups}};
  if (more && last) out["nextToken"] = make_token(*last);
  return out;
}

json::object Logs::describe_streams(const json::object& input, std::string_view region) {
  const std::string group = group_of(input);
  const auto prefix = string_member(input, "logStreamNamePrefix");
  const std::string order = string_member(input, "orderBy").value_or("LogStreamName");
  if (order != "LogStreamName" && order != "LastEventTime")
    throw invalid(validation(order, "orderBy",
                             "Member must satisfy enum value set: [LogStreamName, LastEventTime]"));
  if (order == "LastEventTime" && prefix)
    throw invalid("Cannot order by LastEventTime with a logStreamNamePrefix.");
  const bool descending = bool_member(input, "descending");
  const int64_t limit = limit_member(input, 50, 50);
  std::vector<LogStreamInfo> streams = streams_of(group);

  // The listing's order; a token is the last stream returned, and the next page starts after it.
  auto before = [&](const LogStreamInfo& a, const LogStreamInfo& b) {
    const bool less = order == "LastEventTime" ? std::tie(a.last_event_timestamp, a.name) <
                                                     std::tie(b.last_event_timestamp, b.name)
                                               : a.name < b.name;
    const bool greater = order == "LastEventTime" ? std::tie(b.last_event_timestamp, b.name) <
                                                        std::tie(a.last_event_timestamp, a.name)
                                                  : b.name < a.name;
    return descending ? greater : less;
  };
  std::sort(streams.begin(), streams.end(), before);
  std::optional<LogStreamInfo> after;
  if (auto token = string_member(input, "nextToken")) {
    const std::string cursor = read_token(*token);
    const size_t newline = cursor.find('\n');
    if (newline == std::string::npos) throw bad_token();
    after.emplace();
    try {
      after->last_event_timestamp = std::stoll(cursor.substr(0, newline));
    } catch (const std::exception&) {
      throw bad_token();
    }
    after->name = cursor.substr(newline + 1);
  }
  json::array out_streams;
  std::optional<LogStreamInfo> last;
  bool more = false;
  const std::string arn = group_arn(region, account_id_, group);
  for (const LogStreamInfo& stream : streams) {
    if (prefix && !stream.name.starts_with(*prefix)) continue;
    if (after && !before(*after, stream)) continue;
    if (static_cast<int64_t>(out_streams.size()) == limit) {
      more = true;
      break;
    }
    json::object item{{"logStreamName", stream.name},
                      {"creationTime", stream.creation_time},
                      {"arn", arn + ":log-stream:" + stream.name},
                      {"storedBytes", 0}};  // reported as zero by CloudWatch Logs since 2019
    if (stream.last_event_timestamp != 0 || stream.first_event_timestamp != 0) {
      item["firstEventTimestamp"] = stream.first_event_timestamp;
      item["lastEventTimestamp"] = stream.last_event_timestamp;
      item["lastIngestionTime"] = stream.last_ingestion_time;
    }
    out_streams.push_back(std::move(item));
    last = stream;
  }
  json::object out{{"logStreams", out_streams}};
  if (more && last)
    out["nextToken"] = make_token(std::to_string(last->last_event_timestamp) + "\n" + last->name);
  return out;
}

json::object Logs::get_events(const json::object& input) {
  const std::string group = group_of(input);
  const std::string stream = required_string(input, "logStreamName");
  check_stream_name(stream);
  const auto start = long_member(input, "startTime");
  const auto end = long_member(input, "endTime");
  const int64_t limit = limit_member(input, kMaxEvents, kMaxEvents);
  const bool from_head = bool_member(input, "startFromHead");
  streams_of(group);
  auto events = store_.events(group, stream);
  if (!events) throw stream_not_found();
  const auto sorted = by_time(std::move(*events));

  // Positions count events in timestamp order: "f/N" reads on from N, "b/N" reads back from N.
  bool forward = from_head;
  size_t position = from_head ? 0 : sorted.size();
  if (auto token = string_member(input, "nextToken")) {
    const std::string& t = *token;
    if (t.size() < 3 || (t[0] != 'f' && t[0] != 'b') || t[1] != '/' ||
        t.find_first_not_of("0123456789", 2) != std::string::npos || t.size() > 2 + 56)
      throw bad_token();
    forward = t[0] == 'f';
    position = std::min<size_t>(std::stoull(t.substr(2)), sorted.size());
  }
  // startTime inclusive, endTime exclusive (GetLogEvents' own rule).
  auto in_range = [&](const LogEvent& e) {
    return (!start || e.timestamp >= *start) && (!end || e.timestamp < *end);
  };
  std::vector<size_t> chosen;
  size_t bytes = 0;
  auto fits = [&](const LogEvent& e) {
    bytes += e.message.size() + kEventOverhead;
    return static_cast<int64_t>(chosen.size()) < limit &&
           (chosen.empty() || bytes <= kMaxResponseBytes);
  };
  if (forward) {
    for (size_t i = position; i < sorted.size(); ++i)
      if (in_range(sorted[i].second)) {
        if (!fits(sorted[i].second)) break;
        chosen.push_back(i);
      }
  } else {
    for (size_t i = position; i-- > 0;)
      if (in_range(sorted[i].second)) {
        if (!fits(sorted[i].second)) break;
        chosen.push_back(i);
      }
    std::reverse(chosen.begin(), chosen.end());
  }
  json::array out_events;
  for (size_t i : chosen) out_events.push_back(output_event(sorted[i].second));
  // With nothing read, both tokens stay where the caller was: the same token again means the
  // end of the stream, as clients expect.
  const size_t next_forward = chosen.empty() ? position : chosen.back() + 1;
  const size_t next_backward = chosen.empty() ? position : chosen.front();
  return {{"events", out_events},
          {"nextForwardToken", position_token('f', next_forward)},
          {"nextBackwardToken", position_token('b', next_backward)}};
}

json::object Logs::filter_events(const json::object& input) {
  const std::string group = group_of(input);
  std::vector<std::string> names;
  if (const auto* list = input.if_contains("logStreamNames"); list && !list->is_null()) {
    if (!list->is_array()) throw invalid("The parameter logStreamNames must be a list.");
    for (const auto& name : list->as_array()) {
      if (!name.is_string()) throw invalid("The parameter logStreamNames must hold strings.");
      names.emplace_back(name.as_string());
    }
    if (names.empty() || names.size() > 100)
      throw invalid(validation("[...]", "logStreamNames",
                               names.empty()
                                   ? "Member must have length greater than or equal to 1"
                                   : "Member must have length less than or equal to 100"));
  }
  const auto prefix = string_member(input, "logStreamNamePrefix");
  if (prefix && !names.empty())
    throw invalid("You cannot specify both logStreamNames and logStreamNamePrefix.");
  const auto start = long_member(input, "startTime");
  const auto end = long_member(input, "endTime");
  const FilterPattern pattern(string_member(input, "filterPattern").value_or(""));
  const int64_t limit = limit_member(input, kMaxEvents, kMaxEvents);

  // Events of every stream in one order — timestamp, then stream, then arrival — and a token is
  // the last event returned, so pages hold as more events arrive.
  struct Key {
    int64_t timestamp;
    std::string stream;
    size_t index;
    auto operator<=>(const Key&) const = default;
  };
  std::optional<Key> after;
  if (auto token = string_member(input, "nextToken")) {
    const std::string cursor = read_token(*token);
    const size_t first = cursor.find('\n');
    const size_t second = first == std::string::npos ? first : cursor.find('\n', first + 1);
    if (second == std::string::npos) throw bad_token();
    try {
      after = Key{std::stoll(cursor.substr(0, first)), cursor.substr(second + 1),
                  std::stoull(cursor.substr(first + 1, second - first - 1))};
    } catch (const std::exception&) {
      throw bad_token();
    }
  }

  struct Found {
    Key key;
    LogEvent event;
  };
  std::vector<Found> found;
  for (const LogStreamInfo& info : streams_of(group)) {
    if (!names.empty() && std::find(names.begin(), names.end(), info.name) == names.end()) continue;
    if (prefix && !info.name.starts_with(*prefix)) continue;
    auto events = store_.events(group, info.name);
    if (!events) continue;
    for (size_t i = 0; i < events->size(); ++i) {
      LogEvent& e = (*events)[i];
      // startTime and endTime both inclusive (FilterLogEvents' own rule).
      if ((start && e.timestamp < *start) || (end && e.timestamp > *end)) continue;
      Key key{e.timestamp, info.name, i};
      if (after && key <= *after) continue;
      if (!pattern.matches(e.message)) continue;
      found.push_back(Found{std::move(key), std::move(e)});
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.key < b.key; });

  json::array out_events;
  size_t bytes = 0;
  size_t taken = 0;
  for (; taken < found.size(); ++taken) {
    const Found& f = found[taken];
    bytes += f.event.message.size() + kEventOverhead;
    if (static_cast<int64_t>(taken) == limit || (taken > 0 && bytes > kMaxResponseBytes)) break;
    json::object event = output_event(f.event);
    event["logStreamName"] = f.key.stream;
    event["eventId"] = event_id(f.key.timestamp, f.key.stream, f.key.index);
    out_events.push_back(std::move(event));
  }
  // searchedLogStreams is no longer filled in by CloudWatch Logs (since 2020): always empty.
  json::object out{{"events", out_events}, {"searchedLogStreams", json::array()}};
  if (taken < found.size() && taken > 0) {
    const Key& last = found[taken - 1].key;
    out["nextToken"] = make_token(std::to_string(last.timestamp) + "\n" +
                                  std::to_string(last.index) + "\n" + last.stream);
  }
  return out;
}

}  // namespace sluice::cloud
