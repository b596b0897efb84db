// Password mode on the target: the user named by the source is checked by
// PAM (service "ldmd", installed by the set-up) and must be root or in
// ldm-admin here. Failures are counted per peer address and, past a few,
// refused for a growing while without asking PAM at all.
//
// The messages never say which part was wrong (user or password), and the
// password is wiped from memory once PAM has seen it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/secret.h"

namespace ldm::daemon {

inline constexpr const char* kPamService = "ldmd";

// Pure: failed authentications per peer address.
class AuthLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kFreeFailures = 3;               // then the lockout starts
  static constexpr std::chrono::seconds kFirstLockout{5};  // doubling up to kMaxLockout
  static constexpr std::chrono::seconds kMaxLockout{300};
  static constexpr std::chrono::seconds kForget{900};  // a quiet peer starts afresh

  // How long `peer` must still wait, if it is locked out.
  std::optional<std::chrono::seconds> locked(const std::string& peer, Clock::time_point now) const;
  void failed(const std::string& peer, Clock::time_point now);
  void succeeded(const std::string& peer);

 private:
  struct Record {
    int failures = 0;
    Clock::time_point last{}, until{};
  };
  std::map<std::string, Record> records_;
};

// I/O (blocking: run it off the event loop). Wipes `password` before
// returning. `password_right` tells the rate limit whether this was a wrong
// guess (a right password for a user without admin rights is not).
Result<> authenticate_user(const std::string& service, const std::string& user, std::string& password,
                           const std::string& host, bool& password_right);

}  // namespace ldm::daemon
