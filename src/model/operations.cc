#include "model/operations.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "base/messages.h"
#include "base/size.h"

namespace ldm::model {

namespace {

constexpr uint64_t kMinMemory = 4 * MiB;

Result<Domain*> guest(HostModel& model, const std::string& name, const char* op) {
  if (name == kPrimary) return fail(msg::primary_reserved(op));
  Domain* d = model.find(name);
  if (!d) return fail(msg::domain_not_found(name));
  return d;
}

Result<> require_inactive(const Domain& d, const std::string& action) {
  if (d.state != DomainState::Inactive) return fail(msg::must_be_inactive(d.name, to_string(d.state), action));
  return {};
}

Result<> require_not_active(const Domain& d, const std::string& action) {
  if (d.state == DomainState::Active) return fail(msg::must_not_be_active(d.name, action));
  return {};
}

bool valid_cpu_arch(const std::string& arch) {
  return arch == "native" || arch == "generic" || arch == "migration-class1";
}

bool valid_bridge_name(const std::string& name) {
  if (name.empty() || name.size() > 15) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

// One block at RA 0 holding all of the domain's memory: the layout QEMU's pc
// machine gives its main RAM.
std::vector<MemoryBlock> single_block(uint64_t size) { return {MemoryBlock{0, 0, size, 4096}}; }

// After a change to a bound domain (or an active one, for its next start),
// its reservations must still fit.
Result<> recheck_bound(HostModel& model, Domain& d) {
  if (d.state == DomainState::Inactive) return {};
  // Release and re-bind against the same host: the port is kept, so probing
  // it again would wrongly see our own reservation as taken.
  DomainState state = d.state;
  int port = d.console.port;
  d.state = DomainState::Inactive;
  for (auto& b : d.memory) b.pa = 0;
  auto r = bind_domain(model, d.name, [port](int p) { return p == port; });
  if (r) model.find(d.name)->state = state;
  return r;
}

// A change an active domain cannot take live is held for its next start: the
// first one records what QEMU runs now, so that it can be cancelled.
void hold_for_next_start(Domain& d) {
  if (d.state != DomainState::Active || d.delayed_reconf) return;
  d.delayed_reconf = true;
  d.running = RunningConfig{d.vcpus, d.memory, d.kernel, d.initrd, d.cmdline, d.disks, d.networks};
}

}  // namespace

Result<> validate_domain_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0])) &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
            });
  if (!ok) return fail(msg::invalid_domain_name(name));
  return {};
}

Result<> add_domain(HostModel& model, const std::string& name, const DomainProperties& props,
                    const std::function<std::string()>& make_uuid) {
  if (auto r = validate_domain_name(name); !r) return r;
  if (name == kPrimary || model.find(name)) return fail(msg::domain_exists(name));
  Domain d;
  d.name = name;
  d.uuid = props.uuid.value_or(make_uuid());
  for (const auto& other : model.domains)
    if (other.uuid == d.uuid) return fail(fmt::format("UUID {} is already used by LDom {}", d.uuid, other.name));
  d.console.group = name;
  model.domains.push_back(std::move(d));
  return set_domain(model, name, props);
}

Result<> set_domain(HostModel& model, const std::string& name, const DomainProperties& props) {
  auto d = guest(model, name, "set-domain");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  if (props.cpu_arch) {
    if (!valid_cpu_arch(*props.cpu_arch)) return fail(msg::bad_cpu_arch(*props.cpu_arch));
    if (dom.state == DomainState::Active && *props.cpu_arch != dom.cpu_arch)
      return fail(msg::cpu_arch_needs_inactive(name));
    dom.cpu_arch = *props.cpu_arch;
  }
  if (props.kernel || props.initrd || props.cmdline) hold_for_next_start(dom);
  if (props.kernel) dom.kernel = *props.kernel;
  if (props.initrd) dom.initrd = *props.initrd;
  if (props.cmdline) dom.cmdline = *props.cmdline;
  if (props.vcpus)
    if (auto r = change_vcpus(model, name, Change::Set, *props.vcpus); !r) return r;
  if (props.memory)
    if (auto r = change_memory(model, name, Change::Set, *props.memory); !r) return r;
  if (props.page_size) {
    if (auto r = require_not_active(dom, "changing its memory page size"); !r) return r;
    Domain& again = *model.find(name);
    for (auto& block : again.memory) {
      if (block.size % *props.page_size != 0)
        return fail(fmt::format("Memory of LDom {} ({}) is not a multiple of the {} page size; set memory first",
                                name, format_size(block.size), format_size(*props.page_size)));
      block.page_size = *props.page_size;
    }
    if (auto r = recheck_bound(model, again); !r) return r;
  }
  return {};
}

