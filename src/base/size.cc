#include "base/size.h"

#include <cctype>
#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace ldm {

Result<uint64_t> parse_size(std::string_view text) {
  auto bad = [&] {
    return fail(fmt::format("Invalid size '{}': use a number with an optional unit K, M, G or T (e.g. 256M, 1G)",
                            text));
  };
  if (text.empty()) return bad();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return bad();
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b') && unit.size() == 2) unit.remove_suffix(1);
  uint64_t scale = 1;
  if (unit.size() > 1) return bad();
  if (unit.size() == 1) {
    switch (std::toupper(static_cast<unsigned char>(unit[0]))) {
      case 'K': scale = KiB; break;
      case 'M': scale = MiB; break;
      case 'G': scale = GiB; break;
      case 'T': scale = 1024 * GiB; break;
      case 'B': scale = 1; break;
      default: return bad();
    }
  }
  if (value > std::numeric_limits<uint64_t>::max() / scale) return bad();
  return value * scale;
}

std::string format_size(uint64_t bytes) {
  static constexpr struct {
    uint64_t scale;
    char unit;
  } units[] = {{1024 * GiB, 'T'}, {GiB, 'G'}, {MiB, 'M'}, {KiB, 'K'}};
  for (const auto& u : units)
    if (bytes >= u.scale && bytes % u.scale == 0) return fmt::format("{}{}", bytes / u.scale, u.unit);
  return fmt::format("{}", bytes);
}

std::string format_address(uint64_t address) { return fmt::format("{:#x}", address); }

}  // namespace ldm
