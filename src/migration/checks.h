// Phase 1 of a migration: every check, for the domain's state. Pure: models
// and facts in, all the failures out (the original stops at the first; we
// report them all). The source checks what only it can see (its own policy,
// the guest's run-state, physical I/O); the target checks everything else
// against the facts the source sends.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hypervisor/qemu/capabilities.h"
#include "model/domain.h"
#include "services/storage.h"

namespace ldm::migration {

struct CheckFailure {
  std::string check;     // cpu, memory, name, vds, vsw, vcc, mac, io, state, policy, reconf, ...
  std::string resource;  // what failed: a volume, a switch, a number
  std::string message;   // the sentence ldm prints
  std::string remedy;    // what fixes it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CheckFailure, check, resource, message, remedy)

// What the source tells the target about how the domain runs.
struct SourceFacts {
  std::string accel;         // "kvm" or "tcg"
  std::string qemu_version;  // "7.2.22"
  std::string machine;       // the versioned machine type the guest runs (active), else the source's default
  std::string cpu_model;     // QEMU's -cpu model
  std::vector<std::string> cpu_flags;                        // the source host CPU's flags
  std::map<std::string, services::StorageIdentity> storage;  // by "vol@vds"
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SourceFacts, accel, qemu_version, machine, cpu_model, cpu_flags, storage)

// What the target finds on itself.
struct TargetFacts {
  std::string accel;
  hypervisor::qemu::Capabilities qemu;
  std::vector<std::string> cpu_flags;
  std::map<uint64_t, uint64_t> free_hugepages;               // page size -> free pages
  std::map<std::string, services::StorageIdentity> storage;  // its view of the domain's volumes, by "vol@vds"
  std::map<std::string, std::string> storage_errors;         // volumes it could not read, and why
  std::function<bool(int)> port_free;                        // can a console listen on this port
};

struct CheckReport {
  std::vector<CheckFailure> failures;
  std::vector<CheckFailure> warnings;  // soft constraints: reported, not refused
};

// Source side: the host's power policy and pending reconfigurations, the
// guest's run-state (QEMU's, "" when not active), physical I/O.
std::vector<CheckFailure> check_outgoing(const model::HostModel& source, const model::Domain& domain,
                                         const std::string& run_state);

// Target side: whether `target` can receive `domain` under `target_name`.
// Inactive domains need only a free name and UUID; bound ones also CPU,
// memory and their I/O names; active ones everything.
CheckReport check_incoming(const model::HostModel& target, const model::Domain& domain, const std::string& target_name,
                           const SourceFacts& source, const TargetFacts& facts);

// The domain as the target will record it: same UUID, constraints, MACs and
// variables; new name; console group = new name; nothing bound yet.
model::Domain incoming_domain(const model::Domain& domain, const std::string& target_name);

// "vol@vds" of a vdisk, the key of storage maps.
std::string volume_key(const model::VirtualDisk& disk);
// ("vol@vds", backend path) of each vdisk of `domain` that `host` defines.
std::vector<std::pair<std::string, std::string>> volume_backends(const model::HostModel& host,
                                                                 const model::Domain& domain);

}  // namespace ldm::migration
