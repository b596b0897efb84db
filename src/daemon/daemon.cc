#include "daemon/daemon.h"

#include <charconv>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "base/async.h"
#include "base/messages.h"
#include "base/size.h"
#include "base/uuid.h"
#include "model/operations.h"
#include "services/console.h"
#include "services/network.h"
#include "daemon/request_arguments.h"

namespace ldm::daemon {

using asio::awaitable;
using json = nlohmann::json;
using protocol::Request;
using protocol::Response;

namespace {

Response ok(json result = nullptr) { return Response{true, std::move(result), {}, {}}; }
Response from(const Result<>& r) { return r ? ok() : Response::failure(r.error()); }

std::string host_tag_for(const std::string& state_dir) {
  uint32_t h = 2166136261u;  // FNV-1a: a stable short tag, not security
  for (char c : state_dir) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return fmt::format("{:04x}", h & 0xFFFF);
}

hypervisor::Accelerator pick_accel(const std::string& setting) {
  if (setting == "kvm") return hypervisor::Accelerator::Kvm;
  if (setting == "tcg") return hypervisor::Accelerator::Tcg;
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return hypervisor::Accelerator::Tcg;
  close(fd);
  return hypervisor::Accelerator::Kvm;
}

uint32_t random24() {
  uint32_t v = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v);
  return v & 0xFFFFFF;
}

}  // namespace

Daemon::Daemon(asio::io_context& io, DaemonConfig config, std::unique_ptr<store::Store> store,
               model::HostModel model)
    : io_(io),
      config_(std::move(config)),
      store_(std::move(store)),
      model_(std::move(model)),
      host_tag_(host_tag_for(config_.state_dir)),
      accel_(pick_accel(config_.accel)),
      tls_(protocol::TlsPaths::under(config_.state_dir)) {
  spdlog::info("accelerator: {}", accel_ == hypervisor::Accelerator::Kvm ? "KVM" : "TCG (no usable /dev/kvm)");
  if (auto caps = hypervisor::qemu::probe_capabilities(config_.qemu); caps) {
    qemu_caps_ = *caps;
    spdlog::info("QEMU {}: default machine {}", qemu_caps_.version, qemu_caps_.default_machine);
  } else {
    spdlog::warn("cannot ask {} what it supports: {}", config_.qemu, caps.error().text());
  }
  cpu_flags_ = hypervisor::qemu::host_cpu_flags();
  if (const char* points = std::getenv("LDMD_FAULT_PAUSE"); points && *points) {
    std::string list = points;
    for (size_t start = 0; start <= list.size();) {
      size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) fault_points_.insert(list.substr(start, comma - start));
      start = comma + 1;
    }
    if (const char* seconds = std::getenv("LDMD_FAULT_SECONDS")) fault_seconds_ = std::max(1, std::atoi(seconds));
    spdlog::warn("fault injection is on (LDMD_FAULT_PAUSE={}): for tests only", list);
  }
}

awaitable<void> Daemon::fault_point(const char* point) {
  if (!fault_points_.contains(point)) co_return;
  spdlog::warn("fault injection: pausing {} s at {}", fault_seconds_, point);
  asio::steady_timer pause(io_, std::chrono::seconds(fault_seconds_));
  co_await pause.async_wait(kNoThrow);
  spdlog::warn("fault injection: resuming after {}", point);
}

Daemon::~Daemon() {
  for (auto& [uuid, client] : monitors_) {
    client->set_close_handler(nullptr);  // ldmd ending is not the guest ending
    client->close();
  }
  pool_.join();
}

Result<> Daemon::start_peer_listener() {
  auto listen = parse_listen(config_.listen);
  if (!listen) return fail(listen.error());
  std::vector<std::string> addresses = {"127.0.0.1"};
  if (listen->first != "0.0.0.0" && listen->first != "::") addresses.push_back(listen->first);
  if (auto r = protocol::ensure_host_certificate(tls_, model_.hostname, addresses); !r) return r;
  if (auto r = reload_trust(); !r) return r;
  asio::error_code ec;
  auto address = asio::ip::make_address(listen->first, ec);
  if (ec) return fail(fmt::format("Invalid listen address {}: {}", listen->first, ec.message()));
  listen_address_ = address;
  auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(io_);
  asio::ip::tcp::endpoint endpoint(address, listen->second);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(fmt::format("Cannot listen for other hosts on {}: {}", config_.listen, ec.message()));
  asio::co_spawn(io_, accept_peers(acceptor), asio::detached);
  return {};
}

