// The local control protocol between ldm and ldmd, on a unix stream socket.
//
// One JSON object per line each way:
//   request   {"command": "bind-domain", "args": {"name": "ldg1"}}
//   response  {"ok": true, "result": ..., "notices": ["..."]}
//          or {"ok": false, "errors": ["...", "..."]}
// A connection may carry several requests in turn. Requests are bounded in
// size and validated field by field; a malformed one gets an error reply and
// changes nothing.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace ldm::protocol {

inline constexpr size_t kMaxControlMessage = 1024 * 1024;
inline constexpr const char* kDefaultSocket = "/run/ldmd/ldmd.sock";

struct Request {
  std::string command;
  nlohmann::json args = nlohmann::json::object();
};

struct Response {
  bool ok = true;
  nlohmann::json result;
  std::vector<std::string> notices;
  std::vector<std::string> errors;

  static Response failure(const Error& e) { return Response{false, nullptr, {}, e.messages}; }
};

std::string encode(const Request& r);
std::string encode(const Response& r);
Result<Request> decode_request(const std::string& line);
Result<Response> decode_response(const std::string& line);

// Typed access to request arguments with user-fit errors.
Result<std::string> get_string(const nlohmann::json& args, const char* key);
Result<int64_t> get_int(const nlohmann::json& args, const char* key);

}  // namespace ldm::protocol
