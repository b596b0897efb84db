// Everything needed to start one domain's QEMU: the domain plus the host-side
// names the daemon chose for it (sockets, taps, backend paths).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/domain.h"

namespace ldm::hypervisor {

enum class Accelerator { Kvm, Tcg };

struct DiskBackend {
  std::string path;
  std::string format = "raw";
  bool read_only = false;
};

struct LaunchSpec {
  model::Domain domain;
  Accelerator accel = Accelerator::Tcg;
  std::string qemu_binary = "qemu-system-x86_64";
  std::string machine = "pc";  // versioned when known (pc-i440fx-7.2): a migration target must match it
  std::string qmp_socket;
  std::string pidfile;
  std::string console_log;
  std::string console_address = "127.0.0.1";
  std::map<std::string, DiskBackend> disks;  // vdisk name -> backend
  std::map<std::string, std::string> taps;   // vnet name -> tap device
  bool incoming = false;                      // wait for a migration stream (-incoming defer)
  bool paused = false;                        // start with the vCPUs stopped (-S)
  int prealloc_threads = 1;                   // threads QEMU allocates the guest's memory with at start
};

}  // namespace ldm::hypervisor
