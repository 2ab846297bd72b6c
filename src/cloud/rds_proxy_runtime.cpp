// RDS Proxy's runtime: the running sluice-proxy behind each proxy (its configuration, secrets and
// admission rules, supervised), the network interfaces of proxies and their clients, and the
// target health the proxies report. The API actions are in rds_proxy.cpp.
#include "cloud/rds_proxy.hpp"

#include "cloud/sockets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cloud/ids.hpp"
#include "cloud/json_fields.hpp"
#include "cloud/rds.hpp"
#include "proxy/secrets.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace fs = std::filesystem;
namespace {

void write_if_changed(const std::string& path, const std::string& content, bool& changed) {
  std::ifstream in(path);
  std::stringstream current;
  if (in) current << in.rdbuf();
  if (in && current.str() == content) return;
  std::ofstream out(path, std::ios::trunc);
  out << content;
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
  changed = true;
}

}  // namespace

std::string render_proxy_config(const ProxyRuntime& r) {
  toml::table root;
  root.insert("name", r.name);
  if (r.listen.size() == 1) {
    root.insert("listen", r.listen.front());
  } else {
    toml::array listen;
    for (const auto& l : r.listen) listen.push_back(l);
    root.insert("listen", listen);
  }
  root.insert("require_tls", r.require_tls);
  root.insert("idle_client_timeout", r.idle_client_timeout);
  root.insert("debug_logging", r.debug_logging);
  root.insert("tls", toml::table{{"cert_file", r.cert_file}, {"key_file", r.key_file}});
  toml::array auth;
  for (const auto& [file, type] : r.auth)
    auth.push_back(toml::table{{"secret_file", file}, {"client_password_auth_type", type}});
  root.insert("auth", auth);
  // TLS to the database without verification, as RDS Proxy does to its targets.
  root.insert("target", toml::table{{"host", r.target_host},
                                    {"port", r.target_port},
                                    {"tls", "require"},
                                    {"health_check_interval", r.health_check_interval}});
  toml::table pool{{"max_connections_percent", r.max_connections_percent},
                   {"max_idle_connections_percent", r.max_idle_connections_percent},
                   {"connection_borrow_timeout", r.connection_borrow_timeout}};
  if (!r.init_query.empty()) pool.insert("init_query", r.init_query);
  root.insert("connection_pool", pool);
  root.insert("metrics", toml::table{{"listen", r.metrics_listen}});
  if (!r.admission_file.empty()) root.insert("admission", toml::table{{"file", r.admission_file}});
  std::ostringstream out;
  out << "# Written by sluice serve from the proxy's settings; changes here are overwritten.\n"
      << root << "\n";
  return out.str();
}

std::optional<TargetHealthReport> parse_proxy_targets(std::string_view body) {
  boost::system::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) return std::nullopt;
  const auto* targets = doc.as_object().if_contains("targets");
  if (!targets || !targets->is_array() || targets->as_array().empty() ||
      !targets->as_array().front().is_object())
    return std::nullopt;
  const json::object& t = targets->as_array().front().as_object();
  TargetHealthReport report;
  report.state = text(t, "state");
  report.reason = text(t, "reason");
  report.description = text(t, "description");
  if (report.state != "AVAILABLE" && report.state != "UNAVAILABLE" && report.state != "REGISTERING")
    return std::nullopt;
  return report;
}

// ---- the running proxies ----

std::string RdsProxies::prepare_secrets(const json::object& p, const std::string& dir,
                                        std::vector<std::pair<std::string, std::string>>& auth,
                                        bool& changed) {
  std::string problems;
  const std::string role = text(p, "RoleArn");
  int n = 0;
  for (const auto& a : p.at("Auth").as_array()) {
    const json::object& entry = a.as_object();
    const std::string arn = text(entry, "SecretArn");
    std::string why;
    std::string problem;
    if (env_.iam.evaluate(role, "secretsmanager:GetSecretValue", arn, &why) != Decision::kAllow) {
      problem = "The proxy's role " + role + " may not call secretsmanager:GetSecretValue on " +
                arn + ": " + why;
    } else if (auto value = env_.secrets.current_string(arn); !value) {
      problem = "The secret " + arn +
                " does not exist, is scheduled for deletion or has no "
                "SecretString.";
    } else {
      std::string user, password, error;
      if (!proxy::parse_secret_json(*value, user, password, error)) {
        problem = "The secret " + arn + " " + error +
                  " (it must hold {\"username\": …, \"password\": …}).";
      } else {
        const std::string file = dir + "/secret-" + std::to_string(n++) + ".json";
        write_if_changed(file, *value, changed);
        auth.emplace_back(file, text(entry, "ClientPasswordAuthType"));
      }
    }
    if (!problem.empty()) problems += (problems.empty() ? "" : " ") + problem;
  }
  return problems;
}

