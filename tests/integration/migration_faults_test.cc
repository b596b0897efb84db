// The fault-injection matrix (ARCHITECTURE.md, "Faults"): two hosts in network
// namespaces, a live migration of the dirtying test guest, and one fault per
// cell — the link cut, or kill -9 of either ldmd or either QEMU — during the
// stream (phase 3) or at the handoff. ldmd's test-only fault points
// (LDMD_FAULT_PAUSE) hold a migration step still so that the fault lands
// exactly there.
//
// Every cell asserts the same things once the hosts have settled on their own
// (restarting a killed ldmd and restoring a cut link, as an operator would):
// exactly one running copy (none only where the guest's own QEMU was killed),
// its heartbeat continuing without a reset, no CORRUPT, no migration left in
// either store, each store consistent with the QEMU processes that run, and
// `ldm ls` true on both hosts.
#include <csignal>
#include <fstream>
#include <future>
#include <iostream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ldm::itest {
namespace {

enum class Fault { CutLink, KillSourceLdmd, KillTargetLdmd, KillSourceQemu, KillTargetQemu };
enum class When { Phase1, Stream, Handoff, CommitAck };
enum class Survivor { Source, Target, Either, None };

struct Cell {
  const char* name;
  Fault fault;
  When when;
  Survivor survivor;
};

const Cell kCells[] = {
    {"LinkCutInPhase1", Fault::CutLink, When::Phase1, Survivor::Source},
    {"LinkCutInPhase3", Fault::CutLink, When::Stream, Survivor::Source},
    // Stream complete, commit sent into a dead link: whichever side the
    // reconciliation finds decides, never both.
    {"LinkCutInPhase4", Fault::CutLink, When::Handoff, Survivor::Either},
    {"LinkCutBetweenCommitAndAck", Fault::CutLink, When::CommitAck, Survivor::Target},
    {"SourceLdmdKilledInPhase3", Fault::KillSourceLdmd, When::Stream, Survivor::Source},
    {"SourceLdmdKilledAtHandoff", Fault::KillSourceLdmd, When::Handoff, Survivor::Source},
    {"TargetLdmdKilledInPhase3", Fault::KillTargetLdmd, When::Stream, Survivor::Source},
    {"TargetLdmdKilledAtHandoff", Fault::KillTargetLdmd, When::CommitAck, Survivor::Target},
    {"SourceQemuKilledInPhase3", Fault::KillSourceQemu, When::Stream, Survivor::None},
    {"SourceQemuKilledAtHandoff", Fault::KillSourceQemu, When::Handoff, Survivor::Target},
    {"TargetQemuKilledInPhase3", Fault::KillTargetQemu, When::Stream, Survivor::Source},
    {"TargetQemuKilledAtHandoff", Fault::KillTargetQemu, When::Handoff, Survivor::Source},
};

// Where ldmd holds still for the fault, and on which host.
const char* fault_point(When when) {
  switch (when) {
    case When::Phase1: return "source-checked";
    case When::Handoff: return "source-commit";
    case When::CommitAck: return "target-committed";
    case When::Stream: return "source-streaming";  // throttled, so that phase 3 lasts
  }
  return "";
}

class FaultMatrix : public ::testing::TestWithParam<Cell> {
 protected:
  void SetUp() override {
    const Cell& cell = GetParam();
    HostOptions a = host_options("hostA", NamespacePair::address_a, namespaces_.a());
    HostOptions b = host_options("hostB", NamespacePair::address_b, namespaces_.b());
    std::string point = fault_point(cell.when);
    if (!point.empty()) {
      HostOptions& holder = cell.when == When::CommitAck ? b : a;
      holder.env = {{"LDMD_FAULT_PAUSE", point}, {"LDMD_FAULT_SECONDS", "6"}};
    }
    a_ = std::make_unique<Host>(dir_.path(), a);
    b_ = std::make_unique<Host>(dir_.path(), b);
    start_pair(*a_, *b_);
    a_->ok({"add-domain", "vcpus=1", "memory=128M", "kernel=" + test_guest(), "cmdline=hb=20 dirty=32M rate=4000",
            "ldg1"});
    a_->ok({"bind", "ldg1"});
    a_->ok({"start", "ldg1"});
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (const Host* h : {a_.get(), b_.get()})
      std::cerr << "---- end of " << h->options().name << "'s log (requests left out) ----\n" << h->log_excerpt() << "\n";
  }