Result<> cancel_reconfiguration(HostModel& model, const std::string& name) {
  auto d = guest(model, name, "cancel-operation reconf");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  if (!dom.delayed_reconf) return fail(msg::no_delayed_reconf(name));
  dom.vcpus = dom.running.vcpus;
  dom.memory = dom.running.memory;
  dom.kernel = dom.running.kernel;
  dom.initrd = dom.running.initrd;
  dom.cmdline = dom.running.cmdline;
  dom.disks = dom.running.disks;
  dom.networks = dom.running.networks;
  dom.delayed_reconf = false;
  dom.running = RunningConfig{};
  return {};
}

void apply_delayed_reconfiguration(Domain& domain) {
  domain.delayed_reconf = false;
  domain.running = RunningConfig{};
}

Result<> add_io(HostModel& model, const std::string& name, const std::string& device) {
  auto d = guest(model, name, "add-io");
  if (!d) return fail(d.error());
  if (auto r = require_inactive(**d, "add-io"); !r) return r;
  if (!valid_pci_address(device)) return fail(msg::bad_pci_address(device));
  for (const auto& other : model.domains)
    if (std::find(other.io_devices.begin(), other.io_devices.end(), device) != other.io_devices.end())
      return fail(fmt::format("PCI device {} is already assigned to LDom {}", device, other.name));
  (*d)->io_devices.push_back(device);
  return {};
}

Result<> remove_io(HostModel& model, const std::string& name, const std::string& device) {
  auto d = guest(model, name, "remove-io");
  if (!d) return fail(d.error());
  if (auto r = require_inactive(**d, "remove-io"); !r) return r;
  if (std::erase((*d)->io_devices, device) == 0)
    return fail(fmt::format("PCI device {} is not assigned to LDom {}", device, name));
  return {};
}

bool valid_pci_address(const std::string& text) {
  // DDDD:BB:DD.F, lower-case hex, as in /sys/bus/pci/devices.
  if (text.size() != 12 || text[4] != ':' || text[7] != ':' || text[10] != '.') return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 4 || i == 7 || i == 10) continue;
    char c = text[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return text[11] <= '7';
}

Result<> remove_domain(HostModel& model, const std::string& name) {
  auto d = guest(model, name, "remove-domain");
  if (!d) return fail(d.error());
  if (auto r = require_inactive(**d, "remove-domain"); !r) return r;
  std::erase_if(model.domains, [&](const Domain& x) { return x.name == name; });
  return {};
}

Result<> change_vcpus(HostModel& model, const std::string& name, Change change, unsigned count) {
  auto d = guest(model, name, "vCPU changes");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  hold_for_next_start(dom);
  unsigned next = count;
  if (change == Change::Add) next = dom.vcpus + count;
  if (change == Change::Remove) {
    if (count >= dom.vcpus) return fail(msg::cannot_remove_more("vCPUs", name));
    next = dom.vcpus - count;
  }
  if (next == 0 && change == Change::Set) return fail(msg::bad_vcpu_count("0"));
  dom.vcpus = next;
  return recheck_bound(model, dom);
}

Result<> change_memory(HostModel& model, const std::string& name, Change change, uint64_t size) {
  auto d = guest(model, name, "memory changes");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  hold_for_next_start(dom);
  uint64_t current = dom.memory_size();
  uint64_t next = size;
  if (change == Change::Add) next = current + size;
  if (change == Change::Remove) {
    if (size >= current) return fail(msg::cannot_remove_more("memory", name));
    next = current - size;
  }
  if (next < kMinMemory || next % (4 * KiB) != 0) return fail(msg::memory_too_small(format_size(next)));
  uint64_t page = dom.memory.empty() ? 4096 : dom.memory.front().page_size;
  if (next % page != 0)
    return fail(fmt::format("Memory of LDom {} must be a multiple of its {} page size", name, format_size(page)));
  dom.memory = single_block(next);
  dom.memory.front().page_size = page;
  return recheck_bound(model, dom);
}

// ---- disk services --------------------------------------------------------------

Result<> add_disk_service(HostModel& model, const std::string& vds) {
  if (auto r = validate_domain_name(vds); !r) return fail(fmt::format("Invalid vds name '{}'", vds));
  if (model.find_disk_service(vds)) return fail(msg::service_exists("vds", vds));
  model.disk_services.push_back(DiskService{vds, {}});
  return {};
}

