// The control protocol's decoding and the daemon's config parsing.
#include "protocol/control.h"

#include <fstream>

#include <gtest/gtest.h>

#include "daemon/config.h"

namespace ldm {
namespace {

TEST(ControlProtocol, RoundTrip) {
  protocol::Request r{"bind-domain", {{"name", "ldg1"}}};
  auto back = protocol::decode_request(protocol::encode(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->command, "bind-domain");
  EXPECT_EQ(back->args["name"], "ldg1");
  protocol::Response resp{false, nullptr, {}, {"a", "b"}};
  auto decoded = protocol::decode_response(protocol::encode(resp));
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(decoded->ok);
  EXPECT_EQ(decoded->errors, (std::vector<std::string>{"a", "b"}));
}

TEST(ControlProtocol, MalformedRequestsAreRefusedWithTheReason) {
  struct Case {
    std::string line, reason;
  } cases[] = {{"{", "not valid JSON"},
               {"[1,2]", "expected a JSON object"},
               {R"({"args": {}})", "missing string member 'command'"},
               {R"({"command": 7})", "missing string member 'command'"},
               {R"({"command": "ls", "args": []})", "'args' must be an object"},
               {R"({"command": "add-domain", "args": {"vcpus": 3e40}})", "a number is out of range"},
               {R"({"command": "ls", "args": {"x": [[-2.5]]}})", "a number is out of range"},
               {std::string(protocol::kMaxControlMessage + 1, ' '), "request too large"}};
  for (const auto& c : cases) {
    auto r = protocol::decode_request(c.line);
    ASSERT_FALSE(r) << c.line.substr(0, 40);
    EXPECT_EQ(r.error().text(), "Malformed request: " + c.reason);
  }
}

TEST(DaemonConfig, FileSettingsAndErrors) {
  std::string path = "/tmp/ldm-config-test.conf";
  std::ofstream(path) << "# host A\nvcpus = 8\nmemory = 16G\nlisten = 127.0.0.2:6482\npower-policy = elastic\n";
  daemon::DaemonConfig c;
  ASSERT_TRUE(daemon::apply_config_file(path, c));
  EXPECT_EQ(c.vcpus, 8u);
  EXPECT_EQ(c.memory, 16ull << 30);
  EXPECT_EQ(c.listen, "127.0.0.2:6482");
  EXPECT_EQ(c.power_policy, "elastic");
  std::ofstream(path) << "vcpus = 8\ncolour = blue\n";
  auto bad = daemon::apply_config_file(path, c);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().text(), path + ":2: unknown setting 'colour'");
  EXPECT_TRUE(daemon::parse_listen("0.0.0.0:6482"));
  EXPECT_TRUE(daemon::parse_listen("[::1]:6482"));
  EXPECT_FALSE(daemon::parse_listen("6482"));
  EXPECT_FALSE(daemon::parse_listen("host:0"));
  EXPECT_FALSE(daemon::parse_listen("host:99999"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ldm

#include "daemon/access.h"

namespace ldm::daemon {
namespace {

TEST(ControlAccess, RootAndAdminsChangeReadersListOthersAreRefused) {
  AccessGroups groups{1001, 1002};
  EXPECT_EQ(access_of({0, 0, {}}, groups), Access::Admin);
  EXPECT_EQ(access_of({500, 500, {7, 1001}}, groups), Access::Admin);
  EXPECT_EQ(access_of({500, 1002, {}}, groups), Access::Read) << "the primary group counts too";
  EXPECT_EQ(access_of({500, 500, {7}}, groups), Access::None);
  EXPECT_EQ(access_of({500, 500, {1001}}, AccessGroups{}), Access::None) << "no groups on this host: root only";

  PeerIdentity reader{65534, 65534, {1002}};
  EXPECT_EQ(refusal(reader, Access::Read, "snapshot"), "");
  EXPECT_NE(refusal(reader, Access::Read, "bind-domain").find("may only list; bind-domain needs root or the group "
                                                               "ldm-admin"),
            std::string::npos);
  EXPECT_NE(refusal(reader, Access::None, "snapshot").find("neither root nor in the group ldm-admin"),
            std::string::npos);
  EXPECT_EQ(refusal({0, 0, {}}, Access::Admin, "remove-domain"), "");
}

}  // namespace
}  // namespace ldm::daemon
