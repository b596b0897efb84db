#include "protocol/peer.h"

#include <fmt/format.h>

#include "base/async.h"

namespace ldm::protocol {

using json = nlohmann::json;
using namespace asio::experimental::awaitable_operators;

std::array<uint8_t, 4> encode_length(uint32_t n) {
  return {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
          static_cast<uint8_t>(n)};
}

Result<uint32_t> decode_length(const std::array<uint8_t, 4>& h) {
  uint32_t n = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | uint32_t{h[3]};
  if (n == 0 || n > kMaxFrame) return fail(fmt::format("peer sent a frame of {} bytes (limit {})", n, kMaxFrame));
  return n;
}

Result<json> decode_message(const std::string& payload) {
  auto j = json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string())
    return fail("peer sent a malformed message");
  return j;
}

asio::awaitable<Result<>> write_message(TlsStream& stream, const json& message) {
  std::string payload = message.dump(-1, ' ', false, json::error_handler_t::replace);
  if (payload.size() > kMaxFrame) co_return fail("message too large for the peer protocol");
  auto header = encode_length(static_cast<uint32_t>(payload.size()));
  std::array<asio::const_buffer, 2> buffers = {asio::buffer(header), asio::buffer(payload)};
  auto [ec, n] = co_await asio::async_write(stream, buffers, kNoThrow);
  if (ec) co_return fail("connection to the other host lost: " + ec.message());
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
  co_return decode_message(payload);
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
