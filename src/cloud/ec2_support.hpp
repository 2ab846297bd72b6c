// What ec2.cpp (VPCs, subnets, security groups) and ec2_interfaces.cpp (network interfaces and
// the reachability checks) share: store kinds, IDs, parameters, CIDRs and filters. Private to
// the EC2 service.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/api.hpp"
#include "cloud/ids.hpp"
#include "cloud/query_protocol.hpp"

namespace sluice::cloud::ec2_support {

constexpr std::string_view kVpc = "vpc";
constexpr std::string_view kSubnet = "subnet";
constexpr std::string_view kGroup = "security-group";
constexpr std::string_view kInterface = "network-interface";

inline std::string resource_id(std::string_view prefix) {
  return std::string(prefix) + "-" + random_chars("0123456789abcdef", 17);  // vpc-0123456789abcdef0
}

inline int64_t number(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_int64() ? it->value().as_int64() : 0;
}

inline std::string missing(const std::string& name) {
  return "The request must contain the parameter " + name;
}

inline std::string need(const QueryParams& params, const std::string& name) {
  auto value = params.get(name);
  if (!value || value->empty()) throw ApiError("MissingParameter", missing(name));
  return *value;
}

inline std::string cidr_text(uint32_t network, int prefix) {
  in_addr address{htonl(network)};
  char buffer[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &address, buffer, sizeof buffer);
  return std::string(buffer) + "/" + std::to_string(prefix);
}

inline uint32_t mask_of(int prefix) {
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

// Filter.N.Name / Filter.N.Value.M, as name -> accepted values.
inline std::map<std::string, std::vector<std::string>> filters_of(const QueryParams& params) {
  std::map<std::string, std::vector<std::string>> out;
  for (int i = 1;; ++i) {
    const std::string filter = "Filter." + std::to_string(i);
    auto name = params.get(filter + ".Name");
    if (!name) break;
    out[*name] = params.list(filter + ".Value");
  }
  return out;
}

inline bool passes(const std::map<std::string, std::vector<std::string>>& filters,
                   const std::map<std::string, std::string>& fields) {
  for (const auto& [name, values] : filters) {
    auto it = fields.find(name);
    if (it == fields.end()) {
      if (!name.starts_with("tag:"))
        throw ApiError("InvalidParameterValue", "The filter '" + name + "' is invalid");
      return false;
    }
    if (std::find(values.begin(), values.end(), it->second) == values.end()) return false;
  }
  return true;
}

}  // namespace sluice::cloud::ec2_support
