#include "daemon/config.h"

#include <charconv>
#include <fstream>

#include <fmt/format.h>

#include "base/size.h"

namespace ldm::daemon {

namespace {
std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
}  // namespace

Result<> apply_config_file(const std::string& path, DaemonConfig& c) {
  std::ifstream in(path);
  if (!in) return fail(fmt::format("Cannot read config file {}", path));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) return fail(fmt::format("{}:{}: expected 'key = value'", path, number));
    std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    auto bad = [&](const std::string& why) { return fail(fmt::format("{}:{}: {}: {}", path, number, key, why)); };
    if (key == "state-dir") c.state_dir = value;
    else if (key == "socket") c.socket = value;
    else if (key == "listen") c.listen = value;
    else if (key == "hostname") c.hostname = value;
    else if (key == "console-address") c.console_address = value;
    else if (key == "qemu") c.qemu = value;
    else if (key == "accel") {
      if (value != "auto" && value != "kvm" && value != "tcg") return bad("use auto, kvm or tcg");
      c.accel = value;
    } else if (key == "power-policy") {
      if (value != "performance" && value != "elastic") return bad("use performance or elastic");
      c.power_policy = value;
    } else if (key == "vcpus") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), c.vcpus);
      if (ec != std::errc() || p != value.data() + value.size()) return bad("expected a number");
    } else if (key == "memory") {
      auto size = parse_size(value);
      if (!size) return bad(size.error().text());
      c.memory = *size;
    } else if (key == "tls-host-match") {
      if (value != "true" && value != "false") return bad("use true or false");
      c.tls_host_match = value == "true";
    } else if (key == "stop-timeout") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), c.stop_timeout);
      if (ec != std::errc() || p != value.data() + value.size() || c.stop_timeout < 1) return bad("expected seconds");
    } else {
      return fail(fmt::format("{}:{}: unknown setting '{}'", path, number, key));
    }
  }
  return {};
}

Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& text) {
  auto colon = text.rfind(':');
  auto bad = [&] { return fail(fmt::format("Invalid listen address '{}': use ADDRESS:PORT, e.g. 0.0.0.0:6482", text)); };
  if (colon == std::string::npos || colon == 0) return bad();
  std::string host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
  if (ec != std::errc() || p != text.data() + text.size() || port == 0 || port > 65535) return bad();
  return std::pair{host, static_cast<uint16_t>(port)};
}

}  // namespace ldm::daemon
