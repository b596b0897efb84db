#include "protocol/control.h"

#include <fmt/format.h>

#include "base/messages.h"
#include "protocol/frame.h"

namespace ldm::protocol {

using json = nlohmann::json;

std::string encode(const Request& r) { return json{{"command", r.command}, {"args", r.args}}.dump() + "\n"; }

std::string encode(const Response& r) {
  json j = {{"ok", r.ok}};
  if (!r.result.is_null()) j["result"] = r.result;
  if (!r.notices.empty()) j["notices"] = r.notices;
  if (!r.errors.empty()) j["errors"] = r.errors;
  // Replace invalid UTF-8 (e.g. from a QEMU error) instead of throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<Request> decode_request(const std::string& line) {
  if (line.size() > kMaxControlMessage) return fail(msg::malformed_request("request too large"));
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded()) return fail(msg::malformed_request("not valid JSON"));
  if (!j.is_object()) return fail(msg::malformed_request("expected a JSON object"));
  if (!floats_in_range(j)) return fail(msg::malformed_request("a number is out of range"));
  if (!j.contains("command") || !j["command"].is_string())
    return fail(msg::malformed_request("missing string member 'command'"));
  Request r;
  r.command = j["command"].get<std::string>();
  if (j.contains("args")) {
    if (!j["args"].is_object()) return fail(msg::malformed_request("'args' must be an object"));
    r.args = j["args"];
  }
  return r;
}

Result<Response> decode_response(const std::string& line) {
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok") || !j["ok"].is_boolean())
    return fail("ldmd sent a malformed reply");
  Response r;
  r.ok = j["ok"].get<bool>();
  if (j.contains("result")) r.result = j["result"];
  auto strings = [&](const char* key, std::vector<std::string>& out) {
    if (j.contains(key) && j[key].is_array())
      for (const auto& s : j[key])
        if (s.is_string()) out.push_back(s.get<std::string>());
  };
  strings("notices", r.notices);
  strings("errors", r.errors);
  return r;
}

Result<std::string> get_string(const json& args, const char* key) {
  if (!args.contains(key) || !args[key].is_string())
    return fail(msg::malformed_request(fmt::format("missing string argument '{}'", key)));
  return args[key].get<std::string>();
}

Result<int64_t> get_int(const json& args, const char* key) {
  if (!args.contains(key) || !args[key].is_number_integer())
    return fail(msg::malformed_request(fmt::format("missing integer argument '{}'", key)));
  return args[key].get<int64_t>();
}

}  // namespace ldm::protocol
