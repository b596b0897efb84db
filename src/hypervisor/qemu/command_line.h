// Builds the QEMU command line for a domain. Pure, so it is golden-tested.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hypervisor/launch_spec.h"

namespace ldm::hypervisor::qemu {

// The -cpu model for a cpu-arch: native is the host CPU (KVM) or "max" (TCG);
// generic and migration-class1 are named models every target can provide.
std::string cpu_model(const std::string& cpu_arch, Accelerator accel);

// Extra RAM given to a TCG guest so QEMU tracks its dirty pages correctly
// during migration (see command_line.cc).
inline constexpr uint64_t kTcgRamPadding = 8 * 1024;

std::vector<std::string> command_line(const LaunchSpec& spec);

}  // namespace ldm::hypervisor::qemu
