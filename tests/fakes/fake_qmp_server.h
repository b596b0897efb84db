// A scripted QMP server on a unix socket, standing in for QEMU's monitor in
// unit tests. For each request line, `respond` returns the raw lines to send
// back (none = never answer), so tests can script replies, events, errors,
// silence and garbage.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "base/async.h"

namespace ldm::testing {

class FakeQmpServer {
 public:
  using Responder = std::function<std::vector<std::string>(const nlohmann::json& request)>;

  FakeQmpServer(asio::io_context& io, std::string path, Responder respond, bool send_greeting = true)
      : acceptor_(io), path_(std::move(path)), respond_(std::move(respond)), greeting_(send_greeting) {
    std::filesystem::remove(path_);
    acceptor_.open(asio::local::stream_protocol());
    acceptor_.bind(asio::local::stream_protocol::endpoint(path_));
    acceptor_.listen();
    asio::co_spawn(io, serve(), asio::detached);
  }
  ~FakeQmpServer() { std::filesystem::remove(path_); }

  // Replies in QMP's shape.
  static std::string reply(const nlohmann::json& request, const nlohmann::json& value) {
    return nlohmann::json{{"return", value}, {"id", request["id"]}}.dump() + "\r\n";
  }
  static std::string error(const nlohmann::json& request, const std::string& desc) {
    return nlohmann::json{{"error", {{"class", "GenericError"}, {"desc", desc}}}, {"id", request["id"]}}.dump() +
           "\r\n";
  }
  static std::string event(const std::string& name, const nlohmann::json& data) {
    return nlohmann::json{{"event", name}, {"data", data}, {"timestamp", {{"seconds", 1}, {"microseconds", 2}}}}
               .dump() +
           "\r\n";
  }

  // Closes the client connection, as QEMU does when it exits.
  void hang_up() {
    asio::error_code ignored;
    if (client_) client_->close(ignored);
  }

 private:
  asio::awaitable<void> serve() {
    auto [ec, socket] = co_await acceptor_.async_accept(kNoThrow);
    if (ec) co_return;
    client_ = std::make_unique<asio::local::stream_protocol::socket>(std::move(socket));
    if (greeting_) co_await write(R"({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 22}}, "capabilities": ["oob"]}})"
                                  "\r\n");
    asio::streambuf buffer;
    for (;;) {
      auto [rec, n] = co_await asio::async_read_until(*client_, buffer, '\n', kNoThrow);
      if (rec) co_return;
      std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + static_cast<long>(n));
      buffer.consume(n);
      auto request = nlohmann::json::parse(line);
      std::vector<std::string> out;
      if (request["execute"].get<std::string>() == "qmp_capabilities")
        out = {reply(request, nlohmann::json::object())};
      else
        out = respond_(request);
      for (const auto& l : out) co_await write(l);
    }
  }
  asio::awaitable<void> write(const std::string& text) {
    (void)co_await asio::async_write(*client_, asio::buffer(text), kNoThrow);
  }

  asio::local::stream_protocol::acceptor acceptor_;
  std::unique_ptr<asio::local::stream_protocol::socket> client_;
  std::string path_;
  Responder respond_;
  bool greeting_;
};

}  // namespace ldm::testing
