#include "hypervisor/qemu/capabilities.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "base/process.h"

namespace ldm::hypervisor::qemu {

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string first_word(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  in >> word;
  return word;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Capabilities parse_capabilities(const std::string& version_text, const std::string& machine_help,
                                const std::string& cpu_help) {
  Capabilities caps;
  std::smatch m;
  if (std::regex_search(version_text, m, std::regex(R"(version ([0-9][0-9A-Za-z.\-]*))"))) caps.version = m[1];

  static const std::regex alias(R"(\(alias of ([^)\s]+)\))");
  for (const auto& line : lines_of(machine_help)) {
    if (line.empty() || line.rfind("Supported machines", 0) == 0) continue;
    std::string name = first_word(line);
    if (name.empty()) continue;
    caps.machines.push_back(name);
    if (name == "pc") {
      if (std::regex_search(line, m, alias)) caps.default_machine = m[1];
    }
  }
  if (caps.default_machine.empty() && std::find(caps.machines.begin(), caps.machines.end(), "pc") != caps.machines.end())
    caps.default_machine = "pc";

  for (const auto& line : lines_of(cpu_help)) {
    if (line.empty()) continue;
    if (line.rfind("Recognized CPUID", 0) == 0) break;  // the flag list follows
    std::istringstream in(line);
    std::string arch, model;
    in >> arch >> model;
    if (arch == "x86" && !model.empty()) caps.cpu_models.push_back(model);
  }
  std::sort(caps.machines.begin(), caps.machines.end());
  std::sort(caps.cpu_models.begin(), caps.cpu_models.end());
  return caps;
}

Result<Capabilities> probe_capabilities(const std::string& qemu_binary) {
  auto version = run_checked({qemu_binary, "--version"});
  if (!version) return fail(version.error());
  auto machines = run_checked({qemu_binary, "-machine", "help"});
  if (!machines) return fail(machines.error());
  auto cpus = run_checked({qemu_binary, "-cpu", "help"});
  if (!cpus) return fail(cpus.error());
  return parse_capabilities(*version, *machines, *cpus);
}

std::vector<std::string> parse_cpu_flags(const std::string& cpuinfo) {
  std::vector<std::string> flags;
  for (const auto& line : lines_of(cpuinfo)) {
    if (line.rfind("flags", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream in(line.substr(colon + 1));
    for (std::string f; in >> f;) flags.push_back(f);
    break;  // every CPU of a host lists the same flags
  }
  std::sort(flags.begin(), flags.end());
  flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
  return flags;
}

std::vector<std::string> host_cpu_flags() { return parse_cpu_flags(read_file("/proc/cpuinfo")); }

std::map<uint64_t, uint64_t> free_hugepages() {
  std::map<uint64_t, uint64_t> free;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/kernel/mm/hugepages", ec)) {
    // hugepages-2048kB
    std::string name = entry.path().filename();
    uint64_t kb = 0;
    if (std::sscanf(name.c_str(), "hugepages-%lukB", &kb) != 1) continue;
    std::string count = read_file(entry.path() / "free_hugepages");
    free[kb * 1024] = std::strtoull(count.c_str(), nullptr, 10);
  }
  return free;
}

}  // namespace ldm::hypervisor::qemu
