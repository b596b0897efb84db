// Migration between two real hosts: two ldmd with their own state directories,
// either on loopback addresses (127.0.0.2 and 127.0.0.3) or in two network
// namespaces joined by a veth pair. The proof of a live migration is the test
// guest: its heartbeat continues on the target's console without a restart,
// and it never reports CORRUPT.
#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ldm::itest {
namespace {

enum class Topology { Loopback, Namespaces };

class Migration : public ::testing::TestWithParam<Topology> {
 protected:
  void SetUp() override {
    std::string netns_a, netns_b;
    if (GetParam() == Topology::Namespaces) {
      namespaces_ = std::make_unique<NamespacePair>();
      netns_a = namespaces_->a();
      netns_b = namespaces_->b();
      address_a_ = NamespacePair::address_a;
      address_b_ = NamespacePair::address_b;
    }
    a_ = std::make_unique<Host>(dir_.path(), host_options("hostA", address_a_, netns_a));
    b_ = std::make_unique<Host>(dir_.path(), host_options("hostB", address_b_, netns_b));
    start_pair(*a_, *b_);
  }

  void define_guest(const std::string& name, const std::string& cmdline = "hb=20 dirty=32M rate=4000",
                    const std::string& memory = "128M") {
    a_->ok({"add-domain", "vcpus=1", "memory=" + memory, "kernel=" + test_guest(), "cmdline=" + cmdline, name});
  }

  std::unique_ptr<Console> console(const Host& h, const std::string& domain) {
    auto r = h.record(domain);
    EXPECT_FALSE(r["cons"].empty()) << domain << " has no console port";
    bool on_a = &h == a_.get();
    return std::make_unique<Console>(on_a ? address_a_ : address_b_, std::stoi(r["cons"].empty() ? "0" : r["cons"]),
                                     h.options().netns);
  }

  // The source console may show the guest's one boot line; the target's never.
  static void expect_no_corruption(const Console& c, bool boot_line_allowed) {
    for (const auto& l : c.lines()) {
      EXPECT_EQ(l.find("CORRUPT"), std::string::npos) << l;
      if (!boot_line_allowed) {
        EXPECT_EQ(l.find("LDM-TEST-GUEST START"), std::string::npos) << "the guest restarted: " << l;
      }
    }
  }

  // Migrates `name` from `from` to `to` (by address) and checks the live proof.
  void migrate_live(Host& from, Host& to, const std::string& to_address, const std::string& name,
                    const std::string& new_name = "") {
    auto before = from.ok({"list-constraints", "--json", name});
    auto source_console = console(from, name);
    auto beats = source_console->heartbeats(3);
    ASSERT_GE(beats.size(), 3u);
    std::string target = new_name.empty() ? to_address : to_address + ":" + new_name;
    auto r = from.ldm({"migrate-domain", "-c", name, target});
    ASSERT_EQ(r.exit_code, 0) << r.err << "\nsource log:\n" << from.log() << "\ntarget log:\n" << to.log();
    EXPECT_EQ(r.out, "") << "a successful migration prints nothing";
    EXPECT_EQ(r.err, "");
    source_console->drain(200ms);
    long last_on_source = 0;
    for (const auto& l : source_console->lines())
      if (l.rfind("HB ", 0) == 0) last_on_source = std::stol(l.substr(3));

    std::string arrived = new_name.empty() ? name : new_name;
    EXPECT_TRUE(from.record(name).empty()) << "the source copy is still listed";
    auto t = to.record(arrived);
    EXPECT_EQ(t["state"], "active");
    EXPECT_EQ(t["flags"], "-n----");
    auto target_console = console(to, arrived);
    auto after = target_console->heartbeats(5);
    ASSERT_GE(after.size(), 5u) << "no heartbeat on the target console";
    EXPECT_GT(after.front(), last_on_source - 1) << "the heartbeat went backwards: the guest restarted";
    EXPECT_LT(after.front(), last_on_source + 200) << "implausible jump in the heartbeat";
    for (size_t i = 1; i < after.size(); ++i) EXPECT_EQ(after[i], after[i - 1] + 1);
    expect_no_corruption(*source_console, true);
    expect_no_corruption(*target_console, false);

    // Same UUID and constraints, new name where asked.
    auto moved = nlohmann::json::parse(to.ok({"list-constraints", "--json", arrived}));
    auto original = nlohmann::json::parse(before);
    ASSERT_EQ(moved.size(), 1u);
    EXPECT_EQ(moved[0]["uuid"], original[0]["uuid"]);
    EXPECT_EQ(moved[0]["vcpus"], original[0]["vcpus"]);
    EXPECT_EQ(moved[0]["memory"][0]["size"], original[0]["memory"][0]["size"]);
    EXPECT_EQ(moved[0]["networks"], original[0]["networks"]);
    EXPECT_EQ(moved[0]["variables"], original[0]["variables"]);
    EXPECT_EQ(moved[0]["console"]["group"], arrived);
    EXPECT_TRUE(from.qemu_pids().empty()) << "a QEMU is still running on the source";
    EXPECT_EQ(to.qemu_pids().size(), 1u);
  }