Result<> remove_disk_service(HostModel& model, const std::string& vds) {
  if (!model.find_disk_service(vds))
    return fail(msg::service_not_found("vds", vds, "'ldm list-services' shows the services of this host"));
  for (const auto& d : model.domains)
    for (const auto& disk : d.disks)
      if (disk.service == vds) return fail(msg::service_in_use("vds", vds, d.name));
  std::erase_if(model.disk_services, [&](const DiskService& s) { return s.name == vds; });
  return {};
}

Result<> add_volume(HostModel& model, const std::string& backend, const std::string& volume, const std::string& vds,
                    const std::vector<std::string>& options) {
  DiskService* s = model.find_disk_service(vds);
  if (!s)
    return fail(msg::service_not_found("vds", vds, fmt::format("add it with 'ldm add-vds {} primary'", vds)));
  if (auto r = validate_domain_name(volume); !r) return fail(fmt::format("Invalid volume name '{}'", volume));
  for (const auto& v : s->volumes)
    if (v.name == volume) return fail(msg::volume_exists(volume, vds));
  for (const auto& o : options)
    if (o != "ro" && o != "slice" && o != "excl")
      return fail(msg::bad_property("options=" + o, "add-vdsdev", "options=ro,slice,excl"));
  if (backend.empty() || backend[0] != '/')
    return fail(fmt::format("Backend '{}' must be an absolute path to a file or block device", backend));
  s->volumes.push_back(Volume{volume, backend, options});
  return {};
}

Result<> remove_volume(HostModel& model, const std::string& volume, const std::string& vds) {
  DiskService* s = model.find_disk_service(vds);
  if (!s || std::none_of(s->volumes.begin(), s->volumes.end(), [&](const Volume& v) { return v.name == volume; }))
    return fail(msg::volume_not_found(volume, vds));
  for (const auto& d : model.domains)
    for (const auto& disk : d.disks)
      if (disk.service == vds && disk.volume == volume) return fail(msg::volume_attached(volume, vds, d.name));
  std::erase_if(s->volumes, [&](const Volume& v) { return v.name == volume; });
  return {};
}

Result<> add_disk(HostModel& model, const std::string& domain, const std::string& disk, const std::string& volume,
                  const std::string& vds) {
  auto d = guest(model, domain, "add-vdisk");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  hold_for_next_start(dom);
  if (!model.find_volume(volume, vds)) return fail(msg::volume_not_found(volume, vds));
  for (const auto& x : dom.disks)
    if (x.name == disk) return fail(msg::device_exists("vdisk", disk, domain));
  int id = 0;
  for (const auto& x : dom.disks) id = std::max(id, x.id + 1);
  dom.disks.push_back(VirtualDisk{disk, volume, vds, id});
  return {};
}

Result<> remove_disk(HostModel& model, const std::string& domain, const std::string& disk) {
  auto d = guest(model, domain, "remove-vdisk");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  hold_for_next_start(dom);
  if (std::erase_if(dom.disks, [&](const VirtualDisk& x) { return x.name == disk; }) == 0)
    return fail(msg::device_not_found("vdisk", disk, domain));
  return {};
}

// ---- switches and networks -------------------------------------------------------

Result<> add_switch(HostModel& model, const std::string& vsw, const std::string& net_dev) {
  if (!valid_bridge_name(vsw)) return fail(msg::bad_interface_name(vsw));
  if (model.find_switch(vsw)) return fail(msg::service_exists("vsw", vsw));
  model.switches.push_back(VirtualSwitch{vsw, net_dev});
  return {};
}

Result<> remove_switch(HostModel& model, const std::string& vsw) {
  if (!model.find_switch(vsw))
    return fail(msg::service_not_found("vsw", vsw, "'ldm list-services' shows the services of this host"));
  for (const auto& d : model.domains)
    for (const auto& n : d.networks)
      if (n.vswitch == vsw) return fail(msg::service_in_use("vsw", vsw, d.name));
  std::erase_if(model.switches, [&](const VirtualSwitch& s) { return s.name == vsw; });
  return {};
}

Result<std::string> normalize_mac(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c == ':' || c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return fail(msg::bad_mac(text));
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (hex.size() != 12) return fail(msg::bad_mac(text));
  unsigned first = 0;
  std::from_chars(hex.data(), hex.data() + 2, first, 16);
  if (first & 1) return fail(msg::bad_mac(text));  // multicast
  std::string out;
  for (size_t i = 0; i < 12; i += 2) {
    if (!out.empty()) out += ':';
    out += hex.substr(i, 2);
  }
  return out;
}

