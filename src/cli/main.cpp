// `sluice`: the control plane's command line. `sluice serve` runs the local region.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>

#include "cli/apply.hpp"
#include "cli/service_command.hpp"
#include "cloud/control_plane.hpp"
#include "cloud/server.hpp"
#include "common/http_client.hpp"
#include "functions/function_host.hpp"

namespace {

std::string default_home() {
  if (const char* home = std::getenv("SLUICE_HOME"); home && *home) return home;
  if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data)
    return std::string(data) + "/sluice";
  const char* user_home = std::getenv("HOME");
  return std::string(user_home && *user_home ? user_home : ".") + "/.local/share/sluice";
}

struct FunctionOptions {
  std::string user = "nobody";
  std::string cgroup_root = "/sys/fs/cgroup";
  double event_retry_seconds = 60;
};

int serve(const std::string& home, const std::string& listen,
          sluice::cloud::ControlPlaneOptions options, const FunctionOptions& functions) {
  namespace asio = boost::asio;
  ::umask(077);  // the key, the state and everything else here: the owner's alone
  std::filesystem::create_directories(home);
  // Passable but not listable: the function user reaches its own folders under functions-runtime.
  ::chmod(home.c_str(), 0711);
  // Every execution environment holds a few descriptors (listener, pipe, pidfd, connections).
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    spdlog::error("--listen must be HOST:PORT, not \"{}\"", listen);
    return 2;
  }
  boost::system::error_code error;
  const auto address = asio::ip::make_address(listen.substr(0, colon), error);
  const int port = std::atoi(listen.c_str() + colon + 1);
  if (error || port < 0 || port > 65535) {
    spdlog::error("--listen must be HOST:PORT with an IP address, not \"{}\"", listen);
    return 2;
  }
  options.home = home;
  if (options.access_keys.empty()) options.access_keys = home + "/access-keys";
  if (options.proxy_binary.empty())
    options.proxy_binary =
        (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "sluice-proxy").string();
  sluice::cloud::ControlPlane plane(options);
  asio::io_context io;
  sluice::functions::FunctionHostOptions host_options;
  host_options.home = home;
  host_options.tag = plane.instance_tag();
  host_options.account_concurrency = options.account_concurrency;
  host_options.idle_timeout = std::chrono::seconds(options.function_idle_seconds);
  host_options.user = functions.user;
  host_options.cgroup_root = functions.cgroup_root;
  host_options.event_retry_delay =
      std::chrono::milliseconds(static_cast<int64_t>(functions.event_retry_seconds * 1000));
  sluice::functions::FunctionHost host(io, plane, host_options);
  sluice::cloud::ApiServer server(io, {address, static_cast<unsigned short>(port)},
                                  [&](sluice::cloud::ApiRequest& r) { return host.handle(r); });
  server.start();
  // Resources move along (creating -> available) and their processes are kept running here.
  asio::steady_timer ticker(io);
  std::function<void()> tick = [&] {
    try {
      plane.tick();
      host.tick();
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
    }
    ticker.expires_after(std::chrono::milliseconds(250));
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  };
  tick();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int signal) {
    spdlog::info("signal {}: stopping", signal);
    server.stop();
    ticker.cancel();
    host.shutdown();
    plane.shutdown();
    io.stop();
  });
  spdlog::info("sluice serve: API on http://{}:{}, state in {}", address.to_string(), server.port(),
               home);
  io.run();
  spdlog::info("sluice serve stopped");
  return 0;
}

int exec_in_interface(const std::string& endpoint_url, const std::string& interface_id,
                      const std::vector<std::string>& command) {
  const auto result = sluice::cli::http_request(
      endpoint_url, "GET", std::string(sluice::cloud::ControlPlane::kInterfacePath) + interface_id);
  boost::system::error_code ec;
  const auto parsed = boost::json::parse(result.body, ec);
  if (result.status != 200 || ec || !parsed.is_object() ||
      !parsed.as_object().contains("Namespace")) {
    const auto* message =
        !ec && parsed.is_object() ? parsed.as_object().if_contains("Message") : nullptr;
    spdlog::error("cannot run in {}: {}", interface_id,
                  message && message->is_string() ? std::string(message->as_string())
                                                  : "HTTP " + std::to_string(result.status));
    return 1;
  }
  // `ip netns exec` also mounts the interface's /etc/hosts (its VPC's endpoint names).
  std::vector<std::string> argv{"ip", "netns", "exec",
                                std::string(parsed.as_object().at("Namespace").as_string())};
  argv.insert(argv.end(), command.begin(), command.end());
  std::vector<char*> pointers;
  for (auto& a : argv) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  ::execvp("ip", pointers.data());
  spdlog::error("cannot run ip: {}", std::strerror(errno));
  return 127;
}

