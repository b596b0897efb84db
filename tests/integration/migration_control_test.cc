// Watching and cancelling a migration between two real hosts on loopback:
// `ldm list -o status` on both sides, cancel-operation from the source (and
// its refusal on the target), ^C and SIGTERM of `ldm migrate-domain`, and a
// lost terminal (SIGHUP) that must not stop anything.
#include <csignal>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ldm::itest {
namespace {

class MigrationControl : public ::testing::Test {
 protected:
  void SetUp() override {
    // A guest that rewrites 48 MiB as fast as it can: its migration takes seconds.
    A->ok({"add-domain", "vcpus=1", "memory=256M", "kernel=" + test_guest(), "cmdline=hb=20 dirty=48M rate=max",
           "ldg1"});
    A->ok({"bind", "ldg1"});
    A->ok({"start", "ldg1"});
    source_console = pair.console(*A, "ldg1");
    ASSERT_GE(source_console->heartbeats(3).size(), 3u);
  }

  // Starts the migration in the background and waits until both hosts show it.
  std::future<CommandResult> start_migration() {
    auto running = A->ldm_async({"migrate-domain", "-c", "ldg1", kAddressB}, ldm_pid);
    EXPECT_TRUE(eventually([&] { return B->record("ldg1")["flags"] == "-----t"; }, 60s)) << B->log();
    EXPECT_TRUE(stream_started(*A, "ldg1"));
    return running;
  }

  // After a cancel: the guest beats on A as before, B keeps nothing.
  void expect_source_unchanged() {
    auto r = A->record("ldg1");
    EXPECT_EQ(r["state"], "active");
    EXPECT_EQ(r["flags"], "-n----");
    EXPECT_TRUE(B->record("ldg1").empty()) << "the target kept the domain";
    EXPECT_TRUE(eventually([&] { return B->qemu_pids().empty(); }, 10s)) << "the target kept a QEMU";
    EXPECT_EQ(A->qemu_pids().size(), 1u);
    auto beats = source_console->heartbeats(10);
    ASSERT_GE(beats.size(), 10u) << "the guest stopped beating on the source";
    for (const auto& l : source_console->lines()) {
      EXPECT_EQ(l.find("CORRUPT"), std::string::npos) << l;
    }
    // Nothing left over: it migrates normally afterwards.
    auto again = A->ldm({"migrate-domain", "-c", "ldg1", kAddressB});
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(B->record("ldg1")["state"], "active");
  }

  HostPair pair;
  Host* A = pair.A.get();
  Host* B = pair.B.get();
  std::unique_ptr<Console> source_console;
  std::atomic<pid_t> ldm_pid{0};
};

TEST_F(MigrationControl, StatusOnBothHostsAndALostTerminalDoesNotStopIt) {
  auto running = start_migration();
  auto on_a = A->ok({"list", "-o", "status", "ldg1"});
  EXPECT_NE(on_a.find("OPERATION    PROGRESS    TARGET"), std::string::npos) << on_a;
  EXPECT_NE(on_a.find("migration"), std::string::npos) << on_a;
  EXPECT_NE(on_a.find("hostB"), std::string::npos) << on_a;
  EXPECT_TRUE(eventually([&] { return B->ok({"list", "-o", "status", "ldg1"}).find("SOURCE") != std::string::npos; }))
      << B->ok({"list", "-o", "status", "ldg1"});
  auto parseable = A->ok({"list", "-o", "status", "-p", "ldg1"});
  EXPECT_NE(parseable.find("|op=migration|progress="), std::string::npos) << parseable;
  EXPECT_NE(parseable.find("|error=no|target=hostB"), std::string::npos) << parseable;
  auto j = nlohmann::json::parse(A->ok({"list", "--json", "ldg1"}));
  auto m = j.is_array() ? j[0]["migration"] : j["domains"][0]["migration"];
  for (const char* key : {"transferred", "remaining", "rate_mbps", "dirty_rate", "pass", "expected_downtime_ms"})
    EXPECT_TRUE(m.contains(key)) << key << " missing in " << m.dump();

  // The terminal goes away: ldm ignores it and the migration completes.
  kill(ldm_pid.load(), SIGHUP);
  int last = 0;
  bool backwards = false;
  for (int i = 0; i < 20; ++i) {
    auto p = A->ldm({"list", "-o", "status", "-p", "ldg1"}).out;
    auto at = p.find("progress=");
    if (at == std::string::npos) break;
    int now = std::stoi(p.substr(at + 9));
    backwards |= now < last;
    last = now;
  }
  EXPECT_FALSE(backwards) << "progress went backwards";
  auto done = running.get();
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(B->record("ldg1")["state"], "active");
  EXPECT_TRUE(A->record("ldg1").empty());
}

TEST_F(MigrationControl, CancelFromTheSourceKeepsTheGuestThereAndTheTargetRefuses) {
  auto running = start_migration();
  auto refused = B->ldm({"cancel-operation", "migration", "ldg1"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("is the target of a migration from hostA"), std::string::npos) << refused.err;
  auto r = A->ldm({"cancel-operation", "migration", "ldg1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto done = running.get();
  EXPECT_NE(done.exit_code, 0);
  EXPECT_NE(done.err.find("The migration of LDom ldg1 was cancelled"), std::string::npos) << done.err;
  EXPECT_NE(done.err.find("Domain Migration of LDom ldg1 failed"), std::string::npos) << done.err;
  expect_source_unchanged();
}

TEST_F(MigrationControl, InterruptingLdmCancels) {
  for (int sig : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
    auto running = start_migration();
    kill(ldm_pid.load(), sig);
    auto done = running.get();
    EXPECT_NE(done.exit_code, 0);
    EXPECT_NE(done.err.find("The migration of LDom ldg1 was cancelled"), std::string::npos) << done.err;
    EXPECT_EQ(A->record("ldg1")["flags"], "-n----");
    EXPECT_TRUE(B->record("ldg1").empty());
    EXPECT_TRUE(eventually([&] { return B->qemu_pids().empty(); }, 10s));
  }
  expect_source_unchanged();
}

TEST_F(MigrationControl, NothingToCancel) {
  auto r = A->ldm({"cancel-operation", "migration", "ldg1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("No migration of LDom ldg1 is in progress on this machine"), std::string::npos) << r.err;
  EXPECT_EQ(A->record("ldg1")["flags"], "-n----");
}

}  // namespace
}  // namespace ldm::itest
