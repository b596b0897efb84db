// The ldmd-to-ldmd migration protocol, version 1: one TLS connection per
// migration, opened by the source. Small enough to read in one sitting.
//
//   source ldmd                                         target ldmd
//     |-- hello {min_version, max_version, host} ------->|
//     |<------------------ hello {version, host} --------|  or error {message}: older target
//     |-- check {domain, target_name, dry_run} ---------->|  phase 1: every check, on the target
//     |<------------------ checked {failures: [...]} ----|  all failures at once
//     |-- prepare {domain, target_name} ----------------->|  phase 2: target journals and creates
//     |<------------------ prepared {address, port} -----|    the domain (FLAGS t); an active one
//     |                                                  |    gets a paused QEMU waiting for the stream
//     |== QEMU migration stream (QEMU's own TLS) ========>|  phases 3-4 (active domains only)
//     |-- commit ---------------------------------------->|  phase 5: target journals, resumes
//     |<------------------ committed --------------------|    the guest, then acknowledges;
//     |   source destroys its copy only now               |
//     |-- abandon {reason} ------------------------------>|  any time before commit: the target
//     |<------------------ abandoned --------------------|    removes everything it made
//
// Frames and message shapes: protocol/frame.h. Frames larger than kMaxFrame
// are refused before parsing; a message of the wrong shape is refused whole.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <nlohmann/json.hpp>

#include "base/result.h"
#include "protocol/frame.h"

namespace ldm::protocol {

inline constexpr int kPeerVersion = 1;
inline constexpr int kMinPeerVersion = 1;
inline constexpr uint16_t kDefaultPeerPort = 6482;

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

asio::awaitable<Result<>> write_message(TlsStream& stream, const nlohmann::json& message);
asio::awaitable<Result<nlohmann::json>> read_message(TlsStream& stream, std::chrono::milliseconds timeout);

// Reads a message and requires its type (an "error" message becomes an Error).
asio::awaitable<Result<nlohmann::json>> expect_message(TlsStream& stream, const std::string& type,
                                                       std::chrono::milliseconds timeout);

}  // namespace ldm::protocol
