#include "migration/checks.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/size.h"
#include "model/operations.h"

namespace ldm::migration {

using model::DomainState;

model::Domain incoming_domain(const model::Domain& d, const std::string& target_name) {
  model::Domain in = d;
  in.name = target_name;
  in.state = DomainState::Inactive;
  in.console.port = 0;
  in.console.service.clear();  // explicit console constraints are ignored: the first vcc of the target
  in.console.group = target_name;
  for (auto& b : in.memory) b.pa = 0;
  in.runtime = model::Runtime{};
  in.migration = model::MigrationStatus{};
  in.transitioning = false;
  return in;
}

std::vector<CheckFailure> check_incoming(const model::HostModel& target, const model::Domain& domain,
                                         const std::string& target_name, const std::function<bool(int)>& port_free) {
  std::vector<CheckFailure> failures;
  if (target.find(target_name) || target_name == model::kPrimary)
    failures.push_back({"name", target_name,
                        fmt::format("Domain {} already exists on the target machine", target_name),
                        fmt::format("remove it there, or migrate under another name: ldm migrate-domain {} {}:NEWNAME",
                                    domain.name, target.hostname)});
  if (auto valid = model::validate_domain_name(target_name); !valid)
    failures.push_back({"name", target_name, valid.error().text(), "choose a valid target name"});
  for (const auto& other : target.domains)
    if (other.uuid == domain.uuid)
      failures.push_back({"uuid", domain.uuid,
                          fmt::format("A domain with UUID {} (LDom {}) already exists on the target machine",
                                      domain.uuid, other.name),
                          "remove the stale copy on the target first"});

  if (domain.state == DomainState::Inactive) return failures;

  // CPU and memory: try the bind on a copy of the target.
  model::Usage used = model::bound_usage(target);
  unsigned free_vcpus = target.capacity.vcpus - std::min(used.vcpus, target.capacity.vcpus);
  if (domain.vcpus > free_vcpus)
    failures.push_back({"cpu", std::to_string(domain.vcpus),
                        fmt::format("Not enough free vCPUs on the target machine: LDom {} needs {} and {} has {} free",
                                    domain.name, domain.vcpus, target.hostname, free_vcpus),
                        "free vCPUs on the target (stop or unbind a domain there) or lower the domain's vCPUs"});
  uint64_t free_memory = target.capacity.memory - std::min(used.memory, target.capacity.memory);
  for (const auto& block : domain.memory) {
    if (block.size <= free_memory) {
      free_memory -= block.size;
      continue;
    }
    failures.push_back({"memory", format_address(block.ra),
                        fmt::format("Unable to bind {} memory region at real address {} on the target machine "
                                    "({} has {} free for domains)",
                                    format_size(block.size), format_address(block.ra), target.hostname,
                                    format_size(free_memory)),
                        "free memory on the target (stop or unbind a domain there)"});
    break;
  }

  for (const auto& disk : domain.disks) {
    const model::DiskService* vds = target.find_disk_service(disk.service);
    bool found = vds && std::any_of(vds->volumes.begin(), vds->volumes.end(),
                                    [&](const model::Volume& v) { return v.name == disk.volume; });
    if (!found)
      failures.push_back({"vds", disk.volume + "@" + disk.service,
                          fmt::format("Failed to find required volume {}@{} on target machine", disk.volume,
                                      disk.service),
                          fmt::format("on the target: ldm add-vdsdev BACKEND {}@{} (the same storage as here)",
                                      disk.volume, disk.service)});
  }
  for (const auto& net : domain.networks) {
    if (!target.find_switch(net.vswitch))
      failures.push_back({"vsw", net.vswitch,
                          fmt::format("Failed to find required vsw {} on target machine", net.vswitch),
                          fmt::format("on the target: ldm add-vsw {} primary", net.vswitch)});
    for (const auto& other : target.domains)
      for (const auto& n : other.networks)
        if (n.mac == net.mac)
          failures.push_back({"mac", net.mac,
                              fmt::format("MAC address {} of vnet {} is already used by LDom {} on the target machine",
                                          net.mac, net.name, other.name),
                              "change the MAC of one of them"});
  }

  // Console: the first vcc of the target, with a free port.
  if (target.consoles.empty()) {
    failures.push_back({"vcc", "", "No virtual console concentrator (vcc) exists on the target machine",
                        "on the target: ldm add-vcc port-range=5000-5100 primary-vcc0 primary"});
  } else {
    const auto& vcc = target.consoles.front();
    bool any = false;
    for (int p = vcc.port_min; p <= vcc.port_max && !any; ++p)
      any = port_free(p) && std::none_of(target.domains.begin(), target.domains.end(), [&](const model::Domain& o) {
              return o.state != DomainState::Inactive && o.console.port == p;
            });
    if (!any)
      failures.push_back({"vcc", vcc.name, fmt::format("vcc {} on the target machine has no free port", vcc.name),
                          "widen its port-range or unbind a domain there"});
    for (const auto& o : target.domains)
      if (o.console.group == target_name && o.name != target_name)
        failures.push_back({"vcc", target_name,
                            fmt::format("Console group {} is already used by LDom {} on the target machine",
                                        target_name, o.name),
                            "migrate under another name"});
  }
  return failures;
}

}  // namespace ldm::migration
