// Memory sizes as the original writes them: "256M", "1G", "512K", plain bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ldm {

inline constexpr uint64_t KiB = 1024;
inline constexpr uint64_t MiB = 1024 * KiB;
inline constexpr uint64_t GiB = 1024 * MiB;

// Parses "256M", "1G", "4096", "2048K" (units K/M/G/T, case-insensitive; an
// optional trailing "B" is accepted). Bare numbers are bytes, as in ldm.
Result<uint64_t> parse_size(std::string_view text);

// The shortest exact form: 268435456 -> "256M", 1536 MiB -> "1536M".
std::string format_size(uint64_t bytes);

// "0x8000000" style hex, as ldm prints real and physical addresses.
std::string format_address(uint64_t address);

}  // namespace ldm
