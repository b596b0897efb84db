// The domain model: what a host knows about its domains and services.
//
// Pure data with JSON mapping; no I/O. A HostModel is the whole configuration of
// one host; the daemon applies each command to a copy and persists the result in
// one store transaction, so a refused command changes nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ldm::model {

inline constexpr const char* kPrimary = "primary";

enum class DomainState { Inactive, Bound, Active };
const char* to_string(DomainState state);

// A block of guest memory. RA is the guest-physical address; PA is where the
// host reserves it in its pool for domains (assigned when bound, 0 before).
struct MemoryBlock {
  uint64_t ra = 0;
  uint64_t pa = 0;
  uint64_t size = 0;
  uint64_t page_size = 4096;  // 4K: anonymous memory; 2M/1G: hugetlbfs
};

struct VirtualDisk {
  std::string name;     // disk name inside the domain
  std::string volume;   // vol of vol@vds
  std::string service;  // vds of vol@vds
  int id = 0;
};

struct VirtualNetwork {
  std::string name;     // interface name inside the domain's configuration
  std::string vswitch;  // name of the vsw it attaches to
  std::string mac;      // 02:4c:44:xx:xx:xx when auto-allocated
  bool mac_auto = true;
  int id = 0;
};

struct Console {
  std::string service;  // vcc name; empty = first vcc at bind time
  std::string group;    // defaults to the domain name
  int port = 0;         // assigned when bound
};

// What migration a domain takes part in (FLAGS column 6 and `list -o status`).
struct MigrationStatus {
  std::string role;  // "", "source", "target"
  std::string peer;  // the other host
  int progress = 0;
  bool error = false;
  uint64_t transferred = 0;  // bytes QEMU has sent so far
  double rate_mbps = 0;      // QEMU's current rate, megabits per second
  uint64_t remaining = 0;    // bytes of RAM still to send
  double dirty_rate = 0;     // pages the guest dirties per second
  int pass = 0;              // QEMU's dirty-sync count: 1 = first full copy
  int64_t expected_downtime_ms = 0;
  std::string address = {};  // how the source reaches the target again (recovery)
  // The journal's handoff mark: on the source, the commit is being sent (from
  // here on only the target can say where the guest runs); on the target, the
  // commit was received and recorded (the guest is to run here).
  bool handoff = false;
};

// Facts about a running domain that belong to the QEMU process, not to the
// configuration. Kept in the store so a restarted ldmd can re-adopt the process.
struct Runtime {
  int pid = 0;
  std::string qmp_socket;
  int64_t started_at = 0;  // unix seconds
  std::vector<std::string> taps;
  std::string run_state;   // QEMU's run-state, e.g. "running", "paused"
  std::string last_exit;   // why the last QEMU ended, when it was not asked to
  std::string machine;     // the versioned machine type QEMU runs, e.g. pc-i440fx-7.2
};

// What a running QEMU was started with. Kept while a delayed reconfiguration
// is pending, so that `cancel-operation reconf` can put the constraints back.
struct RunningConfig {
  unsigned vcpus = 0;
  std::vector<MemoryBlock> memory;
  std::string kernel, initrd, cmdline;
  std::vector<VirtualDisk> disks;
  std::vector<VirtualNetwork> networks;
};

struct Domain {
  std::string name;
  std::string uuid;
  DomainState state = DomainState::Inactive;
  unsigned vcpus = 0;
  std::vector<MemoryBlock> memory;
  std::string cpu_arch = "native";
  std::string kernel, initrd, cmdline;
  std::map<std::string, std::string> variables;
  std::vector<VirtualDisk> disks;
  std::vector<VirtualNetwork> networks;
  Console console;
  std::vector<std::string> io_devices;  // PCI functions passed through (add-io): never migratable
  MigrationStatus migration;
  bool transitioning = false;  // starting or stopping (FLAGS column 1)
  // A change to the active domain that takes effect at its next start
  // (FLAGS column 3 `d`); `running` is what QEMU still runs meanwhile.
  bool delayed_reconf = false;
  RunningConfig running;
  Runtime runtime;

  [[nodiscard]] uint64_t memory_size() const;
};

// A volume of a virtual disk service: `add-vdsdev backend vol@vds`.
struct Volume {
  std::string name;
  std::string backend;
  std::vector<std::string> options;  // ro, slice, excl
};

struct DiskService {
  std::string name;
  std::vector<Volume> volumes;
};

struct VirtualSwitch {
  std::string name;    // also the Linux bridge's name
  std::string net_dev; // optional uplink enslaved to the bridge
  bool created_bridge = false;  // ldmd made the bridge, so remove-vsw deletes it
};

struct ConsoleConcentrator {
  std::string name;
  int port_min = 0;
  int port_max = 0;
};

enum class PowerPolicy { Performance, Elastic };

// The host's resources for domains (from ldmd's configuration).
struct HostCapacity {
  unsigned vcpus = 0;
  uint64_t memory = 0;
};

struct HostModel {
  std::string hostname;
  HostCapacity capacity;
  PowerPolicy power_policy = PowerPolicy::Performance;
  std::vector<Domain> domains;  // guests only, in creation order; primary is implicit
  std::vector<DiskService> disk_services;
  std::vector<VirtualSwitch> switches;
  std::vector<ConsoleConcentrator> consoles;

  [[nodiscard]] Domain* find(const std::string& name);
  [[nodiscard]] const Domain* find(const std::string& name) const;
  [[nodiscard]] DiskService* find_disk_service(const std::string& name);
  [[nodiscard]] const DiskService* find_disk_service(const std::string& name) const;
  // The volume `volume@vds`, or null when either is missing.
  [[nodiscard]] const Volume* find_volume(const std::string& volume, const std::string& vds) const;
  [[nodiscard]] const VirtualSwitch* find_switch(const std::string& name) const;
  [[nodiscard]] const ConsoleConcentrator* find_console(const std::string& name) const;
};

// The six FLAGS columns of `ldm list`, e.g. "-n----" for an active guest.
std::string flags_of(const Domain& domain);
inline constexpr const char* kPrimaryFlags = "-n-cv-";

// JSON mapping (store documents and the control protocol). Missing members
// take their defaults, so older documents still load.
NLOHMANN_JSON_SERIALIZE_ENUM(DomainState, {{DomainState::Inactive, "inactive"},
                                           {DomainState::Bound, "bound"},
                                           {DomainState::Active, "active"}})
NLOHMANN_JSON_SERIALIZE_ENUM(PowerPolicy, {{PowerPolicy::Performance, "performance"},
                                           {PowerPolicy::Elastic, "elastic"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MemoryBlock, ra, pa, size, page_size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VirtualDisk, name, volume, service, id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VirtualNetwork, name, vswitch, mac, mac_auto, id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Console, service, group, port)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MigrationStatus, role, peer, progress, error, transferred, rate_mbps,
                                                remaining, dirty_rate, pass, expected_downtime_ms, address, handoff)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Runtime, pid, qmp_socket, started_at, taps, run_state, last_exit,
                                                machine)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RunningConfig, vcpus, memory, kernel, initrd, cmdline, disks, networks)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Domain, name, uuid, state, vcpus, memory, cpu_arch, kernel, initrd,
                                                cmdline, variables, disks, networks, console, io_devices,
                                                migration, transitioning, delayed_reconf, running, runtime)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Volume, name, backend, options)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DiskService, name, volumes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VirtualSwitch, name, net_dev, created_bridge)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConsoleConcentrator, name, port_min, port_max)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HostCapacity, vcpus, memory)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HostModel, hostname, capacity, power_policy, domains, disk_services,
                                                switches, consoles)

}  // namespace ldm::model
