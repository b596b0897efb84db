// ldmd's settings: command-line options over an optional config file over
// defaults. The file holds `key = value` lines; '#' starts a comment.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace ldm::daemon {

struct DaemonConfig {
  std::string state_dir = "/var/lib/ldmd";
  std::string socket = "/run/ldmd/ldmd.sock";
  std::string listen = "0.0.0.0:6482";
  std::string hostname;                    // default: the system's host name
  std::string console_address = "127.0.0.1";  // where console ports listen
  unsigned vcpus = 0;                      // capacity for domains; 0 = number of host CPUs
  uint64_t memory = 0;                     // capacity for domains; 0 = 3/4 of host memory
  std::string power_policy = "performance";
  std::string qemu = "qemu-system-x86_64";
  std::string accel = "auto";              // auto, kvm or tcg
  int stop_timeout = 30;                   // seconds stop-domain waits for a graceful stop
  // The original's ldmd/tls_host_match: the target's certificate must name
  // the host the user typed (its DNS name or IP address).
  bool tls_host_match = false;
};

// Applies the settings of the file at `path` to `config`.
Result<> apply_config_file(const std::string& path, DaemonConfig& config);

// Parses "ADDR:PORT" (IPv4 or [IPv6]); the port is 1..65535.
Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& text);

}  // namespace ldm::daemon
