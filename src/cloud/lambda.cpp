#include "cloud/lambda.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

constexpr std::string_view kKind = "function";

std::string now_lambda_format() {  // 2019-09-26T20:28:40.438+0000
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t seconds = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03lld+0000", buffer, static_cast<long long>(millis));
  return out;
}

ApiError invalid(const std::string& message) {
  return ApiError("InvalidParameterValueException", message, 400);
}

std::string text_of(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return "";
  if (!it->value().is_string()) throw invalid(std::string(key) + " must be a string.");
  return std::string(it->value().as_string());
}

int64_t integer_of(const json::object& o, std::string_view key, int64_t fallback, int64_t low,
                   int64_t high) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return fallback;
  if (!it->value().is_int64() || it->value().as_int64() < low || it->value().as_int64() > high)
    throw invalid("1 validation error detected: Value at '" + std::string(key) +
                  "' failed to satisfy constraint: Member must have value between " +
                  std::to_string(low) + " and " + std::to_string(high));
  return it->value().as_int64();
}

// Function names: 1-64 of letters, digits, '-' and '_' (or a full ARN of one).
std::string name_of(const std::string& name_or_arn) {
  std::string name = name_or_arn;
  if (const size_t at = name.rfind(":function:"); at != std::string::npos)
    name = name.substr(at + 10);
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  if (!ok)
    throw invalid("1 validation error detected: Value '" + name_or_arn +
                  "' at 'functionName' failed to satisfy constraint: Member must satisfy regular "
                  "expression pattern");
  return name;
}

ApiResponse json_response(int status, const json::value& body) {
  ApiResponse out;
  out.status = status;
  out.body = json::serialize(body);
  return out;
}

}  // namespace

json::object Lambda::load(const std::string& name_or_arn) {
  const std::string name = name_of(name_or_arn);
  auto document = store_.get(kKind, name);
  if (!document)
    throw ApiError(
        "ResourceNotFoundException",
        "Function not found: arn:aws:lambda:us-east-1:" + account_id_ + ":function:" + name, 404);
  return json::parse(*document).as_object();
}

json::object Lambda::vpc_config(const json::value& input) {
  json::object out{{"SubnetIds", json::array()},
                   {"SecurityGroupIds", json::array()},
                   {"VpcId", ""},
                   {"Ipv6AllowedForDualStack", false}};
  if (!input.is_object()) return out;
  const json::object& config = input.as_object();
  std::string vpc;
  if (auto it = config.find("SubnetIds"); it != config.end() && it->value().is_array()) {
    for (const auto& s : it->value().as_array()) {
      const std::string subnet(s.as_string());
      const std::string subnet_vpc = ec2_.vpc_of_subnet(subnet);
      if (subnet_vpc.empty())
        throw invalid(
            "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 "
            "Error "
            "Message: The subnet ID '" +
            subnet + "' does not exist");
      if (!vpc.empty() && vpc != subnet_vpc) throw invalid("Subnets must all be in the same VPC.");
      vpc = subnet_vpc;
      out["SubnetIds"].as_array().push_back(s);
    }
  }
  if (auto it = config.find("SecurityGroupIds"); it != config.end() && it->value().is_array()) {
    for (const auto& g : it->value().as_array()) {
      const std::string group(g.as_string());
      if (!ec2_.group_in_vpc(group, vpc))
        throw invalid(
            "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
            "EC2 "
            "Error Message: The security group '" +
            group + "' does not exist in VPC '" + vpc + "'");
      out["SecurityGroupIds"].as_array().push_back(g);
    }
  }
  if (!out["SubnetIds"].as_array().empty() && out["SecurityGroupIds"].as_array().empty())
    throw invalid("A VpcConfig with subnets needs at least one security group.");
  out["VpcId"] = vpc;
  return out;
}

namespace {
// SHA-256 (base64, as Lambda's CodeSha256) of a zip file, or of a folder's files (their relative
// names and contents, in name order); `size` gets the bytes counted. Nothing when unreadable.
std::optional<std::string> local_code_digest(const std::string& path, int64_t& size) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto read = [&](const fs::path& file, std::string& into) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return false;
    std::stringstream bytes;
    bytes << in.rdbuf();
    into += bytes.str();
    size += static_cast<int64_t>(bytes.str().size());
    return true;
  };
  std::string material;
  size = 0;
  if (fs::is_regular_file(path, ec)) {
    if (!read(path, material)) return std::nullopt;
  } else if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(path, ec))
      if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      material += fs::relative(file, path).string() + '\0';
      if (!read(file, material)) return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  return auth::base64_encode(auth::sha256(material));
}
}  // namespace

