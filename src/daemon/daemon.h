// ldmd's core: owns the host's model, its store and the QEMU processes of its
// active domains, and answers control requests.
//
// Threading: everything here runs on one asio event loop. Blocking work (ip,
// spawning QEMU, fsync-heavy store writes are fast enough to stay) goes to a
// small pool through offload(). The model is only touched between co_awaits,
// so each mutate() is atomic with respect to other requests.
//
// Every change follows one rule: apply it to a copy of the model, persist the
// copy in one store transaction, and only then make it current and answer.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <asio.hpp>

#include "base/result.h"
#include "daemon/config.h"
#include "hypervisor/launch_spec.h"
#include "hypervisor/qemu/capabilities.h"
#include "migration/checks.h"
#include "hypervisor/qemu/qmp_client.h"
#include "model/domain.h"
#include "protocol/control.h"
#include "protocol/peer.h"
#include "protocol/tls.h"
#include "daemon/authentication.h"
#include "store/store.h"

namespace ldm::daemon {

class Daemon {
 public:
  Daemon(asio::io_context& io, DaemonConfig config, std::unique_ptr<store::Store> store, model::HostModel model);
  ~Daemon();

  // Re-attaches to the QEMU processes of domains the store says are active.
  asio::awaitable<void> adopt_domains();

  asio::awaitable<protocol::Response> handle(protocol::Request request);

  // Creates the host certificate if needed and listens for other hosts' ldmd
  // on the --listen address (TLS only).
  Result<> start_peer_listener();
  // Re-reads STATE/trust (SIGHUP).
  Result<> reload_trust();
  // Applies a new power policy from the re-read configuration (SIGHUP).
  Result<> set_power_policy(model::PowerPolicy policy);

  [[nodiscard]] const model::HostModel& model() const { return model_; }

 private:
  // Applies `change` to a copy of the model and persists it; the copy becomes
  // current only when both succeed.
  template <class Change>
  Result<> mutate(Change&& change);

  template <class F>
  asio::awaitable<std::invoke_result_t<F>> offload(F f);

  // Marks a domain busy for the length of a long operation (start, stop).
  Result<> claim(const std::string& name);
  void release(const std::string& name) { busy_.erase(name); }
  // "LDom X to hostB" for the first migration this host takes part in, or "".
  std::string migration_in_progress() const;
  // Refuses a change to `name` while it migrates, or while it is busy.
  Result<> may_change(const std::string& name) const;
  // Refuses bind and stop of any domain while a migration runs on this host.
  Result<> may_bind_or_stop(const std::string& name, const std::string& operation) const;

  protocol::Response configure(const protocol::Request& request);
  asio::awaitable<protocol::Response> add_switch(const protocol::Request& request);
  asio::awaitable<protocol::Response> remove_switch(const protocol::Request& request);
  asio::awaitable<protocol::Response> add_volume(const protocol::Request& request);
  asio::awaitable<Result<>> start_domain(const std::string& name);
  asio::awaitable<Result<>> stop_domain(const std::string& name, bool force, int timeout_seconds);
  protocol::Response snapshot() const;

