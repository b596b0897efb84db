// Migration, target side: answers another host's ldmd on the --listen port.
//
// The target never resumes a guest it has not been told to commit, and
// records each step in the store (the domain row with migration.role =
// "target") before acting on it. A connection that ends before the commit
// undoes everything the target made for the migration.
#include <algorithm>
#include <chrono>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/async.h"
#include "base/messages.h"
#include "daemon/daemon.h"
#include "hypervisor/qemu/qemu_process.h"
#include "migration/checks.h"
#include "migration/qemu_parameters.h"
#include "model/operations.h"
#include "services/console.h"
#include "services/storage.h"

namespace ldm::daemon {

using asio::awaitable;
using asio::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr auto kPeerTimeout = 30s;
constexpr auto kHandshakeTimeout = 10s;

// Message builders live outside coroutine bodies (GCC 12 cannot compile
// brace-initialised JSON inside one).
json error_message(const Error& e) { return json{{"type", "error"}, {"messages", e.messages}}; }
json hello_reply(int version, const std::string& host) {
  return {{"type", "hello"}, {"version", version}, {"host", host}};
}
json checked_reply(const migration::CheckReport& report) {
  return {{"type", "checked"}, {"failures", report.failures}, {"warnings", report.warnings}};
}

json typed(const char* type) { return {{"type", type}}; }

std::string not_trusted(const std::string& self, const std::string& source, const std::string& why) {
  return fmt::format("{} does not trust the certificate of {} ({}): for certificate mode (-c) copy {}'s "
                     "STATE/tls/server.crt into STATE/trust/{}.pem on {} and send its ldmd SIGHUP; or migrate in "
                     "password mode (without -c)",
                     self, source, why, source, source, self);
}

std::string too_many(const std::string& remote, long seconds) {
  return fmt::format("Too many failed authentications from {}; try again in {} seconds", remote, seconds);
}

// The target's own facts for the checks: blocking reads (volumes, sysfs).
migration::TargetFacts gather_facts(const std::vector<std::pair<std::string, std::string>>& volumes) {
  migration::TargetFacts facts;
  facts.free_hugepages = hypervisor::qemu::free_hugepages();
  auto survey = services::survey_storage(volumes, false);
  facts.storage = std::move(survey.identities);
  facts.storage_errors = std::move(survey.errors);
  return facts;
}

// The source's figures, as this host shows them (role target, peer = source).
model::MigrationStatus incoming_progress(const json& status, const std::string& source) {
  model::MigrationStatus s;
  try {
    s = status.get<model::MigrationStatus>();
  } catch (const json::exception&) {
  }
  s.role = "target";
  s.peer = source;
  s.address.clear();
  s.error = false;
  s.progress = std::clamp(s.progress, 0, 100);
  return s;
}

// Does this host run the domain with this UUID (committed, not still incoming)?
// "committed": the commit was recorded here, whatever became of the guest
// since; "undecided": a commit is being applied right now.
json status_reply(const model::HostModel& model, const std::string& uuid, const std::set<std::string>& committing) {
  bool exists = false, running = false, committed = false, undecided = false;
  for (const auto& d : model.domains)
    if (d.uuid == uuid) {
      exists = true;
      running = d.state == model::DomainState::Active && d.migration.role != "target";
      committed = d.migration.role == "target" && d.migration.handoff;
      undecided = committing.contains(d.name);
    }
  return {{"type", "status"}, {"exists", exists}, {"running", running}, {"committed", committed}, {"undecided", undecided}};
}

// The uncommitted incoming copy of `uuid` that a recovering source fences off.
std::string uncommitted_incoming(const model::HostModel& model, const std::string& uuid,
                                 const std::set<std::string>& committing) {
  for (const auto& d : model.domains)
    if (d.uuid == uuid && d.migration.role == "target" && !d.migration.handoff && !committing.contains(d.name))
      return d.name;
  return "";
}
json prepared_reply(const std::string& address, int port) {
  return {{"type", "prepared"}, {"address", address}, {"port", port}};
}

// A free TCP port on `address` for QEMU's incoming stream.
int free_port(const std::string& address) {
  asio::io_context io;
  asio::error_code ec;
  tcp::acceptor probe(io);
  tcp::endpoint endpoint(asio::ip::make_address(address, ec), 0);
  if (ec) return 0;
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.bind(endpoint, ec);
  if (ec) return 0;
  return probe.local_endpoint().port();
}

}  // namespace

