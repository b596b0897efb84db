// Migration, source side: `ldm migrate-domain` runs here, inside ldmd; the
// ldm process only starts it and waits.
//
// Phases (SPEC §3): 1 connect, authenticate, negotiate, check; 2 both sides
// prepare (source FLAGS s, target t); 3-4 QEMU streams memory over its own
// TLS while the guest runs, then pauses it for the rest; 5 handoff: commit,
// the target resumes and acknowledges, and only then the source destroys its
// copy. Each step is recorded in the store before it is acted on.
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/async.h"
#include "base/messages.h"
#include "daemon/daemon.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qemu/qemu_process.h"
#include "migration/checks.h"
#include "migration/qemu_parameters.h"
#include "services/storage.h"

namespace ldm::daemon {

using asio::awaitable;
using asio::ip::tcp;
using json = nlohmann::json;
using protocol::Request;
using protocol::Response;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kConnectTimeout = 10s;
constexpr auto kPeerTimeout = 30s;
constexpr auto kStreamLimit = 15min;
constexpr auto kStallLimit = 20s;     // no byte sent for this long: the network is gone
constexpr auto kCommitTimeout = 15s;  // the target resumes within a second of the commit

json hello_message(const std::string& host) {
  return {{"type", "hello"}, {"min_version", protocol::kMinPeerVersion}, {"max_version", protocol::kPeerVersion},
          {"host", host}};
}
json domain_message(const char* type, const model::Domain& d, const std::string& target_name, bool dry_run,
                    const migration::SourceFacts& facts) {
  return {{"type", type}, {"domain", d}, {"target_name", target_name}, {"dry_run", dry_run}, {"source", facts}};
}
json simple_message(const char* type) { return {{"type", type}}; }
// The source-streaming fault point: a stream slow enough for a test to act in phase 3.
json throttled_stream() { return {{"max-bandwidth", 4 << 20}}; }
json auth_message(const std::string& user, const std::string& password) {
  return {{"type", "auth"}, {"user", user}, {"password", password}};
}
json abandon_message(const std::string& reason) { return {{"type", "abandon"}, {"reason", reason}}; }
model::MigrationStatus with_address(model::MigrationStatus s, const std::string& address) {
  s.address = address;
  return s;
}
// "resolve": an uncommitted incoming copy there is removed before the answer,
// so that a commit delayed in the network can no longer bring it to life.
json query_message(const std::string& uuid) { return {{"type", "query"}, {"uuid", uuid}, {"resolve", true}}; }
json progress_message(const model::MigrationStatus& status) { return {{"type", "progress"}, {"status", status}}; }

// The target's failures or warnings, read defensively.
std::vector<migration::CheckFailure> failures_in(const json& checked, const char* key) {
  std::vector<migration::CheckFailure> out;
  if (!checked.contains(key) || !checked[key].is_array()) return out;
  for (const auto& f : checked[key]) {
    if (!f.is_object()) continue;
    out.push_back({f.value("check", ""), f.value("resource", ""), f.value("message", ""), f.value("remedy", "")});
  }
  return out;
}

std::string line_of(const migration::CheckFailure& f) {
  return f.remedy.empty() ? f.message : f.message + " (" + f.remedy + ")";
}

// Every phase-1 failure at once: a line each for people, objects for --json.
Response refused(const std::vector<migration::CheckFailure>& failures) {
  std::vector<std::string> lines;
  for (const auto& f : failures) lines.push_back(line_of(f));
  Response r = Response::failure(Error(lines));
  r.result = json{{"failures", failures}};
  return r;
}

// A failure to reach the target, reported with the source's own failures.
migration::CheckFailure connection_failure(const Error& e, const std::string& host) {
  return {"connection", host, e.text(), ""};
}

}  // namespace

