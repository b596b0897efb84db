#include "daemon/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "base/async.h"
#include "daemon/access.h"
#include "protocol/control.h"

namespace ldm::daemon {

using asio::awaitable;
using asio::local::stream_protocol;

namespace {

constexpr auto kNoError = kNoThrow;

awaitable<void> serve_client(stream_protocol::socket socket, Daemon& daemon) {
  // Groups are looked up per connection so that a group made after ldmd started counts.
  auto peer = peer_identity(socket.native_handle());
  Access access = peer ? access_of(*peer, lookup_access_groups()) : Access::None;
  asio::streambuf buffer(protocol::kMaxControlMessage + 1);
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(socket, buffer, '\n', kNoError);
    protocol::Response response;
    if (ec == asio::error::not_found) {
      response = protocol::Response::failure(Error("Malformed request: larger than 1 MiB"));
      (void)co_await asio::async_write(socket, asio::buffer(protocol::encode(response)), kNoError);
      co_return;  // the rest of the oversized line is unusable
    }
    if (ec) co_return;
    std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + static_cast<long>(n));
    buffer.consume(n);
    auto request = protocol::decode_request(line);
    // A migration request may carry the target's password: no copy of the raw line stays behind.
    OPENSSL_cleanse(line.data(), line.size());
    std::string denied = request && peer ? refusal(*peer, access, request->command) : "";
    if (request && !peer) denied = "Permission denied: the peer's credentials cannot be read";
    // Not a conditional expression: GCC 12 miscompiles co_await inside ?:.
    if (!request)
      response = protocol::Response::failure(request.error());
    else if (!denied.empty())
      response = protocol::Response::failure(Error(denied));
    else
      response = co_await daemon.handle(std::move(*request));
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(protocol::encode(response)), kNoError);
    if (wec) co_return;
  }
}

awaitable<void> accept_loop(stream_protocol::acceptor acceptor, Daemon& daemon) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoError);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("control socket: {}", ec.message());
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve_client(std::move(socket), daemon), asio::detached);
  }
}

}  // namespace

Result<> serve_control_socket(asio::io_context& io, Daemon& daemon, const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return fail(fmt::format("Control socket path {} is too long (at most {} characters)", path,
                            sizeof(sockaddr_un::sun_path) - 1));
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) mkdir(path.substr(0, slash).c_str(), 0755);
  unlink(path.c_str());
  stream_protocol::acceptor acceptor(io);
  asio::error_code ec;
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(stream_protocol::endpoint(path), ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(fmt::format("Cannot listen on control socket {}: {}", path, ec.message()));
  // Anyone may connect; each request is authorized by the peer's credentials.
  chmod(path.c_str(), 0666);
  asio::co_spawn(io, accept_loop(std::move(acceptor), daemon), asio::detached);
  return {};
}

}  // namespace ldm::daemon