awaitable<void> Daemon::accept_peers(std::shared_ptr<tcp::acceptor> acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    // Whatever a peer sends, an escaping exception ends only its connection.
    asio::co_spawn(io_, serve_peer(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("peer connection ended by an unexpected error: {}", x.what());
      }
    });
  }
}

awaitable<void> Daemon::serve_peer(tcp::socket socket) {
  std::string remote = socket.remote_endpoint().address().to_string();
  std::string local = socket.local_endpoint().address().to_string();
  protocol::TlsStream stream(std::move(socket), *server_tls_);

  asio::steady_timer timer(io_, kHandshakeTimeout);
  using namespace asio::experimental::awaitable_operators;
  auto handshake = co_await (stream.async_handshake(asio::ssl::stream_base::server, kNoThrow) ||
                             timer.async_wait(kNoThrow));
  bool shook = handshake.index() == 0 && !std::get<0>(std::get<0>(handshake));
  if (!shook) {
    // Plaintext clients, untrusted certificates and random bytes end here.
    std::string why = handshake.index() == 1 ? "timed out" : std::get<0>(std::get<0>(handshake)).message();
    spdlog::warn("peer {}: TLS handshake refused: {}", remote, why);
    co_return;
  }
  std::string source = protocol::peer_name(stream);
  // Certificate mode: the source's certificate is trusted here. Otherwise the
  // source must authenticate a user (password mode) before anything changes.
  std::string untrusted = protocol::verification_error(stream);
  bool authorized = untrusted.empty();

  auto hello = co_await protocol::read_message(stream, kPeerTimeout);
  if (!hello) {
    spdlog::warn("peer {}: {}", remote, hello.error().text());
    co_return;
  }
  if ((*hello)["type"] != "hello") {
    spdlog::warn("peer {}: sent '{}' before 'hello'", remote, (*hello)["type"].get<std::string>());
    (void)co_await protocol::write_message(stream, error_message(Error("the first message must be 'hello'")));
    co_return;
  }
  int their_max = hello->value("max_version", 0);
  if (their_max < protocol::kMinPeerVersion) {
    (void)co_await protocol::write_message(stream, error_message(Error(msg::kOlderTarget)));
    co_return;
  }
  int version = std::min(their_max, protocol::kPeerVersion);
  if (auto w = co_await protocol::write_message(stream, hello_reply(version, model_.hostname)); !w)
    co_return;
  std::string source_host = hello->value("host", source);
  spdlog::info("peer {} ({}): protocol version {}, {}", source_host, remote, version,
               authorized ? "certificate trusted" : "certificate not trusted (" + untrusted + ")");

  std::string incoming;  // the domain this connection created here, until committed
  bool committed = false;
  for (;;) {
    auto m = co_await protocol::read_message(stream, 600s);
    if (!m) {
      spdlog::warn("peer {} ({}): {}", source_host, remote, m.error().text());
      break;
    }
    std::string type = (*m)["type"].get<std::string>();
    json reply;
    if (type == "auth") {
      reply = co_await authenticate_peer(*m, remote);
      if (reply["type"] == "authenticated") authorized = true;
      if (auto w = co_await protocol::write_message(stream, reply); !w) break;
      continue;
    }
    // Everything but a status query needs an authenticated peer.
    if (!authorized && type != "query" && type != "abandon") {
      spdlog::warn("peer {} ({}): '{}' refused: not authenticated", source_host, remote, type);
      reply = error_message(Error(not_trusted(model_.hostname, source_host, untrusted)));
      if (auto w = co_await protocol::write_message(stream, reply); !w) break;
      continue;
    }
    if (type == "progress") {  // no answer: the source is busy streaming
      if (!incoming.empty() && m->contains("status") && (*m)["status"].is_object())
        set_migration(incoming, incoming_progress((*m)["status"], source_host));
      continue;
    }
    if (type == "check" || type == "prepare") {
      auto report = co_await check_offer(*m);
      if (!report) {
        reply = error_message(report.error());
      } else if (type == "check") {
        reply = checked_reply(*report);
      } else if (!report->failures.empty()) {
        std::vector<std::string> messages;
        for (const auto& f : report->failures) messages.push_back(f.message);
        reply = error_message(Error(messages));
      } else if (!incoming.empty()) {
        reply = error_message(Error("a migration is already being prepared on this connection"));
      } else {
        auto prepared = co_await prepare_incoming(*m, source_host, local);
        if (prepared) {
          incoming = m->value("target_name", std::string());
          reply = *prepared;
        } else {
          reply = error_message(prepared.error());
        }
      }
    } else if (type == "commit") {
      if (incoming.empty()) {
        reply = error_message(Error("nothing to commit: no migration was prepared"));
      } else {
        auto r = co_await commit_incoming(incoming);
        if (r) {
          committed = true;
          co_await fault_point("target-committed");
          reply = typed("committed");
        } else {
          reply = error_message(r.error());
        }
      }
    } else if (type == "query") {
      std::string uuid = m->value("uuid", std::string());
      std::string fenced = m->value("resolve", false) ? uncommitted_incoming(model_, uuid, committing_) : "";
      if (!fenced.empty()) {
        spdlog::warn("peer {}: asks about {}, which was never committed here: removing it", source_host, fenced);
        co_await abandon_incoming(fenced);
      }
      reply = status_reply(model_, uuid, committing_);
    } else if (type == "abandon") {
      if (!incoming.empty()) co_await abandon_incoming(incoming);
      incoming.clear();
      reply = typed("abandoned");
    } else {
      reply = error_message(Error(fmt::format("unknown message '{}'", type)));
    }
    if (auto w = co_await protocol::write_message(stream, reply); !w) break;
    if (committed) break;
  }
  if (!incoming.empty() && !committed) {
    spdlog::warn("peer {}: connection ended before the commit; removing {}", source_host, incoming);
    co_await abandon_incoming(incoming);
  }
  asio::error_code ignored;
  stream.lowest_layer().close(ignored);
}

