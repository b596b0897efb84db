#include "daemon/authentication.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <vector>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "daemon/access.h"

namespace ldm::daemon {

using namespace std::chrono;

std::optional<seconds> AuthLimiter::locked(const std::string& peer, Clock::time_point now) const {
  auto it = records_.find(peer);
  if (it == records_.end() || now >= it->second.until) return std::nullopt;
  return duration_cast<seconds>(it->second.until - now) + seconds(1);
}

void AuthLimiter::failed(const std::string& peer, Clock::time_point now) {
  Record& r = records_[peer];
  if (r.failures > 0 && now - r.last > kForget) r = Record{};
  r.failures += 1;
  r.last = now;
  if (r.failures >= kFreeFailures) {
    int doublings = std::min(r.failures - kFreeFailures, 16);
    r.until = now + std::min<seconds>(kFirstLockout * (1L << doublings), kMaxLockout);
  }
}

void AuthLimiter::succeeded(const std::string& peer) { records_.erase(peer); }

namespace {

// PAM asks; we answer every hidden prompt with the password and nothing else.
int answer(int count, const pam_message** messages, pam_response** responses, void* data) {
  auto* password = static_cast<const std::string*>(data);
  auto* out = static_cast<pam_response*>(calloc(static_cast<size_t>(count), sizeof(pam_response)));
  if (!out) return PAM_BUF_ERR;
  for (int i = 0; i < count; ++i) {
    if (messages[i]->msg_style == PAM_PROMPT_ECHO_OFF || messages[i]->msg_style == PAM_PROMPT_ECHO_ON)
      out[i].resp = strdup(password->c_str());  // PAM frees (and its modules wipe) it
  }
  *responses = out;
  return PAM_SUCCESS;
}

bool is_admin(const std::string& user) {
  const passwd* pw = getpwnam(user.c_str());
  if (!pw) return false;
  PeerIdentity identity{pw->pw_uid, pw->pw_gid, {}};
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (getgrouplist(user.c_str(), pw->pw_gid, groups.data(), &count) == -1) {
    groups.resize(static_cast<size_t>(count));
    getgrouplist(user.c_str(), pw->pw_gid, groups.data(), &count);
  }
  groups.resize(static_cast<size_t>(std::max(count, 0)));
  identity.groups = groups;
  return access_of(identity, lookup_access_groups()) == Access::Admin;
}

}  // namespace

Result<> authenticate_user(const std::string& service, const std::string& user, std::string& password,
                           const std::string& host, bool& password_right) {
  pam_conv conversation{answer, &password};
  pam_handle_t* handle = nullptr;
  int rc = pam_start(service.c_str(), user.c_str(), &conversation, &handle);
  if (rc == PAM_SUCCESS) rc = pam_authenticate(handle, PAM_DISALLOW_NULL_AUTHTOK | PAM_SILENT);
  if (rc == PAM_SUCCESS) rc = pam_acct_mgmt(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (handle) pam_end(handle, rc);
  wipe(password);
  password_right = rc == PAM_SUCCESS;
  // One message for an unknown user, a wrong password and an expired account.
  if (rc != PAM_SUCCESS)
    return fail(fmt::format("Authentication to {} failed: wrong user name or password", host));
  if (!is_admin(user))
    return fail(fmt::format("User {} may not migrate domains to {}: it must be root or in the group {} there "
                            "(usermod -aG {} {})",
                            user, host, kAdminGroup, kAdminGroup, user));
  return {};
}

}  // namespace ldm::daemon
