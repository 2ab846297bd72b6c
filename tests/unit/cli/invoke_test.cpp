// `lambda invoke` as the aws CLI has it: the positional outfile that receives the payload, the
// payload sent as raw bytes (or read as base64 with --cli-binary-format base64), and the rest of
// the response (status code and headers) printed as aws prints it.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "auth/crypto.hpp"
#include "cli/arguments.hpp"
#include "cli/customizations.hpp"
#include "cli/json_printer.hpp"
#include "cli/request_serializer.hpp"
#include "cli/response_parser.hpp"
#include "cli/service_model.hpp"

namespace sluice::cli {
namespace {
namespace json = boost::json;
using Words = std::vector<std::string>;

const ServiceModel& lambda() {
  return *find_service("lambda");
}
const json::object& invoke() {
  return *lambda().operation("invoke");
}

TEST(Invoke, ThePayloadIsStreamedToAFile) {
  EXPECT_EQ(streaming_output_member(lambda(), invoke()), "Payload");
  EXPECT_EQ(streaming_output_member(lambda(), *lambda().operation("get-function")), "");
  EXPECT_EQ(streaming_output_member(*find_service("rds"),
                                    *find_service("rds")->operation("describe-db-proxies")),
            "");
}

TEST(Invoke, TheOutfileIsThePositionalWordAnywhere) {
  Words args{"--function-name", "f", "out.json"};
  EXPECT_EQ(take_outfile(lambda(), invoke(), args), "out.json");
  EXPECT_EQ(args, (Words{"--function-name", "f"}));
  args = {"out.json", "--function-name", "f", "--payload", "{}"};
  EXPECT_EQ(take_outfile(lambda(), invoke(), args), "out.json");
  EXPECT_EQ(args, (Words{"--function-name", "f", "--payload", "{}"}));
  args = {"--function-name=f", "out.json", "--log-type", "Tail"};
  EXPECT_EQ(take_outfile(lambda(), invoke(), args), "out.json");
  args = {"--function-name", "f"};
  EXPECT_EQ(take_outfile(lambda(), invoke(), args), std::nullopt);
  args = {"--function-name", "f", "a", "b"};
  try {
    take_outfile(lambda(), invoke(), args);
    FAIL() << "a second positional word";
  } catch (const ArgumentError& e) {
    EXPECT_STREQ(e.what(), "Unknown options: b");
  }
}

TEST(Invoke, ThePayloadTravelsAsItsBytes) {
  const json::object input = parse_operation_arguments(
      lambda(), invoke(),
      {"--function-name", "f", "--payload", R"({"a": 1})", "--invocation-type", "Event",
       "--log-type", "Tail", "--qualifier", "$LATEST"});
  EXPECT_EQ(input.at("Payload"), json::value(auth::base64_encode(R"({"a": 1})")));
  const WireRequest request = serialize_request(lambda(), invoke(), input);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/2015-03-31/functions/f/invocations?Qualifier=%24LATEST");
  EXPECT_EQ(request.body, R"({"a": 1})");
  EXPECT_EQ(request.content_type, "") << "botocore sends a blob payload without one";
  EXPECT_EQ(request.headers, (std::vector<std::pair<std::string, std::string>>{
                                 {"x-amz-invocation-type", "Event"}, {"x-amz-log-type", "Tail"}}));
}

TEST(Invoke, CliBinaryFormatBase64ReadsThePayloadAsBase64) {
  const std::string encoded = auth::base64_encode(R"({"a": 1})");
  const json::object input = parse_operation_arguments(
      lambda(), invoke(), {"--function-name", "f", "--payload", encoded}, BinaryFormat::kBase64);
  EXPECT_EQ(serialize_request(lambda(), invoke(), input).body, R"({"a": 1})");
  EXPECT_THROW(parse_operation_arguments(lambda(), invoke(),
                                         {"--function-name", "f", "--payload", R"({"a": 1})"},
                                         BinaryFormat::kBase64),
               ArgumentError);
  // fileb:// is bytes whatever the format.
  const std::string file = ::testing::TempDir() + "/payload.bin";
  std::ofstream(file, std::ios::binary) << "\x01\x02raw";
  const json::object from_file = parse_operation_arguments(
      lambda(), invoke(), {"--function-name", "f", "--payload", "fileb://" + file},
      BinaryFormat::kBase64);
  EXPECT_EQ(serialize_request(lambda(), invoke(), from_file).body, "\x01\x02raw");
  std::remove(file.c_str());
}

TEST(Invoke, TheResponseIsPrintedAsAwsPrintsIt) {
  json::object output = parse_response(lambda(), invoke(), R"({"ok": true})", 200,
                                       {{"content-type", "application/json"},
                                        {"x-amz-executed-version", "$LATEST"},
                                        {"x-amz-log-result", "U1RBUlQgUmVxdWVzdElkOiAxCg=="},
                                        {"x-amz-function-error", "Unhandled"}});
  const std::string file = ::testing::TempDir() + "/out.json";
  save_streaming_output("Payload", file, output);
  std::ifstream in(file, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), R"({"ok": true})");
  // Byte for byte what aws-cli 1.x prints.
  EXPECT_EQ(aws_json(output),
            "{\n"
            "    \"StatusCode\": 200,\n"
            "    \"FunctionError\": \"Unhandled\",\n"
            "    \"LogResult\": \"U1RBUlQgUmVxdWVzdElkOiAxCg==\",\n"
            "    \"ExecutedVersion\": \"$LATEST\"\n"
            "}\n");

  // An asynchronous invocation: 202, an empty payload, an empty file.
  json::object queued =
      parse_response(lambda(), invoke(), "", 202, {{"x-amz-executed-version", "$LATEST"}});
  save_streaming_output("Payload", file, queued);
  EXPECT_EQ(std::filesystem::file_size(file), 0u);
  EXPECT_EQ(aws_json(queued),
            "{\n    \"StatusCode\": 202,\n    \"ExecutedVersion\": \"$LATEST\"\n}\n");
  std::remove(file.c_str());
  json::object unwritable = parse_response(lambda(), invoke(), "x", 200, {});
  EXPECT_THROW(save_streaming_output("Payload", "/nonexistent/dir/out", unwritable),
               std::runtime_error);
}

}  // namespace
}  // namespace sluice::cli
