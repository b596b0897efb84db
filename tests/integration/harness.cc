#include "integration/harness.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace ldm::itest {

namespace fs = std::filesystem;

CommandResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                  std::chrono::milliseconds timeout, const std::string& input, std::atomic<pid_t>* started) {
  int out[2], err[2], in[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) return {};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]}) close(fd);
    return {};
  }
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (started) *started = pid;
  close(out[1]);
  close(err[1]);
  close(in[0]);
  if (!input.empty()) (void)!write(in[1], input.data(), input.size());
  close(in[1]);
  CommandResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      r.err += "\n[harness: command timed out]";
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (auto& f : fds) {
      if (f.fd < 0 || !(f.revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(f.fd, buf, sizeof buf);
      if (n <= 0) {
        close(f.fd);
        f.fd = -1;
        --open_fds;
        continue;
      }
      (f.fd == out[0] ? r.out : r.err).append(buf, static_cast<size_t>(n));
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string bin(const std::string& name) { return std::string(LDM_BIN_DIR) + "/" + name; }
std::string test_guest() { return bin("test-guest.elf"); }

TempDir::TempDir() {
  char tmpl[] = "/tmp/ldm-it-XXXXXX";
  path_ = mkdtemp(tmpl);
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

int unique_id() {
  static int counter = 0;
  return static_cast<int>(getpid() % 50) * 20 + (counter++ % 20);  // 0..999
}

// ---- Host -------------------------------------------------------------------

Host::Host(const std::string& root, HostOptions options) : options_(std::move(options)) {
  if (options_.listen.empty()) options_.listen = "127.0.0.1:" + std::to_string(40000 + unique_id());
  state_dir_ = root + "/" + options_.name;
  socket_ = state_dir_ + ".sock";
  log_path_ = state_dir_ + ".log";
}

Host::~Host() {
  if (pid_ > 0) kill9();
  // QEMU processes this host started: found by the pidfiles in its state dir.
  for (pid_t q : qemu_pids()) kill(q, SIGKILL);
  for (pid_t q : qemu_pids())
    for (int i = 0; i < 200 && kill(q, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
  for (const auto& link : links_) run(wrap({"ip", "link", "del", link}), {}, 10s);
  // Taps of this host's domains: ldmd names them "ldm" + a tag of its state dir.
  uint32_t h = 2166136261u;
  for (char c : state_dir_) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  char prefix[16];
  snprintf(prefix, sizeof prefix, "ldm%04x", h & 0xFFFF);
  std::istringstream lines(run(wrap({"ip", "-o", "link", "show"}), {}, 10s).out);
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string name = line.substr(colon + 2, line.find(':', colon + 2) - colon - 2);
    if (auto at = name.find('@'); at != std::string::npos) name.resize(at);
    if (name.rfind(prefix, 0) == 0) run(wrap({"ip", "link", "del", name}), {}, 10s);
  }
}

std::vector<std::string> Host::wrap(std::vector<std::string> argv) const {
  if (options_.netns.empty()) return argv;
  std::vector<std::string> w = {"ip", "netns", "exec", options_.netns};
  w.insert(w.end(), argv.begin(), argv.end());
  return w;
}

void Host::start() {
  std::vector<std::string> argv = wrap({bin("ldmd"), "--state-dir", state_dir_, "--socket", socket_, "--listen",
                                        options_.listen, "--hostname", options_.name, "--console-address",
                                        options_.console_address, "--vcpus", options_.vcpus, "--memory",
                                        options_.memory, "--log-level", "debug"});
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  fs::remove(socket_);
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const auto& [key, value] : options_.env) setenv(key.c_str(), value.c_str(), 1);
    execvp(args[0], args.data());
    _exit(127);
  }
  bool up = eventually([&] { return fs::exists(socket_) && ldm({"ls"}, 5s).exit_code == 0; }, 20s);
  ASSERT_TRUE(up) << "ldmd did not come up; its log:\n" << log();
}

bool Host::running() const { return pid_ > 0 && kill(pid_, 0) == 0; }

void Host::stop() { end(SIGTERM); }
void Host::kill9() { end(SIGKILL); }

void Host::end(int signal) {
  if (pid_ <= 0) return;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

CommandResult Host::ldm(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = wrap({bin("ldm")});
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"LDM_SOCKET", socket_}}, timeout);
}

std::future<CommandResult> Host::ldm_async(const std::vector<std::string>& args, std::atomic<pid_t>& pid) const {
  std::vector<std::string> argv = wrap({bin("ldm")});
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env = {{"LDM_SOCKET", socket_}};
  return std::async(std::launch::async, [argv, env, &pid] { return run(argv, env, 180s, "", &pid); });
}

std::string Host::ok(const std::vector<std::string>& args) const {
  auto r = ldm(args);
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  EXPECT_EQ(r.exit_code, 0) << "ldm" << cmd << " failed:\n" << r.err << r.out;
  return r.out;
}

std::map<std::string, std::string> Host::record(const std::string& domain) const {
  auto out = ldm({"list", "-p"}).out;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("DOMAIN|name=" + domain + "|", 0) != 0) continue;
    std::map<std::string, std::string> fields;
    std::istringstream parts(line.substr(7));
    std::string part;
    while (std::getline(parts, part, '|')) {
      auto eq = part.find('=');
      if (eq != std::string::npos) fields[part.substr(0, eq)] = part.substr(eq + 1);
    }
    return fields;
  }
  return {};
}