awaitable<json> Daemon::authenticate_peer(json& message, const std::string& remote) {
  auto now = AuthLimiter::Clock::now();
  std::string user = message["user"].get<std::string>();
  // The password moves into a buffer that PAM reads and authenticate_user wipes.
  auto password = std::make_shared<std::string>(std::move(message["password"].get_ref<std::string&>()));
  wipe(message["password"].get_ref<std::string&>());
  if (auto wait = auth_limiter_.locked(remote, now)) {
    wipe(*password);
    spdlog::warn("peer {}: authentication of {} refused: locked out for {} s", remote, user, wait->count());
    co_return error_message(Error(too_many(remote, wait->count())));
  }
  std::string host = model_.hostname;
  auto right = std::make_shared<bool>(false);
  auto check = [password, user, host, right] { return authenticate_user(kPamService, user, *password, host, *right); };
  Result<> result = co_await offload(std::move(check));
  if (!result) {
    if (!*right) auth_limiter_.failed(remote, AuthLimiter::Clock::now());
    spdlog::warn("peer {}: authentication of user {} failed", remote, user);
    co_return error_message(result.error());
  }
  auth_limiter_.succeeded(remote);
  spdlog::info("peer {}: user {} authenticated", remote, user);
  co_return typed("authenticated");
}

