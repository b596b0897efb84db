// Migration security between two real hosts (127.0.0.2 and 127.0.0.3):
// password mode through the real PAM service "ldmd" and real local accounts,
// certificates that are untrusted, expired or name another host, TLS
// versions and ciphers as OpenSSL's own client sees them, garbage and
// out-of-order messages on port 6482, and a capture of the migration traffic
// that must not contain what the guest holds in memory.
//
// Every refusal is checked for its message, for both hosts being exactly as
// before, and for both ldmd still serving.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <csignal>
#include <future>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"
#include "protocol/frame.h"
#include "protocol/tls.h"

namespace ldm::itest {
namespace {

namespace fs = std::filesystem;

// A local account made for one test and deleted after it, even on failure.
class TestUser {
 public:
  TestUser(const std::string& suffix, const std::string& password, bool admin)
      : name_(fmt::format("ldmt{}{}", unique_id(), suffix)) {
    run({"userdel", name_}, {}, 10s);
    auto made = run({"useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name_}, {}, 20s);
    EXPECT_EQ(made.exit_code, 0) << made.err;
    // chpasswd reads "user:password" on stdin: the password is in no argv.
    auto set = run({"chpasswd"}, {}, 20s, name_ + ":" + password + "\n");
    EXPECT_EQ(set.exit_code, 0) << set.err;
    if (admin) {
      EXPECT_EQ(run({"usermod", "-aG", "ldm-admin", name_}, {}, 20s).exit_code, 0);
    }
  }
  ~TestUser() { run({"userdel", name_}, {}, 20s); }
  TestUser(const TestUser&) = delete;
  TestUser& operator=(const TestUser&) = delete;
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  std::string name_;
};

constexpr const char* kPassword = "correct horse battery staple";

class MigrationSecurity : public ::testing::Test {
 protected:
  void SetUp() override { pair_ = std::make_unique<HostPair>(a_args_, b_args_); }
  void TearDown() override {
    if (!HasFailure()) return;
    for (const Host* h : {&A(), &B()})
      std::cerr << "---- end of " << h->options().name << "'s log (requests left out) ----\n" << h->log_excerpt() << "\n";
  }

  // A bound guest on A: enough for every check that matters here.
  void define_bound_guest() {
    A().ok({"add-domain", "vcpus=1", "memory=64M", "kernel=" + test_guest(), "cmdline=hb=20", "ldg1"});
    A().ok({"bind", "ldg1"});
  }

  std::string password_file(const std::string& content, mode_t mode) {
    std::string path = fmt::format("{}/pw{}", pair_->dir.path(), files_++);
    std::ofstream(path) << content;
    chmod(path.c_str(), mode);
    return path;
  }

  // Neither host trusts the other: password mode has to carry the migration.
  void forget_trust() {
    fs::remove(A().state_dir() + "/trust/hostB.pem");
    fs::remove(B().state_dir() + "/trust/hostA.pem");
    A().sighup();
    B().sighup();
  }

  // Both hosts still answer, and still refuse nothing they should accept.
  void expect_serving() {
    EXPECT_TRUE(A().running());
    EXPECT_TRUE(B().running());
    EXPECT_EQ(A().ldm({"ls"}).exit_code, 0);
    EXPECT_EQ(B().ldm({"ls"}).exit_code, 0);
  }

  // No copy of the password in either host's log or state (store, journal, TLS files).
  void expect_password_nowhere() {
    for (const Host* h : {&A(), &B()}) {
      EXPECT_EQ(h->log().find(kPassword), std::string::npos) << h->options().name << "'s log holds the password";
      for (const auto& e : fs::recursive_directory_iterator(h->state_dir())) {
        if (!e.is_regular_file()) continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream content;
        content << in.rdbuf();
        EXPECT_EQ(content.str().find(kPassword), std::string::npos) << e.path() << " holds the password";
      }
    }
  }

  Host& A() { return *pair_->A; }
  Host& B() { return *pair_->B; }

  std::vector<std::string> a_args_, b_args_;
  std::unique_ptr<HostPair> pair_;
  int files_ = 0;
};

TEST_F(MigrationSecurity, PasswordModeAuthenticatesAnAdminThroughPamAndRefusesEveryoneElse) {
  TestUser admin("a", kPassword, true), plain("p", kPassword, false);
  forget_trust();
  define_bound_guest();
  std::string target = admin.name() + "@" + kAddressB;
  std::string good = password_file(std::string(kPassword) + "\nsecond line is ignored\n", 0600);
  auto before_a = A().state(), before_b = B().state();

  // The must-show: a dry run with the right password passes, silently but for
  // the first-contact notice; the target's certificate is now remembered.
  auto dry = A().ldm({"migrate-domain", "-n", "-p", good, "ldg1", target});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.err.find(std::string("Notice: first migration to ") + kAddressB), std::string::npos) << dry.err;
  std::ifstream known(A().state_dir() + "/known-hosts");
  std::string host, fingerprint;
  known >> host >> fingerprint;
  EXPECT_EQ(host, kAddressB);
  EXPECT_EQ(fingerprint.size(), 95u);  // SHA-256 as 32 hex pairs with colons
  auto again = A().ldm({"migrate-domain", "-n", "-p", good, "ldg1", target});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err, "");  // known now: nothing to say

