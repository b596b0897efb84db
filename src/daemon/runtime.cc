// The running side of the daemon: starting, stopping, watching and re-adopting
// the QEMU process of each active domain.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <optional>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include "base/async.h"
#include "base/messages.h"
#include "base/process.h"
#include "daemon/daemon.h"
#include "hypervisor/qemu/qemu_process.h"
#include "migration/qemu_parameters.h"
#include "model/operations.h"
#include "services/network.h"

namespace ldm::daemon {

using asio::awaitable;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Host-side figures for one running domain, for the UTIL and UPTIME columns.
json process_stats(const model::Domain& d) {
  json s = json::object();
  if (d.state != model::DomainState::Active || d.runtime.pid <= 0) return s;
  int64_t uptime = std::max<int64_t>(0, std::time(nullptr) - d.runtime.started_at);
  s["uptime"] = uptime;
  std::ifstream stat(fmt::format("/proc/{}/stat", d.runtime.pid));
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  if (paren == std::string::npos) return s;
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime + stime
  double cpu_seconds = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  double available = static_cast<double>(std::max<int64_t>(uptime, 1)) * std::max(1u, d.vcpus);
  s["util"] = std::min(100.0, 100.0 * cpu_seconds / available);
  return s;
}

}  // namespace

Result<hypervisor::LaunchSpec> Daemon::launch_spec(const model::Domain& d) const {
  hypervisor::LaunchSpec spec;
  spec.domain = d;
  spec.accel = accel_;
  spec.qemu_binary = config_.qemu;
  if (!qemu_caps_.default_machine.empty()) spec.machine = qemu_caps_.default_machine;
  spec.qmp_socket = run_path(d, ".qmp");
  spec.pidfile = run_path(d, ".pid");
  spec.console_log = run_path(d, ".console.log");
  spec.console_address = config_.console_address;
  // Allocating the guest's memory at start is the host kernel zeroing it: a
  // thread per core (up to 4) makes it that much shorter.
  spec.prealloc_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  std::vector<std::string> problems;
  if (!d.kernel.empty() && access(d.kernel.c_str(), R_OK) != 0)
    problems.push_back(fmt::format("kernel {} does not exist or is not readable", d.kernel));
  for (const auto& disk : d.disks) {
    const model::Volume* v = model_.find_volume(disk.volume, disk.service);
    if (!v) {
      problems.push_back(msg::volume_not_found(disk.volume, disk.service));
      continue;
    }
    if (access(v->backend.c_str(), R_OK) != 0) {
      problems.push_back(fmt::format("backend {} of volume {}@{} does not exist", v->backend, v->name, disk.service));
      continue;
    }
    bool ro = std::find(v->options.begin(), v->options.end(), "ro") != v->options.end();
    struct stat st {};
    std::string format = "raw";
    if (::stat(v->backend.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      std::ifstream in(v->backend, std::ios::binary);
      char magic[4] = {};
      in.read(magic, 4);
      if (in.gcount() == 4 && std::string(magic, 4) == "QFI\xfb") format = "qcow2";
    }
    spec.disks[disk.name] = hypervisor::DiskBackend{v->backend, format, ro};
  }
  for (const auto& net : d.networks) spec.taps[net.name] = services::tap_name(host_tag_, d.uuid, net.id);
  if (!problems.empty()) return fail(Error(problems));
  return spec;
}

awaitable<Result<>> Daemon::start_domain(const std::string& name) {
  const model::Domain* d = model_.find(name);
  if (name == model::kPrimary) co_return fail(msg::primary_reserved("start-domain"));
  if (!d) co_return fail(msg::domain_not_found(name));
  if (d->state == model::DomainState::Active) co_return fail(msg::already_in_state(name, "active"));
  if (d->state != model::DomainState::Bound) co_return fail(msg::must_be_bound(name, "inactive", "start-domain"));
  if (auto r = may_change(name); !r) co_return r;
  auto spec = launch_spec(*d);
  if (!spec) co_return fail(msg::qemu_start_failed(name, spec.error().text()));
  if (auto r = claim(name); !r) co_return r;
  // Under TCG the guest first runs after consume_boot_dirty_marks.
  spec->paused = accel_ == hypervisor::Accelerator::Tcg;

  auto launched = co_await launch_process(*spec);
  if (!launched) {
    release(name);
    co_return fail(msg::qemu_start_failed(name, launched.error().text()));
  }
  pid_t pid = *launched;
  auto r = mutate([&](model::HostModel& m) -> Result<> {
    model::Domain* dom = m.find(name);
    dom->state = model::DomainState::Active;
    dom->runtime = model::Runtime{pid, spec->qmp_socket, std::time(nullptr), {}, "running", "", spec->machine};
    for (const auto& [net, tap] : spec->taps) dom->runtime.taps.push_back(tap);
    return {};
  });
  if (!r) {
    co_await kill_qemu(pid);
    remove_taps(spec->domain);
    release(name);
    co_return r;
  }
  spdlog::info("domain {} started: QEMU pid {}", name, pid);
  if (auto m = co_await attach_monitor(name); !m) spdlog::warn("domain {}: {}", name, m.error().text());
  if (spec->paused) {
    if (auto c = co_await consume_boot_dirty_marks(name); !c)
      spdlog::warn("domain {}: its first migration will pause it longer: {}", name, c.error().text());
    auto qmp = monitor_of(name);
    Result<json> cont;
    if (!qmp)
      cont = fail(qmp.error());
    else
      cont = co_await (*qmp)->execute("cont");
    if (!cont) {
      // Started but never resumed: stop it rather than leave a paused guest behind.
      release(name);
      (void)co_await stop_domain(name, true, 0);
      co_return fail(msg::qemu_start_failed(name, cont.error().text()));
    }
    (void)mutate([&](model::HostModel& m) -> Result<> {
      if (model::Domain* dom = m.find(name)) dom->runtime.run_state = "running";
      return {};
    });
  }
  release(name);
  co_return Result<>{};
}

namespace {

// Polls query-migrate until QEMU's migration status is none of `statuses`.
awaitable<Result<std::string>> wait_for_status_change(std::shared_ptr<hypervisor::qemu::QmpClient> qmp,
                                                      std::vector<std::string> statuses) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto q = co_await qmp->execute("query-migrate");
    if (!q) co_return fail(q.error());
    std::string status = q->value("status", "");
    if (std::find(statuses.begin(), statuses.end(), status) == statuses.end()) co_return status;
    if (std::chrono::steady_clock::now() > deadline)
      co_return fail(fmt::format("QEMU's migration stayed '{}' for 10 s", status));
    tick.expires_after(2ms);
    (void)co_await tick.async_wait(kNoThrow);
  }
}

}  // namespace