nlohmann::json Host::state() const {
  auto parse = [](const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_discarded() ? nlohmann::json(text) : j;
  };
  nlohmann::json domains = parse(ldm({"list-constraints", "--json"}).out);
  nlohmann::json services = parse(ldm({"list-services", "--json"}).out);
  nlohmann::json states = nlohmann::json::object();
  for (const auto& d : parse(ldm({"list", "--json"}).out))
    if (d.is_object()) states[d.value("name", "")] = {d.value("state", ""), d.value("flags", "")};
  return {{"constraints", domains}, {"services", services}, {"states", states}};
}

void Host::trust(const Host& other) {
  fs::copy_file(other.state_dir() + "/tls/server.crt", state_dir_ + "/trust/" + other.options().name + ".pem",
                fs::copy_options::overwrite_existing);
  sighup();
}

void Host::sighup() {
  auto before = log().size();
  if (pid_ > 0) kill(pid_, SIGHUP);
  bool reloaded = eventually([&] { return log().find("trusted certificates re-read", before) != std::string::npos; }, 10s);
  EXPECT_TRUE(reloaded) << "ldmd did not re-read its trust directory";
}

std::vector<pid_t> Host::qemu_pids() const {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir_ + "/run", ec)) {
    if (entry.path().extension() != ".pid") continue;
    std::ifstream in(entry.path());
    long pid = 0;
    if (in >> pid && pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0) pids.push_back(static_cast<pid_t>(pid));
  }
  return pids;
}

std::string Host::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Host::log_excerpt(size_t max_chars) const {
  std::istringstream lines(log());
  std::string kept;
  for (std::string line; std::getline(lines, line);)
    if (line.find("debug request") == std::string::npos) kept += line + "\n";
  return kept.substr(kept.size() > max_chars ? kept.size() - max_chars : 0);
}

// ---- Console -----------------------------------------------------------------

Console::Console(const std::string& address, int port, const std::string& netns) {
  // A console in another network namespace is reached from inside it.
  int old_ns = -1;
  if (!netns.empty()) {
    old_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns = open(("/var/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns >= 0) {
      setns(ns, CLONE_NEWNET);
      close(ns);
    }
  }
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      fd_ = fd;
    } else {
      close(fd);
      std::this_thread::sleep_for(50ms);
    }
  }
  if (old_ns >= 0) {
    setns(old_ns, CLONE_NEWNET);
    close(old_ns);
  }
  EXPECT_GE(fd_, 0) << "cannot connect to console " << address << ":" << port;
}

Console::~Console() {
  if (fd_ >= 0) close(fd_);
}

void Console::pump(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return;
  unsigned char buf[4096];
  ssize_t n = read(fd_, buf, sizeof buf);
  if (n <= 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  // Drop telnet negotiation (IAC sequences) and carriage returns.
  for (ssize_t i = 0; i < n; ++i) {
    unsigned char c = buf[i];
    if (c == 255 && i + 1 < n) {
      unsigned char cmd = buf[i + 1];
      i += (cmd >= 251 && cmd <= 254) ? 2 : 1;
      continue;
    }
    if (c == '\r') continue;
    if (c == '\n') {
      lines_.push_back(partial_);
      times_.push_back(std::chrono::steady_clock::now());
      partial_.clear();
    } else {
      partial_ += static_cast<char>(c);
    }
  }
}

std::vector<long> Console::heartbeats(size_t count, std::chrono::milliseconds timeout) {
  std::vector<long> beats;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (beats.size() < count && std::chrono::steady_clock::now() < deadline) {
    while (consumed_ < lines_.size()) {
      const std::string& l = lines_[consumed_++];
      if (l.rfind("HB ", 0) == 0) beats.push_back(std::stol(l.substr(3)));
    }
    if (beats.size() < count) pump(100ms);
  }
  return beats;
}

void Console::drain(std::chrono::milliseconds duration) {
  auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) pump(50ms);
}

bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return check();
}

bool stream_started(const Host& source, const std::string& domain, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        return source.ok({"list", "-o", "status", "-p", domain}).find("progress=0|") == std::string::npos;
      },
      timeout);
}

}  // namespace ldm::itest

namespace ldm::itest {

HostOptions host_options(const std::string& name, const std::string& address, const std::string& netns) {
  HostOptions o;
  o.name = name;
  o.listen = address + ":6482";
  o.console_address = address;
  o.netns = netns;
  return o;
}

void start_pair(Host& a, Host& b) {
  a.start();
  b.start();
  a.trust(b);
  b.trust(a);
  for (Host* h : {&a, &b}) h->ok({"add-vcc", "port-range=5000-5099", "primary-vcc0", "primary"});
}

HostPair::HostPair(std::vector<std::string> a_args, std::vector<std::string> b_args) {
  HostOptions a = host_options("hostA", kAddressA), b = host_options("hostB", kAddressB);
  a.extra_args = std::move(a_args);
  b.extra_args = std::move(b_args);
  A = std::make_unique<Host>(dir.path(), a);
  B = std::make_unique<Host>(dir.path(), b);
  start_pair(*A, *B);
}

std::unique_ptr<Console> HostPair::console(const Host& h, const std::string& domain) const {
  auto r = h.record(domain);
  return std::make_unique<Console>(&h == A.get() ? kAddressA : kAddressB, std::stoi(r["cons"].empty() ? "0" : r["cons"]));
}

}  // namespace ldm::itest

namespace ldm::itest {

BlockingQmp::BlockingQmp(const std::string& path) {
  for (int i = 0; i < 100 && fd_ < 0; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      fd_ = fd;
    } else {
      close(fd);
      std::this_thread::sleep_for(50ms);
    }
  }
  line();
  execute("qmp_capabilities");
}

BlockingQmp::~BlockingQmp() {
  if (fd_ >= 0) close(fd_);
}

nlohmann::json BlockingQmp::execute(const std::string& command, const nlohmann::json& arguments) {
  nlohmann::json m = {{"execute", command}};
  if (!arguments.is_null()) m["arguments"] = arguments;
  std::string s = m.dump() + "\n";
  (void)!write(fd_, s.data(), s.size());
  for (;;) {
    auto j = nlohmann::json::parse(line(), nullptr, false);
    if (j.is_discarded() && fd_ < 0) return j;
    if (j.is_discarded() || j.contains("event")) continue;
    return j;
  }
}

std::string BlockingQmp::line() {
  std::string l;
  char c;
  for (;;) {
    ssize_t n = read(fd_, &c, 1);
    if (n != 1) {  // QEMU went away: say so instead of spinning
      close(fd_);
      fd_ = -1;
      return l;
    }
    if (c == '\n') return l;
    l += c;
  }
}

}  // namespace ldm::itest

namespace ldm::itest {

NamespacePair::NamespacePair() {
  int id = unique_id();
  a_ = fmt::format("ldmitA{}", id);
  b_ = fmt::format("ldmitB{}", id);
  run({"ip", "netns", "add", a_});
  run({"ip", "netns", "add", b_});
  va_ = fmt::format("ldmva{}", id);
  vb_ = fmt::format("ldmvb{}", id);
  run({"ip", "link", "add", va_, "netns", a_, "type", "veth", "peer", "name", vb_, "netns", b_});
  for (auto [ns, dev, addr] : {std::tuple{a_, va_, address_a}, std::tuple{b_, vb_, address_b}}) {
    run({"ip", "-n", ns, "addr", "add", std::string(addr) + "/24", "dev", dev});
    run({"ip", "-n", ns, "link", "set", dev, "up"});
    run({"ip", "-n", ns, "link", "set", "lo", "up"});
  }
}

NamespacePair::~NamespacePair() {
  run({"ip", "netns", "del", a_});
  run({"ip", "netns", "del", b_});
}

void NamespacePair::set_link(bool up) {
  for (auto [ns, dev] : {std::pair{a_, va_}, std::pair{b_, vb_}})
    EXPECT_EQ(run({"ip", "-n", ns, "link", "set", dev, up ? "up" : "down"}).exit_code, 0);
}

}  // namespace ldm::itest
