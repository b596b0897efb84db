// Fuzzes what ldmd reads from another host: the 4-byte frame header, the JSON
// message and its shape, then what the target makes of a shaped message —
// the domain described, the source's facts, a migration status — and the
// target's checks run on that domain. Input: header bytes then payload.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "migration/checks.h"
#include "model/domain.h"
#include "protocol/frame.h"

using json = nlohmann::json;
using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  (void)protocol::decode_length({data[0], data[1], data[2], data[3]});
  auto message = protocol::decode_message(std::string(reinterpret_cast<const char*>(data + 4), size - 4));
  if (!message) return 0;
  const json& m = *message;
  // ldmd catches json::exception around these reads; anything else would end it.
  try {
    if (m.contains("status")) (void)m["status"].get<model::MigrationStatus>();
  } catch (const json::exception&) {
  }
  model::Domain domain;
  migration::SourceFacts source;
  try {
    if (!m.contains("domain")) return 0;
    domain = m["domain"].get<model::Domain>();
    if (m.contains("source")) source = m["source"].get<migration::SourceFacts>();
  } catch (const json::exception&) {
    return 0;
  }
  model::HostModel host;
  host.capacity = {4, 2ULL << 30};
  migration::TargetFacts facts;
  facts.accel = "tcg";
  facts.port_free = [](int) { return true; };
  std::string target_name = m.contains("target_name") ? m["target_name"].get<std::string>() : domain.name;
  auto report = migration::check_incoming(host, domain, target_name, source, facts);
  if (report.failures.empty()) (void)migration::incoming_domain(domain, target_name);
  return 0;
}
