// Phase 1 of a migration: every check the target runs on the domain it is
// offered, for that domain's state. Pure: the target's model in, all the
// failures out (the original stops at the first; we report them all).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/domain.h"

namespace ldm::migration {

struct CheckFailure {
  std::string check;     // cpu, memory, name, vds, vsw, vcc, mac, ...
  std::string resource;  // what failed: a volume, a switch, a number
  std::string message;   // the sentence ldm prints
  std::string remedy;    // what fixes it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CheckFailure, check, resource, message, remedy)

// Checks whether `target` can receive `domain` under the name `target_name`.
// Active and bound domains need CPU and memory; active ones also their
// virtual I/O (volumes, switches, a console port); inactive ones only a free name.
std::vector<CheckFailure> check_incoming(const model::HostModel& target, const model::Domain& domain,
                                         const std::string& target_name, const std::function<bool(int)>& port_free);

// The domain as the target will record it: same UUID, constraints, MACs and
// variables; new name; console group = new name; nothing bound yet.
model::Domain incoming_domain(const model::Domain& domain, const std::string& target_name);

}  // namespace ldm::migration
