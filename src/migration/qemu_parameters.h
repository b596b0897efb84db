// QEMU's side of a migration: the QMP arguments we send and how we read its
// progress. Pure, and built outside coroutine bodies on purpose (GCC 12 cannot
// compile brace-initialised JSON inside one).
//
// Parameters are chosen, not inherited (peers-migration.md §10): QEMU 7.2's
// default 128 MiB/s cap keeps a busy guest from ever converging, while an
// uncapped stream converges in seconds with a short pause.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "model/domain.h"

namespace ldm::migration {

inline constexpr const char* kTlsCredsId = "ldm-migration-tls";
inline constexpr int64_t kMaxBandwidth = int64_t{10} << 30;  // bytes/s: effectively uncapped on one host
inline constexpr int64_t kDowntimeLimitMs = 50;               // first passes: QEMU switches over below this
inline constexpr int64_t kDowntimeCeilingMs = 250;            // escalation never goes above this

nlohmann::json tls_credentials(const std::string& endpoint, const std::string& dir);
// events, plus auto-converge: QEMU throttles the vCPUs only while the guest
// dirties memory faster than it can be sent.
nlohmann::json events_capability();
// Convergence policy: the downtime QEMU may aim for at dirty-sync pass `pass`
// (1-based): 50 ms for the first two passes, then 50 ms more per pass up to
// 250 ms, so a busy guest still converges with a pause users do not notice.
int64_t downtime_limit_for_pass(int pass);
nlohmann::json downtime_parameter(int64_t ms);
nlohmann::json source_parameters(const std::string& tls_hostname);
nlohmann::json target_parameters();
nlohmann::json uri_argument(const std::string& address, int port);
nlohmann::json object_id(const std::string& id);

// A migration to nowhere that a new TCG guest starts and cancels before it
// first runs (Daemon::consume_boot_dirty_marks): the stream is discarded and
// capped at 1 MiB/s so that it cannot complete before the cancel.
nlohmann::json discard_uri_argument();
nlohmann::json discard_parameters();

// Progress as a percentage from query-migrate: never more than 99 until QEMU
// says completed, and never less than `previous` (progress must not go back).
int progress_of(const nlohmann::json& query_migrate, int previous);

// Everything `ldm list -o status --json` shows, from one query-migrate.
model::MigrationStatus status_of(const nlohmann::json& query_migrate, const std::string& role, const std::string& peer,
                                 int progress);

}  // namespace ldm::migration