json::object Lambda::public_view(const json::object& function) {
  json::object out = function;
  out.erase("CodeFile");
  out.erase("CodeIsLocal");
  return out;
}

json::object Lambda::create(const json::object& input, const std::string& region) {
  const std::string name = name_of(text_of(input, "FunctionName"));
  if (store_.get(kKind, name))
    throw ApiError("ResourceConflictException", "Function already exist: " + name, 409);
  const std::string role = text_of(input, "Role");
  if (!role.starts_with("arn:aws:iam::") || role.find(":role/") == std::string::npos)
    throw invalid("The role defined for the function cannot be assumed by Lambda.");
  const std::string runtime = text_of(input, "Runtime");
  const std::string handler = text_of(input, "Handler");
  if (runtime.empty() || handler.empty())
    throw invalid(
        "Runtime and Handler are mandatory parameters for functions created with deployment "
        "packages.");
  // Every check before anything is written: a refused request leaves nothing behind.
  const int64_t timeout = integer_of(input, "Timeout", 3, 1, 900);
  const int64_t memory = integer_of(input, "MemorySize", 128, 128, 10240);
  const json::object vpc =
      vpc_config(input.contains("VpcConfig") ? input.at("VpcConfig") : json::value());
  auto code_it = input.find("Code");
  if (code_it == input.end() || !code_it->value().is_object())
    throw invalid("The Code parameter is required.");
  const json::object& code = code_it->value().as_object();
  std::string code_file;
  bool local_code = false;
  std::string sha256;
  int64_t code_size = 0;
  if (code.contains("S3Bucket") || code.contains("S3Key")) {
    // No S3 here: S3Bucket=sluice-local with S3Key=/absolute/path runs the code where it is (a
    // zip file or a folder), so rebuilding it needs no upload.
    if (text_of(code, "S3Bucket") != kLocalCodeBucket)
      throw invalid("sluice has no S3: use S3Bucket=" + std::string(kLocalCodeBucket) +
                    " with S3Key=/absolute/path/to/code (a .zip file or a folder), or ZipFile.");
    code_file = text_of(code, "S3Key");
    auto digest = local_code_digest(code_file, code_size);
    if (!code_file.starts_with('/') || !digest)
      throw invalid("S3Key " + code_file +
                    " is not an absolute path to a readable file or folder.");
    sha256 = *digest;
    local_code = true;
  } else {
    const std::string zip_base64 = text_of(code, "ZipFile");
    auto zip = zip_base64.empty() ? std::nullopt : auth::base64_decode(zip_base64);
    if (!zip || zip->size() < 4 || zip->compare(0, 2, "PK") != 0)
      throw invalid(
          "Could not unzip uploaded file. Please check your file, then try to upload again.");
    sha256 = auth::base64_encode(auth::sha256(*zip));
    code_size = static_cast<int64_t>(zip->size());
    std::filesystem::create_directories(code_folder_);
    code_file = code_folder_ + "/" + name + ".zip";
    std::ofstream(code_file, std::ios::binary)
        .write(zip->data(), static_cast<std::streamsize>(zip->size()));
  }

  json::object function{
      {"FunctionName", name},
      {"FunctionArn", "arn:aws:lambda:" + region + ":" + account_id_ + ":function:" + name},
      {"Runtime", runtime},
      {"Role", role},
      {"Handler", handler},
      {"CodeSize", code_size},
      {"Description", text_of(input, "Description")},
      {"Timeout", timeout},
      {"MemorySize", memory},
      {"LastModified", now_lambda_format()},
      {"CodeSha256", sha256},
      {"Version", "$LATEST"},
      {"VpcConfig",
       vpc_config(input.contains("VpcConfig") ? input.at("VpcConfig") : json::value())},
      {"Environment", json::object{{"Variables", json::object()}}},
      {"TracingConfig", json::object{{"Mode", "PassThrough"}}},
      {"RevisionId", uuid4()},
      {"State", "Active"},
      {"LastUpdateStatus", "Successful"},
      {"PackageType", "Zip"},
      {"Architectures", json::array{"x86_64"}},
      {"EphemeralStorage", json::object{{"Size", 512}}},
      {"SnapStart", json::object{{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}},
      {"LoggingConfig", json::object{{"LogFormat", "Text"}, {"LogGroup", "/aws/lambda/" + name}}},
      {"CodeFile", code_file},
      {"CodeIsLocal", local_code}};
  if (auto it = input.find("Environment"); it != input.end() && it->value().is_object())
    if (auto vars = it->value().as_object().find("Variables");
        vars != it->value().as_object().end())
      function["Environment"] = json::object{{"Variables", vars->value()}};
  if (auto it = input.find("Architectures"); it != input.end() && it->value().is_array())
    function["Architectures"] = it->value();
  if (!store_.insert(kKind, name, json::serialize(function)))
    throw ApiError("ResourceConflictException", "Function already exist: " + name, 409);
  return public_view(function);
}

json::object Lambda::update(const std::string& name_or_arn, const json::object& input) {
  json::object function = load(name_or_arn);
  if (input.contains("Role")) {
    const std::string role = text_of(input, "Role");
    if (!role.starts_with("arn:aws:iam::") || role.find(":role/") == std::string::npos)
      throw invalid("The role defined for the function cannot be assumed by Lambda.");
    function["Role"] = role;
  }
  for (const char* key : {"Handler", "Runtime", "Description"})
    if (input.contains(key)) function[key] = text_of(input, key);
  if (input.contains("Timeout")) function["Timeout"] = integer_of(input, "Timeout", 3, 1, 900);
  if (input.contains("MemorySize"))
    function["MemorySize"] = integer_of(input, "MemorySize", 128, 128, 10240);
  if (input.contains("VpcConfig")) function["VpcConfig"] = vpc_config(input.at("VpcConfig"));
  if (auto it = input.find("Environment"); it != input.end() && it->value().is_object()) {
    auto vars = it->value().as_object().find("Variables");
    function["Environment"] = json::object{{"Variables", vars != it->value().as_object().end()
                                                             ? vars->value()
                                                             : json::value(json::object())}};
  }
  function["LastModified"] = now_lambda_format();
  function["RevisionId"] = uuid4();
  store_.put(kKind, std::string(function.at("FunctionName").as_string()),
             json::serialize(function));
  return public_view(function);
}

ApiResponse Lambda::handle(const ApiRequest& request) {
  try {
    std::string path = request.target.substr(0, request.target.find('?'));
    std::string rest = path.substr(kPrefix.size());
    if (!rest.empty() && rest.front() == '/') rest.erase(0, 1);
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    // Names in the path may be percent-encoded ARNs.
    std::string decoded;
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '%' && i + 2 < rest.size() &&
          std::isxdigit(static_cast<unsigned char>(rest[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(rest[i + 2]))) {
        decoded += static_cast<char>(std::stoi(rest.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += rest[i];
      }
    }
    rest = decoded;
    const size_t slash = rest.find('/');
    const std::string name = rest.substr(0, slash);
    const std::string sub = slash == std::string::npos ? "" : rest.substr(slash + 1);
    auto body = [&]() -> json::object {
      boost::system::error_code error;
      json::value parsed =
          request.body.empty() ? json::value(json::object()) : json::parse(request.body, error);
      if (error || !parsed.is_object()) throw invalid("The request body is not a JSON object.");
      return parsed.as_object();
    };
    if (name.empty() && request.method == "POST")
      return json_response(201, create(body(), request.region));
    if (name.empty() && request.method == "GET") {
      json::array functions;
      for (const auto& [id, document] : store_.list(kKind))
        functions.push_back(public_view(json::parse(document).as_object()));
      return json_response(200, json::object{{"Functions", functions}});
    }
    if (!name.empty() && sub.empty() && request.method == "GET") {
      json::object function = load(name);
      return json_response(
          200, json::object{
                   {"Configuration", public_view(function)},
                   {"Code",
                    json::object{{"RepositoryType", "S3"},
                                 {"Location",
                                  "file://" + std::string(function.at("CodeFile").as_string())}}},
               });
    }
    if (!name.empty() && sub.empty() && request.method == "DELETE") {
      json::object function = load(name);
      if (!function.contains("CodeIsLocal") || !function.at("CodeIsLocal").as_bool())
        std::filesystem::remove(std::string(function.at("CodeFile").as_string()));
      store_.remove(kKind, std::string(function.at("FunctionName").as_string()));
      ApiResponse out;
      out.status = 204;
      return out;
    }
    if (!name.empty() && sub == "configuration" && request.method == "GET")
      return json_response(200, public_view(load(name)));
    if (!name.empty() && sub == "configuration" && request.method == "PUT")
      return json_response(200, update(name, body()));
    throw ApiError("UnknownOperationException",
                   "sluice does not implement " + request.method + " " + path + ".", 404);
  } catch (const ApiError& e) {
    ApiResponse out =
        json_response(e.status, json::object{{"Type", "User"}, {"message", e.what()}});
    out.headers.emplace_back("x-amzn-ErrorType", e.code);
    return out;
  }
}

}  // namespace sluice::cloud