Result<> add_network(HostModel& model, const std::string& domain, const std::string& ifname, const std::string& vsw,
                     const std::optional<std::string>& mac, const std::function<uint32_t()>& random24) {
  auto d = guest(model, domain, "add-vnet");
  if (!d) return fail(d.error());
  hold_for_next_start(**d);
  if (!model.find_switch(vsw))
    return fail(msg::service_not_found("vsw", vsw, fmt::format("add it with 'ldm add-vsw {} primary'", vsw)));
  for (const auto& x : (*d)->networks)
    if (x.name == ifname) return fail(msg::device_exists("vnet", ifname, domain));

  auto used_by = [&](const std::string& m) -> const Domain* {
    for (const auto& other : model.domains)
      for (const auto& n : other.networks)
        if (n.mac == m) return &other;
    return nullptr;
  };
  VirtualNetwork net{ifname, vsw, "", !mac.has_value(), 0};
  if (mac) {
    auto normalized = normalize_mac(*mac);
    if (!normalized) return fail(normalized.error());
    if (const Domain* other = used_by(*normalized)) return fail(msg::mac_in_use(*normalized, other->name));
    net.mac = *normalized;
  } else {
    for (int attempt = 0; attempt < 64 && net.mac.empty(); ++attempt) {
      uint32_t r = random24() & 0xFFFFFF;
      std::string candidate = fmt::format("{}:{:02x}:{:02x}:{:02x}", kMacPrefix, r >> 16, (r >> 8) & 0xFF, r & 0xFF);
      if (!used_by(candidate)) net.mac = candidate;
    }
    if (net.mac.empty()) return fail("Could not find a free MAC address in the automatic range; set one with mac-addr=");
  }
  Domain& dom = *model.find(domain);
  for (const auto& x : dom.networks) net.id = std::max(net.id, x.id + 1);
  dom.networks.push_back(net);
  return {};
}

Result<> remove_network(HostModel& model, const std::string& domain, const std::string& ifname) {
  auto d = guest(model, domain, "remove-vnet");
  if (!d) return fail(d.error());
  hold_for_next_start(**d);
  if (std::erase_if((*d)->networks, [&](const VirtualNetwork& x) { return x.name == ifname; }) == 0)
    return fail(msg::device_not_found("vnet", ifname, domain));
  return {};
}

// ---- consoles -------------------------------------------------------------------

Result<std::pair<int, int>> parse_port_range(const std::string& text) {
  auto dash = text.find('-');
  if (dash == std::string::npos) return fail(msg::bad_port_range(text));
  int lo = 0, hi = 0;
  auto a = std::from_chars(text.data(), text.data() + dash, lo);
  auto b = std::from_chars(text.data() + dash + 1, text.data() + text.size(), hi);
  if (a.ec != std::errc() || a.ptr != text.data() + dash || b.ec != std::errc() ||
      b.ptr != text.data() + text.size() || lo < 1024 || hi > 65535 || lo > hi)
    return fail(msg::bad_port_range(text));
  return std::pair{lo, hi};
}

Result<> add_console_service(HostModel& model, const std::string& vcc, int port_min, int port_max) {
  if (auto r = validate_domain_name(vcc); !r) return fail(fmt::format("Invalid vcc name '{}'", vcc));
  if (model.find_console(vcc)) return fail(msg::service_exists("vcc", vcc));
  for (const auto& c : model.consoles)
    if (port_min <= c.port_max && c.port_min <= port_max) return fail(msg::port_range_overlap(c.name));
  model.consoles.push_back(ConsoleConcentrator{vcc, port_min, port_max});
  return {};
}

Result<> remove_console_service(HostModel& model, const std::string& vcc) {
  if (!model.find_console(vcc))
    return fail(msg::service_not_found("vcc", vcc, "'ldm list-services' shows the services of this host"));
  for (const auto& d : model.domains)
    if (d.state != DomainState::Inactive && d.console.service == vcc)
      return fail(msg::service_in_use("vcc", vcc, d.name));
  std::erase_if(model.consoles, [&](const ConsoleConcentrator& c) { return c.name == vcc; });
  return {};
}

// ---- variables ------------------------------------------------------------------

Result<> set_variables(HostModel& model, const std::string& domain, const std::map<std::string, std::string>& vars) {
  auto d = guest(model, domain, "set-var");
  if (!d) return fail(d.error());
  for (const auto& [k, v] : vars) (*d)->variables[k] = v;
  return {};
}