awaitable<Result<migration::CheckReport>> Daemon::check_offer(const json& message) {
  model::Domain domain;
  migration::SourceFacts source;
  try {
    domain = message.at("domain").get<model::Domain>();
    if (message.contains("source")) source = message.at("source").get<migration::SourceFacts>();
  } catch (const json::exception&) {
    co_return fail("the source sent an unreadable domain description");
  }
  std::string target_name = message.value("target_name", domain.name);
  // Only an active domain's storage is compared (bound ones open it when they start).
  std::vector<std::pair<std::string, std::string>> volumes;
  if (domain.state == model::DomainState::Active) volumes = migration::volume_backends(model_, domain);
  auto gather = [volumes] { return gather_facts(volumes); };
  migration::TargetFacts facts = co_await offload(std::move(gather));
  facts.accel = accel_ == hypervisor::Accelerator::Kvm ? "kvm" : "tcg";
  facts.qemu = qemu_caps_;
  facts.cpu_flags = cpu_flags_;
  facts.port_free = [this](int port) { return services::tcp_port_free(config_.console_address, port); };
  auto report = migration::check_incoming(model_, domain, target_name, source, facts);
  if (busy_.contains(target_name))
    report.failures.push_back({"name", target_name, msg::operation_in_progress(target_name), "wait and try again"});
  co_return report;
}

awaitable<Result<json>> Daemon::prepare_incoming(const json& message, const std::string& source,
                                                 const std::string& local_address) {
  model::Domain offered = message.at("domain").get<model::Domain>();
  std::string name = message.value("target_name", offered.name);
  model::DomainState final_state = offered.state;
  if (auto r = claim(name); !r) co_return fail(r.error());

  // Journal first: the domain exists here, marked as the target of a migration.
  auto port_free = [&](int port) { return services::tcp_port_free(config_.console_address, port); };
  auto recorded = mutate([&](model::HostModel& m) -> Result<> {
    model::Domain d = migration::incoming_domain(offered, name);
    d.migration = model::MigrationStatus{"target", source, 0, false};
    m.domains.push_back(d);
    if (final_state != model::DomainState::Inactive)
      if (auto b = model::bind_domain(m, name, port_free); !b) return b;
    return {};
  });
  if (!recorded) {
    release(name);
    co_return fail(recorded.error());
  }
  spdlog::info("migration from {}: created {} ({})", source, name, model::to_string(final_state));
  if (final_state != model::DomainState::Active) co_return typed("prepared");

  // An active domain: a paused QEMU waiting for the encrypted stream.
  auto spec = launch_spec(*model_.find(name));
  if (!spec) {
    co_await abandon_incoming(name);
    co_return fail(spec.error());
  }
  spec->incoming = true;
  // The guest keeps the machine type it runs on the source.
  std::string machine = message.contains("source") ? message["source"].value("machine", std::string()) : "";
  if (!machine.empty()) spec->machine = machine;
  auto pid = co_await launch_process(*spec);
  if (!pid) {
    co_await abandon_incoming(name);
    co_return fail(fmt::format("the target could not start QEMU for {}: {}", name, pid.error().text()));
  }
  (void)mutate([&](model::HostModel& m) -> Result<> {
    model::Domain* d = m.find(name);
    d->runtime = model::Runtime{*pid, spec->qmp_socket, std::time(nullptr), {}, "inmigrate", "", spec->machine};
    for (const auto& [net, tap] : spec->taps) d->runtime.taps.push_back(tap);
    return {};
  });
  spdlog::debug("migration: incoming QEMU for {} started (pid {})", name, *pid);
  auto client = co_await hypervisor::qemu::QmpClient::connect(spec->qmp_socket, 5s);
  if (!client) {
    co_await abandon_incoming(name);
    co_return fail(client.error());
  }
  auto qmp = *client;
  monitors_[offered.uuid] = qmp;
  std::string uuid = offered.uuid;
  qmp->set_close_handler([this, name, uuid](const std::string& reason) { on_monitor_closed(name, uuid, reason); });
  qmp->set_event_handler([name](const std::string& event, const json& data) {
    spdlog::debug("incoming {}: QEMU event {} {}", name, event, data.dump());
  });
  int port = free_port(local_address);
  // A named list, not a braced temporary: GCC 12 destroys the temporary of a
  // range-for twice when its body suspends.
  std::vector<std::pair<std::string, json>> steps = {
      {"object-add", migration::tls_credentials("server", tls_.qemu_dir)},
      {"migrate-set-capabilities", migration::events_capability()},
      {"migrate-set-parameters", migration::target_parameters()},
      {"migrate-incoming", migration::uri_argument(local_address, port)}};
  for (const auto& [cmd, args] : steps) {
    auto r = co_await qmp->execute(cmd, args);
    if (!r) {
      co_await abandon_incoming(name);
      co_return fail(fmt::format("the target could not prepare QEMU for {}: {}", name, r.error().text()));
    }
  }
  spdlog::debug("migration: incoming QEMU for {} listens on {}:{}", name, local_address, port);
  co_return prepared_reply(local_address, port);
}

