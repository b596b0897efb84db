// The domain state machine, capacity accounting and MAC allocation.
#include "model/operations.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "base/size.h"

namespace ldm::model {
namespace {

std::string fixed_uuid() { return "11111111-2222-4333-8444-555555555555"; }
int uuid_counter = 0;
std::string next_uuid() { return fmt::format("00000000-0000-4000-8000-{:012d}", ++uuid_counter); }
bool any_port(int) { return true; }

HostModel host(unsigned vcpus = 4, uint64_t memory = 1 * GiB) {
  HostModel m;
  m.hostname = "hostA";
  m.capacity = {vcpus, memory};
  EXPECT_TRUE(add_console_service(m, "primary-vcc0", 5000, 5002));
  return m;
}

DomainProperties props(unsigned vcpus, uint64_t memory) {
  DomainProperties p;
  p.vcpus = vcpus;
  p.memory = memory;
  return p;
}

TEST(DomainStateMachine, InactiveToBoundAndBack) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "ldg1", props(1, 256 * MiB), next_uuid));
  EXPECT_EQ(m.find("ldg1")->state, DomainState::Inactive);
  EXPECT_EQ(flags_of(*m.find("ldg1")), "------");
  ASSERT_TRUE(bind_domain(m, "ldg1", any_port));
  const Domain& d = *m.find("ldg1");
  EXPECT_EQ(d.state, DomainState::Bound);
  EXPECT_EQ(d.console.port, 5000);
  EXPECT_EQ(d.console.service, "primary-vcc0");
  EXPECT_EQ(d.console.group, "ldg1");
  ASSERT_TRUE(unbind_domain(m, "ldg1"));
  EXPECT_EQ(m.find("ldg1")->state, DomainState::Inactive);
  EXPECT_EQ(m.find("ldg1")->console.port, 0);
}

TEST(DomainStateMachine, RefusesTransitionsFromTheWrongState) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "ldg1", props(1, 256 * MiB), next_uuid));
  EXPECT_FALSE(unbind_domain(m, "ldg1"));
  ASSERT_TRUE(bind_domain(m, "ldg1", any_port));
  auto again = bind_domain(m, "ldg1", any_port);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().text(), "LDom ldg1 is already bound");
  auto rm = remove_domain(m, "ldg1");
  ASSERT_FALSE(rm);
  EXPECT_NE(rm.error().text().find("unbind-domain ldg1"), std::string::npos);
  m.find("ldg1")->state = DomainState::Active;
  EXPECT_FALSE(unbind_domain(m, "ldg1"));
  EXPECT_EQ(flags_of(*m.find("ldg1")), "-n----");
}

TEST(DelayedReconfiguration, ActiveChangesWaitForTheNextStartAndCanBeCancelled) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "ldg1", props(1, 256 * MiB), next_uuid));
  ASSERT_TRUE(bind_domain(m, "ldg1", any_port));
  m.find("ldg1")->state = DomainState::Active;
  ASSERT_TRUE(change_vcpus(m, "ldg1", Change::Set, 2));
  ASSERT_TRUE(change_memory(m, "ldg1", Change::Add, 256 * MiB));
  const Domain& d = *m.find("ldg1");
  EXPECT_EQ(flags_of(d), "-nd---");
  EXPECT_EQ(d.vcpus, 2u) << "the constraints say what the next start gets";
  EXPECT_EQ(d.running.vcpus, 1u) << "and what runs now is remembered";
  EXPECT_EQ(d.running.memory.front().size, 256 * MiB);
  EXPECT_EQ(d.state, DomainState::Active);

  // More than the host has is refused and changes nothing.
  HostModel copy = m;
  EXPECT_FALSE(change_vcpus(copy, "ldg1", Change::Set, 64));

  ASSERT_TRUE(cancel_reconfiguration(m, "ldg1"));
  EXPECT_EQ(flags_of(*m.find("ldg1")), "-n----");
  EXPECT_EQ(m.find("ldg1")->vcpus, 1u);
  EXPECT_EQ(m.find("ldg1")->memory_size(), 256 * MiB);
  auto again = cancel_reconfiguration(m, "ldg1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().text(), "LDom ldg1 has no delayed reconfiguration to cancel");

  // A stop applies it: the domain is bound with its new constraints.
  ASSERT_TRUE(change_vcpus(m, "ldg1", Change::Set, 2));
  apply_delayed_reconfiguration(*m.find("ldg1"));
  EXPECT_FALSE(m.find("ldg1")->delayed_reconf);
  EXPECT_EQ(m.find("ldg1")->vcpus, 2u);
  DomainProperties arch;
  arch.cpu_arch = "generic";
  EXPECT_FALSE(set_domain(m, "ldg1", arch)) << "cpu-arch never changes live";
}

