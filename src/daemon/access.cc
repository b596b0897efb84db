#include "daemon/access.h"

#include <algorithm>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <sstream>
#include <sys/socket.h>

#include <fmt/format.h>

namespace ldm::daemon {

namespace {

bool member(const PeerIdentity& peer, std::optional<gid_t> group) {
  if (!group) return false;
  return peer.gid == *group || std::find(peer.groups.begin(), peer.groups.end(), *group) != peer.groups.end();
}

std::string user_name(uid_t uid) {
  if (const passwd* pw = getpwuid(uid)) return pw->pw_name;
  return fmt::format("uid {}", uid);
}

}  // namespace

Access access_of(const PeerIdentity& peer, const AccessGroups& groups) {
  if (peer.uid == 0 || member(peer, groups.admin)) return Access::Admin;
  if (member(peer, groups.read)) return Access::Read;
  return Access::None;
}

bool read_only_command(const std::string& command) { return command == "snapshot"; }

std::string refusal(const PeerIdentity& peer, Access access, const std::string& command) {
  if (access == Access::Admin) return {};
  if (access == Access::Read) {
    if (read_only_command(command)) return {};
    return fmt::format("Permission denied: {} is in the group {}, which may only list; {} needs root or the group {}",
                       user_name(peer.uid), kReadGroup, command, kAdminGroup);
  }
  return fmt::format("Permission denied: {} is neither root nor in the group {} (changes) or {} (listings); an "
                     "administrator can add you with 'usermod -aG {} {}'",
                     user_name(peer.uid), kAdminGroup, kReadGroup, kReadGroup, user_name(peer.uid));
}

std::optional<PeerIdentity> peer_identity(int fd) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return std::nullopt;
  PeerIdentity peer{cred.uid, cred.gid, {}};
  // The peer's supplementary groups, as the kernel holds them for its process.
  std::ifstream status(fmt::format("/proc/{}/status", cred.pid));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream in(line.substr(7));
    for (gid_t g; in >> g;) peer.groups.push_back(g);
  }
  return peer;
}

AccessGroups lookup_access_groups() {
  AccessGroups groups;
  if (const group* g = getgrnam(kAdminGroup)) groups.admin = g->gr_gid;
  if (const group* g = getgrnam(kReadGroup)) groups.read = g->gr_gid;
  return groups;
}

}  // namespace ldm::daemon
