#include "hypervisor/qemu/qmp_client.h"

#include "base/async.h"
#include <fmt/format.h>

namespace ldm::hypervisor::qemu {

using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
using json = nlohmann::json;

namespace {
constexpr size_t kMaxLine = 16 * 1024 * 1024;  // query replies are small; this only stops a runaway peer
constexpr auto kNoError = kNoThrow;
}  // namespace

QmpClient::QmpClient(asio::local::stream_protocol::socket socket) : socket_(std::move(socket)), buffer_(kMaxLine) {}

awaitable<Result<std::shared_ptr<QmpClient>>> QmpClient::connect(const std::string& path,
                                                                 std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  asio::local::stream_protocol::socket socket(executor);
  asio::steady_timer timer(executor, timeout);
  auto result = co_await (socket.async_connect(asio::local::stream_protocol::endpoint(path), kNoError) ||
                          timer.async_wait(kNoError));
  if (result.index() == 1) co_return fail(fmt::format("QMP socket {}: no connection within {} ms", path, timeout.count()));
  if (auto [ec] = std::get<0>(result); ec) co_return fail(fmt::format("QMP socket {}: {}", path, ec.message()));

  auto client = std::make_shared<QmpClient>(std::move(socket));
  auto greeting = co_await client->read_line(timeout);
  if (!greeting) co_return fail(greeting.error());
  auto g = json::parse(*greeting, nullptr, false);
  if (g.is_discarded() || !g.contains("QMP"))
    co_return fail(fmt::format("QMP socket {}: expected a QMP greeting, got '{}'", path, greeting->substr(0, 200)));

  asio::co_spawn(executor, client->reader(), asio::detached);
  auto caps = co_await client->execute("qmp_capabilities", nullptr, timeout);
  if (!caps) co_return fail(caps.error());
  co_return client;
}

awaitable<Result<std::string>> QmpClient::read_line(std::chrono::milliseconds timeout) {
  asio::steady_timer timer(socket_.get_executor(), timeout);
  auto result = co_await (asio::async_read_until(socket_, buffer_, '\n', kNoError) || timer.async_wait(kNoError));
  if (result.index() == 1) co_return fail(fmt::format("QMP: no answer within {} ms", timeout.count()));
  auto [ec, n] = std::get<0>(result);
  if (ec) co_return fail(ec == asio::error::not_found ? std::string("QMP: message too long") : "QMP: " + ec.message());
  std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + static_cast<long>(n));
  buffer_.consume(n);
  co_return line;
}

awaitable<void> QmpClient::reader() {
  auto self = shared_from_this();
  while (open_) {
    auto [ec, n] = co_await asio::async_read_until(socket_, buffer_, '\n', kNoError);
    if (ec) {
      close(ec == asio::error::eof ? "QEMU closed its monitor" : "QMP: " + ec.message());
      co_return;
    }
    std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + static_cast<long>(n));
    buffer_.consume(n);
    dispatch(line);
  }
}

void QmpClient::dispatch(const std::string& line) {
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    // A monitor that speaks garbage cannot be trusted to answer the right request.
    close(fmt::format("QMP: malformed message from QEMU: '{}'", line.substr(0, 200)));
    return;
  }
  if (j.contains("event") && j["event"].is_string()) {
    if (on_event_) on_event_(j["event"].get<std::string>(), j.value("data", json::object()));
    return;
  }
  if (!j.contains("id") || !j["id"].is_number_unsigned()) return;  // a reply we did not ask for
  auto it = pending_.find(j["id"].get<uint64_t>());
  if (it == pending_.end()) return;  // its waiter already timed out
  Pending* p = it->second;
  pending_.erase(it);
  if (j.contains("return")) {
    p->reply = j["return"];
  } else {
    std::string desc = "QEMU refused the command";
    if (j.contains("error") && j["error"].is_object() && j["error"].contains("desc") && j["error"]["desc"].is_string())
      desc = j["error"]["desc"].get<std::string>();
    p->reply = fail(desc);
  }
  p->signal->cancel();
}

void QmpClient::send(std::string line) {
  outbox_.push_back(std::move(line));
  if (!writing_) {
    writing_ = true;
    asio::co_spawn(socket_.get_executor(), writer(), asio::detached);
  }
}

awaitable<void> QmpClient::writer() {
  auto self = shared_from_this();
  while (!outbox_.empty() && open_) {
    std::string line = std::move(outbox_.front());
    outbox_.pop_front();
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(line), kNoError);
    if (ec) {
      close("QMP: " + ec.message());
      break;
    }
  }
  writing_ = false;
}

awaitable<Result<json>> QmpClient::execute(const std::string& command, json arguments,
                                           std::chrono::milliseconds timeout) {
  if (!open_) co_return fail(fmt::format("QMP: cannot send {}: the monitor is closed", command));
  auto self = shared_from_this();
  uint64_t id = next_id_++;
  json request = {{"execute", command}, {"id", id}};
  if (!arguments.is_null()) request["arguments"] = std::move(arguments);

  asio::steady_timer signal(socket_.get_executor(), timeout);
  Pending pending{std::nullopt, &signal};
  pending_[id] = &pending;
  send(request.dump() + "\n");
  co_await signal.async_wait(kNoError);
  pending_.erase(id);
  if (!pending.reply) co_return fail(fmt::format("QMP: no reply to {} within {} ms", command, timeout.count()));
  if (!*pending.reply) co_return fail(fmt::format("QEMU: {}: {}", command, pending.reply->error().text()));
  co_return std::move(**pending.reply);
}

void QmpClient::close(const std::string& reason) {
  if (!open_) return;
  open_ = false;
  asio::error_code ignored;
  socket_.close(ignored);
  for (auto& [id, p] : pending_) {
    p->reply = fail(reason);
    p->signal->cancel();
  }
  pending_.clear();
  if (on_close_) on_close_(reason);
}

}  // namespace ldm::hypervisor::qemu
