// RDS's runtime: clusters and instances as processes (initdb, PostgreSQL, createdb, supervised),
// their endpoints inside VPCs, and the names published for them. The API actions are in rds.cpp.
#include "cloud/rds.hpp"

#include "cloud/cluster_endpoints.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cmath>
#include <filesystem>

#include "auth/crypto.hpp"
#include "cloud/ids.hpp"
#include "cloud/rds_proxy.hpp"

namespace sluice::cloud {
namespace fs = std::filesystem;
namespace {

// Sealed under the region's key, bound to the cluster's ARN.
std::string master_password(const SealingKey& key, const ClusterRecord& c) {
  const auto sealed = auth::base64_decode(c.master_password);
  const auto password = sealed ? key.open(*sealed, c.arn) : std::nullopt;
  if (!password) throw std::runtime_error("the master password does not open");
  return *password;
}

}  // namespace

void Rds::reconcile_interfaces() {
  std::map<std::string, HostsEntries> cluster_names;
  for (const auto& c : clusters()) cluster_endpoints_->add_names(c, names(c.region), cluster_names);
  proxies_->reconcile_interfaces(cluster_names);
}

void Rds::reconcile() {
  if (starting_) {
    // Processes do not outlive sluice serve: whatever was available is starting again.
    for (auto& [id, doc] : env_.store.list(kInstance)) {
      InstanceRecord i = parse_record<InstanceRecord>(doc);
      if (i.status == "available" || i.status == "rebooting") {
        i.status = "starting";
        save(i);
      }
    }
    starting_ = false;
  }
  for (auto& [id, doc] : env_.store.list(kCluster)) {
    std::optional<ClusterRecord> c;
    try {
      c = parse_record<ClusterRecord>(doc);
      reconcile_cluster(*c);
    } catch (const std::exception& e) {
      spdlog::error("DB cluster {}: {}", id, e.what());
      if (!c) continue;  // a damaged record: nothing to mark failed
      c->status = "failed";
      save(*c);
      continue;
    }
    try {
      if (cluster_endpoints_->reconcile(*c)) save(*c);
    } catch (const std::exception& e) {
      spdlog::error("DB cluster {} endpoint in its VPC: {}", id, e.what());
    }
  }
  for (auto& [id, doc] : env_.store.list(kInstance)) {
    std::optional<InstanceRecord> i;
    try {
      i = parse_record<InstanceRecord>(doc);
      reconcile_instance(*i);
    } catch (const std::exception& e) {
      spdlog::error("DB instance {}: {}", id, e.what());
      if (!i) continue;
      i->status = "failed";
      save(*i);
    }
  }
  reconcile_interfaces();
  proxies_->reconcile();
  publish_names();
}

void Rds::reconcile_cluster(ClusterRecord& c) {
  if (c.status != "creating") return;
  const std::string task = "initdb:" + c.id;
  const ClusterFiles files = files_of(c.id);
  const Supervisor::Status status = env_.supervisor.status(task);
  if (status.state == Supervisor::State::kAbsent) {
    const auto password = master_password(env_.key, c);
    std::error_code ec;
    fs::remove_all(files.dir, ec);  // a previous attempt's leftovers
    engine().prepare(files, password);
    env_.supervisor.ensure(task, engine().initdb(files, c.master_username));
    return;
  }
  if (status.state != Supervisor::State::kExited) return;
  env_.supervisor.forget(task);
  if (status.exit_code != 0)
    throw std::runtime_error("initdb exited with " + std::to_string(status.exit_code) + " (see " +
                             files.dir + "/initdb.log)");
  const auto [cert, key] = certificate(c.region);
  engine().finish_initdb(files, cert, key);
  c.status = "available";
  save(c);
  spdlog::info("DB cluster {} available", c.id);
}

void Rds::reconcile_instance(InstanceRecord& i) {
  const std::string status = i.status;
  if (status == "failed" || status == "deleting") return;
  const auto c = find_cluster(i.cluster_id);
  if (!c || c->status != "available") return;
  const ClusterFiles files = files_of(c->id);
  const std::string server = "postgres:" + c->id;
  const PostgresSettings settings{c->address, static_cast<int>(c->port),
                                  static_cast<int>(i.max_connections)};
  const auto [cert, key] = certificate(c->region);
  if (env_.supervisor.status(server).state == Supervisor::State::kAbsent)
    engine().install_certificate(files, cert, key);  // names may have changed since
  env_.supervisor.ensure(server, engine().server(files, settings));
  const bool ready = env_.supervisor.status(server).state == Supervisor::State::kRunning &&
                     postgres_ready(files.data());
  std::string next = status;
  bool database_created = false;
  if (!ready) {
    if (status == "available") next = "rebooting";
  } else if (!i.database_created) {
    database_created = create_database(i, *c, settings.port);
    if (database_created) next = "available";
  } else {
    next = "available";
  }
  if (next != status || database_created) {
    i.status = next;
    save(i);
    if (next != status) spdlog::info("DB instance {} {}", i.id, next);
  }
}

bool Rds::create_database(InstanceRecord& i, const ClusterRecord& c, int port) {
  const ClusterFiles files = files_of(c.id);
  const std::string task = "createdb:" + c.id;
  const Supervisor::Status created = env_.supervisor.status(task);
  if (created.state == Supervisor::State::kAbsent) {
    const auto password = master_password(env_.key, c);
    env_.supervisor.ensure(
        task, engine().create_database(files, port, c.master_username, password, c.database_name));
    return false;
  }
  if (created.state != Supervisor::State::kExited) return false;
  env_.supervisor.forget(task);
  if (created.exit_code != 0)
    throw std::runtime_error("createdb exited with " + std::to_string(created.exit_code) +
                             " (see " + files.dir + "/createdb.log)");
  i.database_created = true;
  return true;
}

void Rds::publish_names() {
  HostsEntries entries;
  for (const auto& c : clusters()) {
    const RdsNames n = names(c.region);
    entries.emplace_back(c.address, n.cluster(c.id));
    entries.emplace_back(c.address, n.cluster_reader(c.id));
    if (!c.writer_instance.empty()) entries.emplace_back(c.address, n.instance(c.writer_instance));
  }
  for (auto& entry : proxies_->hosts_entries()) entries.push_back(std::move(entry));
  env_.network.publish(entries);
}

void Rds::shutdown() {
  cluster_endpoints_->shutdown();
  env_.supervisor.stop_all();
  env_.network.unpublish();
}

}  // namespace sluice::cloud