Result<> Daemon::reload_trust() {
  auto server = protocol::make_context(tls_, true);
  if (!server) return fail(server.error());
  auto client = protocol::make_context(tls_, false);
  if (!client) return fail(client.error());
  if (auto r = protocol::write_qemu_credentials(tls_); !r) return r;
  server_tls_ = *server;
  client_tls_ = *client;
  return {};
}

void Daemon::set_migration(const std::string& name, model::MigrationStatus status) {
  (void)mutate([&](model::HostModel& m) -> Result<> {
    if (model::Domain* d = m.find(name)) d->migration = status;
    return {};
  });
}

Result<> Daemon::set_power_policy(model::PowerPolicy policy) {
  if (policy == model_.power_policy) return {};
  // The original defers a switch to elastic until a running migration ends;
  // here the switch is refused and SIGHUP can be sent again afterwards.
  if (policy == model::PowerPolicy::Elastic)
    if (auto busy = migration_in_progress(); !busy.empty())
      return fail(fmt::format("power policy stays performance while a migration runs ({})", busy));
  return mutate([&](model::HostModel& m) -> Result<> {
    m.power_policy = policy;
    return {};
  });
}

std::string Daemon::migration_in_progress() const {
  for (const auto& d : model_.domains)
    if (!d.migration.role.empty() && !d.migration.error)
      return fmt::format("LDom {} {} {}", d.name, d.migration.role == "source" ? "to" : "from", d.migration.peer);
  return {};
}

Result<> Daemon::may_change(const std::string& name) const {
  if (const model::Domain* d = model_.find(name); d && !d->migration.role.empty())
    return fail(msg::domain_migrating(name, d->migration.role, d->migration.peer, d->migration.error));
  if (busy_.contains(name)) return fail(msg::operation_in_progress(name));
  return {};
}

Result<> Daemon::may_bind_or_stop(const std::string& name, const std::string& operation) const {
  if (auto r = may_change(name); !r) return r;
  if (auto busy = migration_in_progress(); !busy.empty())
    return fail(msg::blocked_by_migration(name, operation, busy));
  return {};
}

Result<> Daemon::claim(const std::string& name) {
  if (busy_.contains(name)) return fail(msg::operation_in_progress(name));
  busy_.insert(name);
  return {};
}

std::string Daemon::run_path(const model::Domain& d, const char* suffix) const {
  return fmt::format("{}/run/{}{}", config_.state_dir, d.uuid, suffix);
}

awaitable<Response> Daemon::handle(Request request) {
  const std::string& cmd = request.command;
  const json& args = request.args;
  spdlog::debug("request {}", cmd);
  try {
    if (cmd == "snapshot") co_return snapshot();
    if (cmd == "migrate-domain") co_return co_await migrate(request);
    if (cmd == "cancel-operation" && args.value("operation", "") == "migration") {
      auto domain = protocol::get_string(args, "domain");
      if (!domain) co_return Response::failure(domain.error());
      co_return co_await cancel_migration(*domain, args.value("force", false));
    }
    if (cmd == "add-vsw") co_return co_await add_switch(request);
    if (cmd == "remove-vsw") co_return co_await remove_switch(request);
    if (cmd == "add-vdsdev") co_return co_await add_volume(request);
    if (cmd == "start-domain" || cmd == "stop-domain") {
      auto names = get_names(args);
      if (!names) co_return Response::failure(names.error());
      bool force = args.value("force", false);
      int timeout = args.contains("timeout") && args["timeout"].is_number_integer() ? args["timeout"].get<int>()
                                                                                    : config_.stop_timeout;
      std::vector<std::string> errors;
      for (const auto& name : *names) {
        Result<> r;
        if (cmd == "start-domain")
          r = co_await start_domain(name);
        else
          r = co_await stop_domain(name, force, timeout);
        if (!r) errors.insert(errors.end(), r.error().messages.begin(), r.error().messages.end());
      }
      co_return errors.empty() ? ok() : Response::failure(Error(errors));
    }
    co_return configure(request);
  } catch (const std::exception& e) {
    // Only third-party throwers (json type errors on odd input) land here.
    co_return Response::failure(Error(msg::malformed_request(e.what())));
  }
}

