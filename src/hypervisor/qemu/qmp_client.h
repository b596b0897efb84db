// An asynchronous QMP client: one per running QEMU, on the daemon's event loop.
//
// Transport only: greeting and capabilities negotiation, request ids, replies
// matched to requests, asynchronous events, a timeout on every wait. Typed
// commands are built on execute(). Not thread-safe: use from one executor.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "base/result.h"

namespace ldm::hypervisor::qemu {

class QmpClient : public std::enable_shared_from_this<QmpClient> {
 public:
  using EventHandler = std::function<void(const std::string& event, const nlohmann::json& data)>;
  using CloseHandler = std::function<void(const std::string& reason)>;

  // Connects to the QMP socket at `path`, reads the greeting and enters command
  // mode, all within `timeout`.
  static asio::awaitable<Result<std::shared_ptr<QmpClient>>> connect(const std::string& path,
                                                                     std::chrono::milliseconds timeout);

  // Sends one command and waits for its reply. A QMP error becomes an Error
  // carrying QEMU's description; no reply within `timeout` is an Error too.
  asio::awaitable<Result<nlohmann::json>> execute(const std::string& command, nlohmann::json arguments = nullptr,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

  void set_event_handler(EventHandler handler) { on_event_ = std::move(handler); }
  // Called once when the connection ends (QEMU exited, or the stream broke).
  void set_close_handler(CloseHandler handler) { on_close_ = std::move(handler); }

  [[nodiscard]] bool is_open() const { return open_; }
  void close(const std::string& reason = "closed by ldmd");

  explicit QmpClient(asio::local::stream_protocol::socket socket);

 private:
  struct Pending {
    std::optional<Result<nlohmann::json>> reply;
    asio::steady_timer* signal;
  };

  asio::awaitable<Result<std::string>> read_line(std::chrono::milliseconds timeout);
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  void dispatch(const std::string& line);
  void send(std::string line);

  asio::local::stream_protocol::socket socket_;
  asio::streambuf buffer_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool open_ = true;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending*> pending_;
  EventHandler on_event_;
  CloseHandler on_close_;
};

}  // namespace ldm::hypervisor::qemu
