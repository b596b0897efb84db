// Running helper programs (ip, qemu-system-x86_64) without a shell.
//
// Blocking: call from the daemon's blocking pool, never from the event loop.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

#include "base/result.h"

namespace ldm {

struct CommandOutput {
  int exit_code = -1;
  std::string out;  // stdout and stderr, interleaved
};

// Runs argv[0] (searched in PATH) and waits at most `timeout`; on timeout the
// child is killed. Fails only when the program could not be run at all.
Result<CommandOutput> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Like run_command, but a non-zero exit is an error carrying the output.
Result<std::string> run_checked(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// True while a process with this PID exists (it may be a zombie of someone else).
bool process_alive(pid_t pid);

// The NUL-separated command line of a process, or empty when it is gone.
std::string process_cmdline(pid_t pid);

}  // namespace ldm