awaitable<Response> Daemon::migrate(Request& request) {
  json& args = request.args;
  // Password mode: the password leaves the request at once and is wiped
  // after it has been sent (see Wiped below).
  std::string password, user;
  if (args.contains("password") && args["password"].is_string()) {
    password = std::move(args["password"].get_ref<std::string&>());
    wipe(args["password"].get_ref<std::string&>());
    args.erase("password");
  }
  struct Wiped {
    std::string& secret;
    ~Wiped() { wipe(secret); }
  } wiped{password};
  if (args.contains("user") && args["user"].is_string()) user = args["user"].get<std::string>();
  bool certificate_mode = args.value("certificate", false);
  if (!certificate_mode && (user.empty() || password.empty()))
    co_return Response::failure(Error("Password mode needs a user name and a password; the ldm command supplies both "
                                      "(ldm migrate-domain [-p FILE] ldg1 [user@]host), or use -c"));
  if (password.size() > protocol::kMaxPassword)
    co_return Response::failure(Error(fmt::format("The password is longer than {} characters", protocol::kMaxPassword)));
  auto name = protocol::get_string(args, "name");
  auto target = protocol::get_string(args, "target");
  if (!name || !target) co_return Response::failure(!name ? name.error() : target.error());
  std::string target_name = args.value("target_name", *name);
  if (target_name.empty()) target_name = *name;
  bool dry_run = args.value("dry_run", false);
  auto started = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  };
  json summary = json::object();

  const model::Domain* d = model_.find(*name);
  if (*name == model::kPrimary) co_return Response::failure(Error(msg::primary_reserved("migrate-domain")));
  if (!d) co_return Response::failure(Error(msg::domain_not_found(*name)));
  if (auto r = claim(*name); !r) co_return Response::failure(r.error());
  auto og = std::make_shared<Outgoing>();
  outgoing_[*name] = og;
  struct Release {
    Daemon* self;
    std::string name;
    ~Release() {
      self->release(name);
      self->outgoing_.erase(name);
    }
  } release_on_exit{this, *name};
  auto cancelled = [&] { return Response::failure(Error(msg::migration_cancelled(*name))); };

  // ---- phase 1: the source's own checks, then connect, authenticate
  // (certificates), negotiate, and the target's checks; every failure is
  // reported together ----
  migration::SourceFacts facts;
  auto failures = co_await check_outgoing(*d, facts);
  d = model_.find(*name);
  if (!d) co_return Response::failure(Error(msg::domain_not_found(*name)));
  model::Domain domain = *d;

  std::string host = *target;
  auto give_up = [&](const Error& e) {
    if (og->cancel) return cancelled();
    failures.push_back(connection_failure(e, host));
    return refused(failures);
  };
  std::vector<std::string> notices;
  auto connected = co_await connect_peer(host, certificate_mode ? PeerTrust::Certificate : PeerTrust::Password, &notices);
  if (!connected) co_return give_up(connected.error());
  protocol::TlsStream& stream = **connected;
  og->stream = &stream;
  if (og->cancel) co_return cancelled();

  if (auto w = co_await protocol::write_message(stream, hello_message(model_.hostname)); !w)
    co_return give_up(w.error());
  auto hello = co_await protocol::expect_message(stream, "hello", kPeerTimeout);
  if (!hello) co_return give_up(hello.error());
  std::string target_host = hello->value("host", host);
  if (!certificate_mode) {
    if (auto w = co_await protocol::write_message(stream, auth_message(user, password)); !w)
      co_return give_up(w.error());
    wipe(password);
    auto authenticated = co_await protocol::expect_message(stream, "authenticated", kPeerTimeout);
    if (!authenticated) co_return give_up(authenticated.error());
  }

  if (auto w = co_await protocol::write_message(stream, domain_message("check", domain, target_name, dry_run, facts)); !w)
    co_return give_up(w.error());
  auto checked = co_await protocol::expect_message(stream, "checked", kPeerTimeout);
  if (!checked) co_return give_up(checked.error());
  auto theirs = failures_in(*checked, "failures");
  failures.insert(failures.end(), theirs.begin(), theirs.end());
  if (og->cancel) co_return cancelled();
  if (!failures.empty()) co_return refused(failures);
  co_await fault_point("source-checked");
  std::vector<std::string> warnings = notices;
  for (const auto& w : failures_in(*checked, "warnings")) warnings.push_back("Warning: " + line_of(w));
  if (dry_run) co_return Response{true, nullptr, warnings, {}};

  // ---- phase 2: both sides prepare ----
  model::MigrationStatus starting{"source", target_host, 0, false};
  starting.address = host;
  set_migration(*name, starting);
  auto undo = [&]() { set_migration(*name, model::MigrationStatus{}); };
  og->phase = Outgoing::Phase::Prepare;
  if (auto w = co_await protocol::write_message(stream, domain_message("prepare", domain, target_name, false, facts));
      !w) {
    undo();
    co_return og->cancel ? cancelled() : Response::failure(w.error());
  }
  // The target now allocates the guest's memory, the longest step before the
  // first byte: the source QEMU gets ready meanwhile.
  Result<> qemu_ready;
  if (domain.state == model::DomainState::Active) qemu_ready = co_await ready_outgoing_qemu(*name, target_host);
  auto prepared = co_await protocol::expect_message(stream, "prepared", kPeerTimeout);
  if (!prepared || og->cancel) {
    // A cancel that closed the connection: the target undoes what it made when it ends.
    undo();
    co_return og->cancel ? cancelled() : Response::failure(prepared.error());
  }

  // ---- phases 3 and 4: the QEMU stream (active domains only) ----
  summary["first_byte_ms"] = elapsed_ms();
  og->phase = Outgoing::Phase::Stream;
  if (domain.state == model::DomainState::Active) {
    Result<json> streamed;
    if (!qemu_ready)
      streamed = fail(qemu_ready.error());
    else
      streamed = co_await stream_memory(*name, prepared->value("address", host), prepared->value("port", 0), target_host,
                                        stream, *og);
    if (!streamed || og->cancel) {
      (void)co_await protocol::write_message(stream, abandon_message(streamed.error().text()));
      (void)co_await protocol::expect_message(stream, "abandoned", 10s);
      // QEMU resumes the guest itself when a migration fails before completing;
      // after completing it stays paused, so resume it here.
      if (auto it = monitors_.find(domain.uuid); it != monitors_.end()) (void)co_await it->second->execute("cont");
      undo();
      co_return og->cancel ? cancelled() : Response::failure(streamed.error());
    }
    summary["qemu_total_ms"] = streamed->value("total-time", 0);
    summary["qemu_downtime_ms"] = streamed->value("downtime", 0);
    if (streamed->contains("ram")) summary["bytes"] = (*streamed)["ram"].value("transferred", uint64_t{0});  // an int would wrap past 2 GiB
  }

  if (og->cancel) {  // bound and inactive domains: nothing to stop
    (void)co_await protocol::write_message(stream, abandon_message("cancelled"));
    (void)co_await protocol::expect_message(stream, "abandoned", 10s);
    undo();
    co_return cancelled();
  }

  // ---- phase 5: handoff (no cancel from here on) ----
  og->phase = Outgoing::Phase::Handoff;
  spdlog::info("migration of {}: stream done, committing", *name);
  // Journal first: from here on a restart must ask the target, not resume.
  model::MigrationStatus handing_off = with_address(model::MigrationStatus{"source", target_host, 100, false}, host);
  handing_off.handoff = true;
  set_migration(*name, handing_off);
  co_await fault_point("source-commit");
  if (auto w = co_await protocol::write_message(stream, simple_message("commit")); !w) {
    model::MigrationStatus broken = handing_off;
    broken.error = true;
    set_migration(*name, broken);
    co_return Response::failure(Error(fmt::format(
        "The connection to {} broke at the handoff; LDom {} is kept paused here in the error state. "
        "Check the target: if the domain runs there, remove it here; if not, run 'ldm cancel-operation migration {}'",
        target_host, *name, *name)));
  }
  auto committed = co_await protocol::expect_message(stream, "committed", kCommitTimeout);
  if (!committed) {
    model::MigrationStatus broken = handing_off;
    broken.error = true;
    set_migration(*name, broken);
    co_return Response::failure(Error(fmt::format(
        "{}; the handoff of LDom {} to {} was not acknowledged, so the domain is kept paused here in the error state. "
        "Check the target: if the domain runs there, remove it here; if not, run 'ldm cancel-operation migration {}'",
        committed.error().text(), *name, target_host, *name)));
  }
  spdlog::info("migration of {}: {} acknowledged the commit", *name, target_host);
  co_await finish_source(*name);
  summary["total_ms"] = elapsed_ms();
  spdlog::info("migration: {} now runs on {} as {} ({})", *name, target_host, target_name, summary.dump());
  co_return Response{true, summary, warnings, {}};
}

