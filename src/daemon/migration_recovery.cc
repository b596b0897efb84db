// Migration, after a fault: what a restarted ldmd does with the migrations its
// store says were under way, and the loop that settles a source left in the
// error state as soon as its target can be asked.
//
// The rules (SPEC §3): before the handoff mark the source owns the guest, so a
// restarted source resumes it and a restarted target removes its copy; once
// the target has recorded the commit it owns the guest, so a restarted target
// resumes it; a source past its own handoff mark never decides alone — it
// stays paused (FLAGS e) until the target says whether it runs the domain.
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/async.h"
#include "daemon/daemon.h"

namespace ldm::daemon {

using asio::awaitable;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

bool still_streaming(const std::string& status) {
  return status == "setup" || status == "active" || status == "pre-switchover" || status == "device" ||
         status == "wait-unplug" || status == "cancelling";
}

}  // namespace

awaitable<void> Daemon::recover_migrations() {
  std::vector<model::Domain> rows;
  for (const auto& d : model_.domains)
    if (!d.migration.role.empty()) rows.push_back(d);
  for (const auto& d : rows) {
    const model::MigrationStatus& m = d.migration;
    if (m.role == "target" && !m.handoff) {
      spdlog::warn("migration of {} from {}: never committed before ldmd stopped; removing the incoming copy", d.name,
                   m.peer);
      co_await abandon_incoming(d.name);
      continue;
    }
    if (m.role == "target") {  // committed here: the guest is ours, make sure it runs
      if (auto it = monitors_.find(d.uuid); it != monitors_.end()) {
        auto qmp = it->second;
        (void)co_await qmp->execute("cont");
      }
      set_migration(d.name, model::MigrationStatus{});
      spdlog::info("migration of {} from {}: the commit was recorded here; finished", d.name, m.peer);
      continue;
    }
    if (m.handoff || m.error) {
      model::MigrationStatus waiting = m;
      waiting.error = true;
      set_migration(d.name, waiting);
      spdlog::warn("migration of {} to {}: the handoff had begun; kept paused in the error state until {} says "
                   "whether it runs the domain",
                   d.name, m.peer, m.peer);
      continue;
    }
    // Before the handoff: the target cannot have resumed it. Stop the stream
    // if QEMU still sends it, and resume the guest here.
    if (auto it = monitors_.find(d.uuid); it != monitors_.end()) {
      auto qmp = it->second;
      auto query = co_await qmp->execute("query-migrate");
      std::string status = query ? query->value("status", std::string()) : std::string();
      if (still_streaming(status)) {
        (void)co_await qmp->execute("migrate_cancel");
        asio::steady_timer wait(io_);
        for (int i = 0; i < 50; ++i) {
          wait.expires_after(100ms);
          co_await wait.async_wait(kNoThrow);
          auto again = co_await qmp->execute("query-migrate");
          if (!again || !still_streaming(again->value("status", std::string()))) break;
        }
      }
      auto run_state = co_await qmp->execute("query-status");
      bool running = run_state && run_state->value("status", std::string()) == "running";
      if (!running) (void)co_await qmp->execute("cont");
    }
    set_migration(d.name, model::MigrationStatus{});
    spdlog::warn("migration of {} to {}: interrupted before the handoff by an ldmd restart; the domain runs here",
                 d.name, m.peer);
  }
}

awaitable<void> Daemon::reconcile_loop() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(3s);
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;
    std::vector<std::string> waiting;
    for (const auto& d : model_.domains)
      if (d.migration.role == "source" && d.migration.error && !reconciling_.contains(d.name)) waiting.push_back(d.name);
    for (const auto& name : waiting) {
      auto settled = co_await recover_source(name, false);
      if (settled.ok) spdlog::info("migration of {}: reconciled with the target", name);
    }
  }
}

}  // namespace ldm::daemon
