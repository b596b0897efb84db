#include "migration/checks.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/size.h"
#include "hypervisor/qemu/command_line.h"
#include "model/operations.h"

namespace ldm::migration {

using model::DomainState;

namespace {

std::string join(const std::vector<std::string>& items, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += fmt::format(" and {} more", items.size() - limit);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Policy and delayed reconfigurations: the same rules on both hosts.
void check_host(const model::HostModel& host, const char* role, std::vector<CheckFailure>& failures) {
  if (host.power_policy == model::PowerPolicy::Elastic)
    failures.push_back({"policy", host.hostname,
                        fmt::format("Domain migration is not supported while the {} machine {} is in elastic power "
                                    "policy",
                                    role, host.hostname),
                        fmt::format("on {}: set power-policy = performance in ldmd's configuration, then SIGHUP ldmd",
                                    host.hostname)});
  for (const auto& d : host.domains)
    if (d.delayed_reconf)
      failures.push_back({"reconf", d.name,
                          fmt::format("LDom {} on the {} machine {} has a delayed reconfiguration pending, which "
                                      "prevents a migration from starting",
                                      d.name, role, host.hostname),
                          fmt::format("on {}: restart LDom {} to apply it, or drop it with "
                                      "'ldm cancel-operation reconf {}'",
                                      host.hostname, d.name, d.name)});
}

void check_cpu(const model::Domain& domain, const SourceFacts& source, const TargetFacts& facts,
               const std::string& target_host, std::vector<CheckFailure>& failures) {
  if (!source.accel.empty() && source.accel != facts.accel) {
    failures.push_back(
        {"cpu", source.accel,
         fmt::format("LDom {} runs under {} here and {} runs guests under {}; QEMU cannot move a running guest "
                     "between KVM and TCG",
                     domain.name, source.accel == "kvm" ? "KVM" : "TCG (software emulation)", target_host,
                     facts.accel == "kvm" ? "KVM" : "TCG (software emulation)"),
         "migrate between hosts with the same accelerator (ldmd's accel setting, and /dev/kvm on both or neither)"});
    return;
  }
  if (!source.machine.empty() && !contains(facts.qemu.machines, source.machine))
    failures.push_back({"cpu", source.machine,
                        fmt::format("The QEMU {} of the target machine does not support the machine type {} that "
                                    "LDom {} runs",
                                    facts.qemu.version, source.machine, domain.name),
                        "upgrade QEMU on the target to a version that has this machine type (QEMU keeps older "
                        "machine types, so the newer side must be the target)"});
  std::string model_there =
      hypervisor::qemu::cpu_model(domain.cpu_arch, facts.accel == "kvm" ? hypervisor::Accelerator::Kvm
                                                                         : hypervisor::Accelerator::Tcg);
  if (!contains(facts.qemu.cpu_models, model_there))
    failures.push_back({"cpu", model_there,
                        fmt::format("The QEMU {} of the target machine does not know the CPU model {} (cpu-arch={}) "
                                    "of LDom {}",
                                    facts.qemu.version, model_there, domain.cpu_arch, domain.name),
                        "set cpu-arch=generic on the domain while it is bound or inactive, or upgrade QEMU there"});
  if (domain.cpu_arch != "native") return;
  if (facts.accel == "kvm") {
    std::vector<std::string> missing;
    for (const auto& flag : source.cpu_flags)
      if (!std::binary_search(facts.cpu_flags.begin(), facts.cpu_flags.end(), flag)) missing.push_back(flag);
    if (!missing.empty())
      failures.push_back({"cpu", join(missing, 1000),
                          fmt::format("The CPU of the target machine lacks features that LDom {} may use with "
                                      "cpu-arch=native: {}",
                                      domain.name, join(missing, 8)),
                          "set cpu-arch=generic or migration-class1 (bound or inactive), or pick a target with the "
                          "same CPU"});
  } else if (!source.qemu_version.empty() && source.qemu_version != facts.qemu.version) {
    failures.push_back({"cpu", source.qemu_version,
                        fmt::format("LDom {} has cpu-arch=native, which under TCG is QEMU's 'max' CPU and differs "
                                    "between QEMU versions ({} here, {} on the target)",
                                    domain.name, source.qemu_version, facts.qemu.version),
                        "set cpu-arch=generic (bound or inactive), or run the same QEMU version on both hosts"});
  }
}

void check_memory(const model::HostModel& target, const model::Domain& domain, const TargetFacts& facts,
                  CheckReport& report) {
  model::Usage used = model::bound_usage(target);
  uint64_t free_memory = target.capacity.memory - std::min(used.memory, target.capacity.memory);
  for (const auto& block : domain.memory) {
    if (block.size <= free_memory) {
      free_memory -= block.size;
      continue;
    }
    report.failures.push_back({"memory", format_address(block.ra),
                               fmt::format("Unable to bind {} memory region at real address {} on the target machine "
                                           "({} has {} free for domains)",
                                           format_size(block.size), format_address(block.ra), target.hostname,
                                           format_size(free_memory)),
                               "free memory on the target (stop or unbind a domain there)"});
    break;
  }
  // Huge pages, by page size: QEMU allocates them when the domain starts.
  std::map<uint64_t, uint64_t> needed;
  for (const auto& block : domain.memory)
    if (block.page_size > 4096) needed[block.page_size] += block.size / block.page_size;
  for (const auto& [page, count] : needed) {
    uint64_t free = facts.free_hugepages.contains(page) ? facts.free_hugepages.at(page) : 0;
    if (free >= count) continue;
    CheckFailure f{"memory", format_size(page),
                   fmt::format("LDom {} needs {} free {} huge pages on the target machine and {} has {}", domain.name,
                               count, format_size(page), target.hostname, free),
                   fmt::format("on the target: echo {} > /sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages "
                               "(or more)",
                               count, page / 1024)};
    // A bound domain needs them only when it starts there.
    (domain.state == DomainState::Active ? report.failures : report.warnings).push_back(f);
  }
}

void check_volumes(const model::HostModel& target, const model::Domain& domain, const SourceFacts& source,
                   const TargetFacts& facts, std::vector<CheckFailure>& failures) {
  for (const auto& disk : domain.disks) {
    std::string key = volume_key(disk);
    const model::Volume* volume = target.find_volume(disk.volume, disk.service);
    if (!volume) {
      failures.push_back({"vds", key, fmt::format("Failed to find required volume {} on target machine", key),
                          fmt::format("on the target: ldm add-vdsdev BACKEND {} (the same storage as here)", key)});
      continue;
    }
    if (domain.state != DomainState::Active) continue;  // checked again when it starts there
    auto here = source.storage.find(key);
    if (here == source.storage.end()) continue;  // the source could not read it: it said so itself
    if (auto error = facts.storage_errors.find(key); error != facts.storage_errors.end()) {
      failures.push_back({"vds", key,
                          fmt::format("Volume {} on the target machine cannot be read: {}", key, error->second),
                          fmt::format("on the target: make {} available, or point {} at the shared storage",
                                      volume->backend, key)});
      continue;
    }
    auto there = facts.storage.find(key);
    if (there == facts.storage.end()) continue;
    if (std::string why = services::storage_mismatch(here->second, there->second); !why.empty())
      failures.push_back({"vds", key,
                          fmt::format("Volume {} on the target machine ({}) is not the storage LDom {} uses: {}", key,
                                      volume->backend, domain.name, why),
                          fmt::format("on the target: ldm remove-vdsdev {} and add it again on the storage shared "
                                      "with this host",
                                      key)});
  }
}

void check_networks(const model::HostModel& target, const model::Domain& domain, std::vector<CheckFailure>& failures) {
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
}

void check_console(const model::HostModel& target, const std::string& target_name, const TargetFacts& facts,
                   std::vector<CheckFailure>& failures) {
  // The first vcc of the target, with a free port; explicit console constraints are ignored.
  if (target.consoles.empty()) {
    failures.push_back({"vcc", "", "No virtual console concentrator (vcc) exists on the target machine",
                        "on the target: ldm add-vcc port-range=5000-5100 primary-vcc0 primary"});
    return;
  }
  const auto& vcc = target.consoles.front();
  bool any = false;
  for (int p = vcc.port_min; p <= vcc.port_max && !any; ++p)
    any = (!facts.port_free || facts.port_free(p)) &&
          std::none_of(target.domains.begin(), target.domains.end(), [&](const model::Domain& o) {
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

}  // namespace

std::string volume_key(const model::VirtualDisk& disk) { return disk.volume + "@" + disk.service; }

std::vector<std::pair<std::string, std::string>> volume_backends(const model::HostModel& host,
                                                                 const model::Domain& domain) {
  std::vector<std::pair<std::string, std::string>> backends;
  for (const auto& disk : domain.disks)
    if (const model::Volume* v = host.find_volume(disk.volume, disk.service))
      backends.emplace_back(volume_key(disk), v->backend);
  return backends;
}

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
  in.delayed_reconf = false;
  in.running = model::RunningConfig{};
  return in;
}

std::vector<CheckFailure> check_outgoing(const model::HostModel& source, const model::Domain& domain,
                                         const std::string& run_state) {
  std::vector<CheckFailure> failures;
  check_host(source, "source", failures);
  if (domain.state != DomainState::Inactive && !domain.io_devices.empty())
    failures.push_back({"io", join(domain.io_devices, 1000),
                        fmt::format("LDom {} has direct access to physical I/O ({}), and domains with physical "
                                    "devices cannot be migrated",
                                    domain.name, join(domain.io_devices, 4)),
                        fmt::format("unbind it, remove the devices with 'ldm remove-io DEVICE {}', or migrate it "
                                    "inactive",
                                    domain.name)});
  if (domain.state == DomainState::Active && run_state != "running")
    failures.push_back({"state", run_state,
                        fmt::format("Migration is not supported while the domain {} is in the '{}' state", domain.name,
                                    run_state.empty() ? "unknown" : run_state),
                        run_state == "guest-panicked"
                            ? fmt::format("the guest has panicked: restart it (ldm stop-domain -f {0}; "
                                          "ldm start-domain {0}), then migrate",
                                          domain.name)
                            : "let the guest run (leave the debugger or firmware), then migrate"});
  return failures;
}

CheckReport check_incoming(const model::HostModel& target, const model::Domain& domain, const std::string& target_name,
                           const SourceFacts& source, const TargetFacts& facts) {
  CheckReport report;
  auto& failures = report.failures;
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
  check_host(target, "target", failures);
  if (domain.state == DomainState::Inactive) return report;

  if (domain.state == DomainState::Active) check_cpu(domain, source, facts, target.hostname, failures);
  model::Usage used = model::bound_usage(target);
  unsigned free_vcpus = target.capacity.vcpus - std::min(used.vcpus, target.capacity.vcpus);
  if (domain.vcpus > free_vcpus)
    failures.push_back({"cpu", std::to_string(domain.vcpus),
                        fmt::format("Not enough free vCPUs on the target machine: LDom {} needs {} and {} has {} free",
                                    domain.name, domain.vcpus, target.hostname, free_vcpus),
                        "free vCPUs on the target (stop or unbind a domain there) or lower the domain's vCPUs"});
  check_memory(target, domain, facts, report);
  check_volumes(target, domain, source, facts, failures);
  check_networks(target, domain, failures);
  check_console(target, target_name, facts, failures);
  return report;
}

}  // namespace ldm::migration
