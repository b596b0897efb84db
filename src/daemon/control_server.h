// The local control socket: accepts ldm connections and feeds their
// requests, one JSON line at a time, to the Daemon.
#pragma once

#include <string>

#include <asio.hpp>

#include "base/result.h"
#include "daemon/daemon.h"

namespace ldm::daemon {

// Binds `path` (replacing a stale socket) and serves until the loop stops.
Result<> serve_control_socket(asio::io_context& io, Daemon& daemon, const std::string& path);

}  // namespace ldm::daemon
