#include "protocol/peer.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "base/async.h"

namespace ldm::protocol {

using json = nlohmann::json;
using namespace asio::experimental::awaitable_operators;

constexpr std::chrono::seconds kWriteTimeout{10};

asio::awaitable<Result<>> write_message(TlsStream& stream, const json& message) {
  std::string payload = message.dump(-1, ' ', false, json::error_handler_t::replace);
  if (payload.size() > kMaxFrame) co_return fail("message too large for the peer protocol");
  auto header = encode_length(static_cast<uint32_t>(payload.size()));
  std::array<asio::const_buffer, 2> buffers = {asio::buffer(header), asio::buffer(payload)};
  // Bounded: a TLS stream that has failed once can leave a later write
  // pending for ever, and a peer that stopped reading must not hold us.
  asio::steady_timer timer(stream.get_executor(), kWriteTimeout);
  auto written = co_await (asio::async_write(stream, buffers, kNoThrow) || timer.async_wait(kNoThrow));
  if (written.index() == 1)
    co_return fail(fmt::format("the other host did not take a message within {} seconds", kWriteTimeout.count()));
  if (auto [ec, n] = std::get<0>(written); ec) co_return fail("connection to the other host lost: " + ec.message());
  co_return Result<>{};
}

asio::awaitable<Result<json>> read_message(TlsStream& stream, std::chrono::milliseconds timeout) {
  asio::steady_timer timer(stream.get_executor(), timeout);
  std::array<uint8_t, 4> header{};
  auto first = co_await (asio::async_read(stream, asio::buffer(header), kNoThrow) || timer.async_wait(kNoThrow));
  if (first.index() == 1)
    co_return fail(fmt::format("the other host did not answer within {} seconds", timeout.count() / 1000));
  if (auto [ec, n] = std::get<0>(first); ec) co_return fail("connection to the other host lost: " + ec.message());
  auto length = decode_length(header);
  if (!length) co_return fail(length.error());
  std::string payload(*length, '\0');
  auto second = co_await (asio::async_read(stream, asio::buffer(payload), kNoThrow) || timer.async_wait(kNoThrow));
  if (second.index() == 1)
    co_return fail(fmt::format("the other host did not answer within {} seconds", timeout.count() / 1000));
  if (auto [ec, n] = std::get<0>(second); ec) co_return fail("connection to the other host lost: " + ec.message());
  auto message = decode_message(payload);
  // Wipe the raw bytes: an 'auth' message carries a password.
  OPENSSL_cleanse(payload.data(), payload.size());
  co_return message;
}

asio::awaitable<Result<json>> expect_message(TlsStream& stream, const std::string& type,
                                             std::chrono::milliseconds timeout) {
  auto m = co_await read_message(stream, timeout);
  if (!m) co_return m;
  std::string got = (*m)["type"].get<std::string>();
  if (got == "error") {
    std::vector<std::string> messages;
    if (m->contains("messages") && (*m)["messages"].is_array())
      for (const auto& s : (*m)["messages"])
        if (s.is_string()) messages.push_back(s.get<std::string>());
    if (messages.empty()) messages.push_back("the other host refused the request");
    co_return fail(Error(messages));
  }
  if (got != type) co_return fail(fmt::format("the other host answered '{}' where '{}' was expected", got, type));
  co_return m;
}

}  // namespace ldm::protocol
