// Result<T>: the error-as-value type used at every subsystem boundary.
//
// An Error carries messages fit for the user (one per problem: migration
// checks report several at once) and never an exception. Third-party code that
// throws (nlohmann::json, asio with exceptions) is wrapped where it is called.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace ldm {

struct Error {
  std::vector<std::string> messages;

  Error() = default;
  explicit Error(std::string message) { messages.push_back(std::move(message)); }
  explicit Error(std::vector<std::string> all) : messages(std::move(all)) {}

  // All messages, one per line, as printed by ldm.
  [[nodiscard]] std::string text() const;
};

template <class T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message) { return tl::unexpected(Error(std::move(message))); }
inline tl::unexpected<Error> fail(Error error) { return tl::unexpected(std::move(error)); }

}  // namespace ldm