// The configuration commands: validated and applied purely to the model.
Response Daemon::configure(const Request& request) {
  using protocol::get_string;
  const std::string& cmd = request.command;
  const json& args = request.args;
  auto str = [&](const char* key) { return get_string(args, key); };
  auto need_free = [&](const std::string& name) { return may_change(name); };
  // A change to an active domain becomes a delayed reconfiguration, with the
  // original's notices; none may start while a migration runs here.
  auto reconfigure = [&](const std::string& name, auto&& change) -> Response {
    const model::Domain* before = model_.find(name);
    bool active = before && before->state == model::DomainState::Active;
    bool pending = before && before->delayed_reconf;
    if (active)
      if (auto busy = migration_in_progress(); !busy.empty())
        return Response::failure(Error(msg::blocked_by_migration(name, "reconfigure", busy)));
    Response response = from(mutate(change));
    if (response.ok && active) {
      const model::Domain* after = model_.find(name);
      if (after && after->delayed_reconf)
        response.notices.push_back(pending ? msg::delayed_reconf_pending(name) : msg::delayed_reconf_started(name));
    }
    return response;
  };

  if (cmd == "add-domain" && args.contains("names")) {
    auto names = get_names(args);
    if (!names) return Response::failure(names.error());
    return from(mutate([&](model::HostModel& m) -> Result<> {
      for (const auto& name : *names)
        if (auto r = model::add_domain(m, name, {}, make_uuid); !r) return r;
      return {};
    }));
  }
  if (cmd == "add-domain" || cmd == "set-domain") {
    auto name = str("name");
    if (!name) return Response::failure(name.error());
    auto props = parse_properties(args.value("props", json::object()), cmd);
    if (!props) return Response::failure(props.error());
    if (auto r = need_free(*name); !r) return Response::failure(r.error());
    if (cmd == "add-domain")
      return from(mutate([&](model::HostModel& m) { return model::add_domain(m, *name, *props, make_uuid); }));
    return reconfigure(*name, [&](model::HostModel& m) { return model::set_domain(m, *name, *props); });
  }
  if (cmd == "remove-domain") {
    std::vector<std::string> names;
    if (args.value("all", false)) {
      for (const auto& d : model_.domains) names.push_back(d.name);
    } else {
      auto n = get_names(args);
      if (!n) return Response::failure(n.error());
      names = *n;
    }
    for (const auto& name : names)
      if (auto r = need_free(name); !r) return Response::failure(r.error());
    return from(mutate([&](model::HostModel& m) -> Result<> {
      std::vector<std::string> errors;
      for (const auto& name : names)
        if (auto r = model::remove_domain(m, name); !r)
          errors.insert(errors.end(), r.error().messages.begin(), r.error().messages.end());
      if (!errors.empty()) return fail(Error(errors));
      return {};
    }));
  }
  if (cmd == "set-vcpu" || cmd == "add-vcpu" || cmd == "remove-vcpu") {
    auto name = str("name");
    auto count = str("count");
    if (!name || !count) return Response::failure(!name ? name.error() : count.error());
    auto n = parse_count(*count);
    if (!n) return Response::failure(n.error());
    if (auto r = need_free(*name); !r) return Response::failure(r.error());
    auto change = cmd[0] == 's' ? model::Change::Set : cmd[0] == 'a' ? model::Change::Add : model::Change::Remove;
    return reconfigure(*name, [&](model::HostModel& m) { return model::change_vcpus(m, *name, change, *n); });
  }
  if (cmd == "set-memory" || cmd == "add-memory" || cmd == "remove-memory") {
    auto name = str("name");
    auto size_text = str("size");
    if (!name || !size_text) return Response::failure(!name ? name.error() : size_text.error());
    auto size = parse_size(*size_text);
    if (!size) return Response::failure(size.error());
    if (auto r = need_free(*name); !r) return Response::failure(r.error());
    auto change = cmd[0] == 's' ? model::Change::Set : cmd[0] == 'a' ? model::Change::Add : model::Change::Remove;
    return reconfigure(*name, [&](model::HostModel& m) { return model::change_memory(m, *name, change, *size); });
  }
  if (cmd == "add-vds" || cmd == "remove-vds") {
    auto service = str("service");
    if (!service) return Response::failure(service.error());
    return from(mutate([&](model::HostModel& m) {
      return cmd == "add-vds" ? model::add_disk_service(m, *service) : model::remove_disk_service(m, *service);
    }));
  }
  if (cmd == "remove-vdsdev") {
    auto target = str("target");
    if (!target) return Response::failure(target.error());
    auto vol = split_volume(*target);
    if (!vol) return Response::failure(vol.error());
    return from(mutate([&](model::HostModel& m) { return model::remove_volume(m, vol->first, vol->second); }));
  }
  if (cmd == "add-vdisk" || cmd == "remove-vdisk") {
    auto disk = str("disk");
    auto domain = str("domain");
    if (!disk || !domain) return Response::failure(!disk ? disk.error() : domain.error());
    if (auto r = need_free(*domain); !r) return Response::failure(r.error());
    if (cmd == "remove-vdisk")
      return reconfigure(*domain, [&](model::HostModel& m) { return model::remove_disk(m, *domain, *disk); });
    auto target = str("target");
    if (!target) return Response::failure(target.error());
    auto vol = split_volume(*target);
    if (!vol) return Response::failure(vol.error());
    return reconfigure(*domain,
                       [&](model::HostModel& m) { return model::add_disk(m, *domain, *disk, vol->first, vol->second); });
  }
  if (cmd == "add-vnet" || cmd == "remove-vnet") {
    auto name = str("name");
    auto domain = str("domain");
    if (!name || !domain) return Response::failure(!name ? name.error() : domain.error());
    if (auto r = need_free(*domain); !r) return Response::failure(r.error());
    if (cmd == "remove-vnet")
      return reconfigure(*domain, [&](model::HostModel& m) { return model::remove_network(m, *domain, *name); });
    auto vsw = str("vswitch");
    if (!vsw) return Response::failure(vsw.error());
    std::optional<std::string> mac;
    if (args.contains("mac-addr") && args["mac-addr"].is_string()) mac = args["mac-addr"].get<std::string>();
    return reconfigure(*domain,
                       [&](model::HostModel& m) { return model::add_network(m, *domain, *name, *vsw, mac, random24); });
  }
  if (cmd == "add-vcc") {
    auto service = str("service");
    auto range = str("port-range");
    if (!service || !range) return Response::failure(!service ? service.error() : range.error());
    auto ports = model::parse_port_range(*range);
    if (!ports) return Response::failure(ports.error());
    return from(mutate(
        [&](model::HostModel& m) { return model::add_console_service(m, *service, ports->first, ports->second); }));
  }
  if (cmd == "remove-vcc") {
    auto service = str("service");
    if (!service) return Response::failure(service.error());
    return from(mutate([&](model::HostModel& m) { return model::remove_console_service(m, *service); }));
  }
  if (cmd == "set-var" || cmd == "remove-var") {
    auto domain = str("domain");
    if (!domain) return Response::failure(domain.error());
    if (auto r = need_free(*domain); !r) return Response::failure(r.error());
    if (cmd == "set-var") {
      if (!args.contains("vars") || !args["vars"].is_object())
        return Response::failure(Error(msg::malformed_request("missing object argument 'vars'")));
      std::map<std::string, std::string> vars;
      for (const auto& [k, v] : args["vars"].items())
        if (v.is_string()) vars[k] = v.get<std::string>();
      return from(mutate([&](model::HostModel& m) { return model::set_variables(m, *domain, vars); }));
    }
    std::vector<std::string> keys;
    if (args.contains("keys") && args["keys"].is_array())
      for (const auto& k : args["keys"])
        if (k.is_string()) keys.push_back(k.get<std::string>());
    return from(mutate([&](model::HostModel& m) { return model::remove_variables(m, *domain, keys); }));
  }
  if (cmd == "bind-domain" || cmd == "unbind-domain") {
    auto names = get_names(args);
    if (!names) return Response::failure(names.error());
    for (const auto& name : *names)
      if (auto r = cmd == "bind-domain" ? may_bind_or_stop(name, "bind") : need_free(name); !r)
        return Response::failure(r.error());
    auto port_free = [&](int port) { return services::tcp_port_free(config_.console_address, port); };
    return from(mutate([&](model::HostModel& m) -> Result<> {
      for (const auto& name : *names)
        if (auto r = cmd == "bind-domain" ? model::bind_domain(m, name, port_free) : model::unbind_domain(m, name); !r)
          return r;
      return {};
    }));
  }
  if (cmd == "add-io" || cmd == "remove-io") {
    auto device = str("device");
    auto domain = str("domain");
    if (!device || !domain) return Response::failure(!device ? device.error() : domain.error());
    if (auto r = need_free(*domain); !r) return Response::failure(r.error());
    if (cmd == "add-io" && model::valid_pci_address(*device) &&
        access(("/sys/bus/pci/devices/" + *device).c_str(), F_OK) != 0)
      return Response::failure(Error(fmt::format(
          "PCI device {} does not exist on this host; 'ls /sys/bus/pci/devices' lists those that do", *device)));
    return from(mutate([&](model::HostModel& m) {
      return cmd == "add-io" ? model::add_io(m, *domain, *device) : model::remove_io(m, *domain, *device);
    }));
  }
  if (cmd == "cancel-operation") {
    auto operation = str("operation");
    auto domain = str("domain");
    if (!operation || !domain) return Response::failure(!operation ? operation.error() : domain.error());
    if (*operation == "reconf") {
      if (auto r = need_free(*domain); !r) return Response::failure(r.error());
      return from(mutate([&](model::HostModel& m) { return model::cancel_reconfiguration(m, *domain); }));
    }
    return Response::failure(
        Error(fmt::format("Unknown operation '{}': cancel-operation takes migration or reconf", *operation)));
  }
  return Response::failure(
      Error(fmt::format("Unknown command '{}'; 'ldm --help' lists the commands", request.command)));
}