int print_ca_bundle(const std::string& endpoint_url) {
  const auto result = sluice::cli::http_request(
      endpoint_url, "GET", std::string(sluice::cloud::ControlPlane::kCaBundlePath));
  if (result.status != 200) {
    spdlog::error("the API at {} answered {} for the CA bundle", endpoint_url, result.status);
    return 1;
  }
  std::fwrite(result.body.data(), 1, result.body.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // `sluice rds describe-db-proxies …`: the aws CLI's commands, read from the service models.
  if (auto invocation = sluice::cli::service_invocation(argc, argv))
    return sluice::cli::run_service_command(*invocation);
  CLI::App app{"sluice: a local AWS region where RDS Proxy, Aurora Serverless and Lambda are real"};
  app.footer(sluice::cli::services_help());
  if (argc == 2 && std::string(argv[1]) == "help") {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  app.require_subcommand(1);
  std::string home = default_home();
  std::string listen = "127.0.0.1:4566";
  sluice::cloud::ControlPlaneOptions options;
  auto* serve_command = app.add_subcommand("serve", "run the API and the resources behind it");
  serve_command->add_option("--home", home,
                            "state folder (default $SLUICE_HOME, else ~/.local/share/sluice)");
  serve_command->add_option("--listen", listen, "HOST:PORT of the AWS-compatible API")
      ->capture_default_str();
  serve_command->add_option("--account-id", options.account_id, "account in ARNs")
      ->capture_default_str();
  serve_command->add_flag("--strict-auth", options.strict_auth,
                          "verify SigV4 signatures against the access keys (default: accept any)");
  serve_command->add_option(
      "--access-keys", options.access_keys,
      "file of \"ACCESS_KEY_ID SECRET\" lines for --strict-auth (default HOME/access-keys)");
  serve_command->add_option("--domain", options.domain, "endpoint names end in REGION.rds.DOMAIN")
      ->capture_default_str();
  serve_command
      ->add_option("--hosts-file", options.hosts_file,
                   "where endpoint names are published (\"\" to not publish them)")
      ->capture_default_str();
  serve_command->add_option(
      "--postgres-bin", options.postgres_bin,
      "PostgreSQL's bin folder (default: the newest /usr/lib/postgresql/N/bin)");
  std::string host_access = "on";
  serve_command
      ->add_option("--host-access", host_access,
                   "whether this machine may reach proxy endpoints whatever the security groups "
                   "say (on|off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  serve_command->add_option("--proxy-binary", options.proxy_binary,
                            "sluice-proxy to run (default: the one beside sluice)");
  FunctionOptions functions;
  serve_command
      ->add_option("--account-concurrency", options.account_concurrency,
                   "Lambda: concurrent executions the account may run")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve_command
      ->add_option("--function-idle-seconds", options.function_idle_seconds,
                   "Lambda: seconds an idle execution environment stays warm before it is "
                   "reclaimed")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve_command
      ->add_option("--function-user", functions.user,
                   "Lambda: the user functions run as when sluice serve runs as root")
      ->capture_default_str();
  serve_command
      ->add_option(
          "--cgroup-root", functions.cgroup_root,
          "Lambda: where the cgroup v1 freezer and memory controllers are mounted (without "
          "them functions freeze with SIGSTOP and have no memory limit)")
      ->capture_default_str();
  serve_command
      ->add_option("--event-retry-seconds", functions.event_retry_seconds,
                   "Lambda: asynchronous invocations that fail are retried after this, then "
                   "twice this")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  std::string endpoint_url;
  app.add_option("--endpoint-url", endpoint_url,
                 "the sluice API (default $SLUICE_ENDPOINT, else http://127.0.0.1:4566)");
  auto* ca_bundle_command =
      app.add_subcommand("ca-bundle", "print the CA bundle for sslmode=verify-full (sslrootcert)");
  std::string stack_file;
  auto* apply_command = app.add_subcommand(
      "apply",
      "create a declarative stack (TOML): VPC, subnets, security groups, roles, secrets, "
      "clusters, functions");
  apply_command->add_option("FILE", stack_file, "the stack, e.g. examples/meal-planner/stack.toml")
      ->required();
  std::string interface_id;
  std::vector<std::string> command;
  auto* exec_command = app.add_subcommand(
      "exec",
      "run a command inside a network interface of a VPC (as root), e.g. psql as a "
      "member of its security groups");
  exec_command->add_option("--network-interface-id", interface_id, "eni-…")->required();
  exec_command->add_option("command", command, "the command and its arguments")->required();
  CLI11_PARSE(app, argc, argv);
  if (endpoint_url.empty()) {
    const char* from_env = std::getenv("SLUICE_ENDPOINT");
    endpoint_url = from_env && *from_env ? from_env : "http://127.0.0.1:4566";
  }
  spdlog::set_default_logger(spdlog::stderr_color_st("sluice"));  // logs on stderr, as sluice-proxy
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  try {
    options.host_access = host_access == "on";
    if (serve_command->parsed()) return serve(home, listen, options, functions);
    if (exec_command->parsed()) return exec_in_interface(endpoint_url, interface_id, command);
    if (ca_bundle_command->parsed()) return print_ca_bundle(endpoint_url);
    if (apply_command->parsed()) return sluice::cli::apply_stack(stack_file, endpoint_url);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