awaitable<Result<std::unique_ptr<protocol::TlsStream>>> Daemon::connect_peer(const std::string& host, PeerTrust trust,
                                                                               std::vector<std::string>* notices) {
  std::string port = std::to_string(protocol::kDefaultPeerPort);
  tcp::resolver resolver(io_);
  auto [rec, endpoints] = co_await resolver.async_resolve(host, port, kNoThrow);
  if (rec) co_return fail(fmt::format("Cannot resolve target host {}: {}", host, rec.message()));
  auto stream = std::make_unique<protocol::TlsStream>(io_, *client_tls_);
  // From this host's --listen address when it names one, so that the target
  // sees (and rate-limits, and logs) the address the operator configured.
  tcp::endpoint endpoint = *endpoints.begin();
  auto& socket = stream->lowest_layer();
  asio::error_code bind_error;
  socket.open(endpoint.protocol(), bind_error);
  if (!bind_error && listen_address_ && !listen_address_->is_unspecified() &&
      listen_address_->is_v4() == endpoint.address().is_v4())
    socket.bind(tcp::endpoint(*listen_address_, 0), bind_error);
  if (bind_error) co_return fail(fmt::format("Cannot open a connection to {}: {}", host, bind_error.message()));
  asio::steady_timer timer(io_, kConnectTimeout);
  auto connected = co_await (socket.async_connect(endpoint, kNoThrow) || timer.async_wait(kNoThrow));
  if (connected.index() == 1)
    co_return fail(fmt::format("Cannot connect to the Logical Domains Manager on {} port {}: no answer within {} seconds",
                               host, port, std::chrono::duration_cast<std::chrono::seconds>(kConnectTimeout).count()));
  if (auto [ec] = std::get<0>(connected); ec)
    co_return fail(fmt::format(
        "Cannot connect to the Logical Domains Manager on {} port {}: {}; is ldmd running there with --listen?", host,
        port, ec.message()));
  timer.expires_after(kConnectTimeout);
  auto shook = co_await (stream->async_handshake(asio::ssl::stream_base::client, kNoThrow) || timer.async_wait(kNoThrow));
  if (shook.index() == 1 || std::get<0>(std::get<0>(shook)))
    co_return fail(fmt::format("The secure connection to {} failed ({}); is the Logical Domains Manager listening there?",
                               host, shook.index() == 1 ? std::string("timed out") : std::get<0>(std::get<0>(shook)).message()));
  if (auto refused = judge_target(*stream, host, trust, notices); !refused.empty()) co_return fail(refused);
  co_return std::move(stream);
}