  Host& host_with_point() { return GetParam().when == When::CommitAck ? *b_ : *a_; }

  // The moment of the fault: the fault point reached, or the stream under way.
  bool reach_the_moment() {
    if (GetParam().when != When::Stream)
      return eventually([&] { return host_with_point().log().find("fault injection: pausing") != std::string::npos; },
                        120s);
    return eventually(
        [&] {
          auto out = a_->ldm({"list", "-o", "status", "-p", "ldg1"}, 10s).out;
          auto at = out.find("progress=");
          return at != std::string::npos && std::atoi(out.c_str() + at + 9) >= 5;
        },
        120s);
  }

  void apply(Fault fault) {
    switch (fault) {
      case Fault::CutLink: namespaces_.set_link(false); break;
      case Fault::KillSourceLdmd: a_->kill9(); break;
      case Fault::KillTargetLdmd: b_->kill9(); break;
      case Fault::KillSourceQemu:
        for (pid_t p : a_->qemu_pids()) kill(p, SIGKILL);
        break;
      case Fault::KillTargetQemu:
        for (pid_t p : b_->qemu_pids()) kill(p, SIGKILL);
        break;
    }
  }

  // What an operator does next: restore the link, restart a killed ldmd.
  void recover(Fault fault) {
    if (fault == Fault::CutLink) namespaces_.set_link(true);
    if (fault == Fault::KillSourceLdmd) a_->start();
    if (fault == Fault::KillTargetLdmd) b_->start();
  }

  // No host shows a migration any more (FLAGS column 6 is '-').
  bool settled() {
    for (Host* h : {a_.get(), b_.get()}) {
      auto r = h->record("ldg1");
      if (!r.empty() && r["flags"].size() == 6 && r["flags"][5] != '-') return false;
    }
    return true;
  }

