// Every listing layout against golden files.
#include "cli/format.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/size.h"
#include "golden.h"
#include "model/operations.h"

namespace ldm::cli {
namespace {

using ldm::testing::expect_golden;

Snapshot sample() {
  Snapshot s;
  s.host = {{"hostname", "hostA"}, {"cpus", 8}, {"memory", 32 * GiB}, {"uptime", 3 * 86400 + 7200 + 360},
            {"accel", "tcg"}};
  auto& m = s.model;
  m.hostname = "hostA";
  m.capacity = {6, 8 * GiB};
  int n = 0;
  auto uuid = [&] { return fmt::format("6c908858-12ef-4520-9eb3-f1cd3dbc3a{:02d}", ++n); };
  EXPECT_TRUE(model::add_console_service(m, "primary-vcc0", 5000, 5100));
  EXPECT_TRUE(model::add_disk_service(m, "primary-vds0"));
  EXPECT_TRUE(model::add_volume(m, "/srv/ldg1.img", "vol1", "primary-vds0", {}));
  EXPECT_TRUE(model::add_volume(m, "/srv/iso.img", "iso", "primary-vds0", {"ro"}));
  EXPECT_TRUE(model::add_switch(m, "primary-vsw0", "eth1"));
  model::DomainProperties p;
  p.vcpus = 2;
  p.memory = 1 * GiB;
  p.kernel = "/srv/test-guest.elf";
  p.cmdline = "dirty=64M rate=1000";
  EXPECT_TRUE(model::add_domain(m, "ldg1", p, uuid));
  EXPECT_TRUE(model::add_disk(m, "ldg1", "disk0", "vol1", "primary-vds0"));
  EXPECT_TRUE(model::add_network(m, "ldg1", "vnet0", "primary-vsw0", std::nullopt, [] { return 0x123456u; }));
  EXPECT_TRUE(model::set_variables(m, "ldg1", {{"auto-boot?", "true"}}));
  EXPECT_TRUE(model::bind_domain(m, "ldg1", [](int) { return true; }));
  m.find("ldg1")->state = model::DomainState::Active;
  m.find("ldg1")->runtime.run_state = "running";
  model::DomainProperties q;
  q.vcpus = 1;
  q.memory = 256 * MiB;
  EXPECT_TRUE(model::add_domain(m, "ldg2", q, uuid));
  EXPECT_TRUE(model::bind_domain(m, "ldg2", [](int) { return true; }));
  EXPECT_TRUE(model::add_domain(m, "ldg3", q, uuid));
  s.stats = {{"ldg1", {{"util", 12.5}, {"uptime", 3725}}}, {"ldg2", nlohmann::json::object()},
             {"ldg3", nlohmann::json::object()}};
  return s;
}

Snapshot migrating() {
  Snapshot s = sample();
  auto& mig = s.model.find("ldg1")->migration;
  mig.role = "source";
  mig.peer = "hostB";
  mig.progress = 42;
  return s;
}

TEST(Formats, ListDomainTable) { expect_golden("list.txt", list_domain(sample(), {}).value()); }

TEST(Formats, ListDomainParseable) {
  ListOptions o;
  o.parseable = true;
  expect_golden("list-p.txt", list_domain(sample(), o).value());
}

TEST(Formats, ListDomainLong) {
  ListOptions o;
  o.long_form = true;
  expect_golden("list-l.txt", list_domain(sample(), o).value());
}

TEST(Formats, ListDomainLongParseable) {
  ListOptions o;
  o.long_form = o.parseable = true;
  o.domains = {"ldg1"};
  expect_golden("list-l-p.txt", list_domain(sample(), o).value());
}

TEST(Formats, ListDomainSections) {
  ListOptions o;
  o.sections = {"memory", "console", "network", "disk", "cpu", "variables", "domain"};
  o.domains = {"ldg1", "ldg3"};
  expect_golden("list-o.txt", list_domain(sample(), o).value());
}

TEST(Formats, ListDomainStatusDuringMigration) {
  ListOptions o;
  o.sections = {"status"};
  o.domains = {"ldg1"};
  expect_golden("list-o-status.txt", list_domain(migrating(), o).value());
  o.parseable = true;
  expect_golden("list-o-status-p.txt", list_domain(migrating(), o).value());
  EXPECT_EQ(model::flags_of(*migrating().model.find("ldg1")), "-n---s");
}

TEST(Formats, ListDomainJson) {
  ListOptions o;
  o.json = true;
  expect_golden("list.json", list_domain(sample(), o).value());
}

TEST(Formats, ListBindings) { expect_golden("list-bindings.txt", list_bindings(sample(), {}).value()); }

TEST(Formats, ListServices) {
  expect_golden("list-services.txt", list_services(sample(), {}).value());
  ListOptions p;
  p.parseable = true;
  expect_golden("list-services-p.txt", list_services(sample(), p).value());
  ListOptions j;
  j.json = true;
  expect_golden("list-services.json", list_services(sample(), j).value());
}

TEST(Formats, ListDevices) {
  expect_golden("list-devices.txt", list_devices(sample(), {}).value());
  ListOptions p;
  p.parseable = true;
  expect_golden("list-devices-p.txt", list_devices(sample(), p).value());
  ListOptions j;
  j.json = true;
  expect_golden("list-devices.json", list_devices(sample(), j).value());
}

TEST(Formats, ListConstraints) {
  expect_golden("list-constraints.txt", list_constraints(sample(), {}).value());
  ListOptions x;
  x.xml = true;
  x.domains = {"ldg1"};
  expect_golden("list-constraints.xml", list_constraints(sample(), x).value());
  ListOptions p;
  p.parseable = true;
  expect_golden("list-constraints-p.txt", list_constraints(sample(), p).value());
  ListOptions j;
  j.json = true;
  expect_golden("list-constraints.json", list_constraints(sample(), j).value());
}

TEST(Formats, UnknownDomainsAndSectionsAreErrors) {
  ListOptions o;
  o.domains = {"nosuch", "ldg1", "other"};
  auto r = list_domain(sample(), o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().messages.size(), 2u);
  EXPECT_EQ(r.error().messages[0].rfind("LDom nosuch not found", 0), 0u);
  ListOptions s;
  s.sections = {"bogus"};
  EXPECT_FALSE(list_domain(sample(), s));
}

TEST(Formats, Uptime) {
  EXPECT_EQ(format_uptime(12), "12s");
  EXPECT_EQ(format_uptime(7 * 60), "7m");
  EXPECT_EQ(format_uptime(2 * 3600 + 7 * 60), "2h 7m");
  EXPECT_EQ(format_uptime(45 * 86400 + 8 * 3600 + 6 * 60), "45d 8h 6m");
}

}  // namespace
}  // namespace ldm::cli
