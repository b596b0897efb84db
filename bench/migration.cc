// bench/migration: the test guest migrated with ldm and with a bare
// QEMU-to-QEMU migration on QEMU's defaults (the baseline), side by side in one
// run, on this machine.
//
//   migration [--output FILE] [--demo]
//
// Guest-visible downtime is measured where a user sees it: the largest gap
// between consecutive heartbeats (hb=10 ms) arriving on the two consoles.
// --demo runs one ldm migration of a guest dirtying 64 MiB and explains it.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/harness.h"

using namespace ldm::itest;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Outcome {
  bool finished = false;
  double total_ms = 0, downtime_ms = 0, switch_ms = 0, first_byte_ms = 0, qemu_total_ms = 0;
  double bytes = 0;
  bool corrupt = false, continued = false;
  std::string note;
};

// Largest gap between consecutive heartbeat numbers, each taken at its earliest
// arrival on any of the consoles.
double largest_gap_ms(const std::vector<const Console*>& consoles, bool& corrupt,
                      Clock::time_point* gap_end = nullptr) {
  std::map<long, Clock::time_point> first_seen;
  for (const Console* c : consoles) {
    for (size_t i = 0; i < c->lines().size(); ++i) {
      const std::string& l = c->lines()[i];
      if (l.find("CORRUPT") != std::string::npos) corrupt = true;
      if (l.rfind("HB ", 0) != 0) continue;
      long n = std::stol(l.substr(3));
      auto t = c->times()[i];
      auto it = first_seen.find(n);
      if (it == first_seen.end() || t < it->second) first_seen[n] = t;
    }
  }
  double gap = 0;
  for (auto it = first_seen.begin(); it != first_seen.end() && std::next(it) != first_seen.end(); ++it) {
    double g = std::chrono::duration<double, std::milli>(std::next(it)->second - it->second).count();
    if (g > gap && gap_end) *gap_end = std::next(it)->second;
    gap = std::max(gap, g);
  }
  return gap;
}

// The gap across the switch itself: the last heartbeat the source printed to
// the first later one the target printed. Separates the handoff from gaps
// caused by the host starving the guest's vCPU while the stream runs.
double switch_gap_ms(const Console& source, const Console* target) {
  if (!target) return 0;
  long last = -1;
  Clock::time_point last_time{};
  for (size_t i = 0; i < source.lines().size(); ++i)
    if (source.lines()[i].rfind("HB ", 0) == 0) {
      last = std::stol(source.lines()[i].substr(3));
      last_time = source.times()[i];
    }
  for (size_t i = 0; i < target->lines().size(); ++i)
    if (target->lines()[i].rfind("HB ", 0) == 0 && std::stol(target->lines()[i].substr(3)) > last)
      return std::chrono::duration<double, std::milli>(target->times()[i] - last_time).count();
  return 0;
}

std::string guest_cmdline(bool dirty) { return dirty ? "hb=10 dirty=64M rate=max" : "hb=10"; }

// Watches both consoles while `work` runs in another thread, and for a while
// after; returns when the work ended (the settle is not part of any total).
// Each console is read by a thread of its own, so that a heartbeat is stamped
// when it arrives, not when this loop finds time (finding the target's
// console runs `ldm list`, which takes a while).
Clock::time_point watch(Console& source, std::function<Console*()> target_console, const std::function<void()>& work) {
  std::atomic<bool> done{false}, stop{false};
  Clock::time_point ended;
  std::thread worker([&] {
    work();
    ended = Clock::now();
    done = true;
  });
  std::thread source_reader([&] {
    while (!stop) source.drain(std::chrono::milliseconds(5));
  });
  Console* target = nullptr;
  while (!target && !done) {
    target = target_console();
    if (!target) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!target) target = target_console();
  std::thread target_reader([&] {
    while (target && !stop) target->drain(std::chrono::milliseconds(5));
  });
  worker.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  stop = true;
  source_reader.join();
  target_reader.join();
  return ended;
}

bool continued_on(const Console* target) {
  if (!target) return false;
  int beats = 0;
  for (const auto& l : target->lines()) {
    if (l.rfind("LDM-TEST-GUEST START", 0) == 0) return false;
    beats += l.rfind("HB ", 0) == 0;
  }
  return beats >= 5;
}

