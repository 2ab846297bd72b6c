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
#include <algorithm>
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
  for (const auto& reason : r.unavailable)
    auth.push_back(toml::table{{"unavailable_reason", reason}});
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

std::optional<std::string> render_secret_file(
    const std::vector<SecretsManager::StagedString>& versions) {
  const SecretsManager::StagedString* current = nullptr;
  json::array staged;
  for (const auto& v : versions) {
    json::array stages;
    for (const auto& stage : v.stages)
      if (stage == "AWSCURRENT" || stage == "AWSPENDING" || stage == "AWSPREVIOUS")
        stages.emplace_back(stage);
    if (stages.empty()) continue;  // other labels mean nothing to the proxy
    const bool is_current =
        std::find(v.stages.begin(), v.stages.end(), "AWSCURRENT") != v.stages.end();
    if (is_current) current = &v;
    json::object entry{{"version_id", v.version_id},
                       {"stages", stages},
                       {"secret_string", v.secret_string},
                       {"created", v.created}};
    if (!is_current && v.demoted) entry["demoted"] = *v.demoted;
    staged.push_back(entry);
  }
  if (!current) return std::nullopt;
  if (staged.size() == 1) return current->secret_string;
  // A previous version demoted before such times were recorded: since the current one exists.
  for (auto& entry : staged) {
    json::object& e = entry.as_object();
    const auto& stages = e.at("stages").as_array();
    if (std::find(stages.begin(), stages.end(), json::value("AWSPREVIOUS")) != stages.end() &&
        !e.contains("demoted") &&
        std::find(stages.begin(), stages.end(), json::value("AWSCURRENT")) == stages.end())
      e["demoted"] = current->created;
  }
  return json::serialize(json::object{{"versions", staged}}) + "\n";
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

std::string RdsProxies::prepare_secrets(const ProxyRecord& p, const std::string& dir,
                                        std::vector<std::pair<std::string, std::string>>& auth,
                                        std::vector<std::string>& unavailable, bool& changed) {
  std::string problems;
  int n = 0;
  for (const auto& entry : p.auth) {
    const std::string& arn = entry.secret_arn;
    std::string why;
    std::string problem;
    if (env_.iam.evaluate(p.role_arn, "secretsmanager:GetSecretValue", arn, &why) !=
        Decision::kAllow) {
      problem = "The proxy's role " + p.role_arn +
                " may not call secretsmanager:GetSecretValue on " + arn + ": " + why;
    } else if (auto file_text = render_secret_file(env_.secrets.staged_strings(arn)); !file_text) {
      problem = "The secret " + arn +
                " does not exist, is scheduled for deletion or has no "
                "SecretString.";
    } else {
      // Staged versions during a rotation (AWSCURRENT, AWSPENDING, AWSPREVIOUS): the proxy
      // takes whichever the database accepts.
      proxy::SecretFileContents contents;
      std::string error;
      if (!proxy::parse_secret_file(*file_text, contents, error)) {
        problem = "The secret " + arn + " " + error +
                  " (it must hold {\"username\": …, \"password\": …}).";
      } else {
        const std::string file = dir + "/secret-" + std::to_string(n++) + ".json";
        write_if_changed(file, *file_text, changed);
        auth.emplace_back(file, entry.client_password_auth_type);
      }
    }
    if (!problem.empty()) {
      problems += (problems.empty() ? "" : " ") + problem;
      unavailable.push_back(problem);
    }
  }
  return problems;
}

void RdsProxies::reconcile_proxy(ProxyRecord& p) {
  const std::string& name = p.name;
  fs::create_directories(dir_of(name));
  std::vector<std::pair<std::string, std::string>> auth;
  std::vector<std::string> unavailable;
  bool changed = false;  // a changed file is reloaded (SIGHUP)
  credential_problems_[name] = prepare_secrets(p, dir_of(name), auth, unavailable, changed);
  const auto writer = rds_.writer(p.target_group.target_cluster);
  // A proxy whose secrets cannot be read runs all the same: it answers logins with the cause.
  const bool should_run = !p.auth.empty() && writer && !writer->instance_id.empty();
  if (should_run) {
    run_proxy(p, *writer, auth, unavailable, changed);
  } else {
    env_.supervisor.stop("proxy:" + name);
    forget_report(name);
  }
  bool creating = p.status == "creating";
  for (const auto& e : endpoints_of(name)) creating = creating || e.status == "creating";
  if (!creating) return;
  if (should_run)
    probe_listening(name, p.address);
  else
    mark_available(name);  // no process to wait for
}

void RdsProxies::run_proxy(ProxyRecord& p, const ClusterWriter& writer,
                           const std::vector<std::pair<std::string, std::string>>& auth,
                           const std::vector<std::string>& unavailable, bool changed) {
  const std::string process = "proxy:" + p.name;
  const std::string dir = dir_of(p.name);
  ProxyRuntime runtime;
  runtime.name = p.name;
  runtime.listen.push_back(p.address + ":" + std::to_string(kProxyPort));
  auto endpoints = endpoints_of(p.name);
  for (const auto& e : endpoints)
    runtime.listen.push_back(e.address + ":" + std::to_string(kProxyPort));
  const std::vector<std::string> host_listeners = runtime.listen;
  const std::vector<VpcListener> in_vpc = vpc_listeners(p, endpoints);
  for (const auto& listener : in_vpc) runtime.listen.push_back(listener.label);
  runtime.admission_file = dir + "/admission";
  bool rules_changed = false;  // the proxy re-reads its rules by itself
  write_if_changed(runtime.admission_file, admission_rules(in_vpc, host_listeners, p.vpc_id),
                   rules_changed);
  runtime.require_tls = p.require_tls;
  runtime.idle_client_timeout = static_cast<int>(p.idle_client_timeout);
  runtime.debug_logging = p.debug_logging;
  std::tie(runtime.cert_file, runtime.key_file) = rds_.certificate(p.region);
  runtime.auth = auth;
  runtime.unavailable = unavailable;
  runtime.target_host = writer.address;
  runtime.target_port = writer.port;
  const TargetGroupRecord& g = p.target_group;
  runtime.max_connections_percent = static_cast<int>(g.max_connections_percent);
  runtime.max_idle_connections_percent = static_cast<int>(g.max_idle_connections_percent);
  runtime.connection_borrow_timeout = static_cast<int>(g.connection_borrow_timeout);
  runtime.init_query = g.init_query;
  runtime.metrics_listen = "127.0.0.1:" + std::to_string(p.metrics_port);
  const std::string config = dir + "/proxy.toml";
  write_if_changed(config, render_proxy_config(runtime), changed);
  ProcessSpec spec;
  spec.argv = {env_.proxy_binary, "--config", config};
  spec.log_file = dir + "/proxy.log";
  spec.stop_order = 0;
  // A new configuration or secret is reloaded by the running proxy, as RDS Proxy applies
  // modifications: its clients keep their connections (new endpoints included: the proxy
  // opens their listening sockets itself).
  if (changed) {
    if (env_.supervisor.signal_if_running(process, spec, SIGHUP))
      spdlog::info("DB proxy {}: configuration reloaded", p.name);
    forget_report(p.name);
  }
  env_.supervisor.ensure(process, spec);
  probe_health(p.name, static_cast<int>(p.metrics_port));
}

std::vector<RdsProxies::VpcListener> RdsProxies::vpc_listeners(
    ProxyRecord& p, std::vector<ProxyEndpointRecord>& endpoints) {
  // In the VPC: the proxy listens on each endpoint's interface address inside the VPC's
  // namespace (netns:NAME/ADDRESS:5432), opening the sockets itself, so that a new endpoint is
  // one more listen address for a reload rather than a new process.
  std::vector<VpcListener> listeners;
  if (!env_.vpc_network) return listeners;
  auto listener = [&](const Ec2::NetworkInterface& eni, const std::vector<std::string>& groups) {
    const std::string ns = env_.vpc_network->listener_namespace(eni.vpc_id, eni.ip);
    listeners.push_back(
        {"netns:" + ns + "/" + eni.ip + ":" + std::to_string(kProxyPort), eni.ip, groups});
  };
  listener(interface_of(p), p.security_groups);
  for (auto& e : endpoints) listener(interface_of(e), e.security_groups);
  return listeners;
}

void RdsProxies::probe_health(const std::string& name, int metrics_port) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_[name] || !probing_.insert("health:" + name).second) return;
  next_check_[name] = now + std::chrono::seconds(1);
  const uint64_t epoch = report_epoch_[name];
  probes_.run<std::optional<TargetHealthReport>>(
      [metrics_port]() -> std::optional<TargetHealthReport> {
        const auto body = local_http_get(metrics_port, "/targets", 500);
        return body ? parse_proxy_targets(*body) : std::nullopt;
      },
      [this, name, epoch](std::optional<TargetHealthReport> report) {
        probing_.erase("health:" + name);
        if (report && report_epoch_[name] == epoch && env_.store.get(kProxy, name))
          reported_[name] = *report;
      });
}

