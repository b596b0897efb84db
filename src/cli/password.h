// Password mode of migrate-domain: where ldm gets the target's password.
// It never travels in argv: it comes from a private file (-p) or from the
// terminal, without echo, and goes to ldmd over the local socket only.
#pragma once

#include <string>

#include "base/result.h"
#include "base/secret.h"

namespace ldm::cli {

inline constexpr size_t kMaxPasswordLength = 256;

// The original's rules for -p: the first line is the password (its newline
// and every later line ignored), at most 256 characters, not empty.
Result<std::string> password_from_text(const std::string& text, const std::string& path);

// Reads `path` by those rules; refuses a file that group or others may read.
Result<std::string> read_password_file(const std::string& path);

// Asks on the controlling terminal ("Target Password: "), echo off.
Result<std::string> prompt_password(const std::string& prompt);

// The invoking user's name (user@ defaults to it).
std::string invoking_user();

}  // namespace ldm::cli