// Is the target the host the user meant? Returns why not, or "".
std::string Daemon::judge_target(protocol::TlsStream& stream, const std::string& host, PeerTrust trust,
                                 std::vector<std::string>* notices) {
  if (config_.tls_host_match && !protocol::certificate_names(stream, host))
    return fmt::format("The certificate of {} names {} but not {}: strict host-name matching is on (tls-host-match = "
                       "true); migrate to a name the certificate carries, or re-create that host's certificate",
                       host, protocol::certificate_names_text(stream), host);
  std::string untrusted = protocol::verification_error(stream);
  if (untrusted.empty()) return "";
  if (trust == PeerTrust::Certificate)
    return fmt::format("The certificate of {} is not trusted here ({}): copy {}'s STATE/tls/server.crt into "
                       "STATE/trust/{}.pem on this host and send ldmd SIGHUP, or migrate in password mode (without -c)",
                       host, untrusted, host, host);
  std::string fingerprint = protocol::peer_fingerprint(stream);
  if (trust == PeerTrust::Recovery) {
    // Pinned earlier, or refused: recovery never trusts a new certificate.
    if (!fingerprint.empty() && protocol::remembered_fingerprint(tls_, host) == fingerprint) return "";
    return fmt::format("The certificate of {} is neither trusted nor known here ({})", host, untrusted);
  }
  auto known = protocol::check_known_host(tls_, host, fingerprint);
  if (!known) return known.error().text();
  if (*known == protocol::KnownHost::Changed)
    return fmt::format("The certificate of {} has CHANGED since the last migration to it (SHA-256 now {}): someone "
                       "may be impersonating it. If {} was re-installed, remove its line from {} and try again",
                       host, fingerprint, host, tls_.known_hosts);
  if (*known == protocol::KnownHost::Added && notices)
    notices->push_back(fmt::format("Notice: first migration to {}: its certificate (SHA-256 {}) is now remembered in {}",
                                   host, fingerprint, tls_.known_hosts));
  return "";
}

