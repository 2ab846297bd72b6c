// sluice-proxy: a TLS-only PostgreSQL proxy that multiplexes many short-lived clients over a
// small pool of server connections.
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "proxy/config.hpp"
#include "proxy/logging.hpp"
#include "proxy/proxy.hpp"
#include "tls/openssl_memory.hpp"

int main(int argc, char** argv) {
  // First of all: OpenSSL takes a new allocator only before its first allocation.
  const bool cached_openssl_memory = sluice::tls::use_cached_openssl_memory();
  CLI::App app{"sluice-proxy: a PostgreSQL connection pooler and TLS proxy"};
  std::string config_path;
  bool check_only = false;
  app.add_option("--config", config_path, "configuration file (TOML)")->required();
  app.add_flag("--check", check_only, "validate the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  sluice::proxy::configure_logging(sluice::proxy::LogFormat::kText);

  sluice::proxy::Config config;
  try {
    config = sluice::proxy::load_config(config_path);
    if (check_only) {
      // Secrets must load too: a config naming a missing secret file is not valid.
      sluice::proxy::SecretStore::load(config.auth);
      std::cout << config_path << ": valid\n";
      return 0;
    }
  } catch (const sluice::proxy::ConfigError& e) {
    std::cerr << config_path << ": invalid configuration: " << e.what() << "\n";
    return 2;
  }
  sluice::proxy::configure_logging(config.log_format);
  spdlog::set_level(!config.log_level.empty() ? *sluice::proxy::parse_log_level(config.log_level)
                    : config.debug_logging    ? spdlog::level::debug
                                              : spdlog::level::info);
  if (!cached_openssl_memory) spdlog::debug("OpenSSL allocates with malloc (no block cache)");
  std::signal(SIGPIPE, SIG_IGN);
  // Large blocks (a big message held whole) are mapped and unmapped on their own, so their memory
  // goes back when freed. A fixed threshold also stops glibc from raising it after such a free,
  // which would put the next ones in a worker thread's heap, where malloc_trim cannot reach.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  sluice::proxy::raise_file_limit();
  try {
    sluice::proxy::Proxy proxy(std::move(config), config_path);
    return proxy.run();
  } catch (const sluice::proxy::ConfigError& e) {
    spdlog::critical("invalid configuration: {}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