  struct Refusal {
    const char* what;
    std::vector<std::string> args;
    std::string expected;
  };
  std::string wrong_auth = "Authentication to hostB failed: wrong user name or password";
  std::vector<Refusal> refusals = {
      {"wrong password", {"-p", password_file("not the password\n", 0600), "ldg1", target}, wrong_auth},
      {"unknown user", {"-p", good, "ldg1", fmt::format("nobody{}@{}", unique_id(), kAddressB)}, wrong_auth},
      {"user without admin rights", {"-p", good, "ldg1", plain.name() + "@" + kAddressB},
       "User " + plain.name() + " may not migrate domains to hostB: it must be root or in the group ldm-admin there"},
      {"password file readable by others", {"-p", password_file(std::string(kPassword) + "\n", 0644), "ldg1", target},
       "can be read by group or others (mode 0644); make it private with 'chmod 600"},
      {"certificate mode without trust", {"-c", "ldg1", kAddressB},
       std::string("The certificate of ") + kAddressB + " is not trusted here"},
  };
  for (const auto& r : refusals) {
    SCOPED_TRACE(r.what);
    std::vector<std::string> argv = {"migrate-domain", "-n"};
    argv.insert(argv.end(), r.args.begin(), r.args.end());
    auto refused = A().ldm(argv);
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find(r.expected), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("Domain Migration of LDom ldg1 would fail if attempted"), std::string::npos);
    EXPECT_EQ(A().state(), before_a);
    EXPECT_EQ(B().state(), before_b);
  }
  // (An unknown user and a wrong password get the same message: no hint which.)
  // Once A trusts B's certificate, -c gets as far as B, which does not trust A's.
  A().trust(B());
  auto untrusted_source = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_NE(untrusted_source.exit_code, 0);
  EXPECT_NE(untrusted_source.err.find("hostB does not trust the certificate of hostA"), std::string::npos)
      << untrusted_source.err;