awaitable<Response> Daemon::cancel_migration(const std::string& name, bool force) {
  const model::Domain* d = model_.find(name);
  if (!d) co_return Response::failure(Error(msg::domain_not_found(name)));
  const model::MigrationStatus m = d->migration;
  if (m.role.empty())
    co_return Response::failure(Error(fmt::format("No migration of LDom {} is in progress on this machine", name)));
  if (m.role == "target")
    co_return Response::failure(Error(fmt::format(
        "LDom {} is the target of a migration from {}; a machine cannot control a migration it is the target of: run "
        "'ldm cancel-operation migration {}' on {}",
        name, m.peer, name, m.peer)));
  if (m.error) co_return co_await recover_source(name, force);
  auto it = outgoing_.find(name);
  if (it == outgoing_.end())
    co_return Response::failure(Error(fmt::format("No migration of LDom {} is running in this ldmd", name)));
  auto og = it->second;
  if (og->phase == Outgoing::Phase::Handoff)
    co_return Response::failure(Error(fmt::format(
        "The handoff of LDom {} to {} has begun and can no longer be cancelled; it completes in a moment", name,
        m.peer)));
  og->cancel = true;
  if (og->phase != Outgoing::Phase::Stream && og->stream) {
    asio::error_code ignored;
    og->stream->lowest_layer().close(ignored);  // wakes the pending read; the target undoes its side
  }
  // Answer once the source runs as before and the target has let go.
  asio::steady_timer wait(io_);
  for (int i = 0; i < 3000 && outgoing_.contains(name); ++i) {
    wait.expires_after(20ms);
    co_await wait.async_wait(asio::use_awaitable);
  }
  if (outgoing_.contains(name))
    co_return Response::failure(Error(fmt::format("The migration of LDom {} did not stop within 60 seconds", name)));
  co_return Response{true, nullptr, {}, {}};
}

awaitable<std::string> Daemon::ask_target(protocol::TlsStream& stream, const std::string& uuid) {
  if (!co_await protocol::write_message(stream, hello_message(model_.hostname))) co_return "";
  auto hello = co_await protocol::expect_message(stream, "hello", kPeerTimeout);
  if (!hello) co_return "";
  if (!co_await protocol::write_message(stream, query_message(uuid))) co_return "";
  auto status = co_await protocol::expect_message(stream, "status", kPeerTimeout);
  if (!status) co_return "";
  // "committed": the target took the guest over (even if its QEMU died since):
  // the copy here is stale either way.
  if (status->value("running", false) || status->value("committed", false)) co_return "running";
  if (status->value("undecided", false)) co_return "";  // a commit is being applied there: ask again
  co_return "absent";
}

awaitable<Response> Daemon::recover_source(const std::string& name, bool force) {
  const model::Domain* d = model_.find(name);
  if (!d || d->migration.role != "source" || !d->migration.error) co_return Response{true, nullptr, {}, {}};
  if (reconciling_.contains(name))
    co_return Response::failure(Error(fmt::format(
        "LDom {} is being reconciled with {} right now; look at 'ldm list' again in a moment", name, d->migration.peer)));
  ScopedMember reconciling{reconciling_, name};
  std::string uuid = d->uuid, peer = d->migration.peer, address = d->migration.address;
  // Ask the target whether it runs the domain; resume here only if it does not.
  std::string verdict;
  auto connected = co_await connect_peer(address.empty() ? peer : address, PeerTrust::Recovery, nullptr);
  if (connected) verdict = co_await ask_target(**connected, uuid);
  if (verdict == "running") {
    // The handoff had completed: this copy is the stale one.
    co_await finish_source(name);
    Response done{true, nullptr, {}, {}};
    done.notices.push_back(fmt::format(
        "{} runs LDom {}: the migration had completed there, so the paused copy here was removed", peer, name));
    co_return done;
  }
  if (verdict.empty() && !force)
    co_return Response::failure(Error(fmt::format(
        "Cannot ask {} whether it runs LDom {}, so the copy here stays paused in the error state; retry when {} is "
        "reachable, or use -f if you know it does not run there (two running copies would corrupt its disks)",
        peer, name, peer)));
  const model::Domain* now = model_.find(name);
  if (now && now->state == model::DomainState::Active)
    if (auto it = monitors_.find(now->uuid); it != monitors_.end()) {
      auto qmp = it->second;
      auto cont = co_await qmp->execute("cont");
      if (!cont) co_return Response::failure(Error(fmt::format("Cannot resume LDom {}: {}", name, cont.error().text())));
    }
  set_migration(name, model::MigrationStatus{});
  spdlog::info("migration of {}: recovered on the source ({})", name, verdict.empty() ? "forced" : "target confirmed");
  co_return Response{true, nullptr, {}, {}};
}

