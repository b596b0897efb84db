#include "base/result.h"

namespace ldm {

std::string Error::text() const {
  std::string out;
  for (const auto& m : messages) {
    if (!out.empty()) out += '\n';
    out += m;
  }
  return out;
}

}  // namespace ldm
