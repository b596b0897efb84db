// Integration-test harness: real ldmd and ldm binaries driven the way a user
// drives them, real QEMU guests, consoles read over TCP.
//
// Cleanup is by PID and by name, only for what a test started: a Host's
// destructor stops its ldmd, kills the QEMU processes recorded in its own
// state directory, and deletes the links it was told about, even when the
// test failed half-way.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

namespace ldm::itest {

using namespace std::chrono_literals;

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs a program with extra environment, capturing stdout and stderr apart.
// `started`, when given, receives the child's PID as soon as it exists.
CommandResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                  std::chrono::milliseconds timeout = 180s, const std::string& input = "",
                  std::atomic<pid_t>* started = nullptr);

std::string bin(const std::string& name);  // path of a built executable
std::string test_guest();                  // path of test-guest.elf

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A unique small number per test process run, for names and port ranges.
int unique_id();

struct HostOptions {
  std::string name = "hostA";
  std::string listen;  // default: 127.0.0.1 and a port unique to this test
  std::string console_address = "127.0.0.1";
  std::string vcpus = "4";
  std::string memory = "2G";
  std::string netns;  // run ldmd (and ldm) inside this network namespace
  std::vector<std::string> extra_args;
  std::map<std::string, std::string> env;  // for ldmd (e.g. LDMD_FAULT_PAUSE)
};

class Host {
 public:
  Host(const std::string& root, HostOptions options);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  void start();  // starts ldmd and waits for its socket (fails the test otherwise)
  void stop();   // SIGTERM, wait
  void kill9();  // SIGKILL, wait
  [[nodiscard]] bool running() const;

  CommandResult ldm(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 180s) const;
  // ldm in the background, e.g. a migration to interrupt; `pid` is set once it runs.
  std::future<CommandResult> ldm_async(const std::vector<std::string>& args, std::atomic<pid_t>& pid) const;
  // ldm that must succeed; returns stdout.
  std::string ok(const std::vector<std::string>& args) const;
  // `ldm list -p`'s DOMAIN record of `domain` as key -> value, empty if absent.
  std::map<std::string, std::string> record(const std::string& domain) const;
  // Everything the host knows, for "nothing changed" comparisons.
  nlohmann::json state() const;

  // Makes this host trust `other`'s certificate (copies it into STATE/trust
  // and sends SIGHUP), as an operator sets up certificate mode.
  void trust(const Host& other);
  void sighup();

  std::vector<pid_t> qemu_pids() const;  // from its state directory
  std::string log() const;               // ldmd's stderr so far
  // The end of that log without the request lines, for a failed test's output.
  std::string log_excerpt(size_t max_chars = 8000) const;
  void forget_link(const std::string& name) { links_.push_back(name); }

  const HostOptions& options() const { return options_; }
  void set_extra_args(std::vector<std::string> args) { options_.extra_args = std::move(args); }  // for the next start
  const std::string& state_dir() const { return state_dir_; }
  const std::string& socket() const { return socket_; }

 private:
  std::vector<std::string> wrap(std::vector<std::string> argv) const;
  void end(int signal);  // signals our ldmd and reaps it
  HostOptions options_;
  std::string state_dir_, socket_, log_path_;
  pid_t pid_ = -1;
  std::vector<std::string> links_;
};

// A domain's serial console over its telnet port.
class Console {
 public:
  Console(const std::string& address, int port, const std::string& netns = "");
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Reads until `count` heartbeats arrived (or `timeout`); returns their numbers.
  std::vector<long> heartbeats(size_t count, std::chrono::milliseconds timeout = 20s);
  // Every line received so far, and when it arrived.
  [[nodiscard]] const std::vector<std::string>& lines() const { return lines_; }
  [[nodiscard]] const std::vector<std::chrono::steady_clock::time_point>& times() const { return times_; }
  // Reads whatever arrives during `duration`.
  void drain(std::chrono::milliseconds duration);

 private:
  void pump(std::chrono::milliseconds timeout);
  int fd_ = -1;
  std::string partial_;
  std::vector<std::string> lines_;
  std::vector<std::chrono::steady_clock::time_point> times_;
  size_t consumed_ = 0;
};

// Options for a host named `name` that listens (port 6482) and serves consoles
// on `address`, optionally inside network namespace `netns`.
HostOptions host_options(const std::string& name, const std::string& address, const std::string& netns = "");
// Starts both hosts, makes each trust the other and gives each a vcc
// (ports 5000-5099): two hosts ready to migrate between.
void start_pair(Host& a, Host& b);

// Two hosts on loopback addresses that trust each other, each with a vcc
// (ports 5000-5099); extra ldmd arguments per host.
inline constexpr const char* kAddressA = "127.0.0.2";
inline constexpr const char* kAddressB = "127.0.0.3";
struct HostPair {
  explicit HostPair(std::vector<std::string> a_args = {}, std::vector<std::string> b_args = {});
  // The console of `domain` on `h` (one of the pair).
  std::unique_ptr<Console> console(const Host& h, const std::string& domain) const;
  TempDir dir;
  std::unique_ptr<Host> A, B;
};

// A blocking QMP connection to a QEMU the test or benchmark started itself.
class BlockingQmp {
 public:
  explicit BlockingQmp(const std::string& path);  // connects (retrying 5 s) and negotiates
  ~BlockingQmp();
  BlockingQmp(const BlockingQmp&) = delete;
  BlockingQmp& operator=(const BlockingQmp&) = delete;
  nlohmann::json execute(const std::string& command, const nlohmann::json& arguments = nullptr);

 private:
  std::string line();
  int fd_ = -1;
};

// Two network namespaces joined by a veth pair, made and removed by the test.
class NamespacePair {
 public:
  NamespacePair();
  ~NamespacePair();
  NamespacePair(const NamespacePair&) = delete;
  NamespacePair& operator=(const NamespacePair&) = delete;
  static constexpr const char* address_a = "10.77.0.1";
  static constexpr const char* address_b = "10.77.0.2";
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  void set_link(bool up);  // cuts or restores the link (both ends of the veth)

 private:
  std::string a_, b_, va_, vb_;
};

// Polls `check` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout = 20s);

// Waits until the migration of `domain` away from `source` has sent its first
// bytes: the target's QEMU is set up and the stream runs.
bool stream_started(const Host& source, const std::string& domain, std::chrono::milliseconds timeout = 30s);

}  // namespace ldm::itest