  TempDir dir_;
  std::unique_ptr<NamespacePair> namespaces_;
  std::string address_a_ = "127.0.0.2", address_b_ = "127.0.0.3";
  std::unique_ptr<Host> a_, b_;
};

TEST_P(Migration, LiveMigrationOfADirtyingGuestKeepsItsHeartbeat) {
  std::string bridge = fmt::format("ldmsw{}", unique_id());
  for (Host* h : {a_.get(), b_.get()}) {
    h->ok({"add-vsw", bridge, "primary"});
    h->forget_link(bridge);
  }
  define_guest("ldg1");
  a_->ok({"add-vnet", "vnet0", bridge, "ldg1"});
  a_->ok({"set-var", "auto-boot?=true", "ldg1"});
  a_->ok({"bind", "ldg1"});
  a_->ok({"start", "ldg1"});
  migrate_live(*a_, *b_, address_b_, "ldg1");
}

TEST_P(Migration, BackAndForthFiveTimes) {
  define_guest("ldg1", "hb=20 dirty=16M rate=2000", "64M");
  a_->ok({"bind", "ldg1"});
  a_->ok({"start", "ldg1"});
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(fmt::format("round trip {}", i + 1));
    migrate_live(*a_, *b_, address_b_, "ldg1");
    migrate_live(*b_, *a_, address_a_, "ldg1");
    if (HasFatalFailure()) return;
  }
  // A domain that arrived by migration is watched like any other: host B saw
  // its outgoing streams end through QEMU's events, as the host it started on did.
  EXPECT_NE(b_->log().find(R"(domain ldg1: QEMU event MIGRATION {"status":"completed"})"), std::string::npos)
      << b_->log_excerpt();
}

TEST_P(Migration, BoundAndInactiveDomainsArriveInTheirState) {
  define_guest("bound1");
  define_guest("idle1");
  a_->ok({"bind", "bound1"});
  auto uuid_bound = a_->ok({"list-constraints", "-p", "bound1"});
  a_->ok({"migrate", "-c", "bound1", address_b_});
  a_->ok({"migrate", "-c", "idle1", address_b_});
  EXPECT_TRUE(a_->record("bound1").empty());
  EXPECT_TRUE(a_->record("idle1").empty());
  EXPECT_EQ(b_->record("bound1")["state"], "bound");
  EXPECT_FALSE(b_->record("bound1")["cons"].empty()) << "a bound domain gets a console port on the target";
  EXPECT_EQ(b_->record("idle1")["state"], "inactive");
  EXPECT_EQ(b_->ok({"list-constraints", "-p", "bound1"}), uuid_bound);
  // The bound one starts on its new host.
  b_->ok({"start", "bound1"});
  auto c = console(*b_, "bound1");
  EXPECT_GE(c->heartbeats(3).size(), 3u);
}

TEST_P(Migration, ATargetNameRenamesTheDomain) {
  define_guest("ldg1");
  a_->ok({"bind", "ldg1"});
  a_->ok({"start", "ldg1"});
  migrate_live(*a_, *b_, address_b_, "ldg1", "ldg9");
  EXPECT_TRUE(b_->record("ldg1").empty());
}

