#include "cli/format.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/messages.h"
#include "base/size.h"
#include "model/operations.h"

namespace ldm::cli {

using json = nlohmann::json;
using model::Domain;
using model::DomainState;

namespace {

constexpr const char* kParseableVersion = "VERSION 1.6";
constexpr const char* kRule =
    "------------------------------------------------------------------------------";

const char* kSections[] = {"console", "cpu", "disk", "domain", "memory", "network", "status", "variables"};

Result<std::vector<const Domain*>> select(const Snapshot& s, const std::vector<std::string>& names,
                                          bool include_primary_marker, bool& with_primary) {
  std::vector<const Domain*> out;
  with_primary = names.empty() && include_primary_marker;
  if (names.empty()) {
    for (const auto& d : s.model.domains) out.push_back(&d);
    return out;
  }
  std::vector<std::string> missing;
  for (const auto& n : names) {
    if (n == model::kPrimary) {
      with_primary = true;
      continue;
    }
    const Domain* d = s.model.find(n);
    if (!d)
      missing.push_back(msg::domain_not_found(n));
    else
      out.push_back(d);
  }
  if (!missing.empty()) return fail(Error(missing));
  return out;
}

struct Row {
  std::string name, state, flags, cons, vcpu, memory, util, norm, uptime;
  uint64_t mem_bytes = 0;
  double util_value = -1;
  int64_t uptime_seconds = -1;
};

Row primary_row(const Snapshot& s) {
  Row r{model::kPrimary, "active", model::kPrimaryFlags, "UART", "", "", "", "", ""};
  r.vcpu = std::to_string(s.host.value("cpus", 0));
  r.mem_bytes = s.host.value("memory", uint64_t{0});
  r.memory = format_size(r.mem_bytes >= GiB ? r.mem_bytes / GiB * GiB : r.mem_bytes / MiB * MiB);
  r.util_value = 0.0;
  r.util = "0.0%";
  r.norm = "0.0%";
  r.uptime_seconds = s.host.value("uptime", int64_t{0});
  r.uptime = format_uptime(r.uptime_seconds);
  return r;
}

Row domain_row(const Snapshot& s, const Domain& d) {
  Row r;
  r.name = d.name;
  r.state = model::to_string(d.state);
  r.flags = model::flags_of(d);
  r.cons = d.state != DomainState::Inactive && d.console.port ? std::to_string(d.console.port) : "";
  r.vcpu = std::to_string(d.vcpus);
  r.mem_bytes = d.memory_size();
  r.memory = format_size(r.mem_bytes);
  if (d.state == DomainState::Active) {
    json st = s.stats.contains(d.name) ? s.stats[d.name] : json::object();
    r.util_value = st.value("util", 0.0);
    r.util = fmt::format("{:.1f}%", r.util_value);
    r.norm = r.util;
    r.uptime_seconds = st.value("uptime", int64_t{0});
    r.uptime = format_uptime(r.uptime_seconds);
  }
  return r;
}

std::string table_header() {
  return fmt::format("{:<16} {:<10} {:<7} {:<7} {:<5} {:<8} {:<5} {:<5} {}\n", "NAME", "STATE", "FLAGS", "CONS",
                     "VCPU", "MEMORY", "UTIL", "NORM", "UPTIME");
}

std::string table_line(const Row& r) {
  std::string line = fmt::format("{:<16} {:<10} {:<7} {:<7} {:<5} {:<8} {:<5} {:<5} {}", r.name, r.state, r.flags,
                                 r.cons, r.vcpu, r.memory, r.util, r.norm, r.uptime);
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line + "\n";
}

std::string parseable_line(const Row& r) {
  return fmt::format("DOMAIN|name={}|state={}|flags={}|cons={}|ncpu={}|mem={}|util={}|uptime={}|norm_util={}\n",
                     r.name, r.state, r.flags, r.cons, r.vcpu, r.mem_bytes,
                     r.util_value < 0 ? "" : fmt::format("{:.1f}", r.util_value),
                     r.uptime_seconds < 0 ? "" : std::to_string(r.uptime_seconds),
                     r.util_value < 0 ? "" : fmt::format("{:.1f}", r.util_value));
}

// ---- sections shared by -l and -o ----------------------------------------------

std::string section_memory(const Domain& d, bool parseable) {
  std::string out = parseable ? "MEMORY\n" : "MEMORY\n    RA               PA               SIZE\n";
  for (const auto& b : d.memory) {
    std::string pa = d.state == DomainState::Inactive ? "" : format_address(b.pa);
    if (parseable)
      out += fmt::format("|ra={}|pa={}|size={}|pagesize={}\n", format_address(b.ra), pa, b.size, b.page_size);
    else
      out += fmt::format("    {:<16} {:<16} {}\n", format_address(b.ra), pa, format_size(b.size));
  }
  return out;
}

std::string section_cpu(const Domain& d, bool parseable) {
  if (parseable) return fmt::format("VCPU\n|count={}|cpu-arch={}\n", d.vcpus, d.cpu_arch);
  std::string out = "VCPU\n    VID    PID\n";
  for (unsigned i = 0; i < d.vcpus; ++i)
    out += d.state == DomainState::Inactive ? fmt::format("    {}\n", i) : fmt::format("    {:<6} {}\n", i, i);
  return out;
}

std::string section_network(const Domain& d, bool parseable) {
  std::string out = parseable ? "NETWORK\n" : "NETWORK\n    NAME             SERVICE                     ID   DEVICE     MAC\n";
  for (const auto& n : d.networks) {
    if (parseable)
      out += fmt::format("|name={}|service={}|id={}|dev=network@{}|mac-addr={}|auto-mac={}\n", n.name, n.vswitch,
                         n.id, n.id, n.mac, n.mac_auto ? "yes" : "no");
    else
      out += fmt::format("    {:<16} {:<27} {:<4} {:<10} {}\n", n.name, n.vswitch + "@primary", n.id,
                         fmt::format("network@{}", n.id), n.mac);
  }
  return out;
}

std::string section_disk(const Domain& d, bool parseable) {
  std::string out = parseable ? "DISK\n" : "DISK\n    NAME             VOLUME                      ID   DEVICE\n";
  for (const auto& k : d.disks) {
    if (parseable)
      out += fmt::format("|name={}|vol={}@{}|id={}|dev=disk@{}\n", k.name, k.volume, k.service, k.id, k.id);
    else
      out += fmt::format("    {:<16} {:<27} {:<4} {}\n", k.name, k.volume + "@" + k.service, k.id,
                         fmt::format("disk@{}", k.id));
  }
  return out;
}

std::string section_console(const Domain& d, bool parseable) {
  std::string port = d.console.port ? std::to_string(d.console.port) : "";
  std::string service = d.console.service.empty() ? "" : d.console.service + "@primary";
  if (parseable) return fmt::format("VCONS\n|group={}|service={}|port={}\n", d.console.group, service, port);
  return fmt::format("VCONS\n    NAME             SERVICE                     PORT\n    {:<16} {:<27} {}\n",
                     d.console.group, service, port);
}

std::string section_variables(const Domain& d, bool parseable) {
  std::string out = "VARIABLES\n";
  for (const auto& [k, v] : d.variables) out += parseable ? fmt::format("|{}={}\n", k, v) : fmt::format("    {}={}\n", k, v);
  return out;
}

std::string section_domain(const Domain& d, bool parseable) {
  std::string softstate = d.state == DomainState::Active ? (d.runtime.run_state.empty() ? "running" : d.runtime.run_state)
                                                         : d.runtime.last_exit;
  if (parseable)
    return fmt::format("UUID|uuid={}\nCONTROL|cpu-arch={}|kernel={}|initrd={}|cmdline={}\nSOFTSTATE|{}\n", d.uuid,
                       d.cpu_arch, d.kernel, d.initrd, d.cmdline, softstate);
  std::string out;
  if (!softstate.empty()) out += fmt::format("SOFTSTATE\n    {}\n\n", softstate);
  out += fmt::format("UUID\n    {}\n\nCONTROL\n    cpu-arch={}\n", d.uuid, d.cpu_arch);
  if (!d.kernel.empty()) out += fmt::format("    kernel={}\n", d.kernel);
  if (!d.initrd.empty()) out += fmt::format("    initrd={}\n", d.initrd);
  if (!d.cmdline.empty()) out += fmt::format("    cmdline={}\n", d.cmdline);
  return out;
}

std::string section_status(const Domain& d, bool parseable) {
  const auto& m = d.migration;
  if (parseable) {
    if (m.role.empty()) return "STATUS\n";
    return fmt::format("STATUS\n|op=migration|progress={}|error={}|{}={}\n", m.progress, m.error ? "yes" : "no",
                       m.role == "source" ? "target" : "source", m.peer);
  }
  if (m.role.empty()) return "STATUS\n";
  return fmt::format("STATUS\n    OPERATION    PROGRESS    {}\n    {:<12} {:<11} {}\n",
                     m.role == "source" ? "TARGET" : "SOURCE", "migration", fmt::format("{}%", m.progress), m.peer);
}

std::string section(const Domain& d, const std::string& name, bool parseable) {
  if (name == "memory") return section_memory(d, parseable);
  if (name == "cpu") return section_cpu(d, parseable);
  if (name == "network") return section_network(d, parseable);
  if (name == "disk") return section_disk(d, parseable);
  if (name == "console") return section_console(d, parseable);
  if (name == "variables") return section_variables(d, parseable);
  if (name == "domain") return section_domain(d, parseable);
  if (name == "status") return section_status(d, parseable);
  return "";
}

json domain_json(const Snapshot& s, const Domain& d) {
  json j = d;
  j["flags"] = model::flags_of(d);
  j["memory_bytes"] = d.memory_size();
  if (s.stats.contains(d.name)) j["stats"] = s.stats[d.name];
  return j;
}

std::string xml_escape(const std::string& in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string format_uptime(int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60;
  if (d) return fmt::format("{}d {}h {}m", d, h, m);
  if (h) return fmt::format("{}h {}m", h, m);
  return fmt::format("{}m", m);
}

Result<Snapshot> snapshot_from_json(const json& j) {
  try {
    return Snapshot{j.at("host"), j.at("model").get<model::HostModel>(), j.value("stats", json::object())};
  } catch (const json::exception& e) {
    return fail(fmt::format("ldmd sent an unreadable snapshot: {}", e.what()));
  }
}

Result<std::string> list_domain(const Snapshot& s, const ListOptions& o) {
  for (const auto& sec : o.sections)
    if (std::find(std::begin(kSections), std::end(kSections), sec) == std::end(kSections))
      return fail(fmt::format("Unknown format '{}' for -o; use one or more of: console, cpu, disk, domain, memory, "
                              "network, status, variables",
                              sec));
  bool with_primary = false;
  auto domains = select(s, o.domains, true, with_primary);
  if (!domains) return fail(domains.error());

  if (o.json) {
    json out = json::array();
    if (with_primary) {
      Row p = primary_row(s);
      out.push_back({{"name", model::kPrimary}, {"state", "active"}, {"flags", p.flags}, {"cons", "UART"},
                     {"vcpus", s.host.value("cpus", 0)}, {"memory_bytes", p.mem_bytes}, {"uptime", p.uptime_seconds}});
    }
    for (const Domain* d : *domains) out.push_back(domain_json(s, *d));
    return out.dump(2) + "\n";
  }

  std::string out;
  if (!o.sections.empty()) {
    if (o.parseable) out += std::string(kParseableVersion) + "\n";
    bool first = true;
    for (const Domain* d : *domains) {
      if (!first) out += o.parseable ? "" : kRule + std::string("\n");
      first = false;
      out += o.parseable ? fmt::format("DOMAIN|name={}|\n", d->name) : fmt::format("NAME\n{}\n\n", d->name);
      for (const auto& sec : o.sections) out += section(*d, sec, o.parseable) + (o.parseable ? "" : "\n");
    }
    return out;
  }

  std::vector<Row> rows;
  if (with_primary) rows.push_back(primary_row(s));
  if (o.parseable) {
    out += std::string(kParseableVersion) + "\n";
    for (const auto& r : rows) out += parseable_line(r);
    for (const Domain* d : *domains) {
      out += parseable_line(domain_row(s, *d));
      if (o.long_form)
        for (const char* sec : {"domain", "cpu", "memory", "variables", "network", "disk", "console"})
          out += section(*d, sec, true);
    }
    return out;
  }
  if (!o.long_form) {
    out += table_header();
    for (const auto& r : rows) out += table_line(r);
    for (const Domain* d : *domains) out += table_line(domain_row(s, *d));
    return out;
  }
  bool first = true;
  auto block = [&](const std::string& body) {
    if (!first) out += std::string(kRule) + "\n";
    first = false;
    out += body;
  };
  for (const auto& r : rows)
    block(table_header() + table_line(r) + fmt::format("\nHOST\n    hostname={}\n    accel={}\n\n",
                                                       s.model.hostname, s.host.value("accel", "")));
  for (const Domain* d : *domains) {
    std::string body = table_header() + table_line(domain_row(s, *d)) + "\n";
    for (const char* sec : {"domain", "cpu", "memory", "variables", "network", "disk", "console"}) {
      std::string text = section(*d, sec, false);
      body += text + "\n";
    }
    if (!d->migration.role.empty()) body += section_status(*d, false) + "\n";
    block(body);
  }
  return out;
}

Result<std::string> list_bindings(const Snapshot& s, const ListOptions& o) {
  ListOptions long_form = o;
  long_form.long_form = true;
  long_form.sections.clear();
  return list_domain(s, long_form);
}

Result<std::string> list_services(const Snapshot& s, const ListOptions& o) {
  const auto& m = s.model;
  if (o.json) {
    return json{{"vds", m.disk_services}, {"vsw", m.switches}, {"vcc", m.consoles}}.dump(2) + "\n";
  }
  std::string out;
  if (o.parseable) {
    out += std::string(kParseableVersion) + "\n";
    for (const auto& c : m.consoles)
      out += fmt::format("VCC|name={}|ldom=primary|port-range={}-{}\n", c.name, c.port_min, c.port_max);
    for (const auto& v : m.switches)
      out += fmt::format("VSW|name={}|ldom=primary|net-dev={}|dev=switch@0|bridge={}\n", v.name, v.net_dev, v.name);
    for (const auto& v : m.disk_services) {
      out += fmt::format("VDS|name={}|ldom=primary\n", v.name);
      for (const auto& vol : v.volumes) {
        std::string opts;
        for (const auto& x : vol.options) opts += (opts.empty() ? "" : ",") + x;
        out += fmt::format("|vol={}|opts={}|dev={}|mpgroup=\n", vol.name, opts, vol.backend);
      }
    }
    return out;
  }
  if (!m.consoles.empty()) {
    out += "VCC\n    NAME             LDOM             PORT-RANGE\n";
    for (const auto& c : m.consoles) out += fmt::format("    {:<16} {:<16} {}-{}\n", c.name, "primary", c.port_min, c.port_max);
    out += "\n";
  }
  if (!m.switches.empty()) {
    out += "VSW\n    NAME             LDOM             NET-DEV   BRIDGE\n";
    for (const auto& v : m.switches)
      out += fmt::format("    {:<16} {:<16} {:<9} {}\n", v.name, "primary", v.net_dev.empty() ? "-" : v.net_dev, v.name);
    out += "\n";
  }
  if (!m.disk_services.empty()) {
    out += "VDS\n    NAME             LDOM             VOLUME         OPTIONS          DEVICE\n";
    for (const auto& v : m.disk_services) {
      out += fmt::format("    {:<16} {:<16}", v.name, "primary");
      bool first = true;
      for (const auto& vol : v.volumes) {
        std::string opts;
        for (const auto& x : vol.options) opts += (opts.empty() ? "" : ",") + x;
        out += first ? fmt::format(" {:<14} {:<16} {}\n", vol.name, opts, vol.backend)
                     : fmt::format("    {:<16} {:<16} {:<14} {:<16} {}\n", "", "", vol.name, opts, vol.backend);
        first = false;
      }
      if (first) out += "\n";
    }
  }
  return out;
}

Result<std::string> list_devices(const Snapshot& s, const ListOptions& o) {
  const auto& m = s.model;
  model::Usage used = model::bound_usage(m);
  unsigned free_vcpus = m.capacity.vcpus - std::min(used.vcpus, m.capacity.vcpus);
  uint64_t free_memory = m.capacity.memory - std::min(used.memory, m.capacity.memory);
  // Free console ports: each vcc's range minus ports of bound domains.
  std::vector<std::pair<std::string, int>> free_ports;
  for (const auto& c : m.consoles) {
    int n = 0;
    for (int p = c.port_min; p <= c.port_max; ++p)
      if (std::none_of(m.domains.begin(), m.domains.end(),
                       [&](const Domain& d) { return d.state != DomainState::Inactive && d.console.port == p; }))
        ++n;
    free_ports.emplace_back(c.name, n);
  }
  // Free memory ranges of the pool.
  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (const auto& d : m.domains)
    if (d.state != DomainState::Inactive)
      for (const auto& b : d.memory) taken.emplace_back(b.pa, b.size);
  std::sort(taken.begin(), taken.end());
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  uint64_t at = 0;
  for (const auto& [pa, size] : taken) {
    if (pa > at) ranges.emplace_back(at, pa - at);
    at = std::max(at, pa + size);
  }
  if (at < m.capacity.memory) ranges.emplace_back(at, m.capacity.memory - at);

  if (o.json) {
    json j = {{"vcpus", {{"total", m.capacity.vcpus}, {"free", free_vcpus}}},
              {"memory", {{"total", m.capacity.memory}, {"free", free_memory}, {"ranges", json::array()}}},
              {"console_ports", json::object()}};
    for (const auto& [pa, size] : ranges) j["memory"]["ranges"].push_back({{"pa", pa}, {"size", size}});
    for (const auto& [name, n] : free_ports) j["console_ports"][name] = n;
    return j.dump(2) + "\n";
  }
  std::string out;
  if (o.parseable) {
    out += std::string(kParseableVersion) + "\n";
    out += fmt::format("VCPU|total={}|free={}\n", m.capacity.vcpus, free_vcpus);
    out += "MEMORY\n";
    for (const auto& [pa, size] : ranges) out += fmt::format("|pa={}|size={}\n", format_address(pa), size);
    out += "VCONS\n";
    for (const auto& [name, n] : free_ports) out += fmt::format("|service={}|free={}\n", name, n);
    return out;
  }
  out += fmt::format("VCPU\n    TOTAL  FREE\n    {:<6} {}\n\n", m.capacity.vcpus, free_vcpus);
  out += "MEMORY\n    PA                   SIZE\n";
  for (const auto& [pa, size] : ranges) out += fmt::format("    {:<20} {}\n", format_address(pa), format_size(size));
  out += "\nVCONS\n    SERVICE          FREE-PORTS\n";
  for (const auto& [name, n] : free_ports) out += fmt::format("    {:<16} {}\n", name, n);
  return out;
}

Result<std::string> list_constraints(const Snapshot& s, const ListOptions& o) {
  bool with_primary = false;
  auto domains = select(s, o.domains, false, with_primary);
  if (!domains) return fail(domains.error());
  if (o.json) {
    json out = json::array();
    for (const Domain* d : *domains) {
      json j = *d;
      j.erase("runtime");
      j.erase("migration");
      j.erase("transitioning");
      j.erase("delayed_reconf");  // state, not a constraint (FLAGS says it)
      j.erase("running");
      out.push_back(j);
    }
    return out.dump(2) + "\n";
  }
  std::string out;
  if (o.xml) {
    out += "<?xml version=\"1.0\"?>\n<LDM_interface version=\"1.3\" "
           "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
           "xmlns:ovf=\"./schemas/envelope\" xmlns:rasd=\"./schemas/CIM_ResourceAllocationSettingData\" "
           "xmlns:vssd=\"./schemas/CIM_VirtualSystemSettingData\" xmlns:gprop=\"./schemas/GenericProperty\" "
           "xmlns:bind=\"./schemas/Binding\">\n  <data version=\"3.0\">\n    <Envelope>\n      <References/>\n";
    auto item = [&](const std::string& type, const std::vector<std::pair<std::string, std::string>>& props) {
      std::string x = "          <Item>\n            <rasd:OtherResourceType>" + type + "</rasd:OtherResourceType>\n";
      for (const auto& [k, v] : props)
        x += "            <gprop:GenericProperty key=\"" + xml_escape(k) + "\">" + xml_escape(v) +
             "</gprop:GenericProperty>\n";
      return x + "          </Item>\n";
    };
    for (const Domain* d : *domains) {
      out += "      <Content xsi:type=\"ovf:VirtualSystem_Type\" ovf:id=\"" + xml_escape(d->name) + "\">\n";
      out += "        <Section xsi:type=\"ovf:ResourceAllocationSection_Type\">\n";
      out += item("ldom_info", {{"uuid", d->uuid}, {"cpu-arch", d->cpu_arch}, {"kernel", d->kernel},
                                {"initrd", d->initrd}, {"cmdline", d->cmdline}});
      out += item("cpu", {{"number", std::to_string(d->vcpus)}});
      for (const auto& b : d->memory)
        out += item("memory", {{"size", format_size(b.size)}, {"ra", format_address(b.ra)},
                               {"pagesize", format_size(b.page_size)}});
      for (const auto& k : d->disks)
        out += item("disk", {{"vdisk_name", k.name}, {"service_name", k.service}, {"vol_name", k.volume},
                             {"id", std::to_string(k.id)}});
      for (const auto& n : d->networks)
        out += item("network", {{"vnet_name", n.name}, {"service_name", n.vswitch}, {"mac_addr", n.mac},
                                {"id", std::to_string(n.id)}});
      for (const auto& [k, v] : d->variables) out += item("var", {{"name", k}, {"value", v}});
      out += item("console", {{"group", d->console.group}, {"service_name", d->console.service}});
      out += "        </Section>\n      </Content>\n";
    }
    out += "    </Envelope>\n  </data>\n</LDM_interface>\n";
    return out;
  }
  if (o.parseable) {
    out += std::string(kParseableVersion) + "\n";
    for (const Domain* d : *domains) {
      out += fmt::format("DOMAIN|name={}\nUUID|uuid={}\nCONTROL|cpu-arch={}\n", d->name, d->uuid, d->cpu_arch);
      out += fmt::format("VCPU|count={}\n", d->vcpus);
      out += "MEMORY\n";
      for (const auto& b : d->memory)
        out += fmt::format("|ra={}|size={}|pagesize={}\n", format_address(b.ra), b.size, b.page_size);
      out += "VARIABLES\n";
      for (const auto& [k, v] : d->variables) out += fmt::format("|{}={}\n", k, v);
      for (const auto& n : d->networks)
        out += fmt::format("VNET|name={}|dev=network@{}|service={}|mac-addr={}\n", n.name, n.id, n.vswitch, n.mac);
      for (const auto& k : d->disks)
        out += fmt::format("VDISK|name={}|vol={}@{}|id={}\n", k.name, k.volume, k.service, k.id);
      out += fmt::format("VCONS|group={}|service={}\n", d->console.group, d->console.service);
    }
    return out;
  }
  bool first = true;
  for (const Domain* d : *domains) {
    if (!first) out += "\n";
    first = false;
    out += fmt::format("DOMAIN\n{}\n\nUUID\n    {}\n\nCONTROL\n    cpu-arch={}\n", d->name, d->uuid, d->cpu_arch);
    if (!d->kernel.empty()) out += fmt::format("    kernel={}\n", d->kernel);
    if (!d->initrd.empty()) out += fmt::format("    initrd={}\n", d->initrd);
    if (!d->cmdline.empty()) out += fmt::format("    cmdline={}\n", d->cmdline);
    out += fmt::format("\nVCPU\n    COUNT\n    {}\n\nMEMORY\n    RA               SIZE     PAGESIZE\n", d->vcpus);
    for (const auto& b : d->memory)
      out += fmt::format("    {:<16} {:<8} {}\n", format_address(b.ra), format_size(b.size), format_size(b.page_size));
    out += "\n" + section_variables(*d, false) + "\n" + section_network(*d, false) + "\n" + section_disk(*d, false);
    out += fmt::format("\nVCONS\n    GROUP            SERVICE\n    {:<16} {}\n", d->console.group, d->console.service);
  }
  return out;
}

}  // namespace ldm::cli
