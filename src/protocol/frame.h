// The peer protocol's framing and message shapes, without any I/O, so that a
// fuzzer and the unit tests reach exactly the code that reads the network.
//
// Frames: a 4-byte big-endian length, then one JSON object with a string
// member "type". Every message is checked against its shape (the members it
// must or may carry and their JSON types) before ldmd looks inside it; a
// message that does not fit is refused whole.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace ldm::protocol {

inline constexpr uint32_t kMaxFrame = 1024 * 1024;
// Credentials are short: the original allows passwords of 256 characters.
inline constexpr size_t kMaxPassword = 256;
inline constexpr size_t kMaxUserName = 256;

// Frame header <-> payload length; refuses empty and oversized frames.
std::array<uint8_t, 4> encode_length(uint32_t length);
Result<uint32_t> decode_length(const std::array<uint8_t, 4>& header);

// Parses one frame's payload: a JSON object with a string "type" whose
// members have the shape that type requires (see frame.cc for the table).
Result<nlohmann::json> decode_message(const std::string& payload);

// The shape check alone, for messages built in memory.
Result<> check_shape(const nlohmann::json& message);

// True when every number with a fraction or an exponent in `value` lies in
// (-1, 2^31): converting a double outside its target type's range is undefined
// behaviour, and ldmd reads such numbers into int and uint64_t fields. Whole
// numbers written without a fraction are not limited (their conversions are
// defined). Walks without recursion, so depth costs no stack.
bool floats_in_range(const nlohmann::json& value);

}  // namespace ldm::protocol
