// ldm's sub-commands: their names, aliases and usage, and how the words a
// user typed become a request to ldmd or a listing. Pure, so CLI parsing is
// unit-tested without a daemon.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "cli/format.h"
#include "protocol/control.h"

namespace ldm::cli {

struct CommandSpec {
  std::string name;
  std::vector<std::string> aliases;
  std::string synopsis;     // the usage line(s), as in the original's man page
  std::string description;  // what it does, for --help
};

// Every sub-command, in the order `ldm --help` lists them.
const std::vector<CommandSpec>& command_specs();

// What the user typed after the sub-command name, sorted by CLI11.
struct Invocation {
  std::string command;  // canonical name
  std::vector<std::string> operands;
  bool force = false;        // -f
  bool all = false;          // -a
  bool long_form = false;    // -l
  bool parseable = false;    // -p
  bool xml = false;          // -x
  bool json = false;         // --json
  std::string format;        // -o
  int timeout = -1;          // -t (stop-domain)
  bool dry_run = false;      // -n (migrate-domain)
  bool certificate = false;  // -c (migrate-domain)
  std::string password_file; // -p FILE (migrate-domain)
};

struct Listing {
  std::string what;  // list-domain, list-bindings, list-services, list-devices, list-constraints
  ListOptions options;
};

using Action = std::variant<protocol::Request, Listing>;

Result<Action> interpret(const Invocation& invocation);

}  // namespace ldm::cli
