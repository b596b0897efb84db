// ldm: the command line of the Logical Domains Manager.
#include <atomic>
#include <csignal>
#include <pthread.h>
#include <sys/prctl.h>
#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>
#include <map>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/password.h"
#include "base/messages.h"

using namespace ldm;

namespace {

int print_errors(const std::vector<std::string>& errors) {
  for (const auto& e : errors) fmt::print(stderr, "{}\n", e);
  return 1;
}

int run_listing(const cli::Listing& listing) {
  auto reply = cli::call(cli::socket_path(), protocol::Request{"snapshot", nlohmann::json::object()});
  if (!reply) return print_errors(reply.error().messages);
  if (!reply->ok) return print_errors(reply->errors);
  auto snapshot = cli::snapshot_from_json(reply->result);
  if (!snapshot) return print_errors(snapshot.error().messages);
  static const std::map<std::string, Result<std::string> (*)(const cli::Snapshot&, const cli::ListOptions&)> formats = {
      {"list-domain", cli::list_domain},     {"list-bindings", cli::list_bindings},
      {"list-services", cli::list_services}, {"list-devices", cli::list_devices},
      {"list-constraints", cli::list_constraints}};
  auto text = formats.at(listing.what)(*snapshot, listing.options);
  if (!text) return print_errors(text.error().messages);
  fmt::print("{}", *text);
  return 0;
}

// Starts a migration in ldmd and waits for it. On a terminal, a progress line
// is drawn from the domain's status; piped, nothing is printed on success.
int run_migration(protocol::Request request) {
  std::string name = request.args.value("name", "");
  bool dry_run = request.args.value("dry_run", false);
  if (!request.args.value("certificate", false)) {
    // Password mode: this process holds the password for a moment; no core
    // dump of it may, and it is wiped once ldmd has it.
    prctl(PR_SET_DUMPABLE, 0);
    if (request.args.value("user", "").empty()) request.args["user"] = cli::invoking_user();
    std::string file = request.args.value("password_file", "");
    request.args.erase("password_file");
    auto password = file.empty() ? cli::prompt_password("Target Password: ") : cli::read_password_file(file);
    if (!password) {
      print_errors(password.error().messages);
      fmt::print(stderr, "{}\n", dry_run ? msg::migration_would_fail(name) : msg::migration_failed(name));
      return 1;
    }
    request.args["password"] = std::move(*password);
    wipe(*password);
  }
  std::atomic<bool> done{false};
  // SIGINT and SIGTERM cancel the migration in ldmd (the original's "interrupted
  // ldm" rule); SIGHUP (a lost terminal) does not: ldmd finishes it either way.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread watcher([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0 || sig == SIGUSR1) return;
      if (sig == SIGHUP) continue;
      fmt::print(stderr, "\nCancelling the migration of {}...\n", name);
      auto r = cli::call(cli::socket_path(),
                         protocol::Request{"cancel-operation", {{"operation", "migration"}, {"domain", name}}},
                         std::chrono::seconds(90));
      if (r && !r->ok)
        for (const auto& e : r->errors) fmt::print(stderr, "{}\n", e);
    }
  });
  std::thread progress;
  if (isatty(STDERR_FILENO) && !dry_run) {
    progress = std::thread([&] {
      auto start = std::chrono::steady_clock::now();
      while (!done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        auto reply = cli::call(cli::socket_path(), protocol::Request{"snapshot", nlohmann::json::object()},
                               std::chrono::seconds(5));
        if (!reply || !reply->ok || done) continue;
        auto snap = cli::snapshot_from_json(reply->result);
        if (!snap) continue;
        const model::Domain* d = snap->model.find(name);
        if (!d || d->migration.role.empty()) continue;
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        fmt::print(stderr, "\rMigrating {} to {}: {:3d}%  {:.1f} MiB sent  {:.0f} Mbit/s  {:.1f}s\033[K", name,
                   d->migration.peer, d->migration.progress, static_cast<double>(d->migration.transferred) / 1048576.0,
                   d->migration.rate_mbps, secs);
      }
      fmt::print(stderr, "\r\033[K");
    });
  }
  auto reply = cli::call(cli::socket_path(), request, std::chrono::hours(1));
  if (request.args.contains("password")) wipe(request.args["password"].get_ref<std::string&>());
  done = true;
  if (progress.joinable()) progress.join();
  pthread_kill(watcher.native_handle(), SIGUSR1);
  watcher.join();
  std::vector<std::string> errors;
  if (!reply)
    errors = reply.error().messages;
  else if (!reply->ok)
    errors = reply->errors;
  bool as_json = request.args.value("json", false);
  if (reply)
    for (const auto& n : reply->notices) fmt::print(stderr, "{}\n", n);
  if (errors.empty()) {
    if (as_json) fmt::print("{}\n", reply->result.is_null() ? "{}" : reply->result.dump());
    return 0;
  }
  // --json: the failures as objects (check, resource, message, remedy) on stdout.
  if (as_json) {
    nlohmann::json failures = reply && reply->result.is_object() && reply->result.contains("failures")
                                  ? reply->result["failures"]
                                  : nlohmann::json::array();
    if (failures.empty())
      for (const auto& e : errors) failures.push_back({{"check", "error"}, {"resource", ""}, {"message", e}, {"remedy", ""}});
    fmt::print("{}\n", nlohmann::json{{"ok", false}, {"failures", failures}}.dump());
  }
  for (const auto& e : errors) fmt::print(stderr, "{}\n", e);
  fmt::print(stderr, "{}\n", dry_run ? msg::migration_would_fail(name) : msg::migration_failed(name));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ldm - the Logical Domains Manager command line.\n\n"
               "Drives the ldmd daemon of this host (socket: $LDM_SOCKET, else /run/ldmd/ldmd.sock).\n"
               "A domain is inactive (defined), bound (resources reserved) or active (running in QEMU).\n"
               "Typical use:\n"
               "  ldm add-vcc port-range=5000-5100 primary-vcc0 primary\n"
               "  ldm add-domain vcpus=1 memory=256M kernel=/path/test-guest.elf ldg1\n"
               "  ldm bind-domain ldg1 && ldm start-domain ldg1 && ldm ls",
               "ldm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", LDM_VERSION);
  app.footer("Run 'ldm COMMAND --help' for the usage of one command.");

  cli::Invocation inv;
  for (const auto& spec : cli::command_specs()) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    for (const auto& alias : spec.aliases) sub->alias(alias);
    sub->footer("Usage:\n    " + [&] {
      std::string s = spec.synopsis;
      for (size_t pos = 0; (pos = s.find('\n', pos)) != std::string::npos; pos += 5) s.replace(pos, 1, "\n    ");
      return s;
    }());
    sub->add_option("operands", inv.operands, "Names and property=value settings, as in the usage below");
    sub->positionals_at_end(false);
    const std::string& n = spec.name;
    if (n == "remove-domain") sub->add_flag("-a,--all", inv.all, "All domains of this host");
    if (n == "add-vdsdev") sub->add_flag("-f,--force", inv.force, "Accept a backend that does not exist yet");
    if (n == "cancel-operation")
      sub->add_flag("-f,--force", inv.force, "migration in the error state: resume here even if the target cannot say");
    if (n == "stop-domain") {
      sub->add_flag("-f,--force", inv.force, "Stop at once instead of asking the guest to shut down");
      sub->add_option("-t,--timeout", inv.timeout, "Seconds to wait for a graceful stop (default 30)");
    }
    if (n == "migrate-domain") {
      sub->add_flag("-f,--force", inv.force, "Force (accepted; no check is skipped yet)");
      sub->add_flag("-n,--dry-run", inv.dry_run, "Run every check on both hosts and change nothing");
      sub->add_flag("-c,--certificate", inv.certificate, "Authenticate with the hosts' certificates (no password)");
      sub->add_option("-p,--password-file", inv.password_file, "Read the target password from the first line of FILE");
      sub->add_flag("--json", inv.json,
                    "Print JSON: on success a summary (total and QEMU times, downtime, bytes sent), on failure each "
                    "failed check as {check, resource, message, remedy}");
    }
    if (n.rfind("list-", 0) == 0) {
      sub->add_flag("-p,--parseable", inv.parseable, "Machine-readable output (VERSION, then |-separated records)");
      sub->add_flag("--json", inv.json, "JSON output");
      if (n == "list-domain") {
        sub->add_flag("-l,--long", inv.long_form, "Long form: every section of each domain");
        sub->add_option("-o,--output", inv.format,
                        "Sections: console, cpu, disk, domain, memory, network, status, variables (comma-separated)");
        sub->add_flag("-e", [](int64_t) {}, "Accepted for compatibility");
      }
      if (n == "list-bindings") sub->add_flag("-e", [](int64_t) {}, "Accepted for compatibility");
      if (n == "list-constraints") sub->add_flag("-x,--xml", inv.xml, "XML output (LDM_interface)");
    }
    sub->callback([&inv, name = spec.name] { inv.command = name; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto action = cli::interpret(inv);
  if (!action) {
    for (const auto& m : action.error().messages) fmt::print(stderr, "{}\n", m);
    return 2;
  }
  if (auto* listing = std::get_if<cli::Listing>(&*action)) return run_listing(*listing);

  const auto& request = std::get<protocol::Request>(*action);
  if (request.command == "migrate-domain") return run_migration(request);
  auto reply = cli::call(cli::socket_path(), request);
  if (!reply) return print_errors(reply.error().messages);
  for (const auto& n : reply->notices) fmt::print("{}\n", n);
  if (!reply->ok) return print_errors(reply->errors);
  return 0;
}