Outcome run_ldm(const std::string& memory, bool dirty, bool verbose, bool show_logs = false) {
  TempDir dir;
  HostOptions a, b;
  a.name = "hostA";
  b.name = "hostB";
  a.listen = "127.0.0.2:6482";
  a.console_address = "127.0.0.2";
  b.listen = "127.0.0.3:6482";
  b.console_address = "127.0.0.3";
  a.memory = b.memory = "4G";
  Host ha(dir.path(), a), hb(dir.path(), b);
  ha.start();
  hb.start();
  ha.trust(hb);
  hb.trust(ha);
  for (Host* h : {&ha, &hb}) h->ok({"add-vcc", "port-range=5000-5099", "primary-vcc0", "primary"});
  ha.ok({"add-domain", "vcpus=1", "memory=" + memory, "kernel=" + test_guest(), "cmdline=" + guest_cmdline(dirty),
         "ldg1"});
  ha.ok({"bind", "ldg1"});
  ha.ok({"start", "ldg1"});
  if (verbose) fmt::print("{}", ha.ok({"ls"}));
  Console source("127.0.0.2", std::stoi(ha.record("ldg1")["cons"]));
  source.heartbeats(20);  // let the guest settle (and fill its dirty region)
  source.drain(std::chrono::milliseconds(1500));

  std::unique_ptr<Console> target;
  CommandResult result;
  auto start = Clock::now();
  auto ended = watch(
      source,
      [&]() -> Console* {
        if (!target) {
          auto cons = hb.record("ldg1")["cons"];
          if (!cons.empty()) target = std::make_unique<Console>("127.0.0.3", std::stoi(cons));
        }
        return target.get();
      },
      [&] { result = ha.ldm({"migrate-domain", "-c", "--json", "ldg1", "127.0.0.3"}); });
  Outcome o;
  o.total_ms = std::chrono::duration<double, std::milli>(ended - start).count();
  o.finished = result.exit_code == 0;
  if (!o.finished) {
    o.note = result.err;
    return o;
  }
  auto summary = json::parse(result.out, nullptr, false);
  if (!summary.is_discarded()) {
    o.first_byte_ms = summary.value("first_byte_ms", 0.0);
    o.bytes = summary.value("bytes", 0.0);
    o.qemu_total_ms = summary.value("qemu_total_ms", 0.0);
  }
  Clock::time_point gap_end;
  o.downtime_ms = largest_gap_ms({&source, target.get()}, o.corrupt, &gap_end);
  o.switch_ms = switch_gap_ms(source, target.get());
  o.continued = continued_on(target.get());
  if (show_logs)
    fmt::print(stderr, "largest gap {:.0f} ms, ending {:.0f} ms after the command started ({:%H:%M:%S})\n",
               o.downtime_ms, std::chrono::duration<double, std::milli>(gap_end - start).count(),
               std::chrono::time_point_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now() - (Clock::now() - gap_end)));
  if (show_logs)
    for (Host* h : {&ha, &hb}) {
      std::istringstream lines(h->log());
      for (std::string l; std::getline(lines, l);)
        if (l.find("request") == std::string::npos)
          fmt::print(stderr, "{}\n", l);
    }
  if (verbose) {
    fmt::print("\n$ ldm migrate-domain -c ldg1 127.0.0.3     (on hostA)\n");
    fmt::print("hostA:\n{}hostB:\n{}", ha.ok({"ls"}), hb.ok({"ls"}));
    fmt::print("\nlast lines on hostB's console (127.0.0.3:{}):\n", hb.record("ldg1")["cons"]);
    auto& lines = target->lines();
    for (size_t i = lines.size() >= 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) fmt::print("  {}\n", lines[i]);
  }
  return o;
}

