// The QEMU command line of a domain, against a golden file.
#include "hypervisor/qemu/command_line.h"

#include <gtest/gtest.h>

#include "base/size.h"
#include "golden.h"

namespace ldm::hypervisor::qemu {
namespace {

LaunchSpec spec() {
  LaunchSpec s;
  auto& d = s.domain;
  d.name = "ldg1";
  d.uuid = "6c908858-12ef-4520-9eb3-f1cd3dbc3a59";
  d.vcpus = 2;
  d.memory = {model::MemoryBlock{0, 0, 512 * MiB, 4096}};
  d.kernel = "/srv/test-guest.elf";
  d.cmdline = "dirty=64M rate=1000";
  d.console.port = 5001;
  d.disks = {{"disk0", "vol1", "primary-vds0", 0}};
  d.networks = {{"vnet0", "primary-vsw0", "02:4c:44:12:34:56", true, 0}};
  s.qmp_socket = "/var/lib/ldmd/run/x.qmp";
  s.pidfile = "/var/lib/ldmd/run/x.pid";
  s.console_log = "/var/lib/ldmd/run/x.console.log";
  s.disks["disk0"] = DiskBackend{"/srv/ldg1.img", "raw", false};
  s.taps["vnet0"] = "ldmab12c90858";
  return s;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += a + "\n";
  return out;
}

TEST(QemuCommandLine, RunningDomain) { ldm::testing::expect_golden("qemu-active.args", joined(command_line(spec()))); }

TEST(QemuCommandLine, IncomingMigrationStartsPausedAndDeferred) {
  LaunchSpec s = spec();
  s.incoming = true;
  auto argv = command_line(s);
  auto has = [&](const std::string& a) { return std::find(argv.begin(), argv.end(), a) != argv.end(); };
  EXPECT_TRUE(has("-S"));
  auto it = std::find(argv.begin(), argv.end(), "-incoming");
  ASSERT_NE(it, argv.end());
  EXPECT_EQ(*(it + 1), "defer");
}

TEST(QemuCommandLine, HugepageBlocksUseAFileBackend) {
  LaunchSpec s = spec();
  s.domain.memory[0].page_size = 2 * MiB;
  auto text = joined(command_line(s));
  EXPECT_NE(text.find("memory-backend-file,id=ram0,size=536870912,mem-path=/dev/hugepages"), std::string::npos);
  EXPECT_NE(text.find("memory-backend=ram0"), std::string::npos);
}

TEST(QemuCommandLine, TcgRamIsPaddedSoDirtyTrackingUsesThePerPagePath) {
  LaunchSpec s = spec();
  auto m = [](const std::vector<std::string>& argv) { return *(std::find(argv.begin(), argv.end(), "-m") + 1); };
  s.accel = Accelerator::Tcg;
  EXPECT_EQ(m(command_line(s)), "524296K");  // 512M + 8K: not a multiple of 64 pages
  s.accel = Accelerator::Kvm;
  EXPECT_EQ(m(command_line(s)), "524288K");
}

TEST(QemuCommandLine, GuestMemoryIsAllocatedInFullAtStart) {
  LaunchSpec s = spec();
  s.accel = Accelerator::Tcg;
  s.prealloc_threads = 2;
  auto text = joined(command_line(s));
  EXPECT_NE(text.find("memory-backend-ram,id=ram0,size=536879104,prealloc=on,prealloc-threads=2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("-machine\nmemory-backend=ram0"), std::string::npos);
  s.domain.memory[0].page_size = 2 * MiB;  // a hugepage block is never padded: its size is whole pages
  text = joined(command_line(s));
  EXPECT_NE(text.find("-m\n524288K"), std::string::npos) << text;
  EXPECT_NE(text.find("size=536870912,mem-path=/dev/hugepages,share=off,prealloc=on"), std::string::npos) << text;
}

TEST(QemuCommandLine, CpuModelFollowsCpuArch) {
  EXPECT_EQ(cpu_model("native", Accelerator::Kvm), "host");
  EXPECT_EQ(cpu_model("native", Accelerator::Tcg), "max");
  EXPECT_EQ(cpu_model("generic", Accelerator::Kvm), "qemu64");
  EXPECT_EQ(cpu_model("migration-class1", Accelerator::Tcg), "Nehalem");
}

}  // namespace
}  // namespace ldm::hypervisor::qemu