TEST_P(Migration, ATargetWithoutCapacityRefusesAndNothingChanges) {
  define_guest("big", "hb=20", "1G");
  a_->ok({"set-vcpu", "2", "big"});
  b_->ok({"add-domain", "vcpus=3", "memory=1536M", "hog"});
  b_->ok({"bind", "hog"});
  a_->ok({"bind", "big"});
  a_->ok({"start", "big"});
  auto before_a = a_->state(), before_b = b_->state();
  auto r = a_->ldm({"migrate-domain", "-c", "big", address_b_});
  EXPECT_NE(r.exit_code, 0);
  // Both shortages at once, then the original's last line.
  EXPECT_NE(r.err.find("Not enough free vCPUs on the target machine: LDom big needs 2 and hostB has 1 free"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Unable to bind 1G memory region at real address 0x0 on the target machine"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Domain Migration of LDom big failed\n"), std::string::npos) << r.err;
  EXPECT_EQ(a_->state(), before_a);
  EXPECT_EQ(b_->state(), before_b);
  EXPECT_EQ(b_->qemu_pids().size(), 0u);
  EXPECT_GE(console(*a_, "big")->heartbeats(3).size(), 3u) << "the source guest stopped beating";
}

TEST_P(Migration, DryRunReportsEveryMissingResourceAndChangesNothing) {
  std::string bridge = fmt::format("ldmsw{}", unique_id());
  a_->ok({"add-vsw", bridge, "primary"});
  a_->forget_link(bridge);
  std::string image = dir_.path() + "/shared.img";
  run({"truncate", "-s", "4M", image});
  a_->ok({"add-vds", "primary-vds0", "primary"});
  a_->ok({"add-vdsdev", image, "vol1@primary-vds0"});
  define_guest("ldg1");
  a_->ok({"add-vnet", "vnet0", bridge, "ldg1"});
  a_->ok({"add-vdisk", "disk0", "vol1@primary-vds0", "ldg1"});
  a_->ok({"bind", "ldg1"});
  a_->ok({"start", "ldg1"});
  auto before_a = a_->state(), before_b = b_->state();
  auto r = a_->ldm({"migrate-domain", "-n", "-c", "ldg1", address_b_});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Failed to find required vsw " + bridge + " on target machine"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Failed to find required volume vol1@primary-vds0 on target machine"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Domain Migration of LDom ldg1 would fail if attempted"), std::string::npos) << r.err;
  EXPECT_EQ(a_->state(), before_a);
  EXPECT_EQ(b_->state(), before_b);

  // Once the target has them, the dry run passes silently, and still changes nothing.
  b_->ok({"add-vsw", bridge, "primary"});
  b_->forget_link(bridge);
  b_->ok({"add-vds", "primary-vds0", "primary"});
  b_->ok({"add-vdsdev", image, "vol1@primary-vds0"});
  before_b = b_->state();
  auto ok = a_->ldm({"migrate-domain", "-n", "-c", "ldg1", address_b_});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out + ok.err, "");
  EXPECT_EQ(a_->state(), before_a);
  EXPECT_EQ(b_->state(), before_b);
  EXPECT_TRUE(b_->qemu_pids().empty());
}

TEST_P(Migration, AnUnreachableTargetIsAClearErrorAndTheSourceIsUntouched) {
  define_guest("ldg1");
  a_->ok({"bind", "ldg1"});
  a_->ok({"start", "ldg1"});
  b_->stop();
  auto before = a_->state();
  auto r = a_->ldm({"migrate-domain", "-c", "ldg1", address_b_});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Cannot connect to the Logical Domains Manager on " + address_b_ + " port 6482"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Domain Migration of LDom ldg1 failed"), std::string::npos);
  EXPECT_EQ(a_->state(), before);
  EXPECT_GE(console(*a_, "ldg1")->heartbeats(3).size(), 3u);
}

TEST_P(Migration, AnUntrustedTargetIsRefused) {
  define_guest("ldg1");
  a_->ok({"bind", "ldg1"});
  std::filesystem::remove(a_->state_dir() + "/trust/hostB.pem");
  a_->sighup();
  auto before_a = a_->state(), before_b = b_->state();
  auto r = a_->ldm({"migrate-domain", "-c", "ldg1", address_b_});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("The certificate of " + address_b_ + " is not trusted here"), std::string::npos) << r.err;
  EXPECT_EQ(a_->state(), before_a);
  EXPECT_EQ(b_->state(), before_b);
}

INSTANTIATE_TEST_SUITE_P(Topologies, Migration, ::testing::Values(Topology::Loopback, Topology::Namespaces),
                         [](const auto& p) { return p.param == Topology::Loopback ? "Loopback" : "Namespaces"; });

}  // namespace
}  // namespace ldm::itest
