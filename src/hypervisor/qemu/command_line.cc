#include "hypervisor/qemu/command_line.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/size.h"

namespace ldm::hypervisor::qemu {

std::string cpu_model(const std::string& cpu_arch, Accelerator accel) {
  if (cpu_arch == "generic") return "qemu64";
  if (cpu_arch == "migration-class1") return "Nehalem";
  return accel == Accelerator::Kvm ? "host" : "max";
}

std::vector<std::string> command_line(const LaunchSpec& spec) {
  const model::Domain& d = spec.domain;
  std::vector<std::string> a = {spec.qemu_binary, "-name", "guest=" + d.name + ",debug-threads=on", "-uuid", d.uuid,
                                "-nodefaults", "-no-user-config", "-display", "none",
                                "-machine", spec.machine + (spec.accel == Accelerator::Kvm ? ",accel=kvm" : ",accel=tcg"),
                                "-cpu", cpu_model(d.cpu_arch, spec.accel), "-smp", std::to_string(d.vcpus)};

  // Memory: one backend for the main RAM, allocated in full at start. Bound
  // memory is the domain's (LDoms reserves it; so do we), and memory never
  // touched would otherwise be allocated and zeroed by the host kernel while
  // the migration stream reads it on the source and writes it on the target:
  // measured on this machine, that made an idle 256 MiB guest's stream 2-4x
  // slower and left the target 80-100 ms behind at the switchover
  // (bench/results/migration.md). Hugepage-backed domains get the page size
  // they were bound with.
  uint64_t size = d.memory_size();
  uint64_t page = d.memory.empty() ? 4096 : d.memory.front().page_size;
  // Under TCG, QEMU 7.2 syncs the dirty bitmap of a RAM block whose length is a
  // multiple of 64 pages on a fast path that does not re-arm TCG's write
  // tracking, so writes to a page whose TLB entry stays hot are lost to the
  // migration (measured: the guest's stack page differed after migration).
  // 8 KiB more makes the block unaligned and QEMU takes the per-page path,
  // which re-arms tracking. KVM tracks dirty pages in hardware and needs none;
  // a hugepage backend cannot be padded (its size is a multiple of the page).
  uint64_t qemu_ram = spec.accel == Accelerator::Tcg && page <= 4096 ? size + kTcgRamPadding : size;
  std::string backend;
  if (page > 4096) {
    std::string path = page >= GiB ? "/dev/hugepages1G" : "/dev/hugepages";
    backend = fmt::format("memory-backend-file,id=ram0,size={},mem-path={},share=off", qemu_ram, path);
  } else {
    backend = fmt::format("memory-backend-ram,id=ram0,size={}", qemu_ram);
  }
  backend += fmt::format(",prealloc=on,prealloc-threads={}", std::max(1, spec.prealloc_threads));
  a.insert(a.end(), {"-m", fmt::format("{}K", qemu_ram / KiB), "-object", backend, "-machine", "memory-backend=ram0"});

  if (!d.kernel.empty()) a.insert(a.end(), {"-kernel", d.kernel});
  if (!d.initrd.empty()) a.insert(a.end(), {"-initrd", d.initrd});
  if (!d.cmdline.empty()) a.insert(a.end(), {"-append", d.cmdline});

  // Console: the guest's first serial port on a telnet port, also logged to a file.
  a.insert(a.end(), {"-chardev",
                     fmt::format("socket,id=console0,host={},port={},server=on,wait=off,telnet=on,logfile={},logappend=on",
                                 spec.console_address, d.console.port, spec.console_log),
                     "-serial", "chardev:console0"});

  a.insert(a.end(), {"-chardev", fmt::format("socket,id=qmp,path={},server=on,wait=off", spec.qmp_socket), "-mon",
                     "chardev=qmp,mode=control"});

  for (const auto& disk : d.disks) {
    auto it = spec.disks.find(disk.name);
    if (it == spec.disks.end()) continue;
    std::string id = fmt::format("vdisk{}", disk.id);
    a.insert(a.end(), {"-drive", fmt::format("if=none,id={},file={},format={}{}", id,
                                             it->second.path, it->second.format, it->second.read_only ? ",readonly=on" : ""),
                       "-device", fmt::format("virtio-blk-pci,drive={},id={}-dev,serial={}", id, id, disk.name)});
  }
  for (const auto& net : d.networks) {
    auto it = spec.taps.find(net.name);
    if (it == spec.taps.end()) continue;
    std::string id = fmt::format("vnet{}", net.id);
    a.insert(a.end(), {"-netdev", fmt::format("tap,id={},ifname={},script=no,downscript=no", id, it->second),
                       "-device", fmt::format("virtio-net-pci,netdev={},id={}-dev,mac={}", id, id, net.mac)});
  }

  // A guest that panics stays paused for inspection (run-state
  // guest-panicked) instead of vanishing; such a guest cannot be migrated.
  a.insert(a.end(), {"-device", "pvpanic", "-action", "panic=pause"});

  if (spec.paused || spec.incoming) a.push_back("-S");
  if (spec.incoming) a.insert(a.end(), {"-incoming", "defer"});
  a.insert(a.end(), {"-pidfile", spec.pidfile, "-daemonize"});
  return a;
}

}  // namespace ldm::hypervisor::qemu
