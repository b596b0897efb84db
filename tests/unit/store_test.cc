// The store: round trips, one transaction per change, and no acknowledged
// change lost when the writer is killed with SIGKILL at any moment.
#include "store/store.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/size.h"
#include "model/operations.h"

namespace ldm::store {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ldm-store-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/ldmd.db";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_, path_;
};

model::HostModel sample() {
  model::HostModel m;
  m.capacity = {4, GiB};
  int n = 0;
  auto uuid = [&] { return fmt::format("00000000-0000-4000-8000-{:012d}", ++n); };
  EXPECT_TRUE(model::add_console_service(m, "primary-vcc0", 5000, 5100));
  EXPECT_TRUE(model::add_disk_service(m, "primary-vds0"));
  EXPECT_TRUE(model::add_volume(m, "/tmp/a.img", "vol1", "primary-vds0", {}));
  EXPECT_TRUE(model::add_switch(m, "vsw0", ""));
  model::DomainProperties p;
  p.vcpus = 2;
  p.memory = 256 * MiB;
  EXPECT_TRUE(model::add_domain(m, "ldg1", p, uuid));
  EXPECT_TRUE(model::add_domain(m, "ldg2", p, uuid));
  EXPECT_TRUE(model::add_disk(m, "ldg1", "d0", "vol1", "primary-vds0"));
  EXPECT_TRUE(model::add_network(m, "ldg1", "vnet0", "vsw0", std::nullopt, [] { return 7u; }));
  EXPECT_TRUE(model::set_variables(m, "ldg1", {{"auto-boot?", "true"}}));
  EXPECT_TRUE(model::bind_domain(m, "ldg1", [](int) { return true; }));
  return m;
}

TEST_F(StoreTest, RoundTripsTheWholeModelInOrder) {
  auto store = Store::open(path_);
  ASSERT_TRUE(store) << store.error().text();
  model::HostModel empty, m = sample();
  ASSERT_TRUE((*store)->save(empty, m));
  store->reset();
  auto again = Store::open(path_);
  ASSERT_TRUE(again);
  model::HostModel loaded;
  ASSERT_TRUE((*again)->load(loaded));
  EXPECT_EQ(nlohmann::json(loaded.domains), nlohmann::json(m.domains));
  EXPECT_EQ(nlohmann::json(loaded.disk_services), nlohmann::json(m.disk_services));
  EXPECT_EQ(nlohmann::json(loaded.switches), nlohmann::json(m.switches));
  EXPECT_EQ(nlohmann::json(loaded.consoles), nlohmann::json(m.consoles));
  EXPECT_EQ(loaded.domains[0].name, "ldg1");
  EXPECT_EQ(loaded.domains[1].name, "ldg2");
}

TEST_F(StoreTest, RemovalsAreSaved) {
  auto store = Store::open(path_);
  ASSERT_TRUE(store);
  model::HostModel empty, m = sample();
  ASSERT_TRUE((*store)->save(empty, m));
  model::HostModel next = m;
  ASSERT_TRUE(model::remove_domain(next, "ldg2"));
  EXPECT_FALSE(model::remove_switch(next, "vsw0"));  // in use by ldg1: refused, next unchanged
  ASSERT_TRUE((*store)->save(m, next));
  model::HostModel loaded;
  ASSERT_TRUE((*store)->load(loaded));
  ASSERT_EQ(loaded.domains.size(), 1u);
  EXPECT_EQ(loaded.domains[0].name, "ldg1");
}

TEST_F(StoreTest, AnUnopenablePathIsAClearError) {
  auto store = Store::open("/nonexistent-dir/ldmd.db");
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().text().find("Cannot open the store /nonexistent-dir/ldmd.db"), std::string::npos);
}

// A child process adds domains one by one and reports each acknowledged save
// on a pipe; the parent kills it with SIGKILL at an arbitrary moment. Every
// acknowledged domain must be there afterwards, and the store must load.
TEST_F(StoreTest, KillNineLosesNoAcknowledgedChange) {
  for (int round = 0; round < 5; ++round) {
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipefd[0]);
      auto store = Store::open(path_);
      if (!store) _exit(2);
      model::HostModel current;
      current.capacity = {1024, 1024 * GiB};
      if (!(*store)->load(current)) _exit(3);
      for (int i = 0;; ++i) {
        model::HostModel next = current;
        std::string name = fmt::format("r{}d{}", round, i);
        int k = 0;
        if (!model::add_domain(next, name, {}, [&] { return fmt::format("{:08d}-0000-4000-8000-{:012d}", round, i * 10 + ++k); }))
          _exit(4);
        if (!(*store)->save(current, next)) _exit(5);
        current = std::move(next);
        if (write(pipefd[1], &i, sizeof i) != sizeof i) _exit(6);
      }
    }
    close(pipefd[1]);
    int acked = -1, value = 0;
    int wanted = 20 + round * 7;
    while (acked < wanted && read(pipefd[0], &value, sizeof value) == sizeof value) acked = value;
    kill(child, SIGKILL);
    // Acknowledgements the child managed to send before dying count too.
    while (read(pipefd[0], &value, sizeof value) == sizeof value) acked = value;
    close(pipefd[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer failed early with status " << WEXITSTATUS(status);

    auto store = Store::open(path_);
    ASSERT_TRUE(store) << store.error().text();
    model::HostModel loaded;
    ASSERT_TRUE((*store)->load(loaded));
    for (int i = 0; i <= acked; ++i)
      EXPECT_NE(loaded.find(fmt::format("r{}d{}", round, i)), nullptr) << "acknowledged domain lost: round " << round
                                                                         << " #" << i;
  }
}

}  // namespace
}  // namespace ldm::store
