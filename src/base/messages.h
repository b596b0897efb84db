// Every user-facing message, written once and shared by ldmd and ldm.
//
// Where the original Logical Domains Manager has a fixed string it is copied
// exactly (marked "original"). Messages name the problem and, where one exists,
// the command that fixes it.
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "base/size.h"

namespace ldm::msg {

// ---- domains -----------------------------------------------------------------
inline std::string domain_not_found(const std::string& d) {
  return fmt::format("LDom {} not found; 'ldm list-domain' shows the domains of this host", d);
}
inline std::string domain_exists(const std::string& d) {
  return fmt::format("LDom {} already exists; choose another name or remove it with 'ldm remove-domain {}'", d, d);
}
inline std::string invalid_domain_name(const std::string& d) {
  return fmt::format("Invalid LDom name '{}': use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
                     d);
}
inline std::string primary_reserved(const std::string& op) {
  return fmt::format("The primary domain is the host itself and cannot be used with {}", op);
}
inline std::string must_be_inactive(const std::string& d, const char* state, const std::string& action) {
  return fmt::format("LDom {} is {}; {} needs it inactive: run 'ldm {} {}' first", d, state, action,
                     std::string(state) == "active" ? "stop-domain" : "unbind-domain", d);
}
inline std::string must_not_be_active(const std::string& d, const std::string& action) {
  return fmt::format("LDom {} is active and {} cannot be applied to a running domain; stop it first with 'ldm stop-domain {}'",
                     d, action, d);
}
inline std::string must_be_bound(const std::string& d, const char* state, const std::string& action) {
  return fmt::format("LDom {} is {}; {} needs it bound: run 'ldm bind-domain {}' first", d, state, action, d);
}
inline std::string already_in_state(const std::string& d, const char* state) {
  return fmt::format("LDom {} is already {}", d, state);
}
inline std::string delayed_reconf_started(const std::string& d) {
  return fmt::format("Initiating a delayed reconfiguration operation on LDom {}. The change takes effect when the "
                     "domain is next started (stop-domain, then start-domain); "
                     "'ldm cancel-operation reconf {}' drops it.",
                     d, d);
}
inline std::string delayed_reconf_pending(const std::string& d) {
  return fmt::format("Notice: LDom {} is in the process of a delayed reconfiguration. Any changes made to this LDom "
                     "will only take effect after it is restarted.",
                     d);
}
inline std::string no_delayed_reconf(const std::string& d) {
  return fmt::format("LDom {} has no delayed reconfiguration to cancel", d);
}
inline std::string bad_pci_address(const std::string& text) {
  return fmt::format("Invalid PCI device '{}': write it as in /sys/bus/pci/devices, e.g. 0000:3b:00.0", text);
}
inline std::string domain_migrating(const std::string& d, const std::string& role, const std::string& peer,
                                    bool error) {
  if (error)
    return fmt::format("LDom {} is in the error state of a failed migration {} {}; resolve it first "
                       "('ldm list -o status {}' says how)",
                       d, role == "source" ? "to" : "from", peer, d);
  if (role == "target")
    return fmt::format("LDom {} is being migrated here from {}; it cannot be changed until the migration ends "
                       "(cancel it on {} with 'ldm cancel-operation migration')",
                       d, peer, peer);
  return fmt::format("LDom {} is being migrated to {}; it cannot be changed until the migration ends "
                     "(watch it with 'ldm list -o status {}', stop it with 'ldm cancel-operation migration {}')",
                     d, peer, d, d);
}
inline std::string blocked_by_migration(const std::string& d, const std::string& operation,
                                        const std::string& migration) {
  return fmt::format("Cannot {} LDom {} while a migration is in progress on this machine ({}): bind, stop and "
                     "delayed reconfiguration wait until it ends",
                     operation, d, migration);
}
inline std::string migration_cancelled(const std::string& d) {
  return fmt::format("The migration of LDom {} was cancelled; the domain runs here as before", d);
}
inline std::string operation_in_progress(const std::string& d) {
  return fmt::format("Another operation is in progress on LDom {}; wait for it to finish and try again", d);
}

// ---- resources ---------------------------------------------------------------
inline std::string not_enough_vcpus(const std::string& d, unsigned want, unsigned free, unsigned total) {
  return fmt::format(
      "Not enough free vCPUs to bind LDom {}: it needs {} and the host has {} free of {}; "
      "lower it with 'ldm set-vcpu' or unbind another domain",
      d, want, free, total);
}
inline std::string unable_to_bind_memory(uint64_t size, uint64_t ra, uint64_t free, uint64_t total) {
  return fmt::format(
      "Unable to bind {} memory region at real address {}: the host has {} free of {} for domains; "
      "lower it with 'ldm set-memory' or unbind another domain",
      format_size(size), format_address(ra), format_size(free), format_size(total));
}
inline std::string bad_vcpu_count(const std::string& text) {
  return fmt::format("Invalid vCPU count '{}': use a whole number of at least 1", text);
}
inline std::string memory_too_small(const std::string& text) {
  return fmt::format("Invalid memory size '{}': a domain needs at least 4M, in multiples of 4K", text);
}
inline std::string cannot_remove_more(const std::string& what, const std::string& d) {
  return fmt::format("Cannot remove that much {} from LDom {}: it would be left with none", what, d);
}
inline std::string needs_resources(const std::string& d) {
  return fmt::format("LDom {} has no vCPUs or no memory; give it both before binding, e.g. 'ldm set-vcpu 1 {}' and 'ldm set-memory 256M {}'",
                     d, d, d);
}

// ---- services ----------------------------------------------------------------
inline std::string service_exists(const char* kind, const std::string& s) {
  return fmt::format("A {} service named {} already exists", kind, s);
}
inline std::string service_not_found(const char* kind, const std::string& s, const std::string& fix) {
  return fmt::format("{} service {} not found; {}", kind, s, fix);
}
inline std::string service_in_use(const char* kind, const std::string& s, const std::string& by) {
  return fmt::format("{} service {} is in use by LDom {}; remove that first", kind, s, by);
}
inline std::string volume_exists(const std::string& vol, const std::string& vds) {
  return fmt::format("Volume {}@{} already exists", vol, vds);
}
inline std::string volume_not_found(const std::string& vol, const std::string& vds) {
  return fmt::format("Volume {}@{} does not exist; add it with 'ldm add-vdsdev BACKEND {}@{}'", vol, vds, vol, vds);
}
inline std::string volume_attached(const std::string& vol, const std::string& vds, const std::string& d) {
  return fmt::format("Volume {}@{} is attached to LDom {}; remove its vdisk first", vol, vds, d);
}
inline std::string backend_missing(const std::string& path) {
  return fmt::format("Backend {} does not exist; create the file or device first (e.g. 'truncate -s 1G {}'), "
                     "or use -f to add it anyway",
                     path, path);
}
inline std::string device_exists(const char* kind, const std::string& name, const std::string& d) {
  return fmt::format("A {} named {} already exists in LDom {}", kind, name, d);
}
inline std::string device_not_found(const char* kind, const std::string& name, const std::string& d) {
  return fmt::format("{} {} not found in LDom {}", kind, name, d);
}
inline std::string bad_port_range(const std::string& text) {
  return fmt::format("Invalid port-range '{}': use MIN-MAX with 1024 <= MIN <= MAX <= 65535, e.g. port-range=5000-5100",
                     text);
}
inline std::string port_range_overlap(const std::string& other) {
  return fmt::format("That port-range overlaps the one of vcc {}; choose ports outside it", other);
}
inline std::string no_console_service(const std::string& d) {
  return fmt::format("No virtual console concentrator (vcc) to give LDom {} a console; "
                     "add one with 'ldm add-vcc port-range=5000-5100 primary-vcc0 primary'",
                     d);
}
inline std::string no_free_console_port(const std::string& vcc) {
  return fmt::format("vcc {} has no free port; widen its port-range or unbind a domain", vcc);
}
inline std::string bad_mac(const std::string& text) {
  return fmt::format("Invalid mac-addr '{}': use six hex bytes like 02:4c:44:00:00:01 (a unicast address)", text);
}
inline std::string mac_in_use(const std::string& mac, const std::string& d) {
  return fmt::format("MAC address {} is already used by LDom {}", mac, d);
}
inline std::string bad_interface_name(const std::string& text) {
  return fmt::format("Invalid switch name '{}': it names a Linux bridge, so use 1 to 15 letters, digits, '-' or '_'",
                     text);
}

// ---- properties ---------------------------------------------------------------
inline std::string bad_property(const std::string& prop, const std::string& command, const std::string& allowed) {
  return fmt::format("Unknown or invalid property '{}' for {}; allowed: {}", prop, command, allowed);
}
inline std::string bad_cpu_arch(const std::string& value) {
  return fmt::format("Invalid cpu-arch '{}': use native, generic or migration-class1", value);
}
inline std::string cpu_arch_needs_inactive(const std::string& d) {
  return fmt::format("LDom {} is active; cpu-arch can only be changed while the domain is bound or inactive", d);
}

// ---- runtime -------------------------------------------------------------------
inline std::string stop_timed_out(const std::string& d, int seconds) {
  return fmt::format("LDom {} did not stop within {} seconds of the shutdown request; "
                     "run 'ldm stop-domain -f {}' to stop it forcibly",
                     d, seconds, d);
}
inline std::string qemu_start_failed(const std::string& d, const std::string& why) {
  return fmt::format("LDom {} could not be started: {}", d, why);
}

// ---- control socket ------------------------------------------------------------
inline std::string cannot_reach_daemon(const std::string& path, const std::string& why) {
  return fmt::format("Cannot reach ldmd at {}: {}; start it with 'ldmd' or point $LDM_SOCKET at its socket", path,
                     why);
}
inline std::string malformed_request(const std::string& why) { return fmt::format("Malformed request: {}", why); }

// ---- migration (original strings) ------------------------------------------------
inline std::string migration_failed(const std::string& d) { return "Domain Migration of LDom " + d + " failed"; }
inline std::string migration_would_fail(const std::string& d) {
  return "Domain Migration of LDom " + d + " would fail if attempted";
}
inline constexpr const char* kOlderTarget =
    "The target machine is running an older version of the domain manager that does not support the latest "
    "migration functionality.";

}  // namespace ldm::msg
