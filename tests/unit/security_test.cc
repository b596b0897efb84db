// Password mode and the peer protocol's defences, as pure rules: the -p
// file's rules, the failed-authentication lockout, and the shape every
// message from another host must have.
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "cli/commands.h"
#include "cli/password.h"
#include "daemon/authentication.h"
#include "protocol/frame.h"
#include "protocol/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

namespace ldm {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

TEST(PasswordFile, FirstLineOnlyAtMost256Characters) {
  EXPECT_EQ(*cli::password_from_text("s3cret\nignored\nlines\n", "f"), "s3cret");
  EXPECT_EQ(*cli::password_from_text("s3cret", "f"), "s3cret");
  EXPECT_EQ(*cli::password_from_text("s3cret\r\n", "f"), "s3cret");
  EXPECT_EQ(*cli::password_from_text(std::string(256, 'x') + "\n", "f"), std::string(256, 'x'));
  auto long_one = cli::password_from_text(std::string(257, 'x'), "pw.txt");
  ASSERT_FALSE(long_one);
  EXPECT_EQ(long_one.error().text(), "The password in pw.txt is longer than 256 characters");
  auto empty = cli::password_from_text("\nsecond line", "pw.txt");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().text().find("is empty"), std::string::npos);
}

TEST(PasswordFile, AFileOthersCanReadIsRefusedAndSaysHowToFixIt) {
  auto dir = std::filesystem::temp_directory_path() / ("ldm-pw-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "pw").string();
  std::ofstream(path) << "s3cret\n";
  chmod(path.c_str(), 0644);
  auto open = cli::read_password_file(path);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().text(), "The password file " + path +
                                     " can be read by group or others (mode 0644); make it private with 'chmod 600 " +
                                     path + "' and try again");
  chmod(path.c_str(), 0600);
  auto ok = cli::read_password_file(path);
  ASSERT_TRUE(ok) << ok.error().text();
  EXPECT_EQ(*ok, "s3cret");
  auto missing = cli::read_password_file((dir / "nope").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().text().find("No such file"), std::string::npos);
  std::filesystem::remove_all(dir);
}

cli::Invocation migrate(std::vector<std::string> operands, bool certificate = false, std::string file = "") {
  cli::Invocation inv;
  inv.command = "migrate-domain";
  inv.operands = std::move(operands);
  inv.certificate = certificate;
  inv.password_file = std::move(file);
  return inv;
}

TEST(PasswordMode, UserHostAndTargetNameAreSplitAndCertificatesExcludeUsers) {
  auto a = cli::interpret(migrate({"ldg1", "alice@hostB:ldg9"}, false, "/root/pw"));
  ASSERT_TRUE(a);
  const auto& args = std::get<protocol::Request>(*a).args;
  EXPECT_EQ(args["user"], "alice");
  EXPECT_EQ(args["target"], "hostB");
  EXPECT_EQ(args["target_name"], "ldg9");
  EXPECT_EQ(args["password_file"], "/root/pw");
  EXPECT_FALSE(args.contains("password"));  // ldm's main reads it, never argv

  auto defaulted = cli::interpret(migrate({"ldg1", "hostB"}));
  ASSERT_TRUE(defaulted);
  EXPECT_EQ(std::get<protocol::Request>(*defaulted).args["user"], "");  // main fills in the invoking user

  auto both = cli::interpret(migrate({"ldg1", "alice@hostB"}, true));
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().text().find("-c cannot be combined with -p or user@"), std::string::npos);
  EXPECT_FALSE(cli::interpret(migrate({"ldg1", "hostB"}, true, "/root/pw")));
  EXPECT_FALSE(cli::interpret(migrate({"ldg1", "a@b@hostB"})));
  auto certificate = cli::interpret(migrate({"ldg1", "hostB"}, true));
  ASSERT_TRUE(certificate);
  EXPECT_FALSE(std::get<protocol::Request>(*certificate).args.contains("user"));
}