  // And for real: the bound domain moves in password mode.
  auto moved = A().ldm({"migrate-domain", "-p", good, "ldg1", target});
  EXPECT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_TRUE(A().record("ldg1").empty());
  EXPECT_EQ(B().record("ldg1")["state"], "bound");
  expect_serving();
  expect_password_nowhere();
}

TEST_F(MigrationSecurity, WithoutAFileLdmAsksOnTheTerminalWithoutEcho) {
  TestUser admin("t", kPassword, true);
  forget_trust();
  define_bound_guest();
  // A real terminal: script(1) gives ldm a pty; the password is typed a
  // moment later, as a person would, after the prompt turned echo off.
  std::string command = fmt::format("{} migrate-domain -n ldg1 {}@{}", bin("ldm"), admin.name(), kAddressB);
  auto typed = run({"bash", "-c", "(sleep 2; printf '%s\\n' \"$PW\") | script -qefc \"$CMD\" /dev/null"},
                   {{"LDM_SOCKET", A().socket()}, {"PW", kPassword}, {"CMD", command}}, 60s);
  EXPECT_EQ(typed.exit_code, 0) << typed.out << typed.err;
  EXPECT_NE(typed.out.find("Target Password:"), std::string::npos) << typed.out;
  EXPECT_EQ(typed.out.find(kPassword), std::string::npos) << "the password was echoed: " << typed.out;

  // No terminal at all: a clear refusal that names the alternatives.
  auto no_tty = run({"setsid", bin("ldm"), "migrate-domain", "-n", "ldg1", admin.name() + "@" + kAddressB},
                    {{"LDM_SOCKET", A().socket()}}, 60s);
  EXPECT_NE(no_tty.exit_code, 0);
  EXPECT_NE(no_tty.err.find("No terminal to ask for the target's password on: give it in a private file with -p FILE"),
            std::string::npos)
      << no_tty.err;
}

TEST_F(MigrationSecurity, FailedAuthenticationsAreRateLimitedPerPeer) {
  TestUser admin("r", kPassword, true);
  forget_trust();
  define_bound_guest();
  std::string target = admin.name() + "@" + kAddressB;
  std::string wrong = password_file("guess\n", 0600), good = password_file(std::string(kPassword) + "\n", 0600);
  for (int i = 0; i < 3; ++i) {
    auto r = A().ldm({"migrate-domain", "-n", "-p", wrong, "ldg1", target});
    EXPECT_NE(r.err.find("wrong user name or password"), std::string::npos) << r.err;
  }
  // Locked out: even the right password is not tried now.
  auto locked = A().ldm({"migrate-domain", "-n", "-p", good, "ldg1", target});
  EXPECT_NE(locked.exit_code, 0);
  EXPECT_NE(locked.err.find(std::string("Too many failed authentications from ") + kAddressA + "; try again in"),
            std::string::npos)
      << locked.err;
  // The lockout (5 s after three failures) passes, and the right password works.
  std::this_thread::sleep_for(6s);
  auto later = A().ldm({"migrate-domain", "-n", "-p", good, "ldg1", target});
  EXPECT_EQ(later.exit_code, 0) << later.err;
  expect_serving();
}

// Replaces `h`'s certificate (ldmd restarted to load it) and makes `peer` trust the new one.
void replace_certificate(Host& h, Host& peer, const std::vector<std::string>& addresses, long not_before,
                         long not_after) {
  h.stop();
  auto paths = protocol::TlsPaths::under(h.state_dir());
  auto made = protocol::create_host_certificate(paths, h.options().name, addresses, not_before, not_after);
  ASSERT_TRUE(made) << made.error().text();
  fs::remove_all(paths.qemu_dir);
  h.start();
  peer.trust(h);
}

class StrictHostNames : public MigrationSecurity {
 protected:
  StrictHostNames() { a_args_ = {"--tls-host-match"}; }
};

TEST_F(StrictHostNames, TheTargetCertificateMustNameTheHostAsTyped) {
  define_bound_guest();
  // Its own certificate names B's address: accepted.
  auto named = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  // A certificate for another name and address: refused, with what it names.
  replace_certificate(B(), A(), {"10.9.9.9"}, -3600, 86400);
  auto before_a = A().state(), before_b = B().state();
  auto refused = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find(fmt::format("The certificate of {} names hostB, 10.9.9.9 but not {}: strict host-name "
                                         "matching is on",
                                         kAddressB, kAddressB)),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(A().state(), before_a);
  EXPECT_EQ(B().state(), before_b);
  // Without strict matching the same certificate is accepted (trust is by the certificate itself).
  A().stop();
  A().set_extra_args({});
  A().start();
  auto lax = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_EQ(lax.exit_code, 0) << lax.err;
}

TEST_F(MigrationSecurity, ExpiredCertificatesAreRefusedEitherWay) {
  define_bound_guest();
  // The target's certificate expired yesterday: the source refuses it.
  replace_certificate(B(), A(), {kAddressB}, -2 * 86400, -86400);
  B().trust(A());
  auto before_a = A().state(), before_b = B().state();
  auto r = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(std::string("The certificate of ") + kAddressB + " is not trusted here (certificate has expired)"),
            std::string::npos)
      << r.err;
  // The source's expired: the target refuses it.
  replace_certificate(B(), A(), {kAddressB}, -3600, 86400);
  replace_certificate(A(), B(), {kAddressA}, -2 * 86400, -86400);
  auto s = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_NE(s.exit_code, 0);
  EXPECT_NE(s.err.find("hostB does not trust the certificate of hostA (certificate has expired)"), std::string::npos)
      << s.err;
  EXPECT_EQ(B().state(), before_b);
  EXPECT_EQ(A().record("ldg1")["state"], "bound");
  expect_serving();
}

// openssl s_client against B's port, as A (A's certificate), with `input`
// sent once the connection is up; s_client ends two seconds after the input
// (at its end of file). Returns what it printed, replies included.
CommandResult s_client(const Host& as, const std::vector<std::string>& options, const std::string& input) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", std::string(kAddressB) + ":6482",
                                   "-cert", as.state_dir() + "/tls/server.crt", "-key", as.state_dir() + "/tls/server.key"};
  argv.insert(argv.end(), options.begin(), options.end());
  std::string script = "(sleep 1; cat \"$INPUT\"; sleep 2) | \"$@\" 2>&1";
  std::string file = as.state_dir() + ".input";
  std::ofstream(file, std::ios::binary) << input;
  std::vector<std::string> shell = {"bash", "-c", script, "s_client"};
  shell.insert(shell.end(), argv.begin(), argv.end());
  auto r = run(shell, {{"INPUT", file}}, 30s);
  fs::remove(file);
  return r;
}

