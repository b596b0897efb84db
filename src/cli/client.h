// ldm's connection to ldmd's control socket (blocking: ldm does one thing).
#pragma once

#include <chrono>
#include <string>

#include "base/result.h"
#include "protocol/control.h"

namespace ldm::cli {

// $LDM_SOCKET, else the default path.
std::string socket_path();

// Sends one request and waits at most `timeout` for the reply.
Result<protocol::Response> call(const std::string& path, const protocol::Request& request,
                                std::chrono::seconds timeout = std::chrono::seconds(600));

}  // namespace ldm::cli
