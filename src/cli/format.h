// ldm's output layouts, as pure functions of a daemon snapshot, so each is
// golden-tested: the table of `ldm list`, its long form (-l), the parseable
// form (-p), the per-section form (-o), JSON (--json), and XML for
// list-constraints -x.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "model/domain.h"

namespace ldm::cli {

// What ldmd reports in answer to "snapshot".
struct Snapshot {
  nlohmann::json host;  // hostname, cpus, memory, uptime, accel
  model::HostModel model;
  nlohmann::json stats;  // per domain: util, uptime
};
Result<Snapshot> snapshot_from_json(const nlohmann::json& j);

struct ListOptions {
  bool long_form = false;   // -l
  bool parseable = false;   // -p
  bool json = false;        // --json
  bool xml = false;         // -x (list-constraints)
  std::vector<std::string> sections;  // -o memory,status,...
  std::vector<std::string> domains;   // empty = all
};

// Fails when a named domain does not exist or an -o section is unknown.
Result<std::string> list_domain(const Snapshot& s, const ListOptions& o);
Result<std::string> list_bindings(const Snapshot& s, const ListOptions& o);
Result<std::string> list_services(const Snapshot& s, const ListOptions& o);
Result<std::string> list_devices(const Snapshot& s, const ListOptions& o);
Result<std::string> list_constraints(const Snapshot& s, const ListOptions& o);

// "45d 8h 6m", "2h 7m", "12s": ldm's UPTIME column.
std::string format_uptime(int64_t seconds);

}  // namespace ldm::cli
