// Fuzzes a line on ldmd's control socket: the request's JSON, then every
// argument parser a request can reach, and the model operation it leads to
// on an in-memory host. Input: one request line.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/request_arguments.h"
#include "model/operations.h"
#include "protocol/control.h"

using json = nlohmann::json;
using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto request = protocol::decode_request(std::string(reinterpret_cast<const char*>(data), size));
  if (!request) return 0;
  const json& args = request->args;
  model::HostModel host;
  host.capacity = {4, 2ULL << 30};
  (void)model::add_console_service(host, "primary-vcc0", 5000, 5099);
  (void)model::add_disk_service(host, "primary-vds0");
  (void)daemon::get_names(args);
  for (const auto& [key, value] : args.items()) {
    (void)protocol::get_int(args, key.c_str());
    auto text = protocol::get_string(args, key.c_str());
    if (!text) continue;
    (void)daemon::parse_count(*text);
    (void)daemon::parse_memory(*text);
    (void)daemon::split_volume(*text);
    (void)model::parse_port_range(*text);
    (void)model::normalize_mac(*text);
    (void)model::valid_pci_address(*text);
    (void)model::validate_domain_name(*text);
  }
  if (args.contains("props")) {
    auto props = daemon::parse_properties(args["props"], request->command);
    if (!props) return 0;
    auto name = protocol::get_string(args, "name");
    if (!name || !model::add_domain(host, *name, *props, [] { return std::string("0e1f2a3b-0000-4000-8000-000000000001"); }))
      return 0;
    (void)model::set_domain(host, *name, *props);
    (void)model::bind_domain(host, *name, [](int) { return true; });
    (void)model::unbind_domain(host, *name);
    (void)model::remove_domain(host, *name);
  }
  return 0;
}
