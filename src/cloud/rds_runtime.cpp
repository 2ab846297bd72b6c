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
#include "cloud/json_fields.hpp"
#include "cloud/rds_proxy.hpp"

namespace sluice::cloud {
namespace json = boost::json;
namespace fs = std::filesystem;
namespace {

// Sealed under the region's key, bound to the cluster's ARN.
std::string master_password(const SealingKey& key, const json::object& c) {
  const auto sealed = auth::base64_decode(text(c, "MasterPassword"));
  const auto password = sealed ? key.open(*sealed, text(c, "DBClusterArn")) : std::nullopt;
  if (!password) throw std::runtime_error("the master password does not open");
  return *password;
}

}  // namespace

void Rds::reconcile_interfaces() {
  std::map<std::string, HostsEntries> cluster_names;
  for (const auto& [id, doc] : env_.store.list(kCluster)) {
    const json::value parsed = json::parse(doc);
    cluster_endpoints_->add_names(parsed.as_object(), names(text(parsed.as_object(), "Region")),
                                  cluster_names);
  }
  proxies_->reconcile_interfaces(cluster_names);
}

void Rds::reconcile() {
  if (starting_) {
    // Processes do not outlive sluice serve: whatever was available is starting again.
    for (auto& [id, doc] : env_.store.list(kInstance)) {
      json::object i = json::parse(doc).as_object();
      const std::string status = text(i, "DBInstanceStatus");
      if (status == "available" || status == "rebooting") {
        i["DBInstanceStatus"] = "starting";
        save(kInstance, i);
      }
    }
    starting_ = false;
  }
  for (auto& [id, doc] : env_.store.list(kCluster)) {
    json::object c = json::parse(doc).as_object();
    try {
      reconcile_cluster(c);
    } catch (const std::exception& e) {
      spdlog::error("DB cluster {}: {}", id, e.what());
      c["Status"] = "failed";
      save(kCluster, c);
      continue;
    }
    try {
      if (cluster_endpoints_->reconcile(c)) save(kCluster, c);
    } catch (const std::exception& e) {
      spdlog::error("DB cluster {} endpoint in its VPC: {}", id, e.what());
    }
  }
  for (auto& [id, doc] : env_.store.list(kInstance)) {
    json::object i = json::parse(doc).as_object();
    try {
      reconcile_instance(i);
    } catch (const std::exception& e) {
      spdlog::error("DB instance {}: {}", id, e.what());
      i["DBInstanceStatus"] = "failed";
      save(kInstance, i);
    }
  }
  reconcile_interfaces();
  proxies_->reconcile();
  publish_names();
}

void Rds::reconcile_cluster(json::object& c) {
  if (text(c, "Status") != "creating") return;
  const std::string id = text(c, "DBClusterIdentifier");
  const std::string task = "initdb:" + id;
  const ClusterFiles files = files_of(id);
  const Supervisor::Status status = env_.supervisor.status(task);
  if (status.state == Supervisor::State::kAbsent) {
    const auto password = master_password(env_.key, c);
    std::error_code ec;
    fs::remove_all(files.dir, ec);  // a previous attempt's leftovers
    engine().prepare(files, password);
    env_.supervisor.ensure(task, engine().initdb(files, text(c, "MasterUsername")));
    return;
  }
  if (status.state != Supervisor::State::kExited) return;
  env_.supervisor.forget(task);
  if (status.exit_code != 0)
    throw std::runtime_error("initdb exited with " + std::to_string(status.exit_code) + " (see " +
                             files.dir + "/initdb.log)");
  const auto [cert, key] = certificate(text(c, "Region"));
  engine().finish_initdb(files, cert, key);
  c["Status"] = "available";
  save(kCluster, c);
  spdlog::info("DB cluster {} available", id);
}

void Rds::reconcile_instance(json::object& i) {
  const std::string status = text(i, "DBInstanceStatus");
  if (status == "failed" || status == "deleting") return;
  const std::string cluster_id = text(i, "DBClusterIdentifier");
  auto cdoc = env_.store.get(kCluster, cluster_id);
  if (!cdoc) return;
  json::object c = json::parse(*cdoc).as_object();
  if (text(c, "Status") != "available") return;
  const ClusterFiles files = files_of(cluster_id);
  const std::string server = "postgres:" + cluster_id;
  PostgresSettings settings{text(c, "Address"), static_cast<int>(whole(c, "Port", 5432)),
                            static_cast<int>(whole(i, "MaxConnections", 189))};
  const auto [cert, key] = certificate(text(c, "Region"));
  if (env_.supervisor.status(server).state == Supervisor::State::kAbsent)
    engine().install_certificate(files, cert, key);  // names may have changed since
  env_.supervisor.ensure(server, engine().server(files, settings));
  const bool ready = env_.supervisor.status(server).state == Supervisor::State::kRunning &&
                     postgres_ready(files.data());
  std::string next = status;
  bool database_created = false;
  if (!ready) {
    if (status == "available") next = "rebooting";
  } else if (!flag(i, "DatabaseCreated")) {
    const std::string task = "createdb:" + cluster_id;
    const Supervisor::Status created = env_.supervisor.status(task);
    if (created.state == Supervisor::State::kAbsent) {
      const auto password = master_password(env_.key, c);
      env_.supervisor.ensure(
          task, engine().create_database(files, settings.port, text(c, "MasterUsername"), password,
                                         text(c, "DatabaseName")));
    } else if (created.state == Supervisor::State::kExited) {
      env_.supervisor.forget(task);
      if (created.exit_code != 0)
        throw std::runtime_error("createdb exited with " + std::to_string(created.exit_code) +
                                 " (see " + files.dir + "/createdb.log)");
      i["DatabaseCreated"] = true;
      database_created = true;
      next = "available";
    }
  } else {
    next = "available";
  }
  if (next != status || database_created) {
    i["DBInstanceStatus"] = next;
    save(kInstance, i);
    if (next != status) spdlog::info("DB instance {} {}", text(i, "DBInstanceIdentifier"), next);
  }
}

void Rds::publish_names() {
  HostsEntries entries;
  for (const auto& [id, doc] : env_.store.list(kCluster)) {
    const json::value parsed = json::parse(doc);
    const json::object& c = parsed.as_object();
    const RdsNames n = names(text(c, "Region"));
    const std::string address = text(c, "Address");
    entries.emplace_back(address, n.cluster(id));
    entries.emplace_back(address, n.cluster_reader(id));
    if (!text(c, "WriterInstance").empty())
      entries.emplace_back(address, n.instance(text(c, "WriterInstance")));
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
