// The QMP client against a scripted fake monitor: replies, errors, events,
// timeouts, malformed JSON and hang-ups. (Against real QEMU: the integration tests.)
#include "hypervisor/qemu/qmp_client.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "../fakes/fake_qmp_server.h"

namespace ldm::hypervisor::qemu {
namespace {

using json = nlohmann::json;
using ldm::testing::FakeQmpServer;
using namespace std::chrono_literals;

std::string socket_path() { return "/tmp/ldm-qmp-test-" + std::to_string(getpid()) + ".sock"; }

// Built outside coroutine bodies: GCC 12 cannot compile brace-initialized
// JSON (arrays of char arrays) inside one.
json migrate_arguments() { return json{{"uri", "tcp:127.0.0.1:1"}}; }

// Runs `body` as a coroutine on a fresh loop until it finishes.
template <class Body>
void run(asio::io_context& io, Body body) {
  bool done = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await body();
    done = true;
    io.stop();
  }, asio::detached);
  io.run_for(10s);
  ASSERT_TRUE(done) << "test coroutine did not finish";
}

TEST(QmpClient, ExecutesCommandsAndDeliversEvents) {
  asio::io_context io;
  FakeQmpServer fake(io, socket_path(), [](const json& req) -> std::vector<std::string> {
    if (req["execute"].get<std::string>() == "query-status")
      return {FakeQmpServer::event("STOP", json::object()), FakeQmpServer::reply(req, {{"status", "paused"}, {"running", false}})};
    return {};
  });
  std::vector<std::string> events;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await QmpClient::connect(socket_path(), 2s);
    EXPECT_TRUE(client) << (client ? "" : client.error().text());
    if (!client) co_return;
    (*client)->set_event_handler([&](const std::string& e, const json&) { events.push_back(e); });
    auto status = co_await (*client)->execute("query-status");
    EXPECT_TRUE(status);
    if (status) {
      EXPECT_EQ((*status)["status"].get<std::string>(), std::string("paused"));
    }
    (*client)->close();
  });
  EXPECT_EQ(events, std::vector<std::string>{"STOP"});
}

TEST(QmpClient, QemuErrorsBecomeErrorsWithTheirDescription) {
  asio::io_context io;
  FakeQmpServer fake(io, socket_path(), [](const json& req) -> std::vector<std::string> {
    return {FakeQmpServer::error(req, "Migration is disabled when VirtFS export path is set")};
  });
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await QmpClient::connect(socket_path(), 2s);
    if (!client) co_return;
    auto r = co_await (*client)->execute("migrate", migrate_arguments());
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error().text(), std::string("QEMU: migrate: Migration is disabled when VirtFS export path is set"));
    }
    (*client)->close();
  });
}

TEST(QmpClient, ASilentMonitorTimesOutAndTheClientStaysUsable) {
  asio::io_context io;
  FakeQmpServer fake(io, socket_path(), [](const json& req) -> std::vector<std::string> {
    if (req["execute"].get<std::string>() == "stuck") return {};
    return {FakeQmpServer::reply(req, json::object())};
  });
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await QmpClient::connect(socket_path(), 2s);
    if (!client) co_return;
    auto start = std::chrono::steady_clock::now();
    auto r = co_await (*client)->execute("stuck", nullptr, 150ms);
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error().text(), std::string("QMP: no reply to stuck within 150 ms"));
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    auto next = co_await (*client)->execute("query-status");
    EXPECT_TRUE(next);
    (*client)->close();
  });
}

TEST(QmpClient, MalformedJsonClosesTheMonitorAndFailsPendingCommands) {
  asio::io_context io;
  FakeQmpServer fake(io, socket_path(), [](const json&) -> std::vector<std::string> { return {"{not json\r\n"}; });
  std::string closed;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await QmpClient::connect(socket_path(), 2s);
    if (!client) co_return;
    (*client)->set_close_handler([&](const std::string& reason) { closed = reason; });
    auto r = co_await (*client)->execute("query-status");
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_NE(r.error().text().find("malformed message from QEMU"), std::string::npos);
    }
    EXPECT_FALSE((*client)->is_open());
  });
  EXPECT_NE(closed.find("malformed"), std::string::npos);
}

TEST(QmpClient, AHangUpIsReportedOnce) {
  asio::io_context io;
  FakeQmpServer* fake_ptr = nullptr;
  FakeQmpServer fake(io, socket_path(), [&](const json&) -> std::vector<std::string> {
    fake_ptr->hang_up();
    return {};
  });
  fake_ptr = &fake;
  int closes = 0;
  run(io, [&]() -> asio::awaitable<void> {
    auto client = co_await QmpClient::connect(socket_path(), 2s);
    if (!client) co_return;
    (*client)->set_close_handler([&](const std::string& reason) {
      ++closes;
      EXPECT_EQ(reason, std::string("QEMU closed its monitor"));
    });
    auto r = co_await (*client)->execute("quit");
    EXPECT_FALSE(r);
    (*client)->close();
  });
  EXPECT_EQ(closes, 1);
}

TEST(QmpClient, ConnectFailsClearlyWithoutAGreetingOrASocket) {
  asio::io_context io;
  FakeQmpServer fake(io, socket_path(), [](const json&) -> std::vector<std::string> { return {}; }, false);
  run(io, [&]() -> asio::awaitable<void> {
    auto silent = co_await QmpClient::connect(socket_path(), 200ms);
    EXPECT_FALSE(silent);
    if (!silent) {
      EXPECT_EQ(silent.error().text(), std::string("QMP: no answer within 200 ms"));
    }
    auto missing = co_await QmpClient::connect("/tmp/ldm-no-such-qmp.sock", 200ms);
    EXPECT_FALSE(missing);
    if (!missing) {
      EXPECT_NE(missing.error().text().find("/tmp/ldm-no-such-qmp.sock"), std::string::npos);
    }
  });
}

}  // namespace
}  // namespace ldm::hypervisor::qemu
