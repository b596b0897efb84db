// The control requests' arguments, as ldm sends them, turned into typed
// values with user-fit errors. Pure (kernel= and initrd= are checked for
// readability, nothing else touches the system), so the control fuzzer reaches
// exactly what ldmd runs on a request.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "model/operations.h"

namespace ldm::daemon {

// "vol@vds" -> {vol, vds}
Result<std::pair<std::string, std::string>> split_volume(const std::string& text);
Result<unsigned> parse_count(const std::string& text);       // vCPUs, 1..1024
Result<uint64_t> parse_memory(const std::string& text);      // at least 4M, in 4K units
// Domain properties arrive as the strings the user typed (cpu-arch=generic).
Result<model::DomainProperties> parse_properties(const nlohmann::json& props, const std::string& command);
// "names": [...] or "name": "..."
Result<std::vector<std::string>> get_names(const nlohmann::json& args);

}  // namespace ldm::daemon