// Under TCG ldm pads the guest's RAM so that QEMU syncs its dirty bitmap page
// by page (ARCHITECTURE.md, the TCG defect): correct, but about 1 µs for each
// dirty page with the BQL held, and a new QEMU marks every page dirty, so a
// domain's first migration would stall its guest ~250 ms per GiB as it
// begins. A migration to nowhere, cancelled once QEMU has set it up, spends
// that time now, before the guest first runs; afterwards only pages written
// while a migration runs are marked, and the per-page sync stays in force.
awaitable<Result<>> Daemon::consume_boot_dirty_marks(const std::string& name) {
  auto monitor = monitor_of(name);
  if (!monitor) co_return fail(monitor.error());
  auto qmp = *monitor;
  if (auto r = co_await qmp->execute("migrate-set-parameters", migration::discard_parameters()); !r)
    co_return fail(r.error());
  if (auto r = co_await qmp->execute("migrate", migration::discard_uri_argument()); !r) co_return fail(r.error());
  std::vector<std::string> setting_up = {"none", "setup"};
  auto set_up = co_await wait_for_status_change(qmp, setting_up);
  (void)co_await qmp->execute("migrate_cancel");
  std::vector<std::string> ending = {"setup", "active", "cancelling"};
  auto ended = co_await wait_for_status_change(qmp, ending);
  if (!set_up) co_return fail(set_up.error());
  if (!ended) co_return fail(ended.error());
  spdlog::debug("domain {}: boot dirty marks consumed (migration {} then {})", name, *set_up, *ended);
  co_return Result<>{};
}

awaitable<Result<pid_t>> Daemon::launch_process(const hypervisor::LaunchSpec& spec) {
  mkdir((config_.state_dir + "/run").c_str(), 0700);
  auto launch = [spec]() -> Result<pid_t> {
    for (const auto& net : spec.domain.networks)
      if (auto r = services::create_tap(spec.taps.at(net.name), net.vswitch); !r) return fail(r.error());
    return hypervisor::qemu::launch(spec);
  };
  auto launched = co_await offload(std::move(launch));
  if (!launched) remove_taps(spec.domain);
  co_return launched;
}

