#include "hypervisor/qemu/qemu_process.h"

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "base/process.h"
#include "hypervisor/qemu/command_line.h"

namespace ldm::hypervisor::qemu {

Result<pid_t> launch(const LaunchSpec& spec) {
  unlink(spec.pidfile.c_str());
  unlink(spec.qmp_socket.c_str());
  auto out = run_command(command_line(spec), std::chrono::seconds(60));
  if (!out) return fail(out.error());
  std::string text = out->out;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (out->exit_code != 0)
    return fail(text.empty() ? fmt::format("QEMU exited with status {}", out->exit_code) : text);
  pid_t pid = read_pidfile(spec.pidfile);
  if (pid <= 0) return fail("QEMU started but wrote no pidfile " + spec.pidfile);
  return pid;
}

pid_t read_pidfile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid)) return 0;
  return static_cast<pid_t>(pid);
}

bool is_domain_process(pid_t pid, const std::string& uuid) {
  return process_alive(pid) && process_cmdline(pid).find(uuid) != std::string::npos;
}

void kill_process(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  for (int i = 0; i < 200 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace ldm::hypervisor::qemu