void RdsProxies::reconcile_proxy(json::object& p) {
  const std::string name = text(p, "DBProxyName");
  const std::string process = "proxy:" + name;
  const std::string dir = dir_of(name);
  fs::create_directories(dir);
  std::vector<std::pair<std::string, std::string>> auth;
  bool changed = false;  // the proxy reads its files once: a change means a restart
  credential_problems_[name] = prepare_secrets(p, dir, auth, changed);
  const auto writer = rds_.writer(text(p, "TargetCluster"));
  const bool should_run = !auth.empty() && writer && !writer->instance_id.empty();
  if (!should_run) {
    env_.supervisor.stop(process);
    reported_.erase(name);
  } else {
    ProxyRuntime runtime;
    runtime.name = name;
    runtime.listen.push_back(text(p, "Address") + ":" + std::to_string(kProxyPort));
    auto endpoints = endpoints_of(name);
    for (const auto& e : endpoints)
      runtime.listen.push_back(text(e, "Address") + ":" + std::to_string(kProxyPort));
    const std::vector<std::string> host_listeners = runtime.listen;
    // In the VPC: a socket on each endpoint's interface address, opened by us in the VPC's
    // namespace and inherited by the proxy as descriptors 3, 4, …
    std::vector<int> inherited;
    std::vector<VpcListener> vpc_listeners;
    if (env_.vpc_network) {
      const auto eni = interface_of(p, kProxy, "RDS Proxy " + name);
      inherited.push_back(env_.vpc_network->listener(eni.vpc_id, eni.ip, kProxyPort));
      vpc_listeners.push_back({"fd:3", eni.ip, strings_of(p, "VpcSecurityGroupIds")});
      for (auto& e : endpoints) {
        const auto endpoint_eni =
            interface_of(e, kEndpoint, "RDS Proxy endpoint " + text(e, "DBProxyEndpointName"));
        inherited.push_back(
            env_.vpc_network->listener(endpoint_eni.vpc_id, endpoint_eni.ip, kProxyPort));
        vpc_listeners.push_back({"fd:" + std::to_string(2 + inherited.size()), endpoint_eni.ip,
                                 strings_of(e, "VpcSecurityGroupIds")});
      }
      for (const auto& listener : vpc_listeners) runtime.listen.push_back(listener.label);
    }
    runtime.admission_file = dir + "/admission";
    bool rules_changed = false;  // the proxy re-reads its rules by itself
    write_if_changed(runtime.admission_file,
                     admission_rules(vpc_listeners, host_listeners, text(p, "VpcId")),
                     rules_changed);
    runtime.require_tls = flag(p, "RequireTLS");
    runtime.idle_client_timeout = static_cast<int>(whole(p, "IdleClientTimeout", 1800));
    runtime.debug_logging = flag(p, "DebugLogging");
    std::tie(runtime.cert_file, runtime.key_file) = rds_.certificate(text(p, "Region"));
    runtime.auth = auth;
    runtime.target_host = writer->address;
    runtime.target_port = writer->port;
    runtime.max_connections_percent = static_cast<int>(whole(p, "MaxConnectionsPercent", 100));
    runtime.max_idle_connections_percent =
        static_cast<int>(whole(p, "MaxIdleConnectionsPercent", 50));
    runtime.connection_borrow_timeout = static_cast<int>(whole(p, "ConnectionBorrowTimeout", 120));
    runtime.init_query = text(p, "InitQuery");
    runtime.metrics_listen = "127.0.0.1:" + std::to_string(whole(p, "MetricsPort"));
    const std::string config = dir + "/proxy.toml";
    write_if_changed(config, render_proxy_config(runtime), changed);
    if (changed) {
      env_.supervisor.stop(process);  // a new configuration: start over with it
      reported_.erase(name);
    }
    ProcessSpec spec;
    spec.argv = {env_.proxy_binary, "--config", config};
    spec.log_file = dir + "/proxy.log";
    spec.stop_order = 0;
    spec.inherit_fds = inherited;
    env_.supervisor.ensure(process, spec);
    // What the running proxy says about its target, at most once a second.
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_check_[name]) {
      next_check_[name] = now + std::chrono::seconds(1);
      if (auto body = local_http_get(static_cast<int>(whole(p, "MetricsPort")), "/targets", 500))
        if (auto report = parse_proxy_targets(*body)) reported_[name] = *report;
    }
  }
  const bool listening = !should_run || accepts_connections(text(p, "Address"), kProxyPort);
  if (text(p, "Status") == "creating" && listening) {
    p["Status"] = "available";
    save(p);
    spdlog::info("DB proxy {} available", name);
  }
  for (auto& e : endpoints_of(name))
    if (text(e, "Status") == "creating" && listening) {
      e["Status"] = "available";
      env_.store.put(kEndpoint, text(e, "DBProxyEndpointName"), json::serialize(e));
    }
}

