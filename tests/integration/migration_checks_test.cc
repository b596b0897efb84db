// Phase-1 checks between two real hosts (loopback addresses 127.0.0.2 and
// 127.0.0.3): each check made to fail alone, then several together, the dry
// run, delayed reconfiguration end to end, and what is refused while a
// migration runs. A refused migration must leave both hosts exactly as they
// were: same model, same QEMU processes, the guest still beating.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ldm::itest {
namespace {

namespace fs = std::filesystem;

void define_guest(const Host& h, const std::string& name, const std::string& cmdline = "hb=20") {
  h.ok({"add-domain", "vcpus=1", "memory=64M", "kernel=" + test_guest(), "cmdline=" + cmdline, name});
}

void start_guest(const Host& h, const std::string& name, const std::string& cmdline = "hb=20") {
  define_guest(h, name, cmdline);
  h.ok({"bind", name});
  h.ok({"start", name});
}

std::string first_pci_device() {
  for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices")) return e.path().filename();
  return "0000:00:00.0";
}

// One row of the table: what to set up so that one check fails, and what
// the user must then read.
struct CheckCase {
  const char* name;
  std::vector<std::string> a_args, b_args;
  const char* state;  // of ldg1 on A: active, bound or inactive
  std::function<void(HostPair&)> setup;
  std::string expected;  // a line the failure must contain
};

std::vector<CheckCase> check_cases() {
  return {
      {"NameTaken", {}, {}, "inactive", [](HostPair& p) { p.B->ok({"add-domain", "ldg1"}); },
       "Domain ldg1 already exists on the target machine"},
      {"NotEnoughVcpus", {}, {}, "bound",
       [](HostPair& p) {
         p.B->ok({"add-domain", "vcpus=4", "memory=64M", "hog"});
         p.B->ok({"bind", "hog"});
       },
       "Not enough free vCPUs on the target machine: LDom ldg1 needs 1 and hostB has 0 free"},
      {"NotEnoughMemory", {}, {}, "bound",
       [](HostPair& p) {
         p.B->ok({"add-domain", "vcpus=1", "memory=2000M", "hog"});
         p.B->ok({"bind", "hog"});
       },
       "Unable to bind 64M memory region at real address 0x0 on the target machine"},
      {"AcceleratorDiffers", {}, {"--accel", "kvm"}, "active", [](HostPair&) {},
       "LDom ldg1 runs under TCG (software emulation) here and hostB runs guests under KVM"},
      {"PhysicalIo", {}, {}, "bound",
       [](HostPair& p) {
         p.A->ok({"unbind", "ldg1"});
         p.A->ok({"add-io", first_pci_device(), "ldg1"});
         p.A->ok({"bind", "ldg1"});
       },
       "LDom ldg1 has direct access to physical I/O (" + first_pci_device() + ")"},
      {"VolumeMissing", {}, {}, "active", [](HostPair&) {},
       "Failed to find required volume vol1@primary-vds0 on target machine"},
      {"VolumeIsACopy", {}, {}, "active",
       [](HostPair& p) {
         std::string copy = p.dir.path() + "/copy.img";
         fs::copy_file(p.dir.path() + "/shared.img", copy);
         p.B->ok({"add-vds", "primary-vds0", "primary"});
         p.B->ok({"add-vdsdev", copy, "vol1@primary-vds0"});
       },
       "is not the storage LDom ldg1 uses: a marker written to it here is not visible there"},
      {"SwitchMissing", {}, {}, "active", [](HostPair&) {}, "Failed to find required vsw "},
      {"MacTaken", {}, {}, "bound", [](HostPair&) {} /* in the test body: it needs the switch */,
       "is already used by LDom other on the target machine"},
      {"NoConsoleService", {}, {}, "bound", [](HostPair& p) { p.B->ok({"remove-vcc", "primary-vcc0"}); },
       "No virtual console concentrator (vcc) exists on the target machine"},
      {"GuestPanicked", {}, {}, "panicked", [](HostPair&) {},
       "Migration is not supported while the domain ldg1 is in the 'guest-panicked' state"},
      {"SourceElastic", {"--power-policy", "elastic"}, {}, "inactive", [](HostPair&) {},
       "Domain migration is not supported while the source machine hostA is in elastic power policy"},
      {"TargetElastic", {}, {"--power-policy", "elastic"}, "inactive", [](HostPair&) {},
       "Domain migration is not supported while the target machine hostB is in elastic power policy"},
      {"DelayedReconfigurationOnSource", {}, {}, "active",
       [](HostPair& p) { p.A->ok({"set-vcpu", "2", "ldg1"}); },
       "LDom ldg1 on the source machine hostA has a delayed reconfiguration pending"},
      {"DelayedReconfigurationOnTarget", {}, {}, "inactive",
       [](HostPair& p) {
         start_guest(*p.B, "busy");
         p.B->ok({"set-memory", "128M", "busy"});
       },
       "LDom busy on the target machine hostB has a delayed reconfiguration pending"},
  };
}

class EachCheck : public ::testing::TestWithParam<CheckCase> {};

TEST_P(EachCheck, FailsAloneWithItsMessageAndChangesNothing) {
  const CheckCase& c = GetParam();
  HostPair p(c.a_args, c.b_args);
  std::string state = c.state;
  // ldg1: a guest with a vnet on a switch and a vdisk on an image both hosts can see.
  std::string bridge = fmt::format("ldmck{}", unique_id());
  p.A->ok({"add-vsw", bridge, "primary"});
  p.A->forget_link(bridge);
  if (std::string(c.name) != "SwitchMissing") {
    p.B->ok({"add-vsw", bridge, "primary"});
    p.B->forget_link(bridge);
  }
  std::string image = p.dir.path() + "/shared.img";
  run({"truncate", "-s", "4M", image});
  p.A->ok({"add-vds", "primary-vds0", "primary"});
  p.A->ok({"add-vdsdev", image, "vol1@primary-vds0"});
  std::string name = c.name;
  if (name != "VolumeMissing" && name != "VolumeIsACopy") {
    p.B->ok({"add-vds", "primary-vds0", "primary"});
    p.B->ok({"add-vdsdev", image, "vol1@primary-vds0"});
  }
  define_guest(*p.A, "ldg1", state == "panicked" ? "hb=20 panic=300" : "hb=20");
  p.A->ok({"add-vnet", "vnet0", bridge, "ldg1"});
  p.A->ok({"add-vdisk", "disk0", "vol1@primary-vds0", "ldg1"});
  if (state != "inactive") p.A->ok({"bind", "ldg1"});
  if (state == "active" || state == "panicked") p.A->ok({"start", "ldg1"});
  if (state == "panicked") {
    auto cons = p.console(*p.A, "ldg1");
    ASSERT_TRUE(eventually([&] {
      cons->drain(100ms);
      for (const auto& l : cons->lines())
        if (l.find("PANIC") != std::string::npos) return true;
      return false;
    }));
  }
  if (name == "MacTaken") {
    // The target's domain takes the same MAC on its own switch.
    auto mac = nlohmann::json::parse(p.A->ok({"list-constraints", "--json", "ldg1"}))[0]["networks"][0]["mac"];
    p.B->ok({"add-domain", "other"});
    p.B->ok({"add-vnet", "mac-addr=" + mac.get<std::string>(), "vnet0", bridge, "other"});
  } else {
    c.setup(p);
  }

  auto before_a = p.A->state(), before_b = p.B->state();
  auto pids_a = p.A->qemu_pids(), pids_b = p.B->qemu_pids();
  for (bool dry_run : {true, false}) {
    SCOPED_TRACE(dry_run ? "dry run" : "migration");
    std::vector<std::string> args = {"migrate-domain", "-c", "ldg1", kAddressB};
    if (dry_run) args.insert(args.begin() + 1, "-n");
    auto r = p.A->ldm(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err << "\nsource log:\n" << p.A->log();
    EXPECT_NE(r.err.find(dry_run ? "Domain Migration of LDom ldg1 would fail if attempted\n"
                                 : "Domain Migration of LDom ldg1 failed\n"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(p.A->state(), before_a);
    EXPECT_EQ(p.B->state(), before_b);
    EXPECT_EQ(p.A->qemu_pids(), pids_a);
    EXPECT_EQ(p.B->qemu_pids(), pids_b);
  }
  if (state == "active") {
    EXPECT_GE(p.console(*p.A, "ldg1")->heartbeats(3).size(), 3u) << "the guest stopped beating";
  }
}

INSTANTIATE_TEST_SUITE_P(Checks, EachCheck, ::testing::ValuesIn(check_cases()),
                         [](const auto& row) { return std::string(row.param.name); });

TEST(MigrationChecks, SeveralFailuresAreReportedTogetherAlsoAsJson) {
  HostPair p({}, {"--power-policy", "elastic"});
  std::string bridge = fmt::format("ldmck{}", unique_id());
  p.A->ok({"add-vsw", bridge, "primary"});
  p.A->forget_link(bridge);
  std::string image = p.dir.path() + "/shared.img";
  run({"truncate", "-s", "4M", image});
  p.A->ok({"add-vds", "primary-vds0", "primary"});
  p.A->ok({"add-vdsdev", image, "vol1@primary-vds0"});
  define_guest(*p.A, "ldg1");
  p.A->ok({"add-vnet", "vnet0", bridge, "ldg1"});
  p.A->ok({"add-vdisk", "disk0", "vol1@primary-vds0", "ldg1"});
  p.A->ok({"bind", "ldg1"});
  p.B->ok({"add-domain", "vcpus=4", "memory=64M", "hog"});
  p.B->ok({"bind", "hog"});
  auto before_a = p.A->state(), before_b = p.B->state();

  auto r = p.A->ldm({"migrate-domain", "-n", "-c", "--json", "ldg1", kAddressB});
  EXPECT_NE(r.exit_code, 0);
  auto out = nlohmann::json::parse(r.out);
  std::set<std::string> checks;
  for (const auto& f : out["failures"]) {
    checks.insert(f["check"].get<std::string>());
    EXPECT_FALSE(f["message"].get<std::string>().empty());
    EXPECT_FALSE(f["remedy"].get<std::string>().empty()) << f.dump();
  }
  EXPECT_EQ(checks, (std::set<std::string>{"policy", "cpu", "vds", "vsw"})) << r.out;
  for (const auto& f : out["failures"]) {
    if (f["check"] == "vsw") {
      EXPECT_EQ(f["resource"], bridge);
    }
  }
  EXPECT_NE(r.err.find("Domain Migration of LDom ldg1 would fail if attempted"), std::string::npos);
  EXPECT_EQ(p.A->state(), before_a);
  EXPECT_EQ(p.B->state(), before_b);
}

TEST(MigrationChecks, SilentDryRunForActiveBoundAndInactiveDomains) {
  HostPair p;
  start_guest(*p.A, "act");
  define_guest(*p.A, "bnd");
  p.A->ok({"bind", "bnd"});
  define_guest(*p.A, "ina");
  auto before_a = p.A->state(), before_b = p.B->state();
  auto pids = p.A->qemu_pids();
  for (const char* d : {"act", "bnd", "ina"}) {
    SCOPED_TRACE(d);
    auto r = p.A->ldm({"migrate-domain", "-n", "-c", d, kAddressB});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out + r.err, "");
  }
  EXPECT_EQ(p.A->state(), before_a);
  EXPECT_EQ(p.B->state(), before_b);
  EXPECT_EQ(p.A->qemu_pids(), pids);
  EXPECT_TRUE(p.B->qemu_pids().empty());
}

// The number after -smp on a running QEMU's command line.
std::string smp_of(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid));
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto at = all.find(std::string("-smp") + '\0');
  if (at == std::string::npos) return "";
  return std::string(all.c_str() + at + 5);
}

TEST(DelayedReconfiguration, HeldUntilTheNextStartAndCancellable) {
  HostPair p;
  start_guest(*p.A, "ldg1");
  ASSERT_EQ(p.A->qemu_pids().size(), 1u);
  pid_t first = p.A->qemu_pids()[0];

  auto r = p.A->ldm({"set-vcpu", "2", "ldg1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Initiating a delayed reconfiguration operation on LDom ldg1"), std::string::npos) << r.out;
  EXPECT_EQ(p.A->record("ldg1")["flags"], "-nd---");
  EXPECT_EQ(p.A->record("ldg1")["ncpu"], "2") << "the listing shows the constraints";
  EXPECT_EQ(smp_of(first), "1") << "the running guest is not touched";
  r = p.A->ldm({"set-memory", "128M", "ldg1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Notice: LDom ldg1 is in the process of a delayed reconfiguration"), std::string::npos) << r.out;

  // Cancelled: the constraints go back to what runs.
  p.A->ok({"cancel-operation", "reconf", "ldg1"});
  EXPECT_EQ(p.A->record("ldg1")["flags"], "-n----");
  EXPECT_EQ(p.A->record("ldg1")["ncpu"], "1");
  auto again = p.A->ldm({"cancel-operation", "reconf", "ldg1"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("LDom ldg1 has no delayed reconfiguration to cancel"), std::string::npos);

  // Kept: applied by the next start.
  p.A->ok({"set-vcpu", "2", "ldg1"});
  p.A->ok({"stop", "-f", "ldg1"});
  EXPECT_EQ(p.A->record("ldg1")["flags"], "------");
  EXPECT_EQ(p.A->record("ldg1")["state"], "bound");
  p.A->ok({"start", "ldg1"});
  ASSERT_EQ(p.A->qemu_pids().size(), 1u);
  EXPECT_EQ(smp_of(p.A->qemu_pids()[0]), "2");
  EXPECT_GE(p.console(*p.A, "ldg1")->heartbeats(3).size(), 3u);
}

TEST(MigrationChecks, OperationsAreBlockedOnBothHostsWhileAMigrationRuns) {
  HostPair p;
  // A guest that keeps 48 MiB dirty at full speed, so there are dirty pages to send.
  p.A->ok({"add-domain", "vcpus=1", "memory=256M", "kernel=" + test_guest(), "cmdline=hb=20 dirty=48M rate=max",
           "ldg1"});
  p.A->ok({"bind", "ldg1"});
  p.A->ok({"start", "ldg1"});
  define_guest(*p.A, "otherA");
  define_guest(*p.B, "otherB");
  start_guest(*p.A, "runA");

  auto migration = std::async(std::launch::async, [&] { return p.A->ldm({"migrate-domain", "-c", "ldg1", kAddressB}); });
  ASSERT_TRUE(eventually([&] { return p.B->record("ldg1")["flags"] == "-----t"; }, 60s)) << p.B->log();
  EXPECT_EQ(p.A->record("ldg1")["flags"], "-n---s");
  // The dirtying guest alone does not keep the stream going long enough for
  // eight ldm commands under the sanitizers (it has converged in 3 s). Once the
  // stream runs, the target QEMU, stopped, stops reading: the stream stalls
  // (for far less than ldmd's 20 s stall limit) until it is resumed, also
  // when a check fails.
  ASSERT_TRUE(stream_started(*p.A, "ldg1"));
  ASSERT_EQ(p.B->qemu_pids().size(), 1u);
  const pid_t incoming_qemu = p.B->qemu_pids().front();
  ASSERT_EQ(kill(incoming_qemu, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }
  } resume{incoming_qemu};

  struct Refusal {
    const Host* host;
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<Refusal> refusals = {
      {p.A.get(), {"set-vcpu", "2", "ldg1"}, "LDom ldg1 is being migrated to hostB"},
      {p.A.get(), {"stop", "ldg1"}, "LDom ldg1 is being migrated to hostB"},
      {p.A.get(), {"set-var", "x=1", "ldg1"}, "LDom ldg1 is being migrated to hostB"},
      {p.A.get(), {"bind", "otherA"}, "Cannot bind LDom otherA while a migration is in progress on this machine"},
      {p.A.get(), {"stop", "runA"}, "Cannot stop LDom runA while a migration is in progress on this machine"},
      {p.A.get(), {"set-vcpu", "2", "runA"}, "Cannot reconfigure LDom runA while a migration is in progress"},
      {p.B.get(), {"bind", "otherB"}, "Cannot bind LDom otherB while a migration is in progress on this machine"},
      {p.B.get(), {"remove-domain", "ldg1"}, "LDom ldg1 is being migrated here from hostA"},
  };
  for (const auto& refusal : refusals) {
    auto r = refusal.host->ldm(refusal.args);
    EXPECT_NE(r.exit_code, 0) << refusal.args[0] << " " << refusal.args.back();
    EXPECT_NE(r.err.find(refusal.expected), std::string::npos) << r.err;
  }
  kill(incoming_qemu, SIGCONT);
  auto done = migration.get();
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(p.B->record("ldg1")["state"], "active");
  // Once it is over, the same operations work again.
  p.A->ok({"bind", "otherA"});
  p.B->ok({"bind", "otherB"});
  p.A->ok({"stop", "-f", "runA"});
}

}  // namespace
}  // namespace ldm::itest

namespace ldm::itest {
namespace {

TEST(MigrationChecks, PowerPolicyIsReReadOnSighup) {
  TempDir config_dir;
  std::string config = config_dir.path() + "/ldmd.conf";
  std::ofstream(config) << "power-policy = elastic\n";
  HostPair p({}, {"--config", config});
  define_guest(*p.A, "ldg1");
  auto r = p.A->ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_NE(r.err.find("target machine hostB is in elastic power policy"), std::string::npos) << r.err;
  std::ofstream(config) << "power-policy = performance\n";
  p.B->sighup();
  ASSERT_TRUE(eventually([&] { return p.B->log().find("SIGHUP: power policy performance") != std::string::npos; }));
  r = p.A->ldm({"migrate-domain", "-n", "-c", "ldg1", kAddressB});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace ldm::itest