std::string frame(const std::string& payload) {
  auto header = protocol::encode_length(static_cast<uint32_t>(payload.size()));
  return std::string(header.begin(), header.end()) + payload;
}

TEST_F(MigrationSecurity, TlsIsModernOnly) {
  auto modern = s_client(A(), {}, "");
  EXPECT_NE(modern.out.find("TLSv1.3"), std::string::npos) << modern.out;
  auto twelve = s_client(A(), {"-tls1_2"}, "");
  EXPECT_NE(twelve.out.find("ECDHE-ECDSA-AES256-GCM-SHA384"), std::string::npos) << twelve.out;
  auto old = s_client(A(), {"-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"}, "");  // a client willing to use 1.1
  EXPECT_EQ(old.out.find("Cipher is ECDHE"), std::string::npos) << old.out;
  EXPECT_NE(old.out.find("alert protocol version"), std::string::npos) << old.out;  // refused by ldmd, not by the client
  auto weak = s_client(A(), {"-tls1_2", "-cipher", "AES128-SHA"}, "");
  EXPECT_NE(weak.out.find("alert handshake failure"), std::string::npos) << weak.out;
  expect_serving();
}

TEST_F(MigrationSecurity, GarbageOversizedAndOutOfOrderMessagesChangeNothing) {
  define_bound_guest();
  auto before_a = A().state(), before_b = B().state();
  // Random bytes and a plaintext client on the port: the handshake fails, nothing else.
  std::mt19937 random(42);
  std::string noise(64 * 1024, '\0');
  for (auto& c : noise) c = static_cast<char>(random());
  std::string noise_file = pair_->dir.path() + "/noise";
  std::ofstream(noise_file, std::ios::binary) << noise;
  std::string plaintext_file = pair_->dir.path() + "/plaintext";
  std::ofstream(plaintext_file, std::ios::binary) << frame(R"({"type":"hello","max_version":1,"host":"x"})");
  for (const auto& file : {noise_file, plaintext_file}) {
    auto sent = run({"bash", "-c", "exec 3<>/dev/tcp/" + std::string(kAddressB) + "/6482; cat \"$1\" >&3; sleep 1",
                     "send", file},
                    {}, 30s);
    EXPECT_EQ(sent.exit_code, 0) << sent.err;
  }
  // Inside TLS, as a trusted peer: each refused with an answer, and the connection carries on.
  struct Case {
    const char* what;
    std::string bytes;
    std::string answer;  // in the reply
  };
  std::string hello = frame(R"({"type":"hello","min_version":1,"max_version":1,"host":"hostA"})");
  std::vector<Case> cases = {
      {"commit before hello", frame(R"({"type":"commit"})"), "the first message must be 'hello'"},
      {"commit with nothing prepared", hello + frame(R"({"type":"commit"})"), "nothing to commit"},
      {"a domain that is not one", hello + frame(R"({"type":"check","domain":{"name":7}})"),
       "unreadable domain description"},
      {"malformed JSON", hello + frame("{not json"), ""},
      {"an unknown type", hello + frame(R"({"type":"launch"})"), ""},
      {"wrong member types", hello + frame(R"({"type":"query","uuid":[1]})"), ""},
      {"oversized frame", hello + std::string("\x7f\xff\xff\xff") + std::string(4096, 'x'), ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = s_client(A(), {"-brief"}, c.bytes);
    if (!c.answer.empty()) {
      EXPECT_NE(r.out.find(c.answer), std::string::npos) << r.out;
    }
    EXPECT_TRUE(B().running());
  }
  EXPECT_NE(B().log().find("TLS handshake refused"), std::string::npos);
  EXPECT_NE(B().log().find("peer sent a frame of 2147483647 bytes"), std::string::npos);
  EXPECT_NE(B().log().find("peer sent an unknown message type 'launch'"), std::string::npos);
  EXPECT_EQ(A().state(), before_a);
  EXPECT_EQ(B().state(), before_b);
  expect_serving();
  // And a real peer is still served.
  auto dry = A().ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
}

}  // namespace
}  // namespace ldm::itest

