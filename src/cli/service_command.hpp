// `sluice SERVICE OPERATION [--flags]`: the aws CLI's commands for what sluice serves, with its
// names, flags, shorthand, JSON output, error lines and exit codes (252 for a bad command line,
// 254 for a service error, 255 when the API cannot be reached). One code path with everything
// else: the request goes through the same HTTP API, SigV4-signed.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sluice::cli {

struct GlobalOptions {
  std::string endpoint_url;
  std::string region;
  std::string output = "json";
  std::string query;  // --query: not supported, refused with a hint
  // --cli-binary-format (CLI v2's): raw-in-base64-out, as CLI v1 reads blobs, unless base64.
  std::string cli_binary_format = "raw-in-base64-out";
};

// When argv names a service (after any of the aws CLI's global options, which may come
// anywhere): its global options and the rest of the words; otherwise nullopt.
struct ServiceInvocation {
  GlobalOptions options;
  std::vector<std::string> words;  // SERVICE OPERATION --flag value …
};
std::optional<ServiceInvocation> service_invocation(int argc, char** argv);

int run_service_command(const ServiceInvocation& invocation);

// A paragraph for `sluice --help`: the services and how to list their operations.
std::string services_help();

}  // namespace sluice::cli
