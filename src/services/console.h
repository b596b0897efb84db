// Console ports: a domain's serial console is a telnet port of a vcc's range.
#pragma once

#include <string>

namespace ldm::services {

// True when nothing on this host listens on address:port (we can bind it).
bool tcp_port_free(const std::string& address, int port);

}  // namespace ldm::services