TEST(PhysicalIo, OnlyInactiveDomainsAndOnlyValidAddresses) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "ldg1", props(1, 256 * MiB), next_uuid));
  EXPECT_FALSE(add_io(m, "ldg1", "3b:00.0"));
  EXPECT_FALSE(add_io(m, "ldg1", "0000:3b:00.8"));
  ASSERT_TRUE(add_io(m, "ldg1", "0000:3b:00.0"));
  ASSERT_TRUE(add_domain(m, "ldg2", {}, next_uuid));
  EXPECT_NE(add_io(m, "ldg2", "0000:3b:00.0").error().text().find("already assigned to LDom ldg1"), std::string::npos);
  ASSERT_TRUE(remove_io(m, "ldg1", "0000:3b:00.0"));
  EXPECT_FALSE(remove_io(m, "ldg1", "0000:3b:00.0"));
}

TEST(DomainStateMachine, NamesAreValidatedAndUnique) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "ldg1", {}, next_uuid));
  EXPECT_NE(add_domain(m, "ldg1", {}, next_uuid).error().text().find("already exists"), std::string::npos);
  EXPECT_FALSE(add_domain(m, "primary", {}, next_uuid));
  EXPECT_FALSE(add_domain(m, "bad name", {}, next_uuid));
  EXPECT_FALSE(add_domain(m, "-dash", {}, next_uuid));
  EXPECT_FALSE(add_domain(m, std::string(65, 'a'), {}, next_uuid));
  EXPECT_EQ(m.domains.size(), 1u);
}

TEST(DomainStateMachine, EachDomainGetsItsOwnUuid) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "a", {}, fixed_uuid));
  auto dup = add_domain(m, "b", {}, fixed_uuid);
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().text().find("already used by LDom a"), std::string::npos);
}

TEST(Capacity, BindRefusesWhatTheHostCannotGive) {
  HostModel m = host(2, 512 * MiB);
  ASSERT_TRUE(add_domain(m, "big", props(3, 768 * MiB), next_uuid));
  auto r = bind_domain(m, "big", any_port);
  ASSERT_FALSE(r);
  // Both shortages are reported at once.
  ASSERT_EQ(r.error().messages.size(), 2u);
  EXPECT_EQ(r.error().messages[0].find("Not enough free vCPUs to bind LDom big: it needs 3 and the host has 2 free of 2"),
            0u);
  EXPECT_EQ(r.error().messages[1].find("Unable to bind 768M memory region at real address 0x0"), 0u);
}

TEST(Capacity, ReservationsAddUpAndAreReleasedOnUnbind) {
  HostModel m = host(4, 1 * GiB);
  ASSERT_TRUE(add_domain(m, "a", props(2, 512 * MiB), next_uuid));
  ASSERT_TRUE(add_domain(m, "b", props(2, 512 * MiB), next_uuid));
  ASSERT_TRUE(add_domain(m, "c", props(1, 4 * MiB), next_uuid));
  ASSERT_TRUE(bind_domain(m, "a", any_port));
  ASSERT_TRUE(bind_domain(m, "b", any_port));
  EXPECT_EQ(m.find("a")->memory[0].pa, 0u);
  EXPECT_EQ(m.find("b")->memory[0].pa, 512 * MiB);
  EXPECT_EQ(bound_usage(m).vcpus, 4u);
  EXPECT_FALSE(bind_domain(m, "c", any_port));
  ASSERT_TRUE(unbind_domain(m, "a"));
  ASSERT_TRUE(bind_domain(m, "c", any_port));
  EXPECT_EQ(m.find("c")->memory[0].pa, 0u);  // first fit reuses a's range
}

