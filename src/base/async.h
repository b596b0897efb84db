// Asio conventions for the whole tree: coroutines whose operations report
// errors as values (a tuple with the error_code first) instead of throwing.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

namespace ldm {

inline constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace ldm
