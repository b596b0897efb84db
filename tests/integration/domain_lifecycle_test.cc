// Real ldmd + real QEMU: a domain's life from definition to removal, as a user
// sees it through ldm and the domain's console.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ldm::itest {
namespace {

class DomainLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    int id = unique_id();
    base_port_ = 20000 + id * 10;
    host_ = std::make_unique<Host>(dir_.path(), HostOptions{});
    host_->start();
    host_->ok({"add-vcc", fmt::format("port-range={}-{}", base_port_, base_port_ + 9), "primary-vcc0", "primary"});
  }

  void define_guest(const std::string& name, const std::string& cmdline = "hb=20") {
    host_->ok({"add-domain", "vcpus=1", "memory=64M", "kernel=" + test_guest(), "cmdline=" + cmdline, name});
  }

  static void expect_rising(const std::vector<long>& beats, size_t count) {
    ASSERT_GE(beats.size(), count);
    for (size_t i = 1; i < beats.size(); ++i) EXPECT_EQ(beats[i], beats[i - 1] + 1) << "heartbeat sequence broke";
  }

  TempDir dir_;
  int base_port_ = 0;
  std::unique_ptr<Host> host_;
};

TEST_F(DomainLifecycle, DefineBindStartBeatStopUnbindRemove) {
  define_guest("ldg1");
  EXPECT_EQ(host_->record("ldg1")["state"], "inactive");
  EXPECT_EQ(host_->record("ldg1")["flags"], "------");

  host_->ok({"bind-domain", "ldg1"});
  auto bound = host_->record("ldg1");
  EXPECT_EQ(bound["state"], "bound");
  EXPECT_EQ(bound["cons"], std::to_string(base_port_));

  host_->ok({"start-domain", "ldg1"});
  auto active = host_->record("ldg1");
  EXPECT_EQ(active["state"], "active");
  EXPECT_EQ(active["flags"], "-n----");
  EXPECT_EQ(active["ncpu"], "1");
  EXPECT_EQ(active["mem"], std::to_string(64 << 20));
  EXPECT_EQ(host_->record("primary")["flags"], "-n-cv-");

  // The table shows it too, with its console port.
  auto table = host_->ok({"ls"});
  EXPECT_NE(table.find(fmt::format("ldg1             active     -n----  {}", base_port_)), std::string::npos) << table;

  Console console("127.0.0.1", base_port_);
  auto beats = console.heartbeats(5);
  expect_rising(beats, 5);

  host_->ok({"stop-domain", "-f", "ldg1"});
  EXPECT_EQ(host_->record("ldg1")["state"], "bound");
  EXPECT_TRUE(host_->qemu_pids().empty());
  host_->ok({"unbind-domain", "ldg1"});
  EXPECT_EQ(host_->record("ldg1")["state"], "inactive");
  host_->ok({"remove-domain", "ldg1"});
  EXPECT_TRUE(host_->record("ldg1").empty());
  auto gone = host_->ldm({"ls", "ldg1"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("LDom ldg1 not found"), std::string::npos);
}

// The console log (STATE/run/<uuid>.console.log) holds everything the guest
// printed since it started: its boot line, then heartbeats from 1.
TEST_F(DomainLifecycle, TheConsoleLogShowsTheBootLineThenHeartbeatsFromOne) {
  define_guest("ldg1");
  host_->ok({"bind", "ldg1"});
  host_->ok({"start", "ldg1"});
  auto uuid = nlohmann::json::parse(host_->ok({"list-constraints", "--json", "ldg1"}))[0]["uuid"].get<std::string>();
  std::string log = host_->state_dir() + "/run/" + uuid + ".console.log";
  std::vector<std::string> lines;
  ASSERT_TRUE(eventually([&] {
    lines.clear();
    std::ifstream in(log);
    std::string l;
    while (std::getline(in, l)) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(l);
    }
    return lines.size() >= 4;
  })) << "console log " << log << " stayed short";
  EXPECT_EQ(lines[0].rfind("LDM-TEST-GUEST START boot=", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "HB 1");
  EXPECT_EQ(lines[2], "HB 2");
}

TEST_F(DomainLifecycle, KillNineOfLdmdLeavesTheDomainRunningAndARestartAdoptsIt) {
  define_guest("ldg1");
  host_->ok({"bind", "ldg1"});
  host_->ok({"start", "ldg1"});
  Console console("127.0.0.1", base_port_);
  auto before = console.heartbeats(3);
  ASSERT_GE(before.size(), 3u);

  host_->kill9();
  auto during = console.heartbeats(5);
  ASSERT_GE(during.size(), 5u);
  EXPECT_GT(during.front(), before.back());

  host_->start();
  auto r = host_->record("ldg1");
  EXPECT_EQ(r["state"], "active");
  EXPECT_EQ(r["cons"], std::to_string(base_port_));
  auto after = console.heartbeats(5);
  ASSERT_GE(after.size(), 5u);
  EXPECT_EQ(after.front(), during.back() + 1) << "the guest was reset or stalled";
  for (const auto& l : console.lines()) EXPECT_EQ(l.find("CORRUPT"), std::string::npos) << l;
  // The re-adopted domain is fully controllable: its monitor was re-attached.
  host_->ok({"stop", "-f", "ldg1"});
  EXPECT_EQ(host_->record("ldg1")["state"], "bound");
  EXPECT_TRUE(host_->qemu_pids().empty());
}

TEST_F(DomainLifecycle, AQemuThatDiesIsNoticedAndShown) {
  define_guest("ldg1");
  host_->ok({"bind", "ldg1"});
  host_->ok({"start", "ldg1"});
  auto pids = host_->qemu_pids();
  ASSERT_EQ(pids.size(), 1u);
  kill(pids[0], SIGKILL);
  EXPECT_TRUE(eventually([&] { return host_->record("ldg1")["state"] == "bound"; }));
  auto details = host_->ok({"ls", "-l", "ldg1"});
  EXPECT_NE(details.find("QEMU exited unexpectedly"), std::string::npos) << details;
  // It can be started again.
  host_->ok({"start", "ldg1"});
  EXPECT_EQ(host_->record("ldg1")["state"], "active");
}

TEST_F(DomainLifecycle, GracefulStopThatTheGuestIgnoresTimesOutAndChangesNothing) {
  // The test guest has no ACPI support, so it never acts on the power button.
  define_guest("ldg1");
  host_->ok({"bind", "ldg1"});
  host_->ok({"start", "ldg1"});
  auto r = host_->ldm({"stop-domain", "-t", "1", "ldg1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("LDom ldg1 did not stop within 1 seconds"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ldm stop-domain -f ldg1"), std::string::npos);
  EXPECT_EQ(host_->record("ldg1")["state"], "active");
  Console console("127.0.0.1", base_port_);
  EXPECT_GE(console.heartbeats(2).size(), 2u);
}

TEST_F(DomainLifecycle, CapacityRefusalNamesTheShortageAndLeavesTheDomainInactive) {
  host_->ok({"add-domain", "vcpus=9", "memory=64M", "greedy"});
  host_->ok({"add-domain", "vcpus=1", "memory=4G", "fat"});
  auto before = host_->state();
  auto cpu = host_->ldm({"bind", "greedy"});
  EXPECT_NE(cpu.exit_code, 0);
  EXPECT_NE(cpu.err.find("Not enough free vCPUs to bind LDom greedy: it needs 9 and the host has 4 free of 4"),
            std::string::npos)
      << cpu.err;
  auto mem = host_->ldm({"bind", "fat"});
  EXPECT_NE(mem.exit_code, 0);
  EXPECT_NE(mem.err.find("Unable to bind 4G memory region at real address 0x0: the host has 2G free of 2G"),
            std::string::npos)
      << mem.err;
  EXPECT_EQ(host_->state(), before);
}

TEST_F(DomainLifecycle, VirtualSwitchNetworkAndDiskAreRealDevices) {
  std::string bridge = fmt::format("ldmit{}", unique_id());
  host_->forget_link(bridge);
  host_->ok({"add-vsw", bridge, "primary"});
  EXPECT_EQ(run({"ip", "link", "show", bridge}).exit_code, 0) << "add-vsw did not create the bridge";

  std::string image = dir_.path() + "/disk.img";
  run({"truncate", "-s", "8M", image});
  host_->ok({"add-vds", "primary-vds0", "primary"});
  host_->ok({"add-vdsdev", image, "vol1@primary-vds0"});

  define_guest("ldg1");
  host_->ok({"add-vnet", "vnet0", bridge, "ldg1"});
  host_->ok({"add-vdisk", "disk0", "vol1@primary-vds0", "ldg1"});
  auto net = host_->ok({"ls", "-o", "network", "-p", "ldg1"});
  EXPECT_NE(net.find("|mac-addr=02:4c:44:"), std::string::npos) << net;
  host_->ok({"bind", "ldg1"});
  host_->ok({"start", "ldg1"});

  // The domain's tap is in the bridge, and QEMU holds the disk image open.
  auto ports = run({"ip", "-o", "link", "show", "master", bridge}).out;
  EXPECT_NE(ports.find("ldm"), std::string::npos) << "no tap in bridge " << bridge;
  auto pids = host_->qemu_pids();
  ASSERT_EQ(pids.size(), 1u);
  bool has_image = false;
  for (const auto& fd : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pids[0]))) {
    std::error_code ec;
    has_image |= std::filesystem::read_symlink(fd.path(), ec) == image;
  }
  EXPECT_TRUE(has_image) << "QEMU did not open " << image;

  host_->ok({"stop", "-f", "ldg1"});
  EXPECT_TRUE(eventually([&] { return run({"ip", "-o", "link", "show", "master", bridge}).out.empty(); }))
      << "the tap outlived the domain";
  auto busy = host_->ldm({"remove-vsw", bridge});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.err.find("in use by LDom ldg1"), std::string::npos);
  host_->ok({"unbind", "ldg1"});
  host_->ok({"remove-domain", "ldg1"});
  host_->ok({"remove-vsw", bridge});
  EXPECT_NE(run({"ip", "link", "show", bridge}).exit_code, 0) << "remove-vsw left the bridge behind";
}

TEST_F(DomainLifecycle, ChangesSurviveARestartOfLdmd) {
  define_guest("ldg1");
  host_->ok({"set-var", "auto-boot?=true", "ldg1"});
  host_->ok({"set-vcpu", "2", "ldg1"});
  host_->ok({"bind", "ldg1"});
  auto before = host_->state();
  host_->kill9();
  host_->start();
  EXPECT_EQ(host_->state(), before);
}

}  // namespace
}  // namespace ldm::itest