awaitable<std::vector<migration::CheckFailure>> Daemon::check_outgoing(const model::Domain& domain,
                                                                     migration::SourceFacts& facts) {
  std::string run_state;
  bool active = domain.state == model::DomainState::Active;
  if (active) {
    run_state = "unknown";
    if (auto it = monitors_.find(domain.uuid); it != monitors_.end()) {
      auto status = co_await it->second->execute("query-status");
      if (status && status->contains("status") && (*status)["status"].is_string())
        run_state = (*status)["status"].get<std::string>();
    }
  }
  facts.accel = accel_ == hypervisor::Accelerator::Kvm ? "kvm" : "tcg";
  facts.qemu_version = qemu_caps_.version;
  facts.machine = active ? domain.runtime.machine : "";
  if (active && facts.machine.empty()) facts.machine = qemu_caps_.default_machine;
  facts.cpu_model = hypervisor::qemu::cpu_model(domain.cpu_arch, accel_);
  facts.cpu_flags = cpu_flags_;

  auto failures = migration::check_outgoing(model_, domain, run_state);
  if (!active) co_return failures;
  // Mark each volume so the target can tell whether it sees the same storage.
  auto mark = [volumes = migration::volume_backends(model_, domain)] { return services::survey_storage(volumes, true); };
  services::StorageSurvey marked = co_await offload(std::move(mark));
  facts.storage = marked.identities;
  for (const auto& [key, why] : marked.errors)
    failures.push_back({"vds", key, fmt::format("Volume {} cannot be read on this machine: {}", key, why),
                        "fix the volume's backend here first"});
  co_return failures;
}

awaitable<Result<>> Daemon::ready_outgoing_qemu(const std::string& name, const std::string& target_host) {
  auto monitor = monitor_of(name);
  if (!monitor) co_return fail(monitor.error());
  auto qmp = *monitor;
  (void)co_await qmp->execute("object-del", migration::object_id(migration::kTlsCredsId));
  // A named list, not a braced temporary: GCC 12 destroys the temporary of a
  // range-for twice when its body suspends.
  std::vector<std::pair<std::string, json>> steps = {
      {"object-add", migration::tls_credentials("client", tls_.qemu_dir)},
      {"migrate-set-capabilities", migration::events_capability()},
      {"migrate-set-parameters", migration::source_parameters(target_host)}};
  for (const auto& [cmd, args] : steps) {
    auto r = co_await qmp->execute(cmd, args);
    if (!r) co_return fail(r.error());
  }
  co_return Result<>{};
}

