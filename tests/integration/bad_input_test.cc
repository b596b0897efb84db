// Bad input gets a clear message that names the problem, a non-zero exit, and
// changes nothing on the host.
#include <arpa/inet.h>
#include <filesystem>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ldm::itest {
namespace {

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = std::make_unique<Host>(dir_.path(), HostOptions{});
    host_->start();
    int port = 30000 + unique_id() * 10;
    host_->ok({"add-vcc", fmt::format("port-range={}-{}", port, port + 9), "primary-vcc0", "primary"});
    host_->ok({"add-vds", "primary-vds0", "primary"});
    host_->ok({"add-domain", "vcpus=1", "memory=64M", "ldg1"});
  }

  // Runs `args`, expects failure with `message` in stderr, and no change.
  void refused(const std::vector<std::string>& args, const std::string& message) {
    auto before = host_->state();
    auto r = host_->ldm(args);
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    EXPECT_NE(r.exit_code, 0) << "ldm" << cmd << " should have failed";
    EXPECT_NE(r.err.find(message), std::string::npos) << "ldm" << cmd << ": expected '" << message << "' in:\n" << r.err;
    EXPECT_EQ(host_->state(), before) << "ldm" << cmd << " changed the host";
  }

  TempDir dir_;
  std::unique_ptr<Host> host_;
};

TEST_F(BadInput, UnknownDomain) {
  refused({"bind-domain", "nosuch"}, "LDom nosuch not found");
  refused({"set-vcpu", "2", "nosuch"}, "LDom nosuch not found");
  refused({"start-domain", "nosuch"}, "LDom nosuch not found");
  refused({"list", "nosuch"}, "LDom nosuch not found");
}

TEST_F(BadInput, DuplicateName) {
  refused({"add-domain", "ldg1"}, "LDom ldg1 already exists");
  refused({"add-domain", "primary"}, "LDom primary already exists");
}

TEST_F(BadInput, BadSizesAndCounts) {
  refused({"set-memory", "12Q", "ldg1"}, "Invalid size '12Q'");
  refused({"add-domain", "memory=1", "ldg2"}, "Invalid memory size '1'");
  refused({"set-vcpu", "0", "ldg1"}, "Invalid vCPU count '0'");
  refused({"set-vcpu", "two", "ldg1"}, "Invalid vCPU count 'two'");
  refused({"add-domain", "colour=blue", "ldg2"}, "Unknown or invalid property 'colour=blue'");
}

TEST_F(BadInput, BadPortRange) {
  refused({"add-vcc", "port-range=6000", "vcc1", "primary"}, "Invalid port-range '6000'");
  refused({"add-vcc", "port-range=7000-6000", "vcc1", "primary"}, "Invalid port-range '7000-6000'");
  refused({"add-vcc", "port-range=80-90", "vcc1", "primary"}, "Invalid port-range '80-90'");
}

TEST_F(BadInput, MissingBackendFile) {
  refused({"add-vdsdev", "/nonexistent/disk.img", "vol1@primary-vds0"},
          "Backend /nonexistent/disk.img does not exist");
  refused({"add-vdsdev", "/tmp", "vol1@nosuch-vds"}, "vds service nosuch-vds not found");
  refused({"add-vdisk", "disk0", "vol9@primary-vds0", "ldg1"}, "Volume vol9@primary-vds0 does not exist");
}

TEST_F(BadInput, MissingKernel) {
  refused({"set-domain", "kernel=/nonexistent/kernel", "ldg1"}, "kernel file /nonexistent/kernel does not exist");
}