awaitable<Result<>> Daemon::attach_monitor(const std::string& name) {
  const model::Domain* d = model_.find(name);
  if (!d) co_return fail(msg::domain_not_found(name));
  std::string uuid = d->uuid;
  auto client = co_await hypervisor::qemu::QmpClient::connect(d->runtime.qmp_socket, 5s);
  if (!client) co_return fail(client.error());
  auto c = *client;
  monitors_[uuid] = c;
  watch_monitor(name, uuid, c);
  auto status = co_await c->execute("query-status");
  if (status && status->contains("status"))
    (void)mutate([&](model::HostModel& m) -> Result<> {
      if (model::Domain* dom = m.find(name)) dom->runtime.run_state = (*status)["status"].get<std::string>();
      return {};
    });
  co_return Result<>{};
}

Result<std::shared_ptr<hypervisor::qemu::QmpClient>> Daemon::monitor_of(const std::string& name) const {
  const model::Domain* d = model_.find(name);
  if (!d) return fail(msg::domain_not_found(name));
  auto it = monitors_.find(d->uuid);
  if (it == monitors_.end()) return fail("the QEMU monitor of " + name + " is not connected");
  return it->second;
}

void Daemon::watch_monitor(const std::string& name, const std::string& uuid,
                           const std::shared_ptr<hypervisor::qemu::QmpClient>& client) {
  client->set_event_handler([this, name](const std::string& event, const json& data) {
    spdlog::info("domain {}: QEMU event {} {}", name, event, data.dump());
    if (event == "MIGRATION") note_stream_status(name, data.value("status", ""));
  });
  client->set_close_handler([this, name, uuid](const std::string& reason) { on_monitor_closed(name, uuid, reason); });
}

void Daemon::on_monitor_closed(const std::string& name, const std::string& uuid, const std::string& reason) {
  monitors_.erase(uuid);
  if (stopping_.contains(uuid)) return;  // stop_domain settles it
  asio::co_spawn(io_, settle_dead_domain(name, reason), asio::detached);
}

// The monitor of an active domain closed without us asking: find out whether
// QEMU died, and if so, show it (state bound, with the reason).
awaitable<void> Daemon::settle_dead_domain(std::string name, std::string reason) {
  const model::Domain* d = model_.find(name);
  if (!d || d->state != model::DomainState::Active) co_return;
  int pid = d->runtime.pid;
  bool exited = co_await wait_for_exit(pid, 2s);
  if (!exited) {
    spdlog::warn("domain {}: monitor closed ({}) but QEMU {} still runs; reconnecting", name, reason, pid);
    if (auto r = co_await attach_monitor(name); !r) spdlog::error("domain {}: {}", name, r.error().text());
    co_return;
  }
  spdlog::warn("domain {}: QEMU {} exited unexpectedly ({})", name, pid, reason);
  (void)record_stopped(name, "QEMU exited unexpectedly");
}

Result<> Daemon::record_stopped(const std::string& name, const std::string& last_exit) {
  const model::Domain* d = model_.find(name);
  if (!d) return fail(msg::domain_not_found(name));
  remove_taps(*d);
  return mutate([&](model::HostModel& m) -> Result<> {
    model::Domain* dom = m.find(name);
    dom->state = model::DomainState::Bound;
    dom->transitioning = false;
    dom->runtime = model::Runtime{};
    dom->runtime.last_exit = last_exit;
    model::apply_delayed_reconfiguration(*dom);
    return {};
  });
}

awaitable<bool> Daemon::wait_for_exit(int pid, std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(io_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A pidfd turns readable the moment the process exits (a migration's caller
  // waits for that); without one, /proc is read every 5 ms.
  int raw = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  std::optional<asio::posix::stream_descriptor> exited;
  if (raw >= 0) exited.emplace(io_, raw);
  while (process_alive(pid)) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) co_return false;
    timer.expires_after(exited ? std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) : 5ms);
    if (exited) {
      auto readable = exited->async_wait(asio::posix::stream_descriptor::wait_read, kNoThrow);
      auto expired = timer.async_wait(kNoThrow);
      (void)co_await (std::move(readable) || std::move(expired));
    } else {
      (void)co_await timer.async_wait(kNoThrow);
    }
  }
  co_return true;
}