  // Migration, source side (migration_source.cc).
  asio::awaitable<protocol::Response> migrate(protocol::Request& request);
  // An outgoing migration, for cancel-operation: where it is and how to stop it.
  struct Outgoing {
    enum class Phase { Check, Prepare, Stream, Handoff };
    Phase phase = Phase::Check;
    bool cancel = false;
    bool qemu_cancelled = false;
    protocol::TlsStream* stream = nullptr;  // closed to interrupt phases 1-2
    // Phase 3 polls QEMU on this timer; QEMU's MIGRATION event for the end of
    // the stream cuts the wait short (the guest is paused until the commit).
    asio::steady_timer* poll_timer = nullptr;
    bool stream_ended = false;
  };
  asio::awaitable<protocol::Response> cancel_migration(const std::string& name, bool force);
  // The source in the error state: resumes it when the target does not run
  // the domain (or with `force`), removes it when the target does.
  asio::awaitable<protocol::Response> recover_source(const std::string& name, bool force);
  // "running", "absent", or "" when the target could not say.
  asio::awaitable<std::string> ask_target(protocol::TlsStream& stream, const std::string& uuid);
  // How the source judges the target's certificate: in certificate mode it
  // must be trusted; in password mode a trusted or pinned one will do, and an
  // unknown one is pinned (a notice says so); Recovery pins nothing new.
  enum class PeerTrust { Certificate, Password, Recovery };
  asio::awaitable<Result<std::unique_ptr<protocol::TlsStream>>> connect_peer(const std::string& host, PeerTrust trust,
                                                                             std::vector<std::string>* notices);
  std::string judge_target(protocol::TlsStream& stream, const std::string& host, PeerTrust trust,
                           std::vector<std::string>* notices);
  // Test-only fault injection (LDMD_FAULT_PAUSE=point[,point...], LDMD_FAULT_SECONDS):
  // stops this migration step for a while at a named point so a test can cut
  // the link or kill a process there. Points: source-checked (phase 1 done),
  // source-streaming (not a pause: the stream is throttled to 4 MiB/s),
  // source-commit (stream complete, commit not yet sent), target-committed
  // (commit recorded and the guest resumed, acknowledgement not yet sent).
  asio::awaitable<void> fault_point(const char* point);
  // After a restart: finish or undo each migration the store says was under way.
  asio::awaitable<void> recover_migrations();
  // Every few seconds: a source in the error state asks its target again.
  asio::awaitable<void> reconcile_loop();
  // Target side of password mode: PAM, the admin group, the rate limit.
  asio::awaitable<nlohmann::json> authenticate_peer(nlohmann::json& message, const std::string& remote);
  // QEMU reported the outgoing stream of `name` in `status`: wakes phase 3 when it ended.
  void note_stream_status(const std::string& name, const std::string& status);
  // The source QEMU's credentials, capabilities and parameters, set while the
  // target starts its QEMU.
  asio::awaitable<Result<>> ready_outgoing_qemu(const std::string& name, const std::string& target_host);
  // Starts the stream on a readied QEMU; returns QEMU's final query-migrate
  // (total time, downtime, bytes).
  asio::awaitable<Result<nlohmann::json>> stream_memory(const std::string& name, const std::string& address, int port,
                                                        const std::string& target_host, protocol::TlsStream& peer,
                                                        Outgoing& outgoing);
  asio::awaitable<void> finish_source(const std::string& name);
  // Phase 1 on the source: its own checks and the facts the target needs.
  asio::awaitable<std::vector<migration::CheckFailure>> check_outgoing(const model::Domain& domain,
                                                                       migration::SourceFacts& facts);
  // Migration, target side (migration_target.cc).
  asio::awaitable<void> accept_peers(std::shared_ptr<asio::ip::tcp::acceptor> acceptor);
  asio::awaitable<void> serve_peer(asio::ip::tcp::socket socket);
  asio::awaitable<Result<migration::CheckReport>> check_offer(const nlohmann::json& message);
  asio::awaitable<Result<nlohmann::json>> prepare_incoming(const nlohmann::json& message, const std::string& source,
                                                          const std::string& local_address);
  asio::awaitable<Result<>> commit_incoming(const std::string& name);
  asio::awaitable<void> abandon_incoming(const std::string& name);
  // Starts QEMU for `spec` (taps first); kills what it made on failure.
  asio::awaitable<Result<pid_t>> launch_process(const hypervisor::LaunchSpec& spec);
  void set_migration(const std::string& name, model::MigrationStatus status);