namespace ldm::itest {
namespace {

constexpr const char* kPattern = "LDM-SECRET-PATTERN-5f3a9c";

// tcpdump on loopback for everything to or from B's address, until stopped.
class Capture {
 public:
  explicit Capture(const std::string& file) : file_(file) {
    done_ = std::async(std::launch::async, [this] {
      // A 64 MiB kernel buffer: with the default 2 MiB, a stream at loopback
      // speed on a loaded 2-core machine lost packets (7.9 of 8+ MiB captured).
      return run({"tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-n", "-w", file_,
                  "tcp and host " + std::string(kAddressB)},
                 {}, 300s, "", &pid_);
    });
    // tcpdump writes the file's header once it listens.
    EXPECT_TRUE(eventually([&] { return fs::exists(file_) && fs::file_size(file_) >= 24; }, 20s)) << "tcpdump did not start";
  }
  ~Capture() { stop(); }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  // Stops tcpdump (by its PID) and returns every byte it captured.
  std::string stop() {
    if (pid_ > 0) kill(pid_, SIGINT);
    if (done_.valid()) done_.get();
    pid_ = 0;
    std::ifstream in(file_, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string file_;
  std::atomic<pid_t> pid_{0};
  std::future<CommandResult> done_;
};

// The control: the same guest migrated by bare QEMUs without TLS, between
// the same addresses. Its capture must show the pattern, or the capture
// proves nothing.
std::string plaintext_migration_capture(const std::string& dir, const std::string& cmdline) {
  int port = 24000 + unique_id() % 1000;
  auto qemu = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv = {"qemu-system-x86_64", "-machine", "pc,accel=tcg", "-cpu", "max", "-m", "64M",
                                     "-nodefaults", "-display", "none", "-serial", "null", "-kernel", test_guest(),
                                     "-append", cmdline, "-qmp", fmt::format("unix:{}/{}.qmp,server=on,wait=off", dir, name),
                                     "-pidfile", fmt::format("{}/{}.pid", dir, name), "-daemonize"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    EXPECT_EQ(run(argv).exit_code, 0) << "bare QEMU " << name << " did not start";
  };
  struct Killer {  // only the QEMUs this function started, by their pidfiles
    std::string dir;
    ~Killer() {
      for (const char* n : {"src", "dst"}) {
        std::ifstream in(dir + "/" + n + ".pid");
        pid_t pid = 0;
        if (in >> pid && pid > 0) kill(pid, SIGKILL);
      }
    }
  } killer{dir};
  qemu("src", {});
  qemu("dst", {"-incoming", fmt::format("tcp:{}:{}", kAddressB, port)});
  BlockingQmp src(dir + "/src.qmp");
  std::this_thread::sleep_for(2s);  // the guest fills its pages
  Capture capture(dir + "/plain.pcap");
  src.execute("migrate", {{"uri", fmt::format("tcp:{}:{}", kAddressB, port)}});
  EXPECT_TRUE(eventually([&] { return src.execute("query-migrate")["return"].value("status", "") == "completed"; }, 120s));
  return capture.stop();
}

TEST_F(MigrationSecurity, TheMigrationTrafficDoesNotShowTheGuestsMemory) {
  std::string cmdline = std::string("hb=20 dirty=8M rate=100 pattern=") + kPattern;
  A().ok({"add-domain", "vcpus=1", "memory=64M", "kernel=" + test_guest(), "cmdline=" + cmdline, "ldg1"});
  A().ok({"bind", "ldg1"});
  A().ok({"start", "ldg1"});
  auto source = pair_->console(A(), "ldg1");
  ASSERT_GE(source->heartbeats(5).size(), 5u);

  Capture capture(pair_->dir.path() + "/ldm.pcap");
  auto moved = A().ldm({"migrate-domain", "-c", "ldg1", kAddressB});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  auto target = pair_->console(B(), "ldg1");
  EXPECT_GE(target->heartbeats(5).size(), 5u);
  std::string encrypted = capture.stop();
  // The memory stream was captured (8 MiB of pattern pages at least)...
  EXPECT_GT(encrypted.size(), 8u << 20);
  // ...and not one copy of the pattern is readable in it.
  EXPECT_EQ(encrypted.find(kPattern), std::string::npos) << "the guest's memory crossed the network in clear";

  std::string plain = plaintext_migration_capture(pair_->dir.path(), cmdline);
  EXPECT_NE(plain.find(kPattern), std::string::npos) << "the control capture does not show the pattern";
}

}  // namespace
}  // namespace ldm::itest