Result<> remove_variables(HostModel& model, const std::string& domain, const std::vector<std::string>& keys) {
  auto d = guest(model, domain, "remove-var");
  if (!d) return fail(d.error());
  for (const auto& k : keys)
    if (!(*d)->variables.contains(k)) return fail(fmt::format("Variable {} not found in LDom {}", k, domain));
  for (const auto& k : keys) (*d)->variables.erase(k);
  return {};
}

// ---- binding --------------------------------------------------------------------

Usage bound_usage(const HostModel& model) {
  Usage u;
  for (const auto& d : model.domains)
    if (d.state != DomainState::Inactive) {
      u.vcpus += d.vcpus;
      u.memory += d.memory_size();
    }
  return u;
}

namespace {

// First fit in the host's pool [0, capacity) among blocks already reserved.
std::optional<uint64_t> allocate_pa(const HostModel& model, uint64_t size, uint64_t align) {
  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (const auto& d : model.domains)
    if (d.state != DomainState::Inactive)
      for (const auto& b : d.memory) taken.emplace_back(b.pa, b.pa + b.size);
  std::sort(taken.begin(), taken.end());
  uint64_t candidate = 0;
  for (const auto& [start, end] : taken) {
    if (candidate + size <= start) break;
    candidate = std::max(candidate, (end + align - 1) / align * align);
  }
  if (candidate + size > model.capacity.memory) return std::nullopt;
  return candidate;
}

}  // namespace

Result<> bind_domain(HostModel& model, const std::string& name, const std::function<bool(int)>& port_free) {
  auto d = guest(model, name, "bind-domain");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  if (dom.state != DomainState::Inactive) return fail(msg::already_in_state(name, to_string(dom.state)));
  if (dom.vcpus == 0 || dom.memory.empty()) return fail(msg::needs_resources(name));

  std::vector<std::string> problems;
  Usage used = bound_usage(model);
  if (used.vcpus + dom.vcpus > model.capacity.vcpus)
    problems.push_back(msg::not_enough_vcpus(name, dom.vcpus, model.capacity.vcpus - std::min(used.vcpus, model.capacity.vcpus),
                                             model.capacity.vcpus));
  for (auto& block : dom.memory) {
    auto pa = allocate_pa(model, block.size, std::max<uint64_t>(block.page_size, 4 * MiB));
    if (!pa) {
      uint64_t free = model.capacity.memory - std::min(used.memory, model.capacity.memory);
      problems.push_back(msg::unable_to_bind_memory(block.size, block.ra, free, model.capacity.memory));
      break;
    }
    block.pa = *pa;
  }
  // Console: the named vcc, else the first one; a free port in its range.
  const ConsoleConcentrator* vcc =
      dom.console.service.empty() ? (model.consoles.empty() ? nullptr : &model.consoles.front())
                                  : model.find_console(dom.console.service);
  if (!vcc) {
    problems.push_back(msg::no_console_service(name));
  } else {
    int chosen = 0;
    for (int port = vcc->port_min; port <= vcc->port_max && !chosen; ++port) {
      bool taken = std::any_of(model.domains.begin(), model.domains.end(), [&](const Domain& o) {
        return o.name != name && o.state != DomainState::Inactive && o.console.port == port;
      });
      if (!taken && port_free(port)) chosen = port;
    }
    if (!chosen) problems.push_back(msg::no_free_console_port(vcc->name));
    dom.console.port = chosen;
    dom.console.service = vcc->name;
  }
  if (dom.console.group.empty()) dom.console.group = name;
  for (const auto& net : dom.networks)
    if (!model.find_switch(net.vswitch))
      problems.push_back(msg::service_not_found("vsw", net.vswitch,
                                                fmt::format("add it with 'ldm add-vsw {} primary'", net.vswitch)));
  for (const auto& disk : dom.disks)
    if (!model.find_volume(disk.volume, disk.service))
      problems.push_back(msg::volume_not_found(disk.volume, disk.service));
  if (!problems.empty()) return fail(Error(std::move(problems)));
  dom.state = DomainState::Bound;
  return {};
}

Result<> unbind_domain(HostModel& model, const std::string& name) {
  auto d = guest(model, name, "unbind-domain");
  if (!d) return fail(d.error());
  Domain& dom = **d;
  if (dom.state == DomainState::Active) return fail(msg::must_not_be_active(name, "unbind-domain"));
  if (dom.state == DomainState::Inactive) return fail(msg::already_in_state(name, "inactive"));
  dom.state = DomainState::Inactive;
  dom.console.port = 0;
  for (auto& b : dom.memory) b.pa = 0;
  return {};
}

}  // namespace ldm::model