TEST(Capacity, GrowingABoundDomainIsCheckedAgain) {
  HostModel m = host(2, 1 * GiB);
  ASSERT_TRUE(add_domain(m, "a", props(1, 256 * MiB), next_uuid));
  ASSERT_TRUE(bind_domain(m, "a", any_port));
  HostModel copy = m;
  EXPECT_FALSE(change_vcpus(copy, "a", Change::Add, 2));
  ASSERT_TRUE(change_vcpus(m, "a", Change::Add, 1));
  EXPECT_EQ(m.find("a")->vcpus, 2u);
  EXPECT_EQ(m.find("a")->console.port, 5000);  // the reservation keeps its port
  ASSERT_TRUE(change_memory(m, "a", Change::Set, 512 * MiB));
  EXPECT_FALSE(change_memory(m, "a", Change::Remove, 512 * MiB));
}

TEST(Capacity, ConsolePortsComeFromTheVccRangeAndRunOut) {
  HostModel m = host(8, 4 * GiB);
  for (const char* n : {"a", "b", "c", "d"}) ASSERT_TRUE(add_domain(m, n, props(1, 64 * MiB), next_uuid));
  // Port 5001 is taken by something else on the host.
  auto port_free = [](int p) { return p != 5001; };
  ASSERT_TRUE(bind_domain(m, "a", port_free));
  ASSERT_TRUE(bind_domain(m, "b", port_free));
  EXPECT_EQ(m.find("a")->console.port, 5000);
  EXPECT_EQ(m.find("b")->console.port, 5002);
  auto r = bind_domain(m, "c", port_free);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().text(), "vcc primary-vcc0 has no free port; widen its port-range or unbind a domain");
}

TEST(Capacity, BindWithoutAConsoleServiceSaysHowToAddOne) {
  HostModel m;
  m.capacity = {4, GiB};
  ASSERT_TRUE(add_domain(m, "a", props(1, 64 * MiB), next_uuid));
  auto r = bind_domain(m, "a", any_port);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().text().find("ldm add-vcc port-range=5000-5100 primary-vcc0 primary"), std::string::npos);
}

TEST(MacAllocation, AutomaticMacsComeFromTheDocumentedRangeAndNeverRepeat) {
  HostModel m = host();
  ASSERT_TRUE(add_switch(m, "vsw0", ""));
  ASSERT_TRUE(add_domain(m, "a", {}, next_uuid));
  // A random source that first repeats itself: the allocator must skip the duplicate.
  std::vector<uint32_t> draws = {0x000001, 0x000001, 0xabcdef};
  size_t i = 0;
  auto rnd = [&] { return draws[std::min(i++, draws.size() - 1)]; };
  ASSERT_TRUE(add_network(m, "a", "vnet0", "vsw0", std::nullopt, rnd));
  ASSERT_TRUE(add_network(m, "a", "vnet1", "vsw0", std::nullopt, rnd));
  EXPECT_EQ(m.find("a")->networks[0].mac, "02:4c:44:00:00:01");
  EXPECT_EQ(m.find("a")->networks[1].mac, "02:4c:44:ab:cd:ef");
  EXPECT_TRUE(m.find("a")->networks[0].mac_auto);
}