  NamespacePair namespaces_;
  TempDir dir_;
  std::unique_ptr<Host> a_, b_;
};

TEST_P(FaultMatrix, ExactlyOneCopyRunsAndBothHostsTellTheTruth) {
  const Cell& cell = GetParam();
  auto source_console = std::make_unique<Console>(NamespacePair::address_a, std::stoi(a_->record("ldg1")["cons"]),
                                                  a_->options().netns);
  ASSERT_GE(source_console->heartbeats(5).size(), 5u);

  std::atomic<pid_t> ldm_pid{0};
  auto migration = a_->ldm_async({"migrate-domain", "-c", "ldg1", NamespacePair::address_b}, ldm_pid);
  ASSERT_TRUE(reach_the_moment()) << "the migration never reached the moment of the fault";
  apply(cell.fault);
  // A killed ldmd is restarted at once, as a supervisor would; a cut link
  // stays cut until the command has given up.
  if (cell.fault != Fault::CutLink) recover(cell.fault);
  auto result = migration.get();  // the command ends, one way or another
  if (cell.fault == Fault::CutLink) recover(cell.fault);
  ASSERT_TRUE(eventually([&] { return settled(); }, 120s)) << "the hosts did not settle:\n"
                                                            << a_->ldm({"ls"}).out << b_->ldm({"ls"}).out;

  auto on_a = a_->record("ldg1"), on_b = b_->record("ldg1");
  auto field = [](const std::map<std::string, std::string>& record, const char* key) {
    auto it = record.find(key);
    return it == record.end() ? std::string() : it->second;
  };
  bool runs_on_a = field(on_a, "state") == "active", runs_on_b = field(on_b, "state") == "active";
  EXPECT_FALSE(runs_on_a && runs_on_b) << "two running copies";
  switch (cell.survivor) {
    case Survivor::Source: EXPECT_TRUE(runs_on_a && !runs_on_b) << result.err; break;
    case Survivor::Target: EXPECT_TRUE(runs_on_b && !runs_on_a) << result.err; break;
    case Survivor::Either: EXPECT_TRUE(runs_on_a != runs_on_b) << result.err; break;
    case Survivor::None: EXPECT_TRUE(!runs_on_a && !runs_on_b); break;
  }
  // The stores agree with the processes: one QEMU where the domain is active, none elsewhere.
  // Live QEMU processes from the host's pidfiles (a killed, daemonized QEMU
  // can linger as a zombie where nobody reaps orphans: that is not alive).
  auto alive = [](const Host& h) {
    size_t n = 0;
    for (pid_t p : h.qemu_pids()) {
      std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
      std::string line;
      std::getline(stat, line);
      auto close = line.rfind(')');
      n += close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z' ? 1 : 0;
    }
    return n;
  };
  EXPECT_EQ(alive(*a_), runs_on_a ? 1u : 0u);
  EXPECT_EQ(alive(*b_), runs_on_b ? 1u : 0u);
  // A copy that did not survive is gone, or bound where its own QEMU was killed.
  if (!runs_on_b) {
    EXPECT_TRUE(on_b.empty()) << "a stale copy on hostB: " << b_->ldm({"ls"}).out;
  }
  if (!runs_on_a && cell.survivor != Survivor::None) {
    EXPECT_TRUE(on_a.empty()) << a_->ldm({"ls"}).out;
  }
  if (cell.survivor == Survivor::None) {
    EXPECT_EQ(field(on_a, "state"), "bound");
  }

  if (runs_on_a || runs_on_b) {
    EXPECT_EQ(field(runs_on_a ? on_a : on_b, "flags"), "-n----");
    // QEMU's console takes one client: on the source, keep reading the one we hold.
    std::unique_ptr<Console> target_console;
    if (runs_on_b)
      target_console = std::make_unique<Console>(NamespacePair::address_b, std::stoi(field(on_b, "cons")),
                                                 b_->options().netns);
    Console& console = runs_on_a ? *source_console : *target_console;
    size_t already = console.lines().size();
    auto beats = console.heartbeats(10);
    ASSERT_GE(beats.size(), 10u) << "the surviving copy does not beat";
    for (size_t i = 1; i < beats.size(); ++i) EXPECT_EQ(beats[i], beats[i - 1] + 1);
    for (size_t i = runs_on_a ? already : 0; i < console.lines().size(); ++i)
      EXPECT_EQ(console.lines()[i].find("LDM-TEST-GUEST START"), std::string::npos)
          << "the guest was reset: " << console.lines()[i];
  }
  for (const auto& l : source_console->lines()) EXPECT_EQ(l.find("CORRUPT"), std::string::npos) << l;
}

// The error state up close: the link breaks between the commit and the
// acknowledgement. The source keeps its copy paused with FLAGS e and refuses
// to guess — a cancel is refused while the target cannot be asked — and once
// the link is back the hosts settle on their own: the copy that was committed
// runs, the stale one is removed.
class ErrorState : public FaultMatrix {};

TEST_P(ErrorState, TheSourceWaitsForTheTargetThenReconcilesByItself) {
  std::atomic<pid_t> ldm_pid{0};
  auto migration = a_->ldm_async({"migrate-domain", "-c", "ldg1", NamespacePair::address_b}, ldm_pid);
  ASSERT_TRUE(reach_the_moment());
  namespaces_.set_link(false);
  auto result = migration.get();
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("the handoff of LDom ldg1 to hostB was not acknowledged, so the domain is kept paused "
                            "here in the error state"),
            std::string::npos)
      << result.err;
  auto on_a = a_->record("ldg1");
  EXPECT_EQ(on_a["flags"], "-n---e");
  auto cancel = a_->ldm({"cancel-operation", "migration", "ldg1"});
  EXPECT_NE(cancel.exit_code, 0);
  EXPECT_NE(cancel.err.find("Cannot ask hostB whether it runs LDom ldg1, so the copy here stays paused in the error "
                            "state"),
            std::string::npos)
      << cancel.err;
  EXPECT_EQ(a_->record("ldg1")["flags"], "-n---e");
  namespaces_.set_link(true);
  ASSERT_TRUE(eventually([&] { return a_->record("ldg1").empty(); }, 60s)) << "the source did not reconcile";
  EXPECT_NE(a_->log().find("migration of ldg1: reconciled with the target"), std::string::npos);
  auto on_b = b_->record("ldg1");
  EXPECT_EQ(on_b["state"], "active");
  EXPECT_EQ(on_b["flags"], "-n----");
}

INSTANTIATE_TEST_SUITE_P(CommitAckCut, ErrorState, ::testing::Values(kCells[3]),
                         [](const auto& cell) { return std::string(cell.param.name); });

INSTANTIATE_TEST_SUITE_P(Cells, FaultMatrix, ::testing::ValuesIn(kCells),
                         [](const auto& cell) { return std::string(cell.param.name); });

}  // namespace
}  // namespace ldm::itest
