#include "services/network.h"

#include <net/if.h>

#include <fmt/format.h>

#include "base/process.h"

namespace ldm::services {

bool link_exists(const std::string& name) { return if_nametoindex(name.c_str()) != 0; }

Result<bool> ensure_bridge(const std::string& bridge, const std::string& uplink) {
  bool created = false;
  if (!link_exists(bridge)) {
    if (auto r = run_checked({"ip", "link", "add", "name", bridge, "type", "bridge"}); !r)
      return fail(fmt::format("Cannot create bridge {} for the virtual switch: {}", bridge, r.error().text()));
    created = true;
  }
  if (auto r = run_checked({"ip", "link", "set", "dev", bridge, "up"}); !r) return fail(r.error());
  if (!uplink.empty()) {
    if (!link_exists(uplink)) {
      if (created) (void)delete_link(bridge);
      return fail(fmt::format("Network device {} does not exist; 'ip link' lists this host's devices", uplink));
    }
    if (auto r = run_checked({"ip", "link", "set", "dev", uplink, "master", bridge}); !r) {
      if (created) (void)delete_link(bridge);
      return fail(fmt::format("Cannot add {} to bridge {}: {}", uplink, bridge, r.error().text()));
    }
  }
  return created;
}

Result<> delete_link(const std::string& name) {
  if (!link_exists(name)) return {};
  if (auto r = run_checked({"ip", "link", "del", "dev", name}); !r) return fail(r.error());
  return {};
}

Result<> create_tap(const std::string& tap, const std::string& bridge) {
  if (!link_exists(tap))
    if (auto r = run_checked({"ip", "tuntap", "add", "dev", tap, "mode", "tap"}); !r)
      return fail(fmt::format("Cannot create tap {}: {}", tap, r.error().text()));
  if (auto r = run_checked({"ip", "link", "set", "dev", tap, "master", bridge, "up"}); !r) {
    (void)delete_link(tap);
    return fail(fmt::format("Cannot attach tap {} to bridge {}: {}", tap, bridge, r.error().text()));
  }
  return {};
}

std::string tap_name(const std::string& host_tag, const std::string& uuid, int vnet_id) {
  std::string hex;
  for (char c : uuid)
    if (c != '-' && hex.size() < 6) hex += c;
  return fmt::format("ldm{}{}{}", host_tag.substr(0, 4), hex, vnet_id);
}

}  // namespace ldm::services