awaitable<Result<>> Daemon::commit_incoming(const std::string& name) {
  spdlog::info("migration: commit received for {}", name);
  const model::Domain* d = model_.find(name);
  if (!d || d->migration.role != "target") co_return fail(msg::domain_not_found(name));
  // While this runs, a recovering source's question gets "undecided".
  ScopedMember committing{committing_, name};
  bool active = d->runtime.pid > 0;
  std::string uuid = d->uuid;  // `d` does not outlive the next mutate()
  if (active) {
    auto qmp = monitors_.contains(d->uuid) ? monitors_[d->uuid] : nullptr;
    if (!qmp) co_return fail("the target lost the monitor of " + name);
    // The source saw "completed"; the last bytes may still be arriving here.
    std::string status;
    asio::steady_timer wait(io_);
    for (int i = 0; i < 200; ++i) {
      auto q = co_await qmp->execute("query-migrate");
      status = q && q->contains("status") ? (*q)["status"].get<std::string>() : "unknown";
      if (status == "completed" || status == "failed") break;
      wait.expires_after(5ms);
      co_await wait.async_wait(asio::use_awaitable);
    }
    if (status != "completed") co_return fail(fmt::format("the incoming stream for {} did not complete ({})", name, status));
    spdlog::debug("migration: incoming stream for {} complete", name);
    // Journal the commit, then resume: a restart between the two finds a
    // committed domain and resumes it.
    auto j = mutate([&](model::HostModel& m) -> Result<> {
      model::Domain* dom = m.find(name);
      if (!dom) return fail(msg::domain_not_found(name));
      dom->migration.handoff = true;
      dom->state = model::DomainState::Active;
      dom->runtime.run_state = "running";
      dom->runtime.started_at = std::time(nullptr);
      return {};
    });
    if (!j) co_return j;
    spdlog::debug("migration: commit of {} journaled", name);
    auto cont = co_await qmp->execute("cont");
    if (!cont) co_return fail(fmt::format("the target could not resume {}: {}", name, cont.error().text()));
    spdlog::info("migration: {} resumed here", name);
    // From now on a domain of this host like any other (its next migration out included).
    watch_monitor(name, uuid, qmp);
  }
  set_migration(name, model::MigrationStatus{});
  release(name);
  spdlog::info("migration: {} committed here", name);
  co_return Result<>{};
}

awaitable<void> Daemon::abandon_incoming(const std::string& name) {
  const model::Domain* d = model_.find(name);
  if (!d || d->migration.role != "target") {
    release(name);
    co_return;
  }
  model::Domain copy = *d;
  stopping_.insert(copy.uuid);
  detach_monitor(copy.uuid);
  if (copy.runtime.pid > 0) {
    co_await kill_qemu(copy.runtime.pid);
  }
  remove_taps(copy);
  (void)mutate([&](model::HostModel& m) -> Result<> {
    std::erase_if(m.domains, [&](const model::Domain& x) { return x.name == name; });
    return {};
  });
  stopping_.erase(copy.uuid);
  release(name);
  spdlog::info("migration: removed the incoming {}", name);
}

}  // namespace ldm::daemon
