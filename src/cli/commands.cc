#include "cli/commands.h"

#include <algorithm>

#include <fmt/format.h>

namespace ldm::cli {

using json = nlohmann::json;

const std::vector<CommandSpec>& command_specs() {
  static const std::vector<CommandSpec> specs = {
      {"add-domain", {"create"}, "ldm add-domain [vcpus=N] [memory=SIZE] [mem-pagesize=4K|2M|1G]\n"
                                 "               [cpu-arch=native|generic|migration-class1]\n"
                                 "               [uuid=UUID] [kernel=PATH] [initrd=PATH] [cmdline=TEXT] domain-name\n"
                                 "ldm add-domain domain-name...",
       "Define a new, inactive domain. It gets a UUID; vCPUs and memory can be given now or later."},
      {"set-domain", {"modify"}, "ldm set-domain [vcpus=N] [memory=SIZE] [mem-pagesize=4K|2M|1G] [cpu-arch=...]\n"
                                 "               [kernel=PATH] [initrd=PATH] [cmdline=TEXT] domain-name",
       "Change properties of a domain. On an active domain, vCPUs, memory, kernel and command line changes are "
       "held until its next start (a delayed reconfiguration, FLAGS column 3 'd'); cpu-arch and mem-pagesize "
       "change only while the domain is bound or inactive. mem-pagesize 2M or 1G backs memory with huge pages."},
      {"remove-domain", {"rm-domain", "destroy"}, "ldm remove-domain -a\nldm remove-domain domain-name...",
       "Remove inactive domains (-a: every domain of this host)."},
      {"add-vcpu", {}, "ldm add-vcpu number domain-name",
       "Give a domain more vCPUs (an active one gets them at its next start)."},
      {"set-vcpu", {}, "ldm set-vcpu number domain-name",
       "Set the number of vCPUs of a domain (an active one: at its next start)."},
      {"remove-vcpu", {"rm-vcpu"}, "ldm remove-vcpu number domain-name", "Take vCPUs away from a domain."},
      {"add-memory", {"add-mem"}, "ldm add-memory size[unit] domain-name",
       "Give a domain more memory (units K, M, G, T; an active one gets it at its next start)."},
      {"set-memory", {"set-mem"}, "ldm set-memory size[unit] domain-name", "Set the memory of a domain."},
      {"remove-memory", {"rm-memory", "rm-mem", "remove-mem"}, "ldm remove-memory size[unit] domain-name",
       "Take memory away from a domain."},
      {"add-vds", {"add-vdiskserver"}, "ldm add-vds service-name primary",
       "Add a virtual disk service to this host (the primary domain)."},
      {"remove-vds", {"rm-vds", "remove-vdiskserver"}, "ldm remove-vds service-name",
       "Remove a virtual disk service that no domain uses."},
      {"add-vdsdev", {"add-vdiskserverdevice"}, "ldm add-vdsdev [-f] [options={ro,slice,excl}] backend volume-name@service-name",
       "Export a file or block device as a volume of a disk service. -f accepts a backend that does not exist yet."},
      {"remove-vdsdev", {"rm-vdsdev", "remove-vdiskserverdevice"}, "ldm remove-vdsdev volume-name@service-name",
       "Remove a volume that no vdisk uses."},
      {"add-vdisk", {}, "ldm add-vdisk disk-name volume-name@service-name domain-name",
       "Give a domain a virtio-blk disk on a volume."},
      {"remove-vdisk", {"rm-vdisk"}, "ldm remove-vdisk disk-name domain-name", "Remove a disk from a domain."},
      {"add-vsw", {"add-vswitch"}, "ldm add-vsw [net-dev=device] vswitch-name primary",
       "Add a virtual switch: a Linux bridge of that name, created if missing, with an optional uplink."},
      {"remove-vsw", {"rm-vsw", "remove-vswitch"}, "ldm remove-vsw vswitch-name",
       "Remove a virtual switch that no vnet uses (and its bridge, when ldmd created it)."},
      {"add-vnet", {}, "ldm add-vnet [mac-addr=MAC] if-name vswitch-name domain-name",
       "Give a domain a virtio-net NIC on a tap in the switch's bridge. Without mac-addr=, a free MAC is "
       "allocated from 02:4c:44:00:00:00-02:4c:44:ff:ff:ff."},
      {"remove-vnet", {"rm-vnet"}, "ldm remove-vnet if-name domain-name", "Remove a NIC from a domain."},
      {"add-vcc", {"add-vconscon"}, "ldm add-vcc port-range=MIN-MAX vcc-name primary",
       "Add a virtual console concentrator: the TCP (telnet) ports that domain consoles use."},
      {"remove-vcc", {"rm-vcc", "remove-vconscon"}, "ldm remove-vcc vcc-name",
       "Remove a console concentrator that no bound domain uses."},
      {"set-var", {"set-variable", "add-var", "add-variable"}, "ldm set-var name=value... domain-name",
       "Set variables of a domain (kept with it, e.g. auto-boot?=true)."},
      {"remove-var", {"rm-var", "remove-variable", "rm-variable"}, "ldm remove-var name... domain-name",
       "Remove variables of a domain."},
      {"add-io", {}, "ldm add-io pci-device domain-name",
       "Give an inactive domain a host PCI function (DDDD:BB:DD.F, as in /sys/bus/pci/devices). A domain with "
       "physical I/O cannot be migrated."},
      {"remove-io", {"rm-io"}, "ldm remove-io pci-device domain-name",
       "Take a PCI function away from an inactive domain."},
      {"cancel-operation", {"cancel-op"}, "ldm cancel-operation (migration | reconf) domain-name",
       "reconf: drop a domain's pending delayed reconfiguration (its constraints go back to what runs). "
       "migration: stop a migration started on this host; the domain runs here as before."},
      {"bind-domain", {"bind"}, "ldm bind-domain domain-name",
       "Reserve a domain's vCPUs, memory, console port and MACs on this host."},
      {"unbind-domain", {"unbind"}, "ldm unbind-domain domain-name", "Release what bind-domain reserved."},
      {"start-domain", {"start"}, "ldm start-domain domain-name...", "Start bound domains: each runs as a QEMU process."},
      {"stop-domain", {"stop"}, "ldm stop-domain [-f] [-t seconds] domain-name...",
       "Stop active domains gracefully (ACPI power button), waiting at most -t seconds (default 30); -f stops them "
       "at once. A stopped domain stays bound."},
      {"migrate-domain", {"migrate"},
       "ldm migrate-domain [-f] [-n] [-p password-file] source-ldom [user@]target-host[:target-ldom]\n"
       "ldm migrate-domain [-f] [-n] -c source-ldom target-host[:target-ldom]",
       "Move a domain to another host: a running one live, a bound or inactive one with its constraints. -n checks "
       "everything and moves nothing; :target-ldom renames. Password mode (the default) authenticates user (default: "
       "you) on the target, which must be root or in ldm-admin there: the password is asked on the terminal "
       "(Target Password:, no echo) or read from the first line of a private file (-p, mode 600, at most 256 "
       "characters). -c authenticates with the hosts' certificates instead (STATE/trust). Prints nothing on "
       "success."},
      {"list-domain", {"list", "ls", "ls-dom"}, "ldm list-domain [-l] [-p] [-o format[,format...]] [--json] [domain-name...]",
       "List domains: NAME STATE FLAGS CONS VCPU MEMORY UTIL NORM UPTIME. -l long form, -p parseable, -o one or "
       "more of console, cpu, disk, domain, memory, network, status, variables."},
      {"list-bindings", {"ls-bindings"}, "ldm list-bindings [-p] [--json] [domain-name...]",
       "List domains with the resources bound to them."},
      {"list-services", {"ls-services"}, "ldm list-services [-p] [--json]",
       "List this host's services: vcc, vsw and vds with their volumes."},
      {"list-devices", {"ls-devices"}, "ldm list-devices [-p] [--json]",
       "List this host's free resources for domains: vCPUs, memory ranges, console ports."},
      {"list-constraints", {"ls-constraints"}, "ldm list-constraints [-x | -p | --json] [domain-name...]",
       "List what domains ask for (their constraints); -x as XML."},
  };
  return specs;
}

namespace {

Result<> need_operands(const Invocation& inv, size_t n) {
  if (inv.operands.size() == n) return {};
  const CommandSpec* spec = nullptr;
  for (const auto& s : command_specs())
    if (s.name == inv.command) spec = &s;
  return fail(fmt::format("Wrong number of arguments for {}.\nUsage:\n    {}", inv.command,
                          spec ? spec->synopsis : inv.command));
}

Result<> need_primary(const std::string& ldom, const std::string& kind) {
  if (ldom != "primary")
    return fail(fmt::format("{} services belong to the host: name 'primary' as their domain, not '{}'", kind, ldom));
  return {};
}

bool is_property(const std::string& s) { return s.find('=') != std::string::npos; }

std::pair<std::string, std::string> split_property(const std::string& s) {
  auto eq = s.find('=');
  return {s.substr(0, eq), s.substr(eq + 1)};
}

protocol::Request request(const std::string& command, json args) { return protocol::Request{command, std::move(args)}; }

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<Action> interpret(const Invocation& inv) {
  const auto& c = inv.command;
  const auto& ops = inv.operands;

  if (c.rfind("list-", 0) == 0) {
    Listing l{c, ListOptions{inv.long_form, inv.parseable, inv.json, inv.xml, split_commas(inv.format), ops}};
    if (c == "list-constraints" && (inv.xml + inv.parseable + inv.json) > 1)
      return fail("list-constraints takes only one of -x, -p and --json");
    return Action{l};
  }
  if (c == "add-domain" || c == "set-domain") {
    json props = json::object();
    std::vector<std::string> names;
    for (const auto& o : ops) {
      if (is_property(o)) {
        auto [k, v] = split_property(o);
        props[k] = v;
      } else {
        names.push_back(o);
      }
    }
    if (names.empty()) return fail(fmt::format("{} needs a domain name; see 'ldm {} --help'", c, c));
    if (names.size() > 1 && (!props.empty() || c == "set-domain"))
      return fail(fmt::format("{} takes one domain name when properties are given (got {})", c, names.size()));
    if (names.size() > 1) return Action{request(c, {{"names", names}, {"batch", true}})};
    return Action{request(c, {{"name", names[0]}, {"props", props}})};
  }
  if (c == "remove-domain") {
    if (inv.all) {
      if (!ops.empty()) return fail("remove-domain -a takes no domain names");
      return Action{request(c, {{"all", true}})};
    }
    if (ops.empty()) return fail("remove-domain needs domain names, or -a for all");
    return Action{request(c, {{"names", ops}})};
  }
  if (c == "add-vcpu" || c == "set-vcpu" || c == "remove-vcpu") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    return Action{request(c, {{"count", ops[0]}, {"name", ops[1]}})};
  }
  if (c == "add-memory" || c == "set-memory" || c == "remove-memory") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    return Action{request(c, {{"size", ops[0]}, {"name", ops[1]}})};
  }
  if (c == "add-vds") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    if (auto r = need_primary(ops[1], "Disk"); !r) return fail(r.error());
    return Action{request(c, {{"service", ops[0]}})};
  }
  if (c == "remove-vds" || c == "remove-vsw" || c == "remove-vcc") {
    if (auto r = need_operands(inv, 1); !r) return fail(r.error());
    return Action{request(c, {{"service", ops[0]}})};
  }
  if (c == "add-vdsdev") {
    std::vector<std::string> rest, options;
    for (const auto& o : ops) {
      if (o.rfind("options=", 0) == 0) {
        options = split_commas(o.substr(8));
      } else if (is_property(o)) {
        auto [k, v] = split_property(o);
        if (k != "mpgroup") return fail(fmt::format("Unknown property '{}' for add-vdsdev; allowed: options=, mpgroup=", k));
      } else {
        rest.push_back(o);
      }
    }
    Invocation check = inv;
    check.operands = rest;
    if (auto r = need_operands(check, 2); !r) return fail(r.error());
    return Action{request(c, {{"backend", rest[0]}, {"target", rest[1]}, {"options", options}, {"force", inv.force}})};
  }
  if (c == "remove-vdsdev") {
    if (auto r = need_operands(inv, 1); !r) return fail(r.error());
    return Action{request(c, {{"target", ops[0]}})};
  }
  if (c == "add-vdisk") {
    std::vector<std::string> rest;
    for (const auto& o : ops)
      if (!is_property(o)) rest.push_back(o);  // id=, timeout=: accepted, ids are assigned
    Invocation check = inv;
    check.operands = rest;
    if (auto r = need_operands(check, 3); !r) return fail(r.error());
    return Action{request(c, {{"disk", rest[0]}, {"target", rest[1]}, {"domain", rest[2]}})};
  }
  if (c == "remove-vdisk" || c == "remove-vnet") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    return Action{request(c, {{c == "remove-vdisk" ? "disk" : "name", ops[0]}, {"domain", ops[1]}})};
  }
  if (c == "add-vsw") {
    std::string net_dev;
    std::vector<std::string> rest;
    for (const auto& o : ops) {
      if (!is_property(o)) {
        rest.push_back(o);
        continue;
      }
      auto [k, v] = split_property(o);
      if (k != "net-dev") return fail(fmt::format("Unknown property '{}' for add-vsw; allowed: net-dev=", k));
      net_dev = v;
    }
    Invocation check = inv;
    check.operands = rest;
    if (auto r = need_operands(check, 2); !r) return fail(r.error());
    if (auto r = need_primary(rest[1], "Switch"); !r) return fail(r.error());
    return Action{request(c, {{"service", rest[0]}, {"net-dev", net_dev}})};
  }
  if (c == "add-vnet") {
    json args = json::object();
    std::vector<std::string> rest;
    for (const auto& o : ops) {
      if (!is_property(o)) {
        rest.push_back(o);
        continue;
      }
      auto [k, v] = split_property(o);
      if (k != "mac-addr") return fail(fmt::format("Unknown property '{}' for add-vnet; allowed: mac-addr=", k));
      args["mac-addr"] = v;
    }
    Invocation check = inv;
    check.operands = rest;
    if (auto r = need_operands(check, 3); !r) return fail(r.error());
    args["name"] = rest[0];
    args["vswitch"] = rest[1];
    args["domain"] = rest[2];
    return Action{request(c, args)};
  }
  if (c == "add-vcc") {
    std::string range;
    std::vector<std::string> rest;
    for (const auto& o : ops) {
      if (!is_property(o)) {
        rest.push_back(o);
        continue;
      }
      auto [k, v] = split_property(o);
      if (k != "port-range") return fail(fmt::format("Unknown property '{}' for add-vcc; allowed: port-range=", k));
      range = v;
    }
    if (range.empty()) return fail("add-vcc needs port-range=MIN-MAX, e.g. port-range=5000-5100");
    Invocation check = inv;
    check.operands = rest;
    if (auto r = need_operands(check, 2); !r) return fail(r.error());
    if (auto r = need_primary(rest[1], "Console"); !r) return fail(r.error());
    return Action{request(c, {{"service", rest[0]}, {"port-range", range}})};
  }
  if (c == "set-var") {
    if (ops.size() < 2) return fail("set-var needs name=value pairs and a domain name");
    json vars = json::object();
    for (size_t i = 0; i + 1 < ops.size(); ++i) {
      if (!is_property(ops[i])) return fail(fmt::format("set-var: '{}' is not name=value", ops[i]));
      auto [k, v] = split_property(ops[i]);
      if (k.empty()) return fail(fmt::format("set-var: '{}' has no variable name", ops[i]));
      vars[k] = v;
    }
    return Action{request(c, {{"vars", vars}, {"domain", ops.back()}})};
  }
  if (c == "remove-var") {
    if (ops.size() < 2) return fail("remove-var needs variable names and a domain name");
    return Action{request(c, {{"keys", std::vector<std::string>(ops.begin(), ops.end() - 1)}, {"domain", ops.back()}})};
  }
  if (c == "add-io" || c == "remove-io") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    return Action{request(c, {{"device", ops[0]}, {"domain", ops[1]}})};
  }
  if (c == "cancel-operation") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    if (ops[0] != "migration" && ops[0] != "reconf")
      return fail(fmt::format("cancel-operation cancels 'migration' or 'reconf', not '{}'", ops[0]));
    return Action{request(c, {{"operation", ops[0]}, {"domain", ops[1]}, {"force", inv.force}})};
  }
  if (c == "bind-domain" || c == "unbind-domain") {
    if (auto r = need_operands(inv, 1); !r) return fail(r.error());
    return Action{request(c, {{"name", ops[0]}})};
  }
  if (c == "migrate-domain") {
    if (auto r = need_operands(inv, 2); !r) return fail(r.error());
    std::string target = ops[1], user, target_name;
    if (auto at = target.find('@'); at != std::string::npos) {
      user = target.substr(0, at);
      target = target.substr(at + 1);
    }
    if (auto colon = target.find(':'); colon != std::string::npos) {
      target_name = target.substr(colon + 1);
      target = target.substr(0, colon);
    }
    if (target.empty()) return fail("migrate-domain needs a target host, e.g. ldm migrate-domain -c ldg1 hostB");
    if (inv.certificate && (!user.empty() || !inv.password_file.empty()))
      return fail("-c cannot be combined with -p or user@: certificate mode authenticates hosts, not users");
    if (target.find('@') != std::string::npos || (ops[1].find('@') != std::string::npos && user.empty()))
      return fail(fmt::format("Invalid target '{}': use [user@]host[:ldom]", ops[1]));
    json args = {{"name", ops[0]}, {"target", target}, {"target_name", target_name.empty() ? ops[0] : target_name},
                 {"dry_run", inv.dry_run}, {"force", inv.force}, {"certificate", inv.certificate}, {"json", inv.json}};
    // Password mode: ldm's main reads the password (file or terminal) and
    // fills in the invoking user when no user@ was given.
    if (!inv.certificate) {
      args["user"] = user;
      if (!inv.password_file.empty()) args["password_file"] = inv.password_file;
    }
    return Action{request(c, args)};
  }
  if (c == "start-domain" || c == "stop-domain") {
    if (ops.empty()) return fail(fmt::format("{} needs at least one domain name", c));
    json args = {{"names", ops}, {"force", inv.force}};
    if (inv.timeout >= 0) {
      if (inv.timeout == 0) return fail("stop-domain -t needs a timeout of at least 1 second");
      args["timeout"] = inv.timeout;
    }
    return Action{request(c, args)};
  }
  return fail(fmt::format("Unknown command '{}'; 'ldm --help' lists the commands", c));
}

}  // namespace ldm::cli
