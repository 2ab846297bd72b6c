// What the RDS services share: the region's other services, the processes they run and how
// their endpoints are named and reached.
#pragma once

#include <cctype>
#include <string>

#include "cloud/api.hpp"
#include "cloud/certificates.hpp"
#include "cloud/ec2.hpp"
#include "cloud/iam.hpp"
#include "cloud/local_network.hpp"
#include "cloud/sealed.hpp"
#include "cloud/secretsmanager.hpp"
#include "cloud/store.hpp"
#include "cloud/supervisor.hpp"
#include "cloud/vpc_network.hpp"

namespace sluice::cloud {

struct RdsEnvironment {
  Store& store;
  const SealingKey& key;
  Supervisor& supervisor;
  LocalNetwork& network;
  SecretsManager& secrets;
  Iam& iam;
  Ec2& ec2;
  std::string home;  // rds/ and proxies/ live here
  std::string account_id;
  std::string domain;                 // endpoint names end in REGION.rds.DOMAIN
  std::string postgres_bin;           // empty: the newest installed
  std::string proxy_binary;           // sluice-proxy
  VpcNetwork* vpc_network = nullptr;  // null: no namespaces here, endpoints on loopback only
  bool host_access = true;            // this machine may reach endpoints (the local exception)
};

inline std::string lower_case(std::string value) {
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value;
}

// RDS's identifiers (clusters, instances, proxies, proxy endpoints): a letter, then letters,
// digits and single hyphens, at most 63, no trailing hyphen. RDS keeps them in lower case.
inline std::string rds_identifier(const std::string& value, const std::string& parameter) {
  bool ok = !value.empty() && value.size() <= 63 &&
            std::isalpha(static_cast<unsigned char>(value[0])) && value.back() != '-' &&
            value.find("--") == std::string::npos;
  for (char c : value) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
  if (!ok)
    throw ApiError("InvalidParameterValue",
                   "The parameter " + parameter +
                       " is not a valid identifier. Identifiers must begin with a letter; must "
                       "contain only ASCII letters, digits, and hyphens; and must not end with a "
                       "hyphen or contain two consecutive hyphens.");
  return lower_case(value);
}

// Endpoint names in RDS's formats. `region_id` is the account's 12-character identifier for the
// region, shared by all its endpoints there (the "cczg0cscuj55" in the guide's proxy endpoint).
struct RdsNames {
  std::string region;
  std::string region_id;
  std::string domain;

  std::string suffix() const { return region + ".rds." + domain; }
  std::string cluster(const std::string& id) const {
    return id + ".cluster-" + region_id + "." + suffix();
  }
  std::string cluster_reader(const std::string& id) const {
    return id + ".cluster-ro-" + region_id + "." + suffix();
  }
  std::string instance(const std::string& id) const {
    return id + "." + region_id + "." + suffix();
  }
  std::string proxy(const std::string& name) const {
    return name + ".proxy-" + region_id + "." + suffix();
  }
  std::string proxy_endpoint(const std::string& name) const {
    return name + ".endpoint.proxy-" + region_id + "." + suffix();
  }
  // The wildcards of the region's server certificate, as RDS's certificates have.
  std::vector<std::string> certificate_names() const {
    return {"*." + region_id + "." + suffix(), "*.cluster-" + region_id + "." + suffix(),
            "*.cluster-ro-" + region_id + "." + suffix(), "*.proxy-" + region_id + "." + suffix(),
            "*.endpoint.proxy-" + region_id + "." + suffix()};
  }
};

}  // namespace sluice::cloud
