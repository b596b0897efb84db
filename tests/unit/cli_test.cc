// ldm's argument interpretation: what a user types becomes which request.
#include "cli/commands.h"

#include <set>

#include <gtest/gtest.h>

namespace ldm::cli {
namespace {

using json = nlohmann::json;

protocol::Request req(Invocation inv) {
  auto a = interpret(inv);
  EXPECT_TRUE(a) << (a ? "" : a.error().text());
  return std::get<protocol::Request>(*a);
}

Invocation inv(std::string cmd, std::vector<std::string> ops) {
  Invocation i;
  i.command = std::move(cmd);
  i.operands = std::move(ops);
  return i;
}

TEST(CliParsing, AddDomainSplitsPropertiesFromTheName) {
  auto r = req(inv("add-domain", {"vcpus=2", "memory=1G", "cpu-arch=generic", "ldg1"}));
  EXPECT_EQ(r.command, "add-domain");
  EXPECT_EQ(r.args["name"], "ldg1");
  EXPECT_EQ(r.args["props"], (json{{"vcpus", "2"}, {"memory", "1G"}, {"cpu-arch", "generic"}}));
  auto batch = req(inv("add-domain", {"a", "b"}));
  EXPECT_EQ(batch.args["names"], (json{"a", "b"}));
  EXPECT_FALSE(interpret(inv("add-domain", {"vcpus=1"})));
  EXPECT_FALSE(interpret(inv("add-domain", {"vcpus=1", "a", "b"})));
}

TEST(CliParsing, ResourceCommandsTakeAQuantityThenADomain) {
  auto r = req(inv("set-vcpu", {"4", "ldg1"}));
  EXPECT_EQ(r.args, (json{{"count", "4"}, {"name", "ldg1"}}));
  auto m = req(inv("add-memory", {"512M", "ldg1"}));
  EXPECT_EQ(m.args, (json{{"size", "512M"}, {"name", "ldg1"}}));
  auto bad = interpret(inv("set-vcpu", {"4"}));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().text().find("ldm set-vcpu number domain-name"), std::string::npos);
}

TEST(CliParsing, ServicesBelongToPrimary) {
  auto r = req(inv("add-vcc", {"port-range=5000-5100", "primary-vcc0", "primary"}));
  EXPECT_EQ(r.args, (json{{"service", "primary-vcc0"}, {"port-range", "5000-5100"}}));
  auto other = interpret(inv("add-vds", {"vds0", "ldg1"}));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().text().find("'primary'"), std::string::npos);
  EXPECT_FALSE(interpret(inv("add-vcc", {"primary-vcc0", "primary"})));
  auto vsw = req(inv("add-vsw", {"net-dev=eth0", "primary-vsw0", "primary"}));
  EXPECT_EQ(vsw.args, (json{{"service", "primary-vsw0"}, {"net-dev", "eth0"}}));
}

TEST(CliParsing, VolumesDisksAndNets) {
  Invocation i = inv("add-vdsdev", {"options=ro,excl", "/img/disk", "vol1@primary-vds0"});
  i.force = true;
  auto r = req(i);
  EXPECT_EQ(r.args, (json{{"backend", "/img/disk"}, {"target", "vol1@primary-vds0"}, {"options", {"ro", "excl"}},
                          {"force", true}}));
  auto d = req(inv("add-vdisk", {"id=3", "disk0", "vol1@primary-vds0", "ldg1"}));
  EXPECT_EQ(d.args, (json{{"disk", "disk0"}, {"target", "vol1@primary-vds0"}, {"domain", "ldg1"}}));
  auto n = req(inv("add-vnet", {"mac-addr=02:4c:44:00:00:09", "vnet0", "primary-vsw0", "ldg1"}));
  EXPECT_EQ(n.args, (json{{"mac-addr", "02:4c:44:00:00:09"}, {"name", "vnet0"}, {"vswitch", "primary-vsw0"},
                          {"domain", "ldg1"}}));
  EXPECT_FALSE(interpret(inv("add-vnet", {"pvid=3", "vnet0", "primary-vsw0", "ldg1"})));
}

TEST(CliParsing, VariablesAndLifecycle) {
  auto v = req(inv("set-var", {"auto-boot?=true", "boot-device=disk", "ldg1"}));
  EXPECT_EQ(v.args, (json{{"vars", {{"auto-boot?", "true"}, {"boot-device", "disk"}}}, {"domain", "ldg1"}}));
  EXPECT_FALSE(interpret(inv("set-var", {"novalue", "ldg1"})));
  Invocation stop = inv("stop-domain", {"a", "b"});
  stop.force = true;
  stop.timeout = 5;
  EXPECT_EQ(req(stop).args, (json{{"names", {"a", "b"}}, {"force", true}, {"timeout", 5}}));
  Invocation all = inv("remove-domain", {});
  all.all = true;
  EXPECT_EQ(req(all).args, (json{{"all", true}}));
  EXPECT_FALSE(interpret(inv("remove-domain", {})));
}

TEST(CliParsing, ListingsCarryTheirOptions) {
  Invocation l = inv("list-domain", {"ldg1"});
  l.parseable = true;
  l.format = "memory,status";
  auto a = interpret(l);
  ASSERT_TRUE(a);
  auto listing = std::get<Listing>(*a);
  EXPECT_EQ(listing.what, "list-domain");
  EXPECT_TRUE(listing.options.parseable);
  EXPECT_EQ(listing.options.sections, (std::vector<std::string>{"memory", "status"}));
  EXPECT_EQ(listing.options.domains, (std::vector<std::string>{"ldg1"}));
  Invocation c = inv("list-constraints", {});
  c.xml = true;
  c.json = true;
  EXPECT_FALSE(interpret(c));
}

TEST(CliParsing, EveryCommandHasASynopsisAndUniqueAliases) {
  std::set<std::string> seen;
  for (const auto& spec : command_specs()) {
    EXPECT_EQ(spec.synopsis.rfind("ldm " + spec.name, 0), 0u) << spec.name;
    EXPECT_TRUE(seen.insert(spec.name).second) << spec.name;
    for (const auto& a : spec.aliases) EXPECT_TRUE(seen.insert(a).second) << a;
  }
  EXPECT_TRUE(seen.contains("ls"));
  EXPECT_TRUE(seen.contains("bind"));
}

}  // namespace
}  // namespace ldm::cli