TEST(AuthLimiter, ThreeFailuresThenALockoutThatGrowsAndASuccessForgives) {
  daemon::AuthLimiter limiter;
  auto t = daemon::AuthLimiter::Clock::now();
  for (int i = 0; i < 2; ++i) {
    limiter.failed("10.0.0.1", t);
    EXPECT_FALSE(limiter.locked("10.0.0.1", t));
  }
  limiter.failed("10.0.0.1", t);
  ASSERT_TRUE(limiter.locked("10.0.0.1", t));
  EXPECT_EQ(limiter.locked("10.0.0.1", t)->count(), 6);  // 5 s, rounded up
  EXPECT_FALSE(limiter.locked("10.0.0.2", t));           // per peer
  EXPECT_FALSE(limiter.locked("10.0.0.1", t + 5s));
  limiter.failed("10.0.0.1", t + 6s);
  EXPECT_EQ(limiter.locked("10.0.0.1", t + 6s)->count(), 11);  // doubled
  for (int i = 0; i < 20; ++i) limiter.failed("10.0.0.1", t + 7s);
  EXPECT_EQ(limiter.locked("10.0.0.1", t + 7s)->count(), 301);  // capped at 5 minutes
  limiter.succeeded("10.0.0.1");
  EXPECT_FALSE(limiter.locked("10.0.0.1", t + 7s));
  // A peer quiet for long starts afresh.
  for (int i = 0; i < 3; ++i) limiter.failed("10.0.0.3", t);
  limiter.failed("10.0.0.3", t + 1h);
  EXPECT_FALSE(limiter.locked("10.0.0.3", t + 1h));
}

TEST(PeerFrames, LengthsAreBoundedBothWays) {
  EXPECT_EQ(*protocol::decode_length(protocol::encode_length(12345)), 12345u);
  EXPECT_FALSE(protocol::decode_length({0, 0, 0, 0}));
  EXPECT_FALSE(protocol::decode_length(protocol::encode_length(protocol::kMaxFrame + 1)));
  EXPECT_FALSE(protocol::decode_length({0xff, 0xff, 0xff, 0xff}));
}

TEST(PeerFrames, EveryMessageMustHaveItsShape) {
  EXPECT_TRUE(protocol::decode_message(R"({"type":"hello","max_version":1,"min_version":1,"host":"a"})"));
  EXPECT_TRUE(protocol::decode_message(R"({"type":"commit","extra":"ignored"})"));
  EXPECT_TRUE(protocol::decode_message(R"({"type":"auth","user":"u","password":"p"})"));
  auto refused = [](const char* text) {
    auto r = protocol::decode_message(text);
    return r ? std::string() : r.error().text();
  };
  EXPECT_EQ(refused("not json"), "peer sent a malformed message");
  EXPECT_EQ(refused("[1,2]"), "peer sent a malformed message");
  EXPECT_EQ(refused(R"({"type":7})"), "peer sent a malformed message");
  EXPECT_EQ(refused(R"({"type":"launch-missiles"})"), "peer sent an unknown message type 'launch-missiles'");
  EXPECT_EQ(refused(R"({"type":"hello","max_version":"1"})"), "peer sent a 'hello' message whose 'max_version' is not an integer");
  EXPECT_EQ(refused(R"({"type":"check"})"), "peer sent a 'check' message without 'domain'");
  EXPECT_EQ(refused(R"({"type":"check","domain":[]})"), "peer sent a 'check' message whose 'domain' is not an object");
  EXPECT_EQ(refused(R"({"type":"query","uuid":null})"), "peer sent a 'query' message whose 'uuid' is not a string");
  EXPECT_EQ(refused(R"({"type":"error","messages":[1]})"), "peer sent an 'error' message whose messages are not strings");
  // A double read into an int must fit it (found by fuzz_peer_message: UB in the conversion).
  EXPECT_EQ(refused(R"({"type":"progress","status":{"progress":3.3e58}})"), "peer sent a number out of range");
  EXPECT_EQ(refused(R"({"type":"progress","status":{"transferred":-7.5}})"), "peer sent a number out of range");
  EXPECT_TRUE(protocol::decode_message(R"({"type":"progress","status":{"progress":40,"rate_mbps":812.5}})"));
  std::string long_password = R"({"type":"auth","user":"u","password":")" + std::string(257, 'x') + "\"}";
  EXPECT_EQ(refused(long_password.c_str()), "peer sent credentials longer than allowed");
}

// QEMU's TLS server generates DH parameters (slowly) when its directory has
// none; ours carries the standard group, which QEMU must be able to read.
TEST(QemuCredentials, CarryTheStandardDhGroupSoQemuNeedNotGenerateOne) {
  char tmpl[] = "/tmp/ldm-unit-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  auto paths = protocol::TlsPaths::under(tmpl);
  ASSERT_TRUE(protocol::ensure_host_certificate(paths, "hostA", {"127.0.0.2"}));
  ASSERT_TRUE(protocol::write_qemu_credentials(paths));
  std::ifstream in(paths.qemu_dir + "/dh-params.pem");
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(pem.rfind("-----BEGIN DH PARAMETERS-----", 0), 0u) << pem;  // PKCS#3, what GnuTLS imports
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* params = PEM_read_bio_Parameters(bio, nullptr);
  ASSERT_NE(params, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(params), EVP_PKEY_DH);
  EXPECT_EQ(EVP_PKEY_get_bits(params), 2048);
  EVP_PKEY_free(params);
  BIO_free(bio);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace ldm