Outcome run_baseline(const std::string& memory, bool dirty) {
  TempDir dir;
  int id = unique_id();
  int src_port = 21000 + id, dst_port = 22000 + id, mig_port = 23000 + id;
  auto qemu = [&](const std::string& name, int port, bool incoming) -> bool {
    std::vector<std::string> argv = {"qemu-system-x86_64", "-machine", "pc,accel=tcg", "-cpu", "max", "-m", memory,
                                     "-nodefaults", "-display", "none", "-kernel", test_guest(), "-append",
                                     guest_cmdline(dirty), "-serial",
                                     fmt::format("telnet:127.0.0.1:{},server=on,wait=off", port), "-qmp",
                                     fmt::format("unix:{}/{}.qmp,server=on,wait=off", dir.path(), name), "-pidfile",
                                     fmt::format("{}/{}.pid", dir.path(), name), "-daemonize"};
    if (incoming) argv.insert(argv.end(), {"-incoming", fmt::format("tcp:127.0.0.1:{}", mig_port)});
    auto r = run(argv);
    if (r.exit_code != 0) fmt::print(stderr, "baseline QEMU {} did not start: {}\n", name, r.err + r.out);
    return r.exit_code == 0;
  };
  qemu("src", src_port, false);
  auto pid_of = [&](const std::string& n) {
    std::ifstream in(dir.path() + "/" + n + ".pid");
    int p = 0;
    in >> p;
    return p;
  };
  BlockingQmp src(dir.path() + "/src.qmp");
  Console source("127.0.0.1", src_port);
  source.heartbeats(20);
  source.drain(std::chrono::milliseconds(1500));
  // Like for like with ldm, whose total includes starting the target's QEMU:
  // the clock starts before the target QEMU is launched.
  auto start = Clock::now();
  qemu("dst", dst_port, true);
  BlockingQmp dst(dir.path() + "/dst.qmp");
  Console target("127.0.0.1", dst_port);
  Outcome o;
  json last;
  Clock::time_point migrate_issued = start;
  auto ended = watch(
      source, [&]() -> Console* { return &target; },
      [&] {
        migrate_issued = Clock::now();
        src.execute("migrate", {{"uri", fmt::format("tcp:127.0.0.1:{}", mig_port)}});
        for (;;) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));  // as often as ldmd asks
          last = src.execute("query-migrate")["return"];
          std::string status = last.value("status", "");
          if (status == "failed") break;
          if (status == "completed") {
            // Done when the guest runs on the target, as for ldm (whose
            // command returns after the target resumed it).
            while (dst.execute("query-status")["return"].value("status", "") != "running" &&
                   Clock::now() - start < std::chrono::seconds(30))
              std::this_thread::sleep_for(std::chrono::milliseconds(2));
            break;
          }
          if (Clock::now() - start > std::chrono::seconds(30)) {
            src.execute("migrate_cancel");
            o.note = "did not converge in 30 s (cancelled)";
            break;
          }
        }
      });
  o.finished = last.value("status", "") == "completed";
  o.total_ms = std::chrono::duration<double, std::milli>(ended - start).count();
  o.first_byte_ms = std::chrono::duration<double, std::milli>(migrate_issued - start).count() + last.value("setup-time", 0.0);
  if (last.contains("ram")) o.bytes = last["ram"].value("transferred", 0.0);
  o.qemu_total_ms = last.value("total-time", 0.0);
  if (o.finished) {
    o.downtime_ms = largest_gap_ms({&source, &target}, o.corrupt);
    o.switch_ms = switch_gap_ms(source, &target);
    o.continued = continued_on(&target);
  }
  // Only processes this run started, by their PID (never 0: that is our own group).
  for (const char* n : {"src", "dst"})
    if (int pid = pid_of(n); pid > 0) kill(pid, SIGKILL);
  return o;
}

std::string cell(const Outcome& o, double v, const char* unit) {
  if (!o.finished) return "-";
  return fmt::format("{:.0f} {}", v, unit);
}
std::string ratio(const Outcome& a, const Outcome& b, double va, double vb) {
  if (!a.finished || !b.finished || vb <= 0) return "-";
  return fmt::format("{:.2f}", va / vb);
}

}  // namespace