  // Runtime of an active domain.
  Result<hypervisor::LaunchSpec> launch_spec(const model::Domain& domain) const;
  asio::awaitable<Result<>> attach_monitor(const std::string& name);
  // The connected QEMU monitor of active domain `name`.
  Result<std::shared_ptr<hypervisor::qemu::QmpClient>> monitor_of(const std::string& name) const;
  asio::awaitable<Result<>> consume_boot_dirty_marks(const std::string& name);
  // The handlers of a running domain's monitor: its events logged (and the end
  // of an outgoing stream noticed), its closing settled.
  void watch_monitor(const std::string& name, const std::string& uuid,
                     const std::shared_ptr<hypervisor::qemu::QmpClient>& client);
  void on_monitor_closed(const std::string& name, const std::string& uuid, const std::string& reason);
  asio::awaitable<void> settle_dead_domain(std::string name, std::string reason);
  asio::awaitable<bool> wait_for_exit(int pid, std::chrono::milliseconds timeout);
  void remove_taps(const model::Domain& domain);
  // Forgets and closes a domain's monitor without running its close handler
  // (we are ending that QEMU on purpose).
  void detach_monitor(const std::string& uuid);
  // The domain's QEMU is gone: remove its taps and record it bound, with
  // `last_exit` saying why when it was not asked to stop.
  Result<> record_stopped(const std::string& name, const std::string& last_exit);
  // SIGKILL a QEMU of ours and wait for it to go (on the pool).
  asio::awaitable<void> kill_qemu(int pid);

  std::string run_path(const model::Domain& d, const char* suffix) const;

  asio::io_context& io_;
  DaemonConfig config_;
  std::unique_ptr<store::Store> store_;
  model::HostModel model_;
  asio::thread_pool pool_{2};
  std::string host_tag_;
  hypervisor::Accelerator accel_;
  hypervisor::qemu::Capabilities qemu_caps_;
  std::vector<std::string> cpu_flags_;
  std::map<std::string, std::shared_ptr<hypervisor::qemu::QmpClient>> monitors_;  // by uuid
  std::set<std::string> busy_;      // domain names with an operation in progress
  std::map<std::string, std::shared_ptr<Outgoing>> outgoing_;  // by domain name
  std::set<std::string> stopping_;  // uuids whose QEMU we are ending on purpose
  protocol::TlsPaths tls_;
  AuthLimiter auth_limiter_;
  std::set<std::string> fault_points_;
  int fault_seconds_ = 30;
  std::set<std::string> committing_, reconciling_;
  // Membership of `name` in one of those sets for as long as a step runs.
  struct ScopedMember {
    ScopedMember(std::set<std::string>& set, std::string name) : set_(set), name_(std::move(name)) { set_.insert(name_); }
    ~ScopedMember() { set_.erase(name_); }
    ScopedMember(const ScopedMember&) = delete;
    ScopedMember& operator=(const ScopedMember&) = delete;

   private:
    std::set<std::string>& set_;
    std::string name_;
  };
  std::optional<asio::ip::address> listen_address_;  // outgoing connections start from it
  std::shared_ptr<asio::ssl::context> server_tls_, client_tls_;
};

// ---- templates used by both daemon.cc and runtime.cc ----

template <class Change>
Result<> Daemon::mutate(Change&& change) {
  model::HostModel next = model_;
  if (auto r = change(next); !r) return r;
  if (auto r = store_->save(model_, next); !r) return r;
  model_ = std::move(next);
  return {};
}

// Runs `f` on the pool and resumes the awaiting coroutine on its own executor.
// Deliberately not a coroutine: GCC 12 mishandles closures passed by value to
// coroutines (asio's co_spawn entry point is one), freeing their captures twice.
template <class F>
asio::awaitable<std::invoke_result_t<F>> Daemon::offload(F f) {
  using R = std::invoke_result_t<F>;
  return asio::async_initiate<const asio::use_awaitable_t<>, void(R)>(
      [this](auto handler, F work) {
        asio::post(pool_, [handler = std::move(handler), work = std::move(work)]() mutable {
          R result = work();
          auto home = asio::get_associated_executor(handler);
          asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable, std::move(f));
}

}  // namespace ldm::daemon
