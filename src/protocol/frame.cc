#include "protocol/frame.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace ldm::protocol {

using json = nlohmann::json;

namespace {

enum class Kind { String, Integer, Boolean, Object, Array };

struct Member {
  std::string_view name;
  Kind kind;
  bool required;
};

struct Shape {
  std::string_view type;
  std::initializer_list<Member> members;
};

// Every message either end may send. Members not listed are ignored (a newer
// peer may add some); listed ones must have their type.
constexpr Kind S = Kind::String, I = Kind::Integer, B = Kind::Boolean, O = Kind::Object, A = Kind::Array;
const Shape kShapes[] = {
    {"hello", {{"min_version", I, false}, {"max_version", I, false}, {"version", I, false}, {"host", S, false}}},
    {"auth", {{"user", S, true}, {"password", S, true}}},
    {"authenticated", {}},
    {"check", {{"domain", O, true}, {"target_name", S, false}, {"dry_run", B, false}, {"source", O, false}}},
    {"checked", {{"failures", A, true}, {"warnings", A, false}}},
    {"prepare", {{"domain", O, true}, {"target_name", S, false}, {"dry_run", B, false}, {"source", O, false}}},
    {"prepared", {{"address", S, false}, {"port", I, false}}},
    {"progress", {{"status", O, true}}},
    {"commit", {}},
    {"committed", {}},
    {"abandon", {{"reason", S, false}}},
    {"abandoned", {}},
    {"query", {{"uuid", S, true}, {"resolve", B, false}}},
    {"status", {{"exists", B, true}, {"running", B, true}, {"committed", B, false}, {"undecided", B, false}}},
    {"error", {{"messages", A, true}}},
};

bool has_kind(const json& value, Kind kind) {
  switch (kind) {
    case Kind::String: return value.is_string();
    case Kind::Integer: return value.is_number_integer();
    case Kind::Boolean: return value.is_boolean();
    case Kind::Object: return value.is_object();
    case Kind::Array: return value.is_array();
  }
  return false;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::String: return "a string";
    case Kind::Integer: return "an integer";
    case Kind::Boolean: return "a boolean";
    case Kind::Object: return "an object";
    case Kind::Array: return "an array";
  }
  return "?";
}

}  // namespace

std::array<uint8_t, 4> encode_length(uint32_t n) {
  return {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
          static_cast<uint8_t>(n)};
}

Result<uint32_t> decode_length(const std::array<uint8_t, 4>& h) {
  uint32_t n = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | uint32_t{h[3]};
  if (n == 0 || n > kMaxFrame) return fail(fmt::format("peer sent a frame of {} bytes (limit {})", n, kMaxFrame));
  return n;
}

Result<> check_shape(const json& m) {
  if (!m.is_object() || !m.contains("type") || !m["type"].is_string()) return fail("peer sent a malformed message");
  const std::string& type = m["type"].get_ref<const std::string&>();
  const Shape* shape = std::find_if(std::begin(kShapes), std::end(kShapes), [&](const Shape& s) { return s.type == type; });
  if (shape == std::end(kShapes)) return fail(fmt::format("peer sent an unknown message type '{:.40}'", type));
  for (const Member& member : shape->members) {
    auto it = m.find(member.name);
    if (it == m.end()) {
      if (member.required) return fail(fmt::format("peer sent a '{}' message without '{}'", type, member.name));
      continue;
    }
    if (!has_kind(*it, member.kind))
      return fail(fmt::format("peer sent a '{}' message whose '{}' is not {}", type, member.name, kind_name(member.kind)));
  }
  if (type == "error")
    for (const auto& s : m["messages"])
      if (!s.is_string()) return fail("peer sent an 'error' message whose messages are not strings");
  if (type == "auth" && (m["user"].get_ref<const std::string&>().size() > kMaxUserName ||
                         m["password"].get_ref<const std::string&>().size() > kMaxPassword))
    return fail("peer sent credentials longer than allowed");
  return {};
}

bool floats_in_range(const json& value) {
  std::vector<const json*> pending{&value};
  while (!pending.empty()) {
    const json* v = pending.back();
    pending.pop_back();
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (!(d > -1.0 && d < 2147483648.0)) return false;
    } else if (v->is_structured()) {
      for (const auto& child : *v) pending.push_back(&child);
    }
  }
  return true;
}

Result<json> decode_message(const std::string& payload) {
  auto j = json::parse(payload, nullptr, false);
  if (j.is_discarded()) return fail("peer sent a malformed message");
  if (auto shape = check_shape(j); !shape) return fail(shape.error());
  if (!floats_in_range(j)) return fail("peer sent a number out of range");
  return j;
}

}  // namespace ldm::protocol