int main(int argc, char** argv) {
  std::string output, only;
  bool demo = false, show_logs = false;
  int repeat = 1;
  int cool_down_s = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--output" && i + 1 < argc) output = argv[++i];
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else if (a == "--cool-down" && i + 1 < argc)
      cool_down_s = std::max(0, std::atoi(argv[++i]));
    else if (a == "--logs") show_logs = true;
    else if (a == "--demo") demo = true;
    else {
      fmt::print(stderr,
                 "usage: migration [--output FILE] [--only 256M-idle|256M-dirty|1G-idle|1G-dirty] [--repeat N] "
                 "[--cool-down SECONDS] [--logs] | --demo\n");
      return 2;
    }
  }
  if (demo) {
    fmt::print("== two hosts on this machine: hostA (127.0.0.2) and hostB (127.0.0.3), certificates exchanged\n");
    fmt::print("== the test guest on hostA: 256 MiB, rewriting 64 MiB as fast as it can\n");
    Outcome o = run_ldm("256M", true, true);
    if (!o.finished) {
      fmt::print("migration failed:\n{}\n", o.note);
      return 1;
    }
    fmt::print("\nmigrated live in {:.0f} ms (QEMU stream began after {:.0f} ms); guest-visible downtime {:.0f} ms "
               "(largest heartbeat gap, heartbeat every 10 ms), of which the switchover itself {:.0f} ms; "
               "{:.1f} MiB sent\n",
               o.total_ms, o.first_byte_ms, o.downtime_ms, o.switch_ms, o.bytes / 1048576.0);
    fmt::print("heartbeat continued on hostB without a restart: {}; memory corruption reported: {}\n",
               o.continued ? "yes" : "NO", o.corrupt ? "YES" : "none");
    return o.continued && !o.corrupt ? 0 : 1;
  }

  const std::string header =
      "| guest | workload | ldm total | baseline total | ratio | ldm downtime | baseline downtime | ratio | ldm switch gap | "
      "baseline switch gap | ldm bytes | baseline bytes | ldm first byte | baseline first byte | heartbeat continued, "
      "no CORRUPT |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto row = [](const std::string& memory, bool dirty, const Outcome& l, const Outcome& b, const std::string& ok_text) {
    auto mib = [](const Outcome& o) { return o.finished ? fmt::format("{:.1f} MiB", o.bytes / 1048576.0) : std::string("-"); };
    return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |\n", memory,
                       dirty ? "dirtying 64 MiB (rate=max)" : "idle", cell(l, l.total_ms, "ms"),
                       b.finished ? cell(b, b.total_ms, "ms") : b.note, ratio(l, b, l.total_ms, b.total_ms),
                       cell(l, l.downtime_ms, "ms"), cell(b, b.downtime_ms, "ms"), ratio(l, b, l.downtime_ms, b.downtime_ms),
                       cell(l, l.switch_ms, "ms"), cell(b, b.switch_ms, "ms"), mib(l), mib(b), cell(l, l.first_byte_ms, "ms"),
                       cell(b, b.first_byte_ms, "ms"), ok_text, l.finished ? "" : " (ldm failed: " + l.note + ")");
  };
  auto ok = [](const Outcome& o) { return o.finished ? std::string(o.continued && !o.corrupt ? "yes" : "NO") : std::string("-"); };
  // Memory the previous run freed stays cheap to allocate for ~10 s on a host
  // whose balloon reports free memory (bench/README.md); every run starts
  // after the same pause so that both sides allocate from memory equally cold.
  auto cooled = [&](auto run_one, auto&&... args) {
    if (cool_down_s > 0) {
      fmt::print(stderr, "cooling down {} s ...\n", cool_down_s);
      std::this_thread::sleep_for(std::chrono::seconds(cool_down_s));
    }
    return run_one(args...);
  };
  // Each case runs `repeat` times, ldm and the baseline in turn, the baseline
  // first in every other round; the summary takes the median of each figure
  // (this machine is noisy).
  std::string runs = header, summary = header;
  for (std::string memory : {"256M", "1G"}) {
    for (bool dirty : {false, true}) {
      if (!only.empty() && only != memory + (dirty ? "-dirty" : "-idle")) continue;
      std::vector<Outcome> ldm_runs, baseline_runs;
      for (int round = 0; round < repeat; ++round) {
        fmt::print(stderr, "running {} {} ({}/{}) ...\n", memory, dirty ? "dirty 64 MiB" : "idle", round + 1, repeat);
        bool baseline_first = round % 2 == 1;
        Outcome l, b;
        if (baseline_first) b = cooled(run_baseline, memory, dirty);
        l = cooled(run_ldm, memory, dirty, false, show_logs);
        if (!baseline_first) b = cooled(run_baseline, memory, dirty);
        if (show_logs)
          fmt::print(stderr, "QEMU's total-time: ldm {:.0f} ms, baseline {:.0f} ms\n", l.qemu_total_ms, b.qemu_total_ms);
        runs +=
            row(memory, dirty, l, b,
                fmt::format("ldm: {}, baseline: {} ({} ran first)", ok(l), ok(b), baseline_first ? "baseline" : "ldm"));
        ldm_runs.push_back(l);
        baseline_runs.push_back(b);
      }
      auto median_of = [](const std::vector<Outcome>& all) {
        std::vector<Outcome> done;
        for (const auto& o : all)
          if (o.finished) done.push_back(o);
        Outcome m;
        if (done.empty()) {
          m.note = all.empty() ? "" : all.front().note;
          return m;
        }
        auto median = [&](double Outcome::*field) {
          std::vector<double> v;
          for (const auto& o : done) v.push_back(o.*field);
          std::sort(v.begin(), v.end());
          return v[v.size() / 2];
        };
        m.finished = true;
        for (auto field : {&Outcome::total_ms, &Outcome::downtime_ms, &Outcome::switch_ms, &Outcome::first_byte_ms,
                           &Outcome::bytes})
          m.*field = median(field);
        return m;
      };
      auto all_ok = [](const std::vector<Outcome>& all) {
        int finished = 0, good = 0;
        for (const auto& o : all) {
          finished += o.finished;
          good += o.finished && o.continued && !o.corrupt;
        }
        return fmt::format("{}/{}", good, finished);
      };
      summary += row(memory, dirty, median_of(ldm_runs), median_of(baseline_runs),
                     fmt::format("ldm: {}, baseline: {}", all_ok(ldm_runs), all_ok(baseline_runs)));
    }
  }
  std::string table = repeat > 1 ? "Medians of " + std::to_string(repeat) + " runs each:\n\n" + summary +
                                       "\nEvery run:\n\n" + runs
                                 : runs;
  fmt::print("{}", table);
  if (!output.empty()) {
    std::ofstream out(output);
    out << "# Migration benchmark\n\n"
        << "Produced by `build/bin/migration --repeat " << repeat << " --cool-down " << cool_down_s
        << " --output bench/results/migration.md` (see bench/README.md). "
           "ldm and the baseline side by side in one run of the program, the baseline first in every other round, "
           "each run starting after "
        << cool_down_s
        << " s idle so that both allocate from equally cold memory, on the same machine: 2 shared cores, QEMU 7.2 "
           "under TCG, loopback. Absolute figures are noisy; read the ratios.\n\n"
        << "- ldm: `ldm migrate-domain -c` between two ldmd (127.0.0.2 -> 127.0.0.3), QEMU stream over TLS, "
           "max-bandwidth 10 GiB/s, downtime-limit 50 ms rising per pass, guest memory preallocated. Total = the "
           "`ldm` command's wall time (all phases: checks, target QEMU started, stream, handoff, source removed). "
           "The guest was started by `ldm start`, which under TCG spends QEMU's first dirty-bitmap pass before the "
           "guest runs (ARCHITECTURE.md, the TCG defect); that time is not in the migration.\n"
        << "- baseline: two bare QEMUs, plain TCP, QEMU's defaults (128 MiB/s cap, 300 ms downtime limit, target "
           "resumes by itself). Total = wall time from launching the target QEMU until the guest runs there.\n"
        << "- downtime: largest gap between consecutive heartbeats (every 10 ms) seen on the two consoles, over the "
           "whole migration (each console read by its own thread), so it includes stalls outside the switchover.\n"
        << "- switch gap: from the last heartbeat printed on the source to the first later one on the target: the "
           "pause of the switchover itself.\n"
        << "- first byte: ldm = command start until QEMU's stream starts (phases 1-2: TLS, checks, target QEMU "
           "started); baseline = target QEMU launch until the `migrate` command, plus QEMU's setup-time.\n"
        << "- medians: each column's median over the runs; the ratio columns divide the medians.\n\n"
        << table;
  }
  return 0;
}