awaitable<Response> Daemon::add_switch(const Request& request) {
  auto service = protocol::get_string(request.args, "service");
  if (!service) co_return Response::failure(service.error());
  std::string net_dev = request.args.value("net-dev", "");
  // Check the model first so a refused command touches no bridge.
  model::HostModel probe = model_;
  if (auto r = model::add_switch(probe, *service, net_dev); !r) co_return Response::failure(r.error());
  // Closures are named before co_await: GCC 12 mis-destroys temporaries there.
  auto make_bridge = [name = *service, net_dev] { return services::ensure_bridge(name, net_dev); };
  auto created = co_await offload(std::move(make_bridge));
  if (!created) co_return Response::failure(created.error());
  auto r = mutate([&](model::HostModel& m) -> Result<> {
    if (auto a = model::add_switch(m, *service, net_dev); !a) return a;
    m.switches.back().created_bridge = *created;
    return {};
  });
  if (!r && *created) {
    auto undo = [name = *service] { return services::delete_link(name); };
    co_await offload(std::move(undo));
  }
  co_return from(r);
}

awaitable<Response> Daemon::remove_switch(const Request& request) {
  auto service = protocol::get_string(request.args, "service");
  if (!service) co_return Response::failure(service.error());
  const model::VirtualSwitch* vsw = model_.find_switch(*service);
  bool created = vsw && vsw->created_bridge;
  auto r = mutate([&](model::HostModel& m) { return model::remove_switch(m, *service); });
  if (!r) co_return Response::failure(r.error());
  Response response = ok();
  if (created) {
    auto remove_bridge = [name = *service] { return services::delete_link(name); };
    auto del = co_await offload(std::move(remove_bridge));
    if (!del) response.notices.push_back("The bridge could not be deleted: " + del.error().text());
  }
  co_return response;
}

awaitable<Response> Daemon::add_volume(const Request& request) {
  auto backend = protocol::get_string(request.args, "backend");
  auto target = protocol::get_string(request.args, "target");
  if (!backend || !target) co_return Response::failure(!backend ? backend.error() : target.error());
  auto vol = split_volume(*target);
  if (!vol) co_return Response::failure(vol.error());
  std::vector<std::string> options;
  if (request.args.contains("options") && request.args["options"].is_array())
    for (const auto& o : request.args["options"])
      if (o.is_string()) options.push_back(o.get<std::string>());
  if (!request.args.value("force", false) && access(backend->c_str(), F_OK) != 0)
    co_return Response::failure(Error(msg::backend_missing(*backend)));
  co_return from(
      mutate([&](model::HostModel& m) { return model::add_volume(m, *backend, vol->first, vol->second, options); }));
}

}  // namespace ldm::daemon
