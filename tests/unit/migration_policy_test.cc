// Migration policy (downtime escalation, progress) and phase-1 checks: pure.
#include <gtest/gtest.h>

#include "base/size.h"
#include "migration/checks.h"
#include "migration/qemu_parameters.h"
#include "model/operations.h"

namespace ldm::migration {
namespace {

using json = nlohmann::json;

TEST(ConvergencePolicy, DowntimeLimitEscalatesPerPassAndIsCapped) {
  EXPECT_EQ(downtime_limit_for_pass(1), 50);
  EXPECT_EQ(downtime_limit_for_pass(2), 50);
  EXPECT_EQ(downtime_limit_for_pass(3), 100);
  EXPECT_EQ(downtime_limit_for_pass(5), 200);
  EXPECT_EQ(downtime_limit_for_pass(6), 250);
  EXPECT_EQ(downtime_limit_for_pass(100), 250);
  EXPECT_EQ(source_parameters("hostB")["max-bandwidth"], int64_t{10} << 30) << "never QEMU's 128 MiB/s default";
  EXPECT_EQ(source_parameters("hostB")["tls-hostname"], "hostB");
}

TEST(Progress, NeverGoesBackwardsAndReaches100OnlyWhenCompleted) {
  json q = {{"status", "active"}, {"ram", {{"total", 1000}, {"remaining", 400}, {"transferred", 600}}}};
  EXPECT_EQ(progress_of(q, 0), 60);
  q["ram"]["remaining"] = 700;  // the guest dirtied more: remaining grew
  EXPECT_EQ(progress_of(q, 60), 60);
  q["ram"]["remaining"] = 0;
  EXPECT_EQ(progress_of(q, 60), 99);
  EXPECT_EQ(progress_of(json{{"status", "completed"}}, 99), 100);
  EXPECT_EQ(progress_of(json{{"status", "setup"}}, 12), 12);
}

model::HostModel target_host() {
  model::HostModel m;
  m.hostname = "hostB";
  m.capacity = {2, GiB};
  EXPECT_TRUE(model::add_console_service(m, "primary-vcc0", 5000, 5001));
  return m;
}

model::Domain active_domain() {
  model::Domain d;
  d.name = "ldg1";
  d.uuid = "6c908858-12ef-4520-9eb3-f1cd3dbc3a59";
  d.state = model::DomainState::Active;
  d.vcpus = 1;
  d.memory = {model::MemoryBlock{0, 0x40000000, 256 * MiB, 4096}};
  d.disks = {{"disk0", "vol1", "primary-vds0", 0}};
  d.networks = {{"vnet0", "primary-vsw0", "02:4c:44:00:00:01", true, 0}};
  return d;
}

TEST(IncomingChecks, AllFailuresAreReportedAtOnce) {
  auto failures = check_incoming(target_host(), active_domain(), "ldg1", [](int) { return true; });
  std::vector<std::string> checks;
  for (const auto& f : failures) checks.push_back(f.check);
  EXPECT_EQ(checks, (std::vector<std::string>{"vds", "vsw"}));
  EXPECT_EQ(failures[0].message, "Failed to find required volume vol1@primary-vds0 on target machine");
  EXPECT_EQ(failures[1].message, "Failed to find required vsw primary-vsw0 on target machine");
  EXPECT_NE(failures[1].remedy.find("ldm add-vsw primary-vsw0 primary"), std::string::npos);
}

TEST(IncomingChecks, InactiveDomainsNeedOnlyAFreeName) {
  model::Domain d = active_domain();
  d.state = model::DomainState::Inactive;
  d.vcpus = 64;
  EXPECT_TRUE(check_incoming(target_host(), d, "ldg1", [](int) { return true; }).empty());
  model::HostModel t = target_host();
  ASSERT_TRUE(model::add_domain(t, "ldg1", {}, [] { return std::string("00000000-0000-4000-8000-000000000001"); }));
  auto clash = check_incoming(t, d, "ldg1", [](int) { return true; });
  ASSERT_EQ(clash.size(), 1u);
  EXPECT_EQ(clash[0].message, "Domain ldg1 already exists on the target machine");
  EXPECT_TRUE(check_incoming(t, d, "ldg2", [](int) { return true; }).empty()) << "a rename avoids the clash";
}

TEST(IncomingChecks, CapacityConsolePortsAndMacs) {
  model::HostModel t = target_host();
  ASSERT_TRUE(model::add_switch(t, "primary-vsw0", ""));
  ASSERT_TRUE(model::add_disk_service(t, "primary-vds0"));
  ASSERT_TRUE(model::add_volume(t, "/srv/a.img", "vol1", "primary-vds0", {}));
  model::Domain d = active_domain();
  d.vcpus = 3;
  d.memory[0].size = 2 * GiB;
  auto failures = check_incoming(t, d, "ldg1", [](int) { return false; });
  std::vector<std::string> checks;
  for (const auto& f : failures) checks.push_back(f.check);
  EXPECT_EQ(checks, (std::vector<std::string>{"cpu", "memory", "vcc"}));
  model::Domain copy = incoming_domain(d, "ldg9");
  EXPECT_EQ(copy.uuid, d.uuid);
  EXPECT_EQ(copy.console.group, "ldg9");
  EXPECT_EQ(copy.state, model::DomainState::Inactive);
  EXPECT_EQ(copy.memory[0].pa, 0u);
  EXPECT_EQ(copy.networks[0].mac, d.networks[0].mac);
}

}  // namespace
}  // namespace ldm::migration
