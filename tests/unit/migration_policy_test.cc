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

hypervisor::qemu::Capabilities qemu_72() {
  return {"7.2.22", "pc-i440fx-7.2", {"pc", "pc-i440fx-7.1", "pc-i440fx-7.2", "q35"}, {"Nehalem", "host", "max", "qemu64"}};
}

// The source as the target sees it: same accelerator and QEMU as the target.
SourceFacts source_facts() {
  SourceFacts s;
  s.accel = "tcg";
  s.qemu_version = "7.2.22";
  s.machine = "pc-i440fx-7.2";
  s.cpu_model = "max";
  s.cpu_flags = {"avx", "sse2"};
  s.storage["vol1@primary-vds0"] = services::StorageIdentity{1 << 20, "token-1", "digest"};
  return s;
}

TargetFacts target_facts(bool ports_free = true) {
  TargetFacts f;
  f.accel = "tcg";
  f.qemu = qemu_72();
  f.cpu_flags = {"avx", "sse2"};
  f.storage["vol1@primary-vds0"] = services::StorageIdentity{1 << 20, "token-1", "digest"};
  f.port_free = [ports_free](int) { return ports_free; };
  return f;
}

// A target with everything the active test domain needs.
model::HostModel ready_target() {
  model::HostModel t = target_host();
  EXPECT_TRUE(model::add_switch(t, "primary-vsw0", ""));
  EXPECT_TRUE(model::add_disk_service(t, "primary-vds0"));
  EXPECT_TRUE(model::add_volume(t, "/srv/a.img", "vol1", "primary-vds0", {}));
  return t;
}

std::vector<std::string> checks_of(const std::vector<CheckFailure>& failures) {
  std::vector<std::string> checks;
  for (const auto& f : failures) checks.push_back(f.check);
  return checks;
}

TEST(IncomingChecks, AllFailuresAreReportedAtOnce) {
  auto failures = check_incoming(target_host(), active_domain(), "ldg1", source_facts(), target_facts()).failures;
  EXPECT_EQ(checks_of(failures), (std::vector<std::string>{"vds", "vsw"}));
  EXPECT_EQ(failures[0].message, "Failed to find required volume vol1@primary-vds0 on target machine");
  EXPECT_EQ(failures[1].message, "Failed to find required vsw primary-vsw0 on target machine");
  EXPECT_NE(failures[1].remedy.find("ldm add-vsw primary-vsw0 primary"), std::string::npos);
  EXPECT_TRUE(check_incoming(ready_target(), active_domain(), "ldg1", source_facts(), target_facts()).failures.empty());
}

TEST(IncomingChecks, InactiveDomainsNeedOnlyAFreeName) {
  model::Domain d = active_domain();
  d.state = model::DomainState::Inactive;
  d.vcpus = 64;
  SourceFacts odd;
  odd.accel = "kvm";
  EXPECT_TRUE(check_incoming(target_host(), d, "ldg1", odd, target_facts()).failures.empty());
  model::HostModel t = target_host();
  ASSERT_TRUE(model::add_domain(t, "ldg1", {}, [] { return std::string("00000000-0000-4000-8000-000000000001"); }));
  auto clash = check_incoming(t, d, "ldg1", odd, target_facts()).failures;
  ASSERT_EQ(clash.size(), 1u);
  EXPECT_EQ(clash[0].message, "Domain ldg1 already exists on the target machine");
  EXPECT_TRUE(check_incoming(t, d, "ldg2", odd, target_facts()).failures.empty()) << "a rename avoids the clash";
}

TEST(IncomingChecks, CapacityConsolePortsAndMacs) {
  model::HostModel t = ready_target();
  model::Domain d = active_domain();
  d.vcpus = 3;
  d.memory[0].size = 2 * GiB;
  auto failures = check_incoming(t, d, "ldg1", source_facts(), target_facts(false)).failures;
  EXPECT_EQ(checks_of(failures), (std::vector<std::string>{"cpu", "memory", "vcc"}));
  model::Domain copy = incoming_domain(d, "ldg9");
  EXPECT_EQ(copy.uuid, d.uuid);
  EXPECT_EQ(copy.console.group, "ldg9");
  EXPECT_EQ(copy.state, model::DomainState::Inactive);
  EXPECT_EQ(copy.memory[0].pa, 0u);
  EXPECT_EQ(copy.networks[0].mac, d.networks[0].mac);
}

TEST(IncomingChecks, CpuAcceleratorMachineTypeAndModel) {
  model::HostModel t = ready_target();
  SourceFacts kvm = source_facts();
  kvm.accel = "kvm";
  auto failures = check_incoming(t, active_domain(), "ldg1", kvm, target_facts()).failures;
  ASSERT_EQ(checks_of(failures), std::vector<std::string>{"cpu"});
  EXPECT_NE(failures[0].message.find("between KVM and TCG"), std::string::npos) << failures[0].message;

  SourceFacts newer = source_facts();
  newer.machine = "pc-i440fx-8.0";
  failures = check_incoming(t, active_domain(), "ldg1", newer, target_facts()).failures;
  ASSERT_EQ(checks_of(failures), std::vector<std::string>{"cpu"});
  EXPECT_EQ(failures[0].resource, "pc-i440fx-8.0");

  // native under TCG is QEMU's max CPU: the versions must match.
  newer = source_facts();
  newer.qemu_version = "8.0.0";
  failures = check_incoming(t, active_domain(), "ldg1", newer, target_facts()).failures;
  ASSERT_EQ(checks_of(failures), std::vector<std::string>{"cpu"});
  model::Domain generic = active_domain();
  generic.cpu_arch = "generic";
  EXPECT_TRUE(check_incoming(t, generic, "ldg1", newer, target_facts()).failures.empty())
      << "cpu-arch=generic moves between QEMU versions";

  // native under KVM: the target CPU must have every flag of the source.
  SourceFacts kvm_source = source_facts();
  kvm_source.accel = "kvm";
  kvm_source.cpu_flags = {"avx", "avx512f", "sse2"};
  TargetFacts kvm_target = target_facts();
  kvm_target.accel = "kvm";
  failures = check_incoming(t, active_domain(), "ldg1", kvm_source, kvm_target).failures;
  ASSERT_EQ(checks_of(failures), std::vector<std::string>{"cpu"});
  EXPECT_EQ(failures[0].resource, "avx512f");
}

