// The one place that pulls in Asio, so every file agrees on the same aliases.
//
// Everything runs on an io_context's own executor type rather than the type-erased
// any_io_executor: every async operation and coroutine resume otherwise pays for copying,
// comparing and querying an erased executor, which showed up on the relay's hot path.
#pragma once

#include <chrono>

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>

namespace sluice::proxy {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

using executor = asio::io_context::executor_type;
template <class T = void>
using awaitable = asio::awaitable<T, executor>;
inline constexpr asio::use_awaitable_t<executor> use_awaitable;
// Completion token that returns (error_code, result...) instead of throwing: for expected
// failures (peer gone, timer cancelled) on hot paths.
inline constexpr auto as_tuple_awaitable = asio::as_tuple(use_awaitable);

using tcp_socket = asio::basic_stream_socket<tcp, executor>;
using tcp_acceptor = asio::basic_socket_acceptor<tcp, executor>;
using tcp_resolver = asio::ip::basic_resolver<tcp, executor>;
using steady_timer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, executor>;
}  // namespace sluice::proxy
