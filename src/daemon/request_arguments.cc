#include "daemon/request_arguments.h"

#include <charconv>
#include <unistd.h>

#include <fmt/format.h>

#include "base/messages.h"
#include "base/size.h"
#include "base/uuid.h"

namespace ldm::daemon {

using json = nlohmann::json;

Result<std::pair<std::string, std::string>> split_volume(const std::string& text) {
  auto at = text.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == text.size())
    return fail(fmt::format("Invalid volume '{}': write it as volume-name@service-name, e.g. vol1@primary-vds0", text));
  return std::pair{text.substr(0, at), text.substr(at + 1)};
}

Result<unsigned> parse_count(const std::string& text) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v == 0 || v > 1024) return fail(msg::bad_vcpu_count(text));
  return v;
}

Result<uint64_t> parse_memory(const std::string& text) {
  auto size = parse_size(text);
  if (!size) return fail(size.error());
  if (*size < 4 * MiB || *size % (4 * KiB) != 0) return fail(msg::memory_too_small(text));
  return *size;
}

Result<model::DomainProperties> parse_properties(const json& props, const std::string& command) {
  model::DomainProperties p;
  if (!props.is_object()) return fail(msg::malformed_request("'props' must be an object"));
  const char* allowed = "vcpus=, memory=, mem-pagesize=, cpu-arch=, uuid=, kernel=, initrd=, cmdline=";
  for (const auto& [key, value] : props.items()) {
    if (!value.is_string()) return fail(msg::malformed_request("property values must be strings"));
    std::string v = value.get<std::string>();
    if (key == "vcpus") {
      auto n = parse_count(v);
      if (!n) return fail(n.error());
      p.vcpus = *n;
    } else if (key == "memory" || key == "mem") {
      auto m = parse_memory(v);
      if (!m) return fail(m.error());
      p.memory = *m;
    } else if (key == "mem-pagesize") {
      auto page = parse_size(v);
      if (!page || (*page != 4 * KiB && *page != 2 * MiB && *page != GiB))
        return fail(fmt::format("Invalid mem-pagesize '{}': use 4K (ordinary memory), 2M or 1G (huge pages)", v));
      p.page_size = *page;
    } else if (key == "cpu-arch") {
      p.cpu_arch = v;
    } else if (key == "uuid") {
      if (!valid_uuid(v)) return fail(fmt::format("Invalid uuid '{}': use the 8-4-4-4-12 hex form", v));
      p.uuid = v;
    } else if (key == "kernel" || key == "initrd") {
      if (!v.empty() && v[0] != '/') return fail(fmt::format("{}= needs an absolute path, got '{}'", key, v));
      if (!v.empty() && access(v.c_str(), R_OK) != 0)
        return fail(fmt::format("{} file {} does not exist or is not readable", key, v));
      (key == "kernel" ? p.kernel : p.initrd) = v;
    } else if (key == "cmdline") {
      p.cmdline = v;
    } else {
      return fail(msg::bad_property(key + "=" + v, command, allowed));
    }
  }
  return p;
}

Result<std::vector<std::string>> get_names(const json& args) {
  std::vector<std::string> names;
  if (args.contains("names") && args["names"].is_array()) {
    for (const auto& n : args["names"])
      if (n.is_string()) names.push_back(n.get<std::string>());
  } else if (args.contains("name") && args["name"].is_string()) {
    names.push_back(args["name"].get<std::string>());
  }
  if (names.empty()) return fail(msg::malformed_request("missing domain name"));
  return names;
}

}  // namespace ldm::daemon
