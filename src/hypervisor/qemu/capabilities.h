// What the host's QEMU and CPU offer, for starting guests and for the CPU
// checks of a migration (the target must run what the source runs).
//
// Parsing is pure (unit-tested on captured `-machine help` and `-cpu help`
// output); probing runs QEMU and reads /proc and /sys, so call it off the
// event loop.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace ldm::hypervisor::qemu {

struct Capabilities {
  std::string version;                  // "7.2.22"
  std::string default_machine;          // what "pc" stands for, e.g. "pc-i440fx-7.2"
  std::vector<std::string> machines;    // every machine type, aliases included
  std::vector<std::string> cpu_models;  // every -cpu model, aliases included
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Capabilities, version, default_machine, machines, cpu_models)

// `qemu-system-x86_64 --version`, `-machine help`, `-cpu help` output in.
Capabilities parse_capabilities(const std::string& version_text, const std::string& machine_help,
                                const std::string& cpu_help);
Result<Capabilities> probe_capabilities(const std::string& qemu_binary);

// The host CPU's feature flags (/proc/cpuinfo), sorted.
std::vector<std::string> parse_cpu_flags(const std::string& cpuinfo);
std::vector<std::string> host_cpu_flags();

// Free huge pages by page size in bytes (/sys/kernel/mm/hugepages).
std::map<uint64_t, uint64_t> free_hugepages();

}  // namespace ldm::hypervisor::qemu