TEST(IncomingChecks, HugePagesFailForActiveAndWarnForBound) {
  model::HostModel t = ready_target();
  model::Domain d = active_domain();
  d.memory[0].page_size = 2 * MiB;
  TargetFacts facts = target_facts();
  facts.free_hugepages[2 * MiB] = 100;  // 200M of the 256M needed
  auto report = check_incoming(t, d, "ldg1", source_facts(), facts);
  ASSERT_EQ(checks_of(report.failures), std::vector<std::string>{"memory"});
  EXPECT_NE(report.failures[0].message.find("needs 128 free 2M huge pages"), std::string::npos)
      << report.failures[0].message;
  d.state = model::DomainState::Bound;
  report = check_incoming(t, d, "ldg1", source_facts(), facts);
  EXPECT_TRUE(report.failures.empty());
  EXPECT_EQ(checks_of(report.warnings), std::vector<std::string>{"memory"});
  facts.free_hugepages[2 * MiB] = 128;
  d.state = model::DomainState::Active;
  EXPECT_TRUE(check_incoming(t, d, "ldg1", source_facts(), facts).failures.empty());
}

TEST(IncomingChecks, VolumeMustBeTheSameStorage) {
  model::HostModel t = ready_target();
  TargetFacts copy = target_facts();
  copy.storage["vol1@primary-vds0"].token = "";  // a copy: the marker did not come along
  auto failures = check_incoming(t, active_domain(), "ldg1", source_facts(), copy).failures;
  ASSERT_EQ(checks_of(failures), std::vector<std::string>{"vds"});
  EXPECT_NE(failures[0].message.find("is not the storage LDom ldg1 uses"), std::string::npos);
  EXPECT_NE(failures[0].message.find("/srv/a.img"), std::string::npos) << "names the target's backend";

  TargetFacts unreadable = target_facts();
  unreadable.storage.clear();
  unreadable.storage_errors["vol1@primary-vds0"] = "cannot open /srv/a.img: No such file or directory";
  failures = check_incoming(t, active_domain(), "ldg1", source_facts(), unreadable).failures;
  ASSERT_EQ(checks_of(failures), std::vector<std::string>{"vds"});

  model::Domain bound = active_domain();
  bound.state = model::DomainState::Bound;
  EXPECT_TRUE(check_incoming(t, bound, "ldg1", source_facts(), copy).failures.empty())
      << "bound domains are checked by name; their storage when they start";
}

TEST(StorageIdentity, MismatchRules) {
  using services::StorageIdentity;
  using services::storage_mismatch;
  EXPECT_EQ(storage_mismatch({10, "a", "x"}, {10, "a", "y"}), "") << "the marker wins over sampled content";
  EXPECT_NE(storage_mismatch({10, "a", "x"}, {10, "b", "x"}), "");
  EXPECT_NE(storage_mismatch({10, "a", "x"}, {11, "a", "x"}).find("size differs"), std::string::npos);
  EXPECT_EQ(storage_mismatch({10, "", "x"}, {10, "", "x"}), "") << "no marker anywhere: samples decide";
  EXPECT_NE(storage_mismatch({10, "", "x"}, {10, "", "y"}), "");
  EXPECT_NE(storage_mismatch({10, "wwid:1", ""}, {10, "wwid:2", ""}).find("another device"), std::string::npos);
}

TEST(HostChecks, PolicyAndDelayedReconfigurationOnEitherHost) {
  model::HostModel t = ready_target();
  t.power_policy = model::PowerPolicy::Elastic;
  model::Domain other = active_domain();
  other.name = "ldg7";
  other.uuid = "11111111-2222-4333-8444-555555555555";
  other.networks.clear();
  other.delayed_reconf = true;
  t.domains.push_back(other);
  model::Domain inactive = active_domain();
  inactive.state = model::DomainState::Inactive;
  auto failures = check_incoming(t, inactive, "ldg1", source_facts(), target_facts()).failures;
  EXPECT_EQ(checks_of(failures), (std::vector<std::string>{"policy", "reconf"}));
  EXPECT_EQ(failures[0].message, "Domain migration is not supported while the target machine hostB is in elastic "
                                 "power policy");

  model::HostModel source = target_host();
  source.hostname = "hostA";
  source.power_policy = model::PowerPolicy::Elastic;
  model::Domain d = active_domain();
  d.io_devices = {"0000:3b:00.0"};
  auto outgoing = check_outgoing(source, d, "guest-panicked");
  EXPECT_EQ(checks_of(outgoing), (std::vector<std::string>{"policy", "io", "state"}));
  EXPECT_EQ(outgoing[2].message, "Migration is not supported while the domain ldg1 is in the 'guest-panicked' state");
  source.power_policy = model::PowerPolicy::Performance;
  d.io_devices.clear();
  EXPECT_TRUE(check_outgoing(source, d, "running").empty());
  d.state = model::DomainState::Inactive;
  d.io_devices = {"0000:3b:00.0"};
  EXPECT_TRUE(check_outgoing(source, d, "").empty()) << "an inactive domain carries only constraints";
}

}  // namespace
}  // namespace ldm::migration
