// Who may use the control socket, from the peer's credentials (SO_PEERCRED):
// root and members of ldm-admin may change things, members of ldm-read may
// only list, everyone else is refused with a message that says how to get in.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ldm::daemon {

inline constexpr const char* kAdminGroup = "ldm-admin";
inline constexpr const char* kReadGroup = "ldm-read";

enum class Access { None, Read, Admin };

struct PeerIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups of the peer process
};

struct AccessGroups {
  std::optional<gid_t> admin, read;  // empty when the group does not exist
};

Access access_of(const PeerIdentity& peer, const AccessGroups& groups);
// Commands that only read (listings).
bool read_only_command(const std::string& command);
// Why `command` is refused for `peer`, or empty when it is allowed.
std::string refusal(const PeerIdentity& peer, Access access, const std::string& command);

// I/O: the credentials of a connected unix socket, and the groups' IDs.
std::optional<PeerIdentity> peer_identity(int fd);
AccessGroups lookup_access_groups();

}  // namespace ldm::daemon
