// ldmd: the Logical Domains Manager daemon of one host.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "base/size.h"
#include "daemon/config.h"
#include "daemon/control_server.h"
#include "daemon/daemon.h"
#include "store/store.h"

using namespace ldm;

namespace {

model::HostModel initial_model(const daemon::DaemonConfig& c) {
  model::HostModel m;
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  m.hostname = c.hostname.empty() ? name : c.hostname;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  uint64_t memory = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  m.capacity.vcpus = c.vcpus ? c.vcpus : static_cast<unsigned>(cpus);
  m.capacity.memory = c.memory ? c.memory : memory / 4 * 3 / (256 * MiB) * (256 * MiB);
  m.power_policy = c.power_policy == "elastic" ? model::PowerPolicy::Elastic : model::PowerPolicy::Performance;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  daemon::DaemonConfig config;
  std::string config_file, memory_text, log_level = "info";
  CLI::App app{"ldmd - the Logical Domains Manager daemon.\n\n"
               "Owns this host's domains (each active one runs as a QEMU process), keeps their\n"
               "configuration in a crash-safe store, serves the ldm command on a local socket and\n"
               "talks to ldmd on other hosts for migration. Domains keep running when ldmd stops;\n"
               "on start it re-adopts them.",
               "ldmd"};
  app.add_option("-f,--config", config_file, "Config file of 'key = value' lines (state-dir, socket, listen, "
                                             "hostname, console-address, vcpus, memory, power-policy, qemu, accel, "
                                             "stop-timeout, tls-host-match); options given here override it");
  app.add_option("--state-dir", config.state_dir, "Where the store and runtime files live")->capture_default_str();
  app.add_option("--socket", config.socket, "The local control socket ldm connects to")->capture_default_str();
  app.add_option("--listen", config.listen, "ADDR:PORT for other hosts' ldmd (migration)")->capture_default_str();
  app.add_option("--hostname", config.hostname, "This host's name as other hosts see it (default: system host name)");
  app.add_option("--console-address", config.console_address, "Address console ports listen on")
      ->capture_default_str();
  app.add_option("--vcpus", config.vcpus, "vCPUs this host offers to domains (default: number of host CPUs)");
  app.add_option("--memory", memory_text, "Memory this host offers to domains, e.g. 16G (default: 3/4 of RAM)");
  app.add_option("--accel", config.accel, "auto, kvm or tcg")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_option("--power-policy", config.power_policy,
                 "performance or elastic (no migration in or out while elastic); re-read from --config on SIGHUP")
      ->check(CLI::IsMember({"performance", "elastic"}));
  app.add_flag("--tls-host-match", config.tls_host_match,
               "Strict host-name matching: a migration target's certificate must name the host as typed");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")->capture_default_str();
  app.set_version_flag("--version", LDM_VERSION);

  CLI11_PARSE(app, argc, argv);
  if (!config_file.empty()) {
    daemon::DaemonConfig merged;
    if (auto r = daemon::apply_config_file(config_file, merged); !r) {
      fmt::print(stderr, "ldmd: {}\n", r.error().text());
      return 2;
    }
    // Command-line options override the file.
    auto given = [&](const char* name) { return app.count(name) > 0; };
    if (given("--state-dir")) merged.state_dir = config.state_dir;
    if (given("--socket")) merged.socket = config.socket;
    if (given("--listen")) merged.listen = config.listen;
    if (given("--hostname")) merged.hostname = config.hostname;
    if (given("--console-address")) merged.console_address = config.console_address;
    if (given("--vcpus")) merged.vcpus = config.vcpus;
    if (given("--accel")) merged.accel = config.accel;
    if (given("--power-policy")) merged.power_policy = config.power_policy;
    if (given("--tls-host-match")) merged.tls_host_match = config.tls_host_match;
    config = merged;
  }
  if (!memory_text.empty()) {
    auto size = parse_size(memory_text);
    if (!size) {
      fmt::print(stderr, "ldmd: --memory: {}\n", size.error().text());
      return 2;
    }
    config.memory = *size;
  }
  if (auto listen = daemon::parse_listen(config.listen); !listen) {
    fmt::print(stderr, "ldmd: {}\n", listen.error().text());
    return 2;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("ldmd"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  if (mkdir(config.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    spdlog::critical("cannot create state directory {}: {}", config.state_dir, std::strerror(errno));
    return 1;
  }
  auto store = store::Store::open(config.state_dir + "/ldmd.db");
  if (!store) {
    spdlog::critical("{}", store.error().text());
    return 1;
  }
  model::HostModel model = initial_model(config);
  if (auto r = (*store)->load(model); !r) {
    spdlog::critical("{}", r.error().text());
    return 1;
  }
  for (auto& d : model.domains) d.transitioning = false;
  // The configuration, not the store, says what the policy is.
  model.power_policy = config.power_policy == "elastic" ? model::PowerPolicy::Elastic : model::PowerPolicy::Performance;

  signal(SIGPIPE, SIG_IGN);
  // Migration passwords pass through this process: no core dump may hold one.
  prctl(PR_SET_DUMPABLE, 0);
  asio::io_context io;
  daemon::Daemon d(io, config, std::move(*store), std::move(model));
  asio::signal_set stop_signals(io, SIGINT, SIGTERM);
  stop_signals.async_wait([&](const asio::error_code&, int sig) {
    spdlog::info("signal {}: stopping ldmd (domains keep running)", sig);
    io.stop();
  });

  asio::signal_set reload(io, SIGHUP);
  std::function<void()> on_hup = [&] {
    reload.async_wait([&](const asio::error_code& ec, int) {
      if (ec) return;
      if (auto r = d.reload_trust(); r)
        spdlog::info("SIGHUP: trusted certificates re-read");
      else
        spdlog::error("SIGHUP: {}", r.error().text());
      if (!config_file.empty()) {
        daemon::DaemonConfig reread;
        if (auto r = daemon::apply_config_file(config_file, reread); !r) {
          spdlog::error("SIGHUP: {}", r.error().text());
        } else {
          auto policy = reread.power_policy == "elastic" ? model::PowerPolicy::Elastic : model::PowerPolicy::Performance;
          if (auto p = d.set_power_policy(policy); !p)
            spdlog::error("SIGHUP: {}", p.error().text());
          else
            spdlog::info("SIGHUP: power policy {}", reread.power_policy);
        }
      }
      on_hup();
    });
  };
  on_hup();

  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await d.adopt_domains();
    if (auto r = d.start_peer_listener(); !r) {
      spdlog::critical("{}", r.error().text());
      io.stop();
      co_return;
    }
    if (auto r = daemon::serve_control_socket(io, d, config.socket); !r) {
      spdlog::critical("{}", r.error().text());
      io.stop();
      co_return;
    }
    spdlog::info("ldmd {} serving {} ({} domains, capacity {} vCPUs, {})", LDM_VERSION, config.socket,
                 d.model().domains.size(), d.model().capacity.vcpus, format_size(d.model().capacity.memory));
  }, asio::detached);
  io.run();
  return 0;
}
