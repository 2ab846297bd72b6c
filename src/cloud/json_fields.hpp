// Reading the control plane's stored JSON documents: absent or mistyped fields read as empty.
// Resources with typed records (records.hpp: proxies, clusters, instances, VPCs, subnets,
// security groups, network interfaces, functions) are read there instead, where a missing
// required key is an error.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cloud {

inline std::string text(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

inline bool flag(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

inline int64_t whole(const boost::json::object& o, std::string_view key, int64_t otherwise = 0) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<int64_t>() : otherwise;
}

inline double decimal(const boost::json::object& o, std::string_view key, double otherwise = 0) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<double>() : otherwise;
}

inline boost::json::array strings(const std::vector<std::string>& values) {
  boost::json::array out;
  for (const auto& v : values) out.emplace_back(v);
  return out;
}

// A stored list of strings (anything else in it is skipped).
inline std::vector<std::string> strings_of(const boost::json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const auto* a = o.if_contains(key); a && a->is_array())
    for (const auto& v : a->as_array())
      if (v.is_string()) out.emplace_back(v.as_string());
  return out;
}

}  // namespace sluice::cloud