void RdsProxies::probe_listening(const std::string& name, const std::string& address) {
  if (!probing_.insert("listening:" + name).second) return;
  probes_.run<bool>([address] { return accepts_connections(address, kProxyPort); },
                    [this, name](bool listening) {
                      probing_.erase("listening:" + name);
                      if (listening) mark_available(name);
                    });
}

void RdsProxies::mark_available(const std::string& name) {
  const auto doc = env_.store.get(kProxy, name);
  if (!doc) return;  // deleted while a probe ran
  ProxyRecord p = parse_record<ProxyRecord>(*doc);
  if (p.status == "creating") {
    p.status = "available";
    save(p);
    spdlog::info("DB proxy {} available", name);
  }
  for (auto& e : endpoints_of(name))
    if (e.status == "creating") {
      e.status = "available";
      save(e);
    }
}

void RdsProxies::forget_report(const std::string& name) {
  reported_.erase(name);
  report_epoch_[name] = ++report_epochs_;
}

Ec2::NetworkInterface RdsProxies::ensure_interface(std::string& id,
                                                   const std::vector<std::string>& subnets,
                                                   const std::vector<std::string>& groups,
                                                   const std::string& description) {
  if (auto eni = env_.ec2.interface(id)) return *eni;
  const auto eni =
      env_.ec2.create_interface(subnets.at(0), groups, description, /*requester_managed=*/true);
  id = eni.id;
  return eni;
}

