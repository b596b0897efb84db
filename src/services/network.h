// Host networking for virtual switches and networks: a vsw is a Linux bridge,
// a vnet is a tap device in it. Blocking (runs `ip`): call from the pool.
#pragma once

#include <string>

#include "base/result.h"

namespace ldm::services {

bool link_exists(const std::string& name);

// Creates the bridge if missing (returns true when it did) and enslaves
// `uplink` when given.
Result<bool> ensure_bridge(const std::string& bridge, const std::string& uplink);
Result<> delete_link(const std::string& name);

// A persistent tap, up, in `bridge`; it outlives ldmd like the QEMU using it.
Result<> create_tap(const std::string& tap, const std::string& bridge);

// The tap name for a vnet: "ldm" + 4 hex of the host + 6 hex of the domain +
// the vnet id; under Linux's 15-character limit and unique per host.
std::string tap_name(const std::string& host_tag, const std::string& uuid, int vnet_id);

}  // namespace ldm::services
