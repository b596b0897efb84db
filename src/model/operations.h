// The configuration commands, as pure functions on a HostModel.
//
// Each function either changes `model` and succeeds, or leaves it in an
// unspecified state and fails; callers apply it to a copy and keep the copy only
// on success. Side effects on the host (bridges, QEMU) are not done here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/domain.h"

namespace ldm::model {

struct DomainProperties {
  std::optional<unsigned> vcpus;
  std::optional<uint64_t> memory;
  std::optional<std::string> cpu_arch;
  std::optional<std::string> uuid;
  std::optional<std::string> kernel, initrd, cmdline;
  std::optional<uint64_t> page_size;  // mem-pagesize=4K|2M|1G
};

Result<> validate_domain_name(const std::string& name);

Result<> add_domain(HostModel& model, const std::string& name, const DomainProperties& props,
                    const std::function<std::string()>& make_uuid);
Result<> set_domain(HostModel& model, const std::string& name, const DomainProperties& props);
Result<> remove_domain(HostModel& model, const std::string& name);

// vCPUs, memory, vdisks, vnets and the boot kernel: a bound domain is
// re-checked against the host's capacity; an active one keeps running as it
// is and the change waits for its next start (a delayed reconfiguration).
// `set` replaces, `add`/`remove` are relative.
enum class Change { Set, Add, Remove };
Result<> change_vcpus(HostModel& model, const std::string& name, Change change, unsigned count);
Result<> change_memory(HostModel& model, const std::string& name, Change change, uint64_t size);

// Drops a pending delayed reconfiguration: the constraints become what the
// running QEMU was started with.
Result<> cancel_reconfiguration(HostModel& model, const std::string& name);
// The domain stopped: its constraints are what it will start with next.
void apply_delayed_reconfiguration(Domain& domain);

// Physical I/O: PCI functions (DDDD:BB:DD.F) given to an inactive domain.
bool valid_pci_address(const std::string& text);
Result<> add_io(HostModel& model, const std::string& name, const std::string& device);
Result<> remove_io(HostModel& model, const std::string& name, const std::string& device);

Result<> add_disk_service(HostModel& model, const std::string& vds);
Result<> remove_disk_service(HostModel& model, const std::string& vds);
Result<> add_volume(HostModel& model, const std::string& backend, const std::string& volume, const std::string& vds,
                    const std::vector<std::string>& options);
Result<> remove_volume(HostModel& model, const std::string& volume, const std::string& vds);
Result<> add_disk(HostModel& model, const std::string& domain, const std::string& disk, const std::string& volume,
                  const std::string& vds);
Result<> remove_disk(HostModel& model, const std::string& domain, const std::string& disk);

Result<> add_switch(HostModel& model, const std::string& vsw, const std::string& net_dev);
Result<> remove_switch(HostModel& model, const std::string& vsw);

// MAC addresses are auto-allocated from 02:4c:44:00:00:00-02:4c:44:ff:ff:ff
// (locally administered, "LD"), at random and checked against every vnet of
// the host; `random24` supplies the 24 random bits.
inline constexpr const char* kMacPrefix = "02:4c:44";
Result<std::string> normalize_mac(const std::string& text);
Result<> add_network(HostModel& model, const std::string& domain, const std::string& ifname, const std::string& vsw,
                     const std::optional<std::string>& mac, const std::function<uint32_t()>& random24);
Result<> remove_network(HostModel& model, const std::string& domain, const std::string& ifname);

Result<std::pair<int, int>> parse_port_range(const std::string& text);
Result<> add_console_service(HostModel& model, const std::string& vcc, int port_min, int port_max);
Result<> remove_console_service(HostModel& model, const std::string& vcc);

Result<> set_variables(HostModel& model, const std::string& domain, const std::map<std::string, std::string>& vars);
Result<> remove_variables(HostModel& model, const std::string& domain, const std::vector<std::string>& keys);

// Resource accounting against the host's capacity.
struct Usage {
  unsigned vcpus = 0;
  uint64_t memory = 0;
};
Usage bound_usage(const HostModel& model);

// inactive -> bound: reserves vCPUs, memory (assigning PAs), a console port
// and the domain's MACs. `port_free` says whether the host can listen on a port
// (the caller probes the real host; tests pass a fake).
Result<> bind_domain(HostModel& model, const std::string& name, const std::function<bool(int)>& port_free);
// bound -> inactive: releases everything bind reserved.
Result<> unbind_domain(HostModel& model, const std::string& name);

}  // namespace ldm::model