Ec2::NetworkInterface RdsProxies::interface_of(ProxyRecord& p) {
  const std::string before = p.network_interface_id;
  const auto eni =
      ensure_interface(p.network_interface_id, p.subnets, p.security_groups, "RDS Proxy " + p.name);
  if (p.network_interface_id != before) save(p);
  return eni;
}

Ec2::NetworkInterface RdsProxies::interface_of(ProxyEndpointRecord& e) {
  const std::string before = e.network_interface_id;
  const auto eni = ensure_interface(e.network_interface_id, e.subnets, e.security_groups,
                                    "RDS Proxy endpoint " + e.name);
  if (e.network_interface_id != before) save(e);
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
  for (const auto& p : proxies())
    if (auto eni = env_.ec2.interface(p.network_interface_id))
      names_by_vpc[eni->vpc_id].emplace_back(eni->ip, rds_.names(p.region).proxy(p.name));
  for (const auto& e : endpoints())
    if (auto eni = env_.ec2.interface(e.network_interface_id))
      names_by_vpc[eni->vpc_id].emplace_back(eni->ip, rds_.names(e.region).proxy_endpoint(e.name));
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
  probes_.deliver();  // what the probes found since the last tick
  for (const auto& [id, doc] : env_.store.list(kProxy)) {
    try {
      ProxyRecord p = parse_record<ProxyRecord>(doc);
      reconcile_proxy(p);
    } catch (const std::exception& e) {
      spdlog::error("DB proxy {}: {}", id, e.what());
    }
  }
}

}  // namespace sluice::cloud
