// The one place that pulls in Asio, so every file agrees on the same aliases.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>

namespace sluice::proxy {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
// Completion token that returns (error_code, result...) instead of throwing: for expected
// failures (peer gone, timer cancelled) on hot paths.
inline constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}  // namespace sluice::proxy