awaitable<Result<json>> Daemon::stream_memory(const std::string& name, const std::string& address, int port,
                                              const std::string& target_host, protocol::TlsStream& peer,
                                              Outgoing& og) {
  auto monitor = monitor_of(name);
  if (!monitor) co_return fail(monitor.error());
  auto qmp = *monitor;
  if (auto r = co_await qmp->execute("migrate", migration::uri_argument(address, port)); !r) co_return fail(r.error());
  if (fault_points_.contains("source-streaming")) {
    spdlog::warn("fault injection: stream of {} throttled to 4 MiB/s", name);
    (void)co_await qmp->execute("migrate-set-parameters", throttled_stream());
  }
  int progress = 0;
  int64_t downtime_limit = migration::kDowntimeLimitMs;
  auto last_report = std::chrono::steady_clock::now();
  asio::steady_timer tick(io_);
  auto deadline = std::chrono::steady_clock::now() + kStreamLimit;
  uint64_t sent = 0;
  auto last_sent = std::chrono::steady_clock::now();
  bool peer_alive = true;
  og.poll_timer = &tick;
  struct Detach {
    Outgoing& og;
    ~Detach() { og.poll_timer = nullptr; }
  } detach{og};
  for (;;) {
    // Every ms between QEMU finishing and the commit is guest-visible
    // downtime: the MIGRATION event ends the wait at once, and polling every
    // 10 ms notices what no event reports.
    if (!og.stream_ended) {
      tick.expires_after(10ms);
      (void)co_await tick.async_wait(kNoThrow);
    }
    og.stream_ended = false;
    if (og.cancel && !og.qemu_cancelled) {
      og.qemu_cancelled = true;
      spdlog::info("migration of {}: cancelled by the user", name);
      (void)co_await qmp->execute("migrate_cancel");
    }
    auto q = co_await qmp->execute("query-migrate");
    if (!q) co_return fail(q.error());
    std::string status = q->value("status", "");
    if (status == "completed") co_return std::move(*q);  // the caller checks og.cancel
    if (status == "failed" || status == "cancelled")
      co_return fail(fmt::format("QEMU's migration stream {}: {}", status, q->value("error-desc", "no reason given")));
    int pass = q->contains("ram") ? (*q)["ram"].value("dirty-sync-count", 1) : 1;
    if (int64_t limit = migration::downtime_limit_for_pass(pass); limit != downtime_limit) {
      downtime_limit = limit;
      (void)co_await qmp->execute("migrate-set-parameters", migration::downtime_parameter(limit));
      spdlog::info("migration of {}: pass {}, downtime limit now {} ms", name, pass, limit);
    }
    int next = migration::progress_of(*q, progress);
    auto now = std::chrono::steady_clock::now();
    // Recorded when the percentage moves, and at most twice a second otherwise.
    if (next != progress || now - last_report > 500ms) {
      progress = next;
      last_report = now;
      model::MigrationStatus report = with_address(migration::status_of(*q, "source", target_host, progress), address);
      set_migration(name, report);
      // The target shows the same progress in its own `ldm list -o status`.
      // Once a write has failed the peer is gone: QEMU's own stream decides.
      if (peer_alive) {
        auto w = co_await protocol::write_message(peer, progress_message(report));
        peer_alive = w.has_value();
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      (void)co_await qmp->execute("migrate_cancel");
      co_return fail("the migration did not converge within 15 minutes and was cancelled");
    }
    uint64_t transferred = q->contains("ram") ? (*q)["ram"].value("transferred", uint64_t{0}) : 0;
    if (transferred != sent) {
      sent = transferred;
      last_sent = now;
    } else if (now - last_sent > kStallLimit) {
      (void)co_await qmp->execute("migrate_cancel");
      co_return fail(fmt::format("the stream to {} sent nothing for {} seconds (is the network down?) and was cancelled",
                                 target_host, std::chrono::duration_cast<std::chrono::seconds>(kStallLimit).count()));
    }
  }
}

void Daemon::note_stream_status(const std::string& name, const std::string& status) {
  if (status != "completed" && status != "failed" && status != "cancelled") return;
  auto it = outgoing_.find(name);
  if (it == outgoing_.end()) return;
  it->second->stream_ended = true;
  if (it->second->poll_timer) it->second->poll_timer->cancel();
}

awaitable<void> Daemon::finish_source(const std::string& name) {
  const model::Domain* d = model_.find(name);
  if (!d) co_return;
  model::Domain copy = *d;
  if (copy.state == model::DomainState::Active) {
    stopping_.insert(copy.uuid);
    if (auto it = monitors_.find(copy.uuid); it != monitors_.end()) {
      auto qmp = it->second;
      (void)co_await qmp->execute("quit", nullptr, 5s);
      detach_monitor(copy.uuid);
    }
    bool gone = co_await wait_for_exit(copy.runtime.pid, 5s);
    if (!gone) {
      co_await kill_qemu(copy.runtime.pid);
    }
    remove_taps(copy);
    stopping_.erase(copy.uuid);
  }
  (void)mutate([&](model::HostModel& m) -> Result<> {
    std::erase_if(m.domains, [&](const model::Domain& x) { return x.name == name; });
    return {};
  });
}

}  // namespace ldm::daemon
