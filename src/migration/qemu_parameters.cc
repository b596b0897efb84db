#include "migration/qemu_parameters.h"

#include <algorithm>

#include <fmt/format.h>

namespace ldm::migration {

using json = nlohmann::json;

json tls_credentials(const std::string& endpoint, const std::string& dir) {
  return {{"qom-type", "tls-creds-x509"}, {"id", kTlsCredsId}, {"endpoint", endpoint}, {"dir", dir},
          {"verify-peer", true}};
}

json events_capability() {
  return {{"capabilities", json::array({{{"capability", "events"}, {"state", true}},
                                        {{"capability", "auto-converge"}, {"state", true}}})}};
}

int64_t downtime_limit_for_pass(int pass) {
  if (pass <= 2) return kDowntimeLimitMs;
  return std::min<int64_t>(kDowntimeCeilingMs, kDowntimeLimitMs + int64_t{50} * (pass - 2));
}

json downtime_parameter(int64_t ms) { return {{"downtime-limit", ms}}; }

json source_parameters(const std::string& tls_hostname) {
  return {{"max-bandwidth", kMaxBandwidth}, {"downtime-limit", kDowntimeLimitMs}, {"tls-creds", kTlsCredsId},
          {"tls-hostname", tls_hostname}};
}

json target_parameters() { return {{"tls-creds", kTlsCredsId}}; }

json uri_argument(const std::string& address, int port) {
  bool v6 = address.find(':') != std::string::npos;
  return {{"uri", v6 ? fmt::format("tcp:[{}]:{}", address, port) : fmt::format("tcp:{}:{}", address, port)}};
}

json object_id(const std::string& id) { return {{"id", id}}; }

json discard_uri_argument() { return json{{"uri", "exec:cat > /dev/null"}}; }

json discard_parameters() { return json{{"max-bandwidth", int64_t{1} << 20}}; }

int progress_of(const json& q, int previous) {
  std::string status = q.value("status", "");
  if (status == "completed") return 100;
  if (!q.contains("ram") || !q["ram"].is_object()) return previous;
  const json& ram = q["ram"];
  double transferred = ram.value("transferred", 0.0), remaining = ram.value("remaining", 0.0);
  double total = ram.value("total", 0.0);
  // Zero pages are skipped rather than sent, so count what is no longer remaining.
  double done = total > 0 ? (total - remaining) / total : transferred / std::max(1.0, transferred + remaining);
  int percent = static_cast<int>(std::clamp(done * 100.0, 0.0, 99.0));
  return std::max(previous, percent);
}

model::MigrationStatus status_of(const json& q, const std::string& role, const std::string& peer, int progress) {
  model::MigrationStatus s{role, peer, progress, false};
  s.expected_downtime_ms = q.value("expected-downtime", int64_t{0});
  if (!q.contains("ram") || !q["ram"].is_object()) return s;
  const json& ram = q["ram"];
  s.transferred = ram.value("transferred", uint64_t{0});
  s.remaining = ram.value("remaining", uint64_t{0});
  s.rate_mbps = ram.value("mbps", 0.0);
  s.dirty_rate = ram.value("dirty-pages-rate", 0.0);
  s.pass = ram.value("dirty-sync-count", 0);
  return s;
}

}  // namespace ldm::migration