Ec2::NetworkInterface RdsProxies::interface_of(json::object& resource, std::string_view kind,
                                               const std::string& description) {
  if (auto eni = env_.ec2.interface(text(resource, "NetworkInterfaceId"))) return *eni;
  const auto subnets = strings_of(resource, "VpcSubnetIds");
  const auto eni =
      env_.ec2.create_interface(subnets.at(0), strings_of(resource, "VpcSecurityGroupIds"),
                                description, /*requester_managed=*/true);
  resource["NetworkInterfaceId"] = eni.id;
  const std::string id = text(resource, kind == kProxy ? "DBProxyName" : "DBProxyEndpointName");
  env_.store.put(kind, id, json::serialize(resource));
  return eni;
}

std::string RdsProxies::admission_rules(const std::vector<VpcListener>& vpc_listeners,
                                        const std::vector<std::string>& host_listeners,
                                        const std::string& vpc_id) {
  std::string rules = "# Written by sluice serve from the security groups; re-read on change.\n";
  if (env_.host_access)
    for (const auto& listener : host_listeners) rules += listener + " *\n";
  // Both directions, as in a VPC: the proxy's groups admit the client, and the client's groups
  // let the connection out.
  for (const auto& listener : vpc_listeners)
    for (const auto& source :
         env_.ec2.admitted_sources(vpc_id, listener.groups, listener.address, kProxyPort))
      rules += listener.label + " " + source + "/32\n";
  return rules;
}

void RdsProxies::reconcile_interfaces(const std::map<std::string, HostsEntries>& extra_names) {
  if (!env_.vpc_network) return;
  // Inside a VPC, endpoint names resolve to the endpoints' interface addresses.
  std::map<std::string, HostsEntries> names_by_vpc = extra_names;
  for (const auto& [id, doc] : env_.store.list(kProxy)) {
    const json::value parsed = json::parse(doc);
    const json::object& p = parsed.as_object();
    if (auto eni = env_.ec2.interface(text(p, "NetworkInterfaceId")))
      names_by_vpc[eni->vpc_id].emplace_back(eni->ip, rds_.names(text(p, "Region")).proxy(id));
  }
  for (const auto& [id, doc] : env_.store.list(kEndpoint)) {
    const json::value parsed = json::parse(doc);
    const json::object& e = parsed.as_object();
    if (auto eni = env_.ec2.interface(text(e, "NetworkInterfaceId")))
      names_by_vpc[eni->vpc_id].emplace_back(eni->ip,
                                             rds_.names(text(e, "Region")).proxy_endpoint(id));
  }
  std::set<std::string> present;
  for (const auto& eni : env_.ec2.interfaces()) {
    if (!eni.is_client()) continue;  // a service's interface is a listener, not a namespace
    present.insert(eni.id);
    try {
      env_.vpc_network->ensure_interface(eni, names_by_vpc[eni.vpc_id]);
    } catch (const std::exception& e) {
      spdlog::error("network interface {}: {}", eni.id, e.what());
    }
  }
  for (const auto& id : env_.vpc_network->interfaces())
    if (!present.contains(id)) env_.vpc_network->remove_interface(id);
}

void RdsProxies::reconcile() {
  for (const auto& [id, doc] : env_.store.list(kProxy)) {
    json::object p = json::parse(doc).as_object();
    try {
      reconcile_proxy(p);
    } catch (const std::exception& e) {
      spdlog::error("DB proxy {}: {}", id, e.what());
    }
  }
}

}  // namespace sluice::cloud