awaitable<void> Daemon::kill_qemu(int pid) {
  auto kill_it = [pid] {
    hypervisor::qemu::kill_process(pid);
    return 0;
  };
  co_await offload(std::move(kill_it));
}

void Daemon::detach_monitor(const std::string& uuid) {
  auto it = monitors_.find(uuid);
  if (it == monitors_.end()) return;
  auto client = it->second;
  monitors_.erase(it);
  client->set_close_handler(nullptr);
  client->close();
}

void Daemon::remove_taps(const model::Domain& d) {
  std::vector<std::string> taps = d.runtime.taps;
  for (const auto& net : d.networks) taps.push_back(services::tap_name(host_tag_, d.uuid, net.id));
  if (taps.empty()) return;
  asio::post(pool_, [taps] {
    for (const auto& t : taps) (void)services::delete_link(t);
  });
}

awaitable<Result<>> Daemon::stop_domain(const std::string& name, bool force, int timeout_seconds) {
  const model::Domain* d = model_.find(name);
  if (name == model::kPrimary) co_return fail(msg::primary_reserved("stop-domain"));
  if (!d) co_return fail(msg::domain_not_found(name));
  if (d->state != model::DomainState::Active) co_return fail(fmt::format("LDom {} is not active", name));
  if (auto r = may_bind_or_stop(name, "stop"); !r) co_return r;
  if (auto r = claim(name); !r) co_return r;
  std::string uuid = d->uuid;
  int pid = d->runtime.pid;
  stopping_.insert(uuid);
  auto monitor = monitors_.contains(uuid) ? monitors_[uuid] : nullptr;

  bool exited = false;
  if (!force) {
    if (monitor) (void)co_await monitor->execute("system_powerdown");
    exited = co_await wait_for_exit(pid, std::chrono::seconds(timeout_seconds));
    if (!exited) {
      stopping_.erase(uuid);
      release(name);
      co_return fail(msg::stop_timed_out(name, timeout_seconds));
    }
  } else {
    if (monitor) (void)co_await monitor->execute("quit", nullptr, 5s);
    exited = co_await wait_for_exit(pid, 5s);
    if (!exited) {
      co_await kill_qemu(pid);
    }
  }
  detach_monitor(uuid);
  auto r = record_stopped(name, "");
  stopping_.erase(uuid);
  release(name);
  spdlog::info("domain {} stopped{}", name, force ? " (forced)" : "");
  co_return r;
}

awaitable<void> Daemon::adopt_domains() {
  std::vector<std::string> active;
  for (const auto& d : model_.domains)
    if (d.state == model::DomainState::Active || d.transitioning) active.push_back(d.name);
  for (const auto& name : active) {
    const model::Domain* d = model_.find(name);
    int pid = d->runtime.pid ? d->runtime.pid : hypervisor::qemu::read_pidfile(run_path(*d, ".pid"));
    if (hypervisor::qemu::is_domain_process(pid, d->uuid)) {
      if (auto r = co_await attach_monitor(name); r) {
        spdlog::info("domain {}: re-adopted QEMU pid {}", name, pid);
        continue;
      } else {
        spdlog::warn("domain {}: QEMU pid {} runs but its monitor is unusable: {}", name, pid, r.error().text());
        continue;
      }
    }
    spdlog::warn("domain {}: QEMU is gone; the domain is now bound", name);
    (void)record_stopped(name, "QEMU exited while ldmd was not running");
  }
  co_await recover_migrations();
  asio::co_spawn(io_, reconcile_loop(), asio::detached);
}

protocol::Response Daemon::snapshot() const {
  json stats = json::object();
  for (const auto& d : model_.domains) stats[d.name] = process_stats(d);
  long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  std::ifstream up("/proc/uptime");
  double host_uptime = 0;
  up >> host_uptime;
  json host = {{"hostname", model_.hostname},
               {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
               {"memory", static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)},
               {"uptime", static_cast<int64_t>(host_uptime)},
               {"accel", accel_ == hypervisor::Accelerator::Kvm ? "kvm" : "tcg"}};
  return protocol::Response{true, json{{"host", host}, {"model", model_}, {"stats", stats}}, {}, {}};
}

}  // namespace ldm::daemon
