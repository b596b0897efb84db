// Starting and ending QEMU processes. QEMU daemonizes, so it outlives ldmd;
// ldmd finds it again by its pidfile and checks the UUID on its command line.
// Blocking: call from the pool.
#pragma once

#include <string>
#include <sys/types.h>

#include "base/result.h"
#include "hypervisor/launch_spec.h"

namespace ldm::hypervisor::qemu {

// Starts QEMU for `spec` and returns its PID once it is initialized.
Result<pid_t> launch(const LaunchSpec& spec);

// True when `pid` is a live QEMU of the domain with `uuid`.
bool is_domain_process(pid_t pid, const std::string& uuid);

// Reads a pidfile; 0 when missing or unreadable.
pid_t read_pidfile(const std::string& path);

// SIGKILL, then waits up to two seconds for the process to disappear.
void kill_process(pid_t pid);

}  // namespace ldm::hypervisor::qemu
