#include "cloud/lambda.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"
#include "common/encoding.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace {

constexpr std::string_view kKind = "function";
constexpr std::string_view kLambdaInterface = "lambda";

// Lambda's API versions: every path of the service starts with one (botocore's lambda model).
constexpr std::array<std::string_view, 16> kApiVersions{
    "2014-11-13", "2015-03-31", "2016-08-19", "2017-03-31", "2017-10-31", "2018-10-31",
    "2019-09-25", "2019-09-30", "2020-04-22", "2020-06-30", "2021-07-20", "2021-10-31",
    "2021-11-15", "2024-08-31", "2025-11-30", "2025-12-01"};

// AccountLimit's code storage figures, as AWS reports them by default.
constexpr int64_t kTotalCodeSize = 80530636800;
constexpr int64_t kCodeSizeUnzipped = 262144000;
constexpr int64_t kCodeSizeZipped = 52428800;

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

bool flag_of(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_bool() && it->value().as_bool();
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

std::string role_of(const json::object& input) {
  const std::string role = text_of(input, "Role");
  if (!role.starts_with("arn:aws:iam::") || role.find(":role/") == std::string::npos)
    throw invalid("The role defined for the function cannot be assumed by Lambda.");
  return role;
}

// UpdateFunction*'s optimistic lock: a RevisionId given must be the current one.
void check_revision(const json::object& input, const FunctionRecord& function) {
  const std::string wanted = text_of(input, "RevisionId");
  if (!wanted.empty() && wanted != function.revision_id)
    throw ApiError("PreconditionFailedException",
                   "The Revision Id provided does not match the latest Revision Id. Call the "
                   "GetFunction/GetAlias API to retrieve the latest Revision Id",
                   412);
}

ApiResponse json_response(int status, const json::value& body) {
  ApiResponse out;
  out.status = status;
  out.body = json::serialize(body);
  return out;
}

ApiResponse no_content() {
  ApiResponse out;
  out.status = 204;
  return out;
}

// The path's segments, each percent-decoded (names may be encoded ARNs), empty ones dropped.
std::vector<std::string> segments_of(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    if (slash != 0) out.push_back(percent_decode(path.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

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

bool Lambda::serves_path(std::string_view target) {
  for (const std::string_view version : kApiVersions) {
    if (target.size() <= version.size() || target[0] != '/' ||
        target.substr(1, version.size()) != version)
      continue;
    const size_t after = version.size() + 1;
    if (target.size() == after || target[after] == '/' || target[after] == '?') return true;
  }
  return false;
}

FunctionRecord Lambda::function(const std::string& name_or_arn) {
  const std::string name = name_of(name_or_arn);
  auto document = store_.get(kKind, name);
  if (!document)
    throw ApiError(
        "ResourceNotFoundException",
        "Function not found: arn:aws:lambda:us-east-1:" + account_id_ + ":function:" + name, 404);
  return parse_record<FunctionRecord>(*document);
}

json::object Lambda::load(const std::string& name_or_arn) {
  return function(name_or_arn).to_json();
}

std::vector<FunctionRecord> Lambda::functions() {
  std::vector<FunctionRecord> out;
  for (const auto& [id, document] : store_.list(kKind))
    out.push_back(parse_record<FunctionRecord>(document));
  return out;
}

void Lambda::save(const FunctionRecord& function) {
  store_.put(kKind, function.name, serialize_record(function));
}

std::vector<std::string> Lambda::network_interfaces(const json::object& function) {
  return FunctionRecord::from_json(function).interface_ids();
}

std::optional<int64_t> Lambda::reserved_concurrency(const json::object& function) {
  return FunctionRecord::from_json(function).reserved_concurrency;
}

int64_t Lambda::unreserved_concurrency() {
  int64_t reserved = 0;
  for (const auto& f : functions()) reserved += f.reserved_concurrency.value_or(0);
  return account_concurrency_ - reserved;
}

FunctionVpcConfig Lambda::vpc_config(const json::value& input) {
  FunctionVpcConfig out;
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
      out.subnets.push_back(subnet);
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
      out.groups.push_back(group);
    }
  }
  if (!out.subnets.empty() && out.groups.empty())
    throw invalid("A VpcConfig with subnets needs at least one security group.");
  out.vpc_id = vpc;
  return out;
}

std::vector<FunctionInterface> Lambda::attach_interfaces(const std::string& name,
                                                         const FunctionVpcConfig& vpc) {
  std::vector<std::string> groups = vpc.groups;
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  auto known = ec2_.interfaces();
  std::vector<FunctionInterface> attached;
  for (const auto& subnet : vpc.subnets) {
    // One interface per (subnet, group set), whichever function made it: Hyperplane's sharing.
    auto shared = std::find_if(known.begin(), known.end(), [&](const Ec2::NetworkInterface& eni) {
      if (eni.interface_type != kLambdaInterface || eni.subnet_id != subnet) return false;
      auto eni_groups = eni.groups;
      std::sort(eni_groups.begin(), eni_groups.end());
      return eni_groups == groups;
    });
    std::string id;
    if (shared != known.end()) {
      id = shared->id;
    } else {
      try {
        known.push_back(
            ec2_.create_interface(subnet, groups, "AWS Lambda VPC ENI-" + name + "-" + uuid4(),
                                  /*requester_managed=*/true, {}, std::string(kLambdaInterface)));
      } catch (const ApiError& e) {
        if (e.code != "InsufficientFreeAddressesInSubnet") throw;
        throw ApiError("SubnetIPAddressLimitReachedException",
                       "Lambda was not able to set up VPC access for the Lambda function because "
                       "one or more configured subnets has no available IP addresses.",
                       502);
      }
      id = known.back().id;
    }
    attached.push_back({subnet, id});
  }
  return attached;
}

void Lambda::release_unused_interfaces() {
  std::set<std::string> used;
  for (const auto& f : functions())
    for (auto& eni : f.interface_ids()) used.insert(eni);
  for (const auto& eni : ec2_.interfaces())
    if (eni.interface_type == kLambdaInterface && !used.contains(eni.id))
      ec2_.delete_interface(eni.id);
}

Lambda::Package Lambda::package_of(const json::object& code, std::string_view missing_message) {
  Package package;
  if (code.contains("S3Bucket") || code.contains("S3Key")) {
    // No S3 here: S3Bucket=sluice-local with S3Key=/absolute/path runs the code where it is (a
    // zip file or a folder), so rebuilding it needs no upload.
    if (text_of(code, "S3Bucket") != kLocalCodeBucket)
      throw invalid("sluice has no S3: use S3Bucket=" + std::string(kLocalCodeBucket) +
                    " with S3Key=/absolute/path/to/code (a .zip file or a folder), or ZipFile.");
    package.file = text_of(code, "S3Key");
    auto digest = local_code_digest(package.file, package.size);
    if (!package.file.starts_with('/') || !digest)
      throw invalid("S3Key " + package.file +
                    " is not an absolute path to a readable file or folder.");
    package.sha256 = *digest;
    package.local = true;
    return package;
  }
  if (!code.contains("ZipFile")) throw invalid(std::string(missing_message));
  const std::string zip_base64 = text_of(code, "ZipFile");
  auto zip = zip_base64.empty() ? std::nullopt : auth::base64_decode(zip_base64);
  if (!zip || zip->size() < 4 || zip->compare(0, 2, "PK") != 0)
    throw invalid(
        "Could not unzip uploaded file. Please check your file, then try to upload again.");
  package.sha256 = auth::base64_encode(auth::sha256(*zip));
  package.size = static_cast<int64_t>(zip->size());
  package.zip = std::move(*zip);
  return package;
}

std::string Lambda::write_upload(const std::string& name, const Package& package,
                                 const std::string& revision) {
  // A new file per revision: an environment still running the old code keeps its package.
  std::filesystem::create_directories(code_folder_);
  const std::string file = code_folder_ + "/" + name + "-" + revision + ".zip";
  {
    std::ofstream out(file + ".tmp", std::ios::binary | std::ios::trunc);
    out.write(package.zip.data(), static_cast<std::streamsize>(package.zip.size()));
    if (!out.flush())
      throw ApiError("ServiceException", "Could not store the deployment package.", 500);
  }
  std::filesystem::rename(file + ".tmp", file);
  return file;
}

json::object Lambda::create(const json::object& input, const std::string& region) {
  const std::string name = name_of(text_of(input, "FunctionName"));
  if (store_.get(kKind, name))
    throw ApiError("ResourceConflictException", "Function already exist: " + name, 409);
  const std::string role = role_of(input);
  const std::string runtime = text_of(input, "Runtime");
  const std::string handler = text_of(input, "Handler");
  if (runtime.empty() || handler.empty())
    throw invalid(
        "Runtime and Handler are mandatory parameters for functions created with deployment "
        "packages.");
  // Every check before anything is written: a refused request leaves nothing behind.
  const int64_t timeout = integer_of(input, "Timeout", 3, 1, 900);
  const int64_t memory = integer_of(input, "MemorySize", 128, 128, 10240);
  const FunctionVpcConfig vpc =
      vpc_config(input.contains("VpcConfig") ? input.at("VpcConfig") : json::value());
  auto code_it = input.find("Code");
  if (code_it == input.end() || !code_it->value().is_object())
    throw invalid("The Code parameter is required.");
  Package package = package_of(code_it->value().as_object(), "The Code parameter is required.");

  const std::string revision = uuid4();
  FunctionRecord function;
  function.name = name;
  function.arn = "arn:aws:lambda:" + region + ":" + account_id_ + ":function:" + name;
  function.runtime = runtime;
  function.role = role;
  function.handler = handler;
  function.code_size = package.size;
  function.description = text_of(input, "Description");
  function.timeout = timeout;
  function.memory_size = memory;
  function.last_modified = now_lambda_format();
  function.code_sha256 = package.sha256;
  function.vpc_config = vpc;
  function.revision_id = revision;
  function.log_group = "/aws/lambda/" + name;
  function.code_file = package.file;
  function.code_is_local = package.local;
  if (auto it = input.find("Environment"); it != input.end() && it->value().is_object())
    if (auto vars = it->value().as_object().find("Variables");
        vars != it->value().as_object().end())
      function.variables = vars->value();
  if (auto it = input.find("Architectures"); it != input.end() && it->value().is_array())
    function.architectures = it->value().as_array();
  // The writes: the function's interfaces, its package, its record. Whatever fails undoes the rest.
  try {
    function.interfaces = attach_interfaces(name, vpc);
    if (!package.local) function.code_file = write_upload(name, package, revision);
    if (!store_.insert(kKind, name, serialize_record(function)))
      throw ApiError("ResourceConflictException", "Function already exist: " + name, 409);
  } catch (...) {
    if (!package.local && !function.code_file.empty()) std::filesystem::remove(function.code_file);
    release_unused_interfaces();
    throw;
  }
  return function.configuration();
}

json::object Lambda::update(const std::string& name_or_arn, const json::object& input) {
  FunctionRecord function = this->function(name_or_arn);
  const std::string name = function.name;
  check_revision(input, function);
  if (input.contains("Role")) function.role = role_of(input);
  if (input.contains("Handler")) function.handler = text_of(input, "Handler");
  if (input.contains("Runtime")) function.runtime = text_of(input, "Runtime");
  if (input.contains("Description")) function.description = text_of(input, "Description");
  if (input.contains("Timeout")) function.timeout = integer_of(input, "Timeout", 3, 1, 900);
  if (input.contains("MemorySize"))
    function.memory_size = integer_of(input, "MemorySize", 128, 128, 10240);
  std::optional<FunctionVpcConfig> vpc;
  if (input.contains("VpcConfig")) vpc = vpc_config(input.at("VpcConfig"));
  if (auto it = input.find("Environment"); it != input.end() && it->value().is_object()) {
    auto vars = it->value().as_object().find("Variables");
    function.variables =
        vars != it->value().as_object().end() ? vars->value() : json::value(json::object());
  }
  function.last_modified = now_lambda_format();
  function.revision_id = uuid4();
  if (vpc) {
    function.vpc_config = *vpc;
    try {
      function.interfaces = attach_interfaces(name, *vpc);
    } catch (...) {
      release_unused_interfaces();
      throw;
    }
  }
  save(function);
  if (vpc) release_unused_interfaces();  // those of the previous VpcConfig, if no one else's
  return function.configuration();
}

json::object Lambda::update_code(const std::string& name_or_arn, const json::object& input) {
  FunctionRecord function = this->function(name_or_arn);
  const std::string name = function.name;
  Package package = package_of(input, "Please provide a source for function code.");
  check_revision(input, function);
  if (auto it = input.find("Architectures"); it != input.end() && !it->value().is_null()) {
    const bool known = it->value().is_array() && it->value().as_array().size() == 1 &&
                       it->value().as_array()[0].is_string() &&
                       (it->value().as_array()[0].as_string() == "x86_64" ||
                        it->value().as_array()[0].as_string() == "arm64");
    if (!known)
      throw invalid(
          "1 validation error detected: Value at 'architectures' failed to satisfy constraint: "
          "Member must have length less than or equal to 1, and each member must be one of "
          "[x86_64, arm64]");
    function.architectures = it->value().as_array();
  }
  const std::string old_file = function.code_file;
  const bool old_local = function.code_is_local;
  const std::string revision = uuid4();
  function.code_sha256 = package.sha256;
  function.code_size = package.size;
  function.last_modified = now_lambda_format();
  function.revision_id = revision;
  function.last_update_status = "Successful";
  function.code_is_local = package.local;
  function.code_file = package.file;
  if (flag_of(input, "DryRun")) return function.configuration();  // checked, nothing written
  if (!package.local) function.code_file = write_upload(name, package, revision);
  save(function);
  // The previous upload is replaced (code where the user keeps it is theirs).
  if (!old_local && !old_file.empty() && old_file != function.code_file) {
    std::error_code ignored;
    std::filesystem::remove(old_file, ignored);
  }
  return function.configuration();
}

void Lambda::remove(const std::string& name_or_arn) {
  const FunctionRecord function = this->function(name_or_arn);
  store_.remove(kKind, function.name);
  release_unused_interfaces();
  if (!function.code_is_local) {
    std::error_code ignored;
    std::filesystem::remove(function.code_file, ignored);
  }
}

json::object Lambda::put_concurrency(const std::string& name_or_arn, const json::object& input) {
  FunctionRecord function = this->function(name_or_arn);
  const auto it = input.find("ReservedConcurrentExecutions");
  if (it == input.end() || it->value().is_null())
    throw invalid(
        "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to "
        "satisfy constraint: Member must not be null");
  if (!it->value().is_int64() || it->value().as_int64() < 0)
    throw invalid("1 validation error detected: Value '" + json::serialize(it->value()) +
                  "' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must "
                  "have value greater than or equal to 0");
  const int64_t wanted = it->value().as_int64();
  int64_t others = 0;
  for (const auto& f : functions())
    if (f.name != function.name) others += f.reserved_concurrency.value_or(0);
  // AWS keeps 100 unreserved; a tenth of a smaller limit here (see kMinimumUnreserved).
  const int64_t minimum = std::min(kMinimumUnreserved, account_concurrency_ / 10);
  if (account_concurrency_ - others - wanted < minimum)
    throw invalid(
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [" +
        std::to_string(minimum) + "].");
  function.reserved_concurrency = wanted;
  save(function);
  return json::object{{"ReservedConcurrentExecutions", wanted}};
}

json::object Lambda::account_settings() {
  int64_t code_size = 0;
  int64_t functions = 0;
  int64_t reserved = 0;
  for (const auto& function : this->functions()) {
    ++functions;
    code_size += function.code_size;
    reserved += function.reserved_concurrency.value_or(0);
  }
  return json::object{
      {"AccountLimit",
       json::object{{"TotalCodeSize", kTotalCodeSize},
                    {"CodeSizeUnzipped", kCodeSizeUnzipped},
                    {"CodeSizeZipped", kCodeSizeZipped},
                    {"ConcurrentExecutions", account_concurrency_},
                    {"UnreservedConcurrentExecutions", account_concurrency_ - reserved}}},
      {"AccountUsage", json::object{{"TotalCodeSize", code_size}, {"FunctionCount", functions}}}};
}

json::object Lambda::get_function(const std::string& name_or_arn) {
  const FunctionRecord function = this->function(name_or_arn);
  json::object out{{"Configuration", function.configuration()},
                   {"Code", json::object{{"RepositoryType", "S3"},
                                         {"Location", "file://" + function.code_file}}}};
  if (const auto reserved = function.reserved_concurrency)
    out["Concurrency"] = json::object{{"ReservedConcurrentExecutions", *reserved}};
  return out;
}

json::object Lambda::get_concurrency(const std::string& name_or_arn) {
  json::object out;
  if (const auto reserved = function(name_or_arn).reserved_concurrency)
    out["ReservedConcurrentExecutions"] = *reserved;
  return out;
}

ApiResponse Lambda::handle(const ApiRequest& request) {
  try {
    const std::string path = request.target.substr(0, request.target.find('?'));
    const std::vector<std::string> segments = segments_of(path);
    const auto segment = [&](size_t i) { return i < segments.size() ? segments[i] : ""; };
    const std::string version = segment(0);
    const std::string resource = segment(1);
    const std::string name = segment(2);
    const std::string sub = segment(3);
    const size_t depth = segments.size();
    const std::string& method = request.method;
    auto body = [&]() -> json::object {
      boost::system::error_code error;
      json::value parsed =
          request.body.empty() ? json::value(json::object()) : json::parse(request.body, error);
      if (error || !parsed.is_object()) throw invalid("The request body is not a JSON object.");
      return parsed.as_object();
    };
    if (version == "2015-03-31" && resource == "functions") {
      if (depth == 2 && method == "POST") return json_response(201, create(body(), request.region));
      if (depth == 2 && method == "GET") {
        json::array listed;
        for (const auto& function : functions()) listed.push_back(function.configuration());
        return json_response(200, json::object{{"Functions", listed}});
      }
      if (depth == 3 && method == "GET") return json_response(200, get_function(name));
      if (depth == 3 && method == "DELETE") {
        remove(name);
        return no_content();
      }
      if (depth == 4 && sub == "configuration" && method == "GET")
        return json_response(200, function(name).configuration());
      if (depth == 4 && sub == "configuration" && method == "PUT")
        return json_response(200, update(name, body()));
      if (depth == 4 && sub == "code" && method == "PUT")
        return json_response(200, update_code(name, body()));
    }
    if (resource == "functions" && depth == 4 && sub == "concurrency") {
      if (version == "2017-10-31" && method == "PUT")
        return json_response(200, put_concurrency(name, body()));
      if (version == "2017-10-31" && method == "DELETE") {
        FunctionRecord function = this->function(name);
        function.reserved_concurrency.reset();
        save(function);
        return no_content();
      }
      if (version == "2019-09-30" && method == "GET")
        return json_response(200, get_concurrency(name));
    }
    if (version == "2016-08-19" && resource == "account-settings" && depth == 2 && method == "GET")
      return json_response(200, account_settings());
    throw ApiError("UnknownOperationException",
                   "sluice does not implement " + method + " " + path + ".", 404);
  } catch (const ApiError& e) {
    ApiResponse out =
        json_response(e.status, json::object{{"Type", "User"}, {"message", e.what()}});
    out.headers.emplace_back("x-amzn-ErrorType", e.code);
    return out;
  }
}

}  // namespace sluice::cloud