TEST_F(BadInput, WrongArgumentCountShowsTheUsage) {
  auto r = host_->ldm({"set-vcpu", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ldm set-vcpu number domain-name"), std::string::npos) << r.err;
  auto unknown = host_->ldm({"frobnicate-domain"});
  EXPECT_NE(unknown.exit_code, 0);
}

TEST_F(BadInput, MalformedSocketRequestsGetAnErrorAndLdmdKeepsServing) {
  auto before = host_->state();
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", host_->socket().c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto exchange = [&](const std::string& line) {
    (void)!write(fd, line.data(), line.size());
    std::string reply;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') reply += c;
    return reply;
  };
  EXPECT_NE(exchange("{garbage\n").find("Malformed request: not valid JSON"), std::string::npos);
  EXPECT_NE(exchange("[]\n").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(exchange(R"({"command":"bind-domain","args":{"name":7}})" "\n").find("Malformed request"),
            std::string::npos);
  EXPECT_NE(exchange(R"({"command":"add-domain","args":{"name":"x","props":{"vcpus":3}}})" "\n")
                .find("property values must be strings"),
            std::string::npos);
  EXPECT_NE(exchange(R"({"command":"no-such-command"})" "\n").find("Unknown command"), std::string::npos);
  close(fd);
  EXPECT_TRUE(host_->running());
  EXPECT_EQ(host_->state(), before);
}

TEST_F(BadInput, NoDaemonIsAClearError) {
  auto r = run({bin("ldm"), "ls"}, {{"LDM_SOCKET", dir_.path() + "/nothing.sock"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Cannot reach ldmd at " + dir_.path() + "/nothing.sock"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ldm::itest

namespace ldm::itest {
namespace {

// ldm as another user: uid/gid 65534 (nobody), with `groups` as supplementary groups.
CommandResult ldm_as(const Host& h, const std::string& groups, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"setpriv", "--reuid=65534", "--regid=65534",
                                   groups.empty() ? "--clear-groups" : "--groups=" + groups, bin("ldm")};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"LDM_SOCKET", h.socket()}});
}

std::string gid_of(const std::string& group) {
  auto r = run({"getent", "group", group});
  auto first = r.out.find(':'), second = r.out.find(':', first + 1), third = r.out.find(':', second + 1);
  return r.out.substr(second + 1, third - second - 1);
}

TEST(LocalAuthorization, ReadersListAdminsChangeOthersAreRefused) {
  TempDir dir;
  Host h(dir.path(), HostOptions{});
  h.start();
  // Let other users reach the socket: the directories are the test's own.
  for (auto p = std::filesystem::path(h.socket()).parent_path(); p.string().size() > 1; p = p.parent_path()) {
    if (p == std::filesystem::temp_directory_path()) break;
    std::filesystem::permissions(p, std::filesystem::perms::others_exec, std::filesystem::perm_options::add);
  }
  h.ok({"add-domain", "ldg1"});
  auto before = h.state();

  auto stranger = ldm_as(h, "", {"ls"});
  EXPECT_NE(stranger.exit_code, 0);
  EXPECT_NE(stranger.err.find("Permission denied: nobody is neither root nor in the group ldm-admin"),
            std::string::npos)
      << stranger.err;
  auto stranger_change = ldm_as(h, "", {"remove-domain", "ldg1"});
  EXPECT_NE(stranger_change.exit_code, 0);

  std::string read_gid = gid_of("ldm-read"), admin_gid = gid_of("ldm-admin");
  ASSERT_FALSE(read_gid.empty()) << "the set-up creates the group ldm-read";
  ASSERT_FALSE(admin_gid.empty()) << "the set-up creates the group ldm-admin";
  auto reader = ldm_as(h, read_gid, {"ls"});
  EXPECT_EQ(reader.exit_code, 0) << reader.err;
  EXPECT_NE(reader.out.find("ldg1"), std::string::npos);
  auto reader_change = ldm_as(h, read_gid, {"set-vcpu", "2", "ldg1"});
  EXPECT_NE(reader_change.exit_code, 0);
  EXPECT_NE(reader_change.err.find("may only list; set-vcpu needs root or the group ldm-admin"), std::string::npos)
      << reader_change.err;
  EXPECT_EQ(h.state(), before) << "a refused request changed something";

  auto admin = ldm_as(h, admin_gid, {"set-vcpu", "2", "ldg1"});
  EXPECT_EQ(admin.exit_code, 0) << admin.err;
  EXPECT_TRUE(h.running());
}

}  // namespace
}  // namespace ldm::itest
