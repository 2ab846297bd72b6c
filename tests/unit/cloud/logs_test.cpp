#include "cloud/logs.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>

#include "cloud/api.hpp"

namespace sluice::cloud {
namespace {
namespace json = boost::json;

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/sluice-logs-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct LogsTest : ::testing::Test {
  TempDir dir;
  LogStore store{dir.path + "/logs"};
  Logs logs{store, "123456789012"};

  json::object call(std::string_view operation, const json::value& input) {
    return logs.handle(operation, input.as_object(), "us-east-1");
  }
  // The code of the ApiError a call throws ("" when it succeeds).
  std::string error_of(std::string_view operation, const json::value& input,
                       std::string* message = nullptr) {
    try {
      call(operation, input);
    } catch (const ApiError& e) {
      if (message) *message = e.what();
      return e.code;
    }
    return "";
  }
  void put(const std::string& group, const std::string& stream,
           const std::vector<std::pair<int64_t, std::string>>& events) {
    json::array list;
    for (const auto& [timestamp, message] : events)
      list.push_back(json::object{{"timestamp", timestamp}, {"message", message}});
    call("PutLogEvents",
         json::object{{"logGroupName", group}, {"logStreamName", stream}, {"logEvents", list}});
  }
  static std::vector<std::string> messages(const json::object& out) {
    std::vector<std::string> found;
    for (const auto& e : out.at("events").as_array())
      found.emplace_back(e.at("message").as_string());
    return found;
  }
};

TEST_F(LogsTest, GroupsAndStreamsWithCloudWatchErrors) {
  EXPECT_EQ(call("CreateLogGroup", json::object{{"logGroupName", "/aws/lambda/app"}}),
            json::object());
  std::string message;
  EXPECT_EQ(error_of("CreateLogGroup", json::object{{"logGroupName", "/aws/lambda/app"}}, &message),
            "ResourceAlreadyExistsException");
  EXPECT_EQ(message, "The specified log group already exists");
  EXPECT_EQ(error_of("CreateLogGroup", json::object{{"logGroupName", "bad name"}}, &message),
            "InvalidParameterException");
  EXPECT_NE(message.find("[\\.\\-_/#A-Za-z0-9]+"), std::string::npos) << message;
  EXPECT_EQ(error_of("CreateLogStream",
                     json::object{{"logGroupName", "missing"}, {"logStreamName", "s"}}, &message),
            "ResourceNotFoundException");
  EXPECT_EQ(message, "The specified log group does not exist.");
  const json::object stream{{"logGroupName", "/aws/lambda/app"},
                            {"logStreamName", "2026/12/05/[$LATEST]abc"}};
  call("CreateLogStream", stream);
  EXPECT_EQ(error_of("CreateLogStream", stream), "ResourceAlreadyExistsException");
  EXPECT_EQ(error_of("CreateLogStream",
                     json::object{{"logGroupName", "/aws/lambda/app"}, {"logStreamName", "a:b"}}),
            "InvalidParameterException");
  EXPECT_EQ(error_of("PutLogEvents",
                     json::object{{"logGroupName", "/aws/lambda/app"},
                                  {"logStreamName", "nope"},
                                  {"logEvents", json::array{json::object{{"timestamp", now_ms()},
                                                                         {"message", "x"}}}}},
                     &message),
            "ResourceNotFoundException");
  EXPECT_EQ(message, "The specified log stream does not exist.");
  EXPECT_EQ(error_of("DeleteLogGroup", json::object{{"logGroupName", "missing"}}, &message),
            "ResourceNotFoundException");
  call("DeleteLogGroup", json::object{{"logGroupName", "/aws/lambda/app"}});
  EXPECT_TRUE(call("DescribeLogGroups", json::object{}).at("logGroups").as_array().empty());
}

TEST_F(LogsTest, PutLogEventsKeepsCloudWatchsRules) {
  call("CreateLogGroup", json::object{{"logGroupName", "g"}});
  call("CreateLogStream", json::object{{"logGroupName", "g"}, {"logStreamName", "s"}});
  const int64_t now = now_ms();
  std::string message;
  auto events = [](std::vector<std::pair<int64_t, std::string>> list) {
    json::array out;
    for (auto& [t, m] : list) out.push_back(json::object{{"timestamp", t}, {"message", m}});
    return out;
  };
  EXPECT_EQ(error_of("PutLogEvents",
                     json::object{{"logGroupName", "g"},
                                  {"logStreamName", "s"},
                                  {"logEvents", events({{now, "b"}, {now - 1, "a"}})}},
                     &message),
            "InvalidParameterException");
  EXPECT_EQ(message, "Log events in a single PutLogEvents request must be in chronological order.");
  EXPECT_EQ(error_of("PutLogEvents", json::object{{"logGroupName", "g"},
                                                  {"logStreamName", "s"},
                                                  {"logEvents", json::array()}}),
            "InvalidParameterException");
  // Rejected and said so: older than 14 days (and, below, more than 2 hours ahead).
  const int64_t day = 24LL * 3600 * 1000;
  json::object out =
      call("PutLogEvents", json::object{{"logGroupName", "g"},
                                        {"logStreamName", "s"},
                                        {"logEvents", events({{now - 14 * day - 60000, "too old"},
                                                              {now - 14 * day + 60000, "old"}})}});
  EXPECT_EQ(out.at("rejectedLogEventsInfo").at("tooOldLogEventEndIndex").as_int64(), 1);
  EXPECT_EQ(out.at("nextSequenceToken").as_string().size(), 56u);
  out =
      call("PutLogEvents",
           json::object{{"logGroupName", "g"},
                        {"logStreamName", "s"},
                        {"logEvents", events({{now, "now"}, {now + 3 * 3600 * 1000, "too new"}})}});
  EXPECT_EQ(out.at("rejectedLogEventsInfo").at("tooNewLogEventStartIndex").as_int64(), 1);
  EXPECT_EQ(messages(call("GetLogEvents", json::object{{"logGroupName", "g"},
                                                       {"logStreamName", "s"},
                                                       {"startFromHead", true}})),
            (std::vector<std::string>{"old", "now"}));
}

TEST_F(LogsTest, DescribeLogGroupsPagesByName) {
  for (const char* name : {"/aws/lambda/c", "/aws/lambda/a", "/aws/lambda/b", "other", "/x"})
    call("CreateLogGroup", json::object{{"logGroupName", name}});
  json::object page =
      call("DescribeLogGroups", json::object{{"logGroupNamePrefix", "/aws/lambda/"}, {"limit", 2}});
  auto& groups = page.at("logGroups").as_array();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].at("logGroupName").as_string(), "/aws/lambda/a");
  EXPECT_EQ(groups[1].at("logGroupName").as_string(), "/aws/lambda/b");
  EXPECT_EQ(groups[0].at("arn").as_string(),
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/a:*");
  EXPECT_EQ(groups[0].at("logGroupArn").as_string(),
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/a");
  ASSERT_TRUE(page.contains("nextToken"));
  json::object next = call("DescribeLogGroups", json::object{{"logGroupNamePrefix", "/aws/lambda/"},
                                                             {"limit", 2},
                                                             {"nextToken", page.at("nextToken")}});
  ASSERT_EQ(next.at("logGroups").as_array().size(), 1u);
  EXPECT_EQ(next.at("logGroups").as_array()[0].at("logGroupName").as_string(), "/aws/lambda/c");
  EXPECT_FALSE(next.contains("nextToken"));
  EXPECT_EQ(call("DescribeLogGroups", json::object{}).at("logGroups").as_array().size(), 5u);
  EXPECT_EQ(error_of("DescribeLogGroups", json::object{{"limit", 51}}),
            "InvalidParameterException");
  EXPECT_EQ(error_of("DescribeLogGroups", json::object{{"nextToken", "%%%"}}),
            "InvalidParameterException");
}

TEST_F(LogsTest, DescribeLogStreamsOrdersAndPages) {
  call("CreateLogGroup", json::object{{"logGroupName", "g"}});
  const int64_t now = now_ms();
  for (const char* name : {"a", "b", "c"})
    call("CreateLogStream", json::object{{"logGroupName", "g"}, {"logStreamName", name}});
  put("g", "b", {{now - 3000, "1"}});
  put("g", "a", {{now - 1000, "2"}});
  put("g", "c", {{now - 2000, "3"}});
  call("CreateLogStream", json::object{{"logGroupName", "g"}, {"logStreamName", "empty"}});
  auto names = [](const json::object& out) {
    std::vector<std::string> found;
    for (const auto& s : out.at("logStreams").as_array())
      found.emplace_back(s.at("logStreamName").as_string());
    return found;
  };
  EXPECT_EQ(names(call("DescribeLogStreams", json::object{{"logGroupName", "g"}})),
            (std::vector<std::string>{"a", "b", "c", "empty"}));
  json::object latest = call(
      "DescribeLogStreams",
      json::object{
          {"logGroupName", "g"}, {"orderBy", "LastEventTime"}, {"descending", true}, {"limit", 2}});
  EXPECT_EQ(names(latest), (std::vector<std::string>{"a", "c"}));
  const auto& first = latest.at("logStreams").as_array()[0].as_object();
  EXPECT_EQ(first.at("lastEventTimestamp").as_int64(), now - 1000);
  EXPECT_EQ(first.at("firstEventTimestamp").as_int64(), now - 1000);
  EXPECT_GE(first.at("lastIngestionTime").as_int64(), now);
  EXPECT_EQ(first.at("arn").as_string(),
            "arn:aws:logs:us-east-1:123456789012:log-group:g:log-stream:a");
  ASSERT_TRUE(latest.contains("nextToken"));
  json::object rest =
      call("DescribeLogStreams", json::object{{"logGroupName", "g"},
                                              {"orderBy", "LastEventTime"},
                                              {"descending", true},
                                              {"limit", 2},
                                              {"nextToken", latest.at("nextToken")}});
  EXPECT_EQ(names(rest), (std::vector<std::string>{"b", "empty"}));
  EXPECT_FALSE(rest.contains("nextToken"));
  EXPECT_FALSE(rest.at("logStreams").as_array()[1].as_object().contains("lastEventTimestamp"));
  EXPECT_EQ(names(call("DescribeLogStreams",
                       json::object{{"logGroupName", "g"}, {"logStreamNamePrefix", "e"}})),
            (std::vector<std::string>{"empty"}));
  std::string message;
  EXPECT_EQ(error_of("DescribeLogStreams",
                     json::object{{"logGroupName", "g"},
                                  {"orderBy", "LastEventTime"},
                                  {"logStreamNamePrefix", "a"}},
                     &message),
            "InvalidParameterException");
  EXPECT_EQ(message, "Cannot order by LastEventTime with a logStreamNamePrefix.");
  EXPECT_EQ(error_of("DescribeLogStreams", json::object{{"logGroupName", "missing"}}),
            "ResourceNotFoundException");
  // By ARN too.
  EXPECT_EQ(names(call("DescribeLogStreams",
                       json::object{{"logGroupIdentifier",
                                     "arn:aws:logs:us-east-1:123456789012:log-group:g"}}))
                .size(),
            4u);
}

TEST_F(LogsTest, GetLogEventsReadsForwardAndBackWithTokens) {
  call("CreateLogGroup", json::object{{"logGroupName", "g"}});
  const int64_t t = now_ms() - 100000;
  std::vector<std::pair<int64_t, std::string>> events;
  for (int i = 0; i < 5; ++i) events.emplace_back(t + i * 10, "e" + std::to_string(i));
  call("CreateLogStream", json::object{{"logGroupName", "g"}, {"logStreamName", "s"}});
  put("g", "s", events);
  const json::object where{{"logGroupName", "g"}, {"logStreamName", "s"}};
  auto with = [&](json::object extra) {
    json::object input = where;
    for (auto& [k, v] : extra) input[k] = v;
    return call("GetLogEvents", input);
  };
  // Without a token: the newest events.
  json::object tail = with({{"limit", 2}});
  EXPECT_EQ(messages(tail), (std::vector<std::string>{"e3", "e4"}));
  EXPECT_TRUE(tail.at("nextForwardToken").as_string().starts_with("f/"));
  EXPECT_TRUE(tail.at("nextBackwardToken").as_string().starts_with("b/"));
  EXPECT_EQ(tail.at("nextForwardToken").as_string().size(), 58u);
  json::object older = with({{"limit", 2}, {"nextToken", tail.at("nextBackwardToken")}});
  EXPECT_EQ(messages(older), (std::vector<std::string>{"e1", "e2"}));
  json::object oldest = with({{"limit", 2}, {"nextToken", older.at("nextBackwardToken")}});
  EXPECT_EQ(messages(oldest), (std::vector<std::string>{"e0"}));
  json::object before = with({{"limit", 2}, {"nextToken", oldest.at("nextBackwardToken")}});
  EXPECT_TRUE(messages(before).empty());
  EXPECT_EQ(before.at("nextBackwardToken"), oldest.at("nextBackwardToken"));

  // From the head, forward to the end, where the token comes back unchanged.
  json::object head = with({{"startFromHead", true}, {"limit", 3}});
  EXPECT_EQ(messages(head), (std::vector<std::string>{"e0", "e1", "e2"}));
  json::object next = with({{"limit", 3}, {"nextToken", head.at("nextForwardToken")}});
  EXPECT_EQ(messages(next), (std::vector<std::string>{"e3", "e4"}));
  json::object end = with({{"limit", 3}, {"nextToken", next.at("nextForwardToken")}});
  EXPECT_TRUE(messages(end).empty());
  EXPECT_EQ(end.at("nextForwardToken"), next.at("nextForwardToken"));
  // What arrives later is read from the same token.
  put("g", "s", {{t + 50, "e5"}});
  EXPECT_EQ(messages(with({{"nextToken", end.at("nextForwardToken")}})),
            (std::vector<std::string>{"e5"}));

  // startTime inclusive, endTime exclusive.
  EXPECT_EQ(messages(with({{"startFromHead", true}, {"startTime", t + 10}, {"endTime", t + 30}})),
            (std::vector<std::string>{"e1", "e2"}));
  const auto& event = head.at("events").as_array()[0].as_object();
  EXPECT_EQ(event.at("timestamp").as_int64(), t);
  EXPECT_GT(event.at("ingestionTime").as_int64(), t);
  EXPECT_EQ(
      error_of("GetLogEvents",
               json::object{{"logGroupName", "g"}, {"logStreamName", "s"}, {"nextToken", "x/12"}}),
      "InvalidParameterException");
  std::string message;
  EXPECT_EQ(error_of("GetLogEvents", json::object{{"logGroupName", "g"}, {"logStreamName", "nope"}},
                     &message),
            "ResourceNotFoundException");
  EXPECT_EQ(message, "The specified log stream does not exist.");
  EXPECT_EQ(error_of("GetLogEvents", json::object{{"logGroupName", "h"}, {"logStreamName", "s"}},
                     &message),
            "ResourceNotFoundException");
  EXPECT_EQ(message, "The specified log group does not exist.");
}

TEST_F(LogsTest, FilterLogEventsInterleavesStreamsAndPages) {
  call("CreateLogGroup", json::object{{"logGroupName", "g"}});
  const int64_t t = now_ms() - 100000;
  call("CreateLogStream", json::object{{"logGroupName", "g"}, {"logStreamName", "one"}});
  call("CreateLogStream", json::object{{"logGroupName", "g"}, {"logStreamName", "two"}});
  put("g", "one", {{t, "START RequestId: 1"}, {t + 20, "ERROR failed to connect"}});
  put("g", "two", {{t + 10, "INFO connected to db"}, {t + 20, "ERROR timed out"}});
  const json::object all = call("FilterLogEvents", json::object{{"logGroupName", "g"}});
  EXPECT_EQ(messages(all),
            (std::vector<std::string>{"START RequestId: 1", "INFO connected to db",
                                      "ERROR failed to connect", "ERROR timed out"}));
  const auto& first = all.at("events").as_array()[0].as_object();
  EXPECT_EQ(first.at("logStreamName").as_string(), "one");
  EXPECT_EQ(first.at("eventId").as_string().size(), 56u);
  EXPECT_TRUE(all.at("searchedLogStreams").as_array().empty());
  EXPECT_FALSE(all.contains("nextToken"));

  // Page by page, the same events with the same IDs.
  std::vector<std::string> paged, ids;
  json::object input{{"logGroupName", "g"}, {"limit", 1}};
  for (int pages = 0; pages < 10; ++pages) {
    const json::object page = call("FilterLogEvents", input);
    for (const auto& e : page.at("events").as_array()) {
      paged.emplace_back(e.at("message").as_string());
      ids.emplace_back(e.at("eventId").as_string());
    }
    if (!page.contains("nextToken")) break;
    input["nextToken"] = page.at("nextToken");
  }
  EXPECT_EQ(paged, messages(all));
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(ids[i], all.at("events").as_array()[i].at("eventId").as_string());

  auto filtered = [&](json::object extra) {
    json::object in{{"logGroupName", "g"}};
    for (auto& [k, v] : extra) in[k] = v;
    return messages(call("FilterLogEvents", in));
  };
  EXPECT_EQ(filtered({{"filterPattern", "ERROR"}}),
            (std::vector<std::string>{"ERROR failed to connect", "ERROR timed out"}));
  EXPECT_EQ(filtered({{"filterPattern", "error"}}), std::vector<std::string>{});  // case-sensitive
  EXPECT_EQ(filtered({{"filterPattern", "ERROR connect"}}),
            (std::vector<std::string>{"ERROR failed to connect"}));
  EXPECT_EQ(filtered({{"filterPattern", "\"to connect\""}}),
            (std::vector<std::string>{"ERROR failed to connect"}));
  EXPECT_EQ(filtered({{"filterPattern", "\"connect to\""}}), std::vector<std::string>{});
  EXPECT_EQ(filtered({{"filterPattern", "?START ?INFO"}}),
            (std::vector<std::string>{"START RequestId: 1", "INFO connected to db"}));
  EXPECT_EQ(filtered({{"filterPattern", "ERROR -timed"}}),
            (std::vector<std::string>{"ERROR failed to connect"}));
  EXPECT_EQ(filtered({{"logStreamNames", json::array{"two"}}}),
            (std::vector<std::string>{"INFO connected to db", "ERROR timed out"}));
  EXPECT_EQ(filtered({{"logStreamNamePrefix", "on"}}),
            (std::vector<std::string>{"START RequestId: 1", "ERROR failed to connect"}));
  // Both ends inclusive.
  EXPECT_EQ(filtered({{"startTime", t + 10}, {"endTime", t + 10}}),
            (std::vector<std::string>{"INFO connected to db"}));
  EXPECT_EQ(error_of("FilterLogEvents",
                     json::object{{"logGroupName", "g"}, {"filterPattern", "{ $.level = 1 }"}}),
            "InvalidParameterException");
  EXPECT_EQ(error_of("FilterLogEvents", json::object{{"logGroupName", "nope"}}),
            "ResourceNotFoundException");
}

TEST(FilterPattern, TermsPhrasesAndAlternatives) {
  EXPECT_TRUE(FilterPattern("").matches("anything"));
  EXPECT_TRUE(FilterPattern("  ").matches("anything"));
  EXPECT_TRUE(FilterPattern("\"\"").matches("anything"));
  EXPECT_TRUE(FilterPattern("Task timed").matches("2026-12-05 Task timed out after 3.00 seconds"));
  EXPECT_FALSE(FilterPattern("Task Timed").matches("Task timed out"));
  EXPECT_TRUE(FilterPattern("\"say \\\"hi\\\"\"").matches("they say \"hi\" here"));
  EXPECT_TRUE(FilterPattern("\"[$LATEST]\"").matches("2026/12/05/[$LATEST]abc"));
  EXPECT_THROW(FilterPattern("\"unterminated"), ApiError);
  EXPECT_THROW(FilterPattern("[ip, user]"), ApiError);
  EXPECT_THROW(FilterPattern("{ $.x = 1 }"), ApiError);
}

TEST_F(LogsTest, ResourceArnsForIam) {
  EXPECT_EQ(
      Logs::resource_arn("PutLogEvents",
                         json::object{{"logGroupName", "/aws/lambda/f"}, {"logStreamName", "s"}},
                         "us-east-1", "1"),
      "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:log-stream:s");
  EXPECT_EQ(Logs::resource_arn("FilterLogEvents", json::object{{"logGroupName", "/aws/lambda/f"}},
                               "us-east-1", "1"),
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:*");
  EXPECT_EQ(Logs::resource_arn("DescribeLogGroups", json::object{}, "us-east-1", "1"),
            "arn:aws:logs:us-east-1:1:log-group:*");
  EXPECT_EQ(Logs::resource_arn("FilterLogEvents", json::object{}, "us-east-1", "1"), "*");
}

}  // namespace
}  // namespace sluice::cloud
