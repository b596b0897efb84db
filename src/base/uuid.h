#pragma once

#include <string>

namespace ldm {

// A random (version 4) UUID in the canonical 8-4-4-4-12 lowercase form.
std::string make_uuid();

// True for the canonical 36-character form.
bool valid_uuid(const std::string& text);

}  // namespace ldm