TEST(MacAllocation, ExplicitMacsAreNormalizedAndCheckedForDuplicates) {
  HostModel m = host();
  ASSERT_TRUE(add_switch(m, "vsw0", ""));
  ASSERT_TRUE(add_domain(m, "a", {}, next_uuid));
  ASSERT_TRUE(add_domain(m, "b", {}, next_uuid));
  auto rnd = [] { return 0u; };
  ASSERT_TRUE(add_network(m, "a", "vnet0", "vsw0", std::string("02-AA-bb-CC-dd-01"), rnd));
  EXPECT_EQ(m.find("a")->networks[0].mac, "02:aa:bb:cc:dd:01");
  EXPECT_FALSE(m.find("a")->networks[0].mac_auto);
  auto dup = add_network(m, "b", "vnet0", "vsw0", std::string("02:aa:bb:cc:dd:01"), rnd);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().text(), "MAC address 02:aa:bb:cc:dd:01 is already used by LDom a");
  EXPECT_FALSE(add_network(m, "b", "vnet0", "vsw0", std::string("01:00:5e:00:00:01"), rnd));  // multicast
  EXPECT_FALSE(add_network(m, "b", "vnet0", "vsw0", std::string("zz"), rnd));
  EXPECT_FALSE(add_network(m, "b", "vnet0", "nosuch", std::nullopt, rnd));
}

TEST(Services, VolumesDisksAndSwitchesKeepTheirReferencesSound) {
  HostModel m = host();
  ASSERT_TRUE(add_disk_service(m, "primary-vds0"));
  ASSERT_TRUE(add_volume(m, "/tmp/disk.img", "vol1", "primary-vds0", {"ro"}));
  EXPECT_FALSE(add_volume(m, "/tmp/disk.img", "vol1", "primary-vds0", {}));
  EXPECT_FALSE(add_volume(m, "relative.img", "vol2", "primary-vds0", {}));
  EXPECT_FALSE(add_volume(m, "/tmp/x", "vol2", "primary-vds0", {"fast"}));
  ASSERT_TRUE(add_domain(m, "a", {}, next_uuid));
  EXPECT_FALSE(add_disk(m, "a", "d0", "nosuch", "primary-vds0"));
  ASSERT_TRUE(add_disk(m, "a", "d0", "vol1", "primary-vds0"));
  auto attached = remove_volume(m, "vol1", "primary-vds0");
  ASSERT_FALSE(attached);
  EXPECT_NE(attached.error().text().find("is attached to LDom a"), std::string::npos);
  EXPECT_FALSE(remove_disk_service(m, "primary-vds0"));
  ASSERT_TRUE(remove_disk(m, "a", "d0"));
  ASSERT_TRUE(remove_volume(m, "vol1", "primary-vds0"));
  ASSERT_TRUE(remove_disk_service(m, "primary-vds0"));
}

TEST(Services, PortRangesAreParsedStrictly) {
  EXPECT_EQ(parse_port_range("5000-5100").value(), std::make_pair(5000, 5100));
  for (const char* bad : {"5000", "5100-5000", "80-90", "5000-70000", "a-b", "5000-5100x", ""})
    EXPECT_FALSE(parse_port_range(bad)) << bad;
  HostModel m = host();
  auto overlap = add_console_service(m, "vcc1", 5002, 5010);
  ASSERT_FALSE(overlap);
  EXPECT_NE(overlap.error().text().find("primary-vcc0"), std::string::npos);
}

TEST(Properties, CpuArchChangesOnlyWhenNotActive) {
  HostModel m = host();
  ASSERT_TRUE(add_domain(m, "a", props(1, 64 * MiB), next_uuid));
  DomainProperties p;
  p.cpu_arch = "generic";
  ASSERT_TRUE(set_domain(m, "a", p));
  p.cpu_arch = "sparc";
  EXPECT_FALSE(set_domain(m, "a", p));
  m.find("a")->state = DomainState::Active;
  p.cpu_arch = "native";
  auto r = set_domain(m, "a", p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().text().find("bound or inactive"), std::string::npos);
}

}  // namespace
}  // namespace ldm::model
