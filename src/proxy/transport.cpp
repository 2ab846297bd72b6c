#include "proxy/transport.hpp"

#include <cstring>

namespace sluice::proxy {

void ReadBuffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

asio::mutable_buffer ReadBuffer::prepare(size_t min_free) {
  if (data_.size() - end_ < min_free && begin_ > 0) {
    std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (data_.size() - end_ < min_free) data_.resize(end_ + min_free);
  return asio::buffer(data_.data() + end_, data_.size() - end_);
}

void ReadBuffer::shrink_if_idle() {
  constexpr size_t kKeep = 64 * 1024;
  if (empty() && data_.size() > kKeep) {
    data_.resize(kKeep);
    data_.shrink_to_fit();
  }
}

Transport::Transport(tcp::socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ec;
  auto endpoint = socket_.remote_endpoint(ec);
  if (!ec) peer_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  socket_.set_option(tcp::no_delay(true), ec);
}

Transport::~Transport() {
  close();
}

tcp::socket& Transport::socket() {
  return tls_ ? tls_->next_layer() : socket_;
}

bool Transport::is_open() const {
  return tls_ ? tls_->next_layer().is_open() : socket_.is_open();
}

void Transport::close() {
  boost::system::error_code ec;
  socket().shutdown(tcp::socket::shutdown_both, ec);
  socket().close(ec);
}

awaitable<void> Transport::start_tls_as_server(ssl::context& ctx) {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket_), ctx);
  co_await tls_->async_handshake(ssl::stream_base::server, use_awaitable);
}

awaitable<void> Transport::start_tls_as_client(ssl::context& ctx, const std::string& sni,
                                               bool verify_host) {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket_), ctx);
  if (!sni.empty()) {
    boost::system::error_code ec;
    asio::ip::make_address(sni, ec);
    // SNI carries host names only, never IP literals (RFC 6066).
    if (ec) SSL_set_tlsext_host_name(tls_->native_handle(), sni.c_str());
    if (verify_host) tls_->set_verify_callback(ssl::host_name_verification(sni));
  }
  co_await tls_->async_handshake(ssl::stream_base::client, use_awaitable);
}

awaitable<bool> Transport::read_some(ReadBuffer& buffer, size_t min_free) {
  auto space = buffer.prepare(min_free);
  boost::system::error_code ec;
  size_t n = 0;
  if (tls_)
    std::tie(ec, n) = co_await tls_->async_read_some(space, as_tuple_awaitable);
  else
    std::tie(ec, n) = co_await socket_.async_read_some(space, as_tuple_awaitable);
  buffer.commit(n);
  co_return !ec || n > 0;
}

awaitable<bool> Transport::write_all(std::string_view data) {
  // One writer at a time: Asio forbids overlapping writes on a stream.
  while (writing_) {
    if (!write_waiters_)
      write_waiters_ = std::make_unique<asio::steady_timer>(socket().get_executor(),
                                                            asio::steady_timer::time_point::max());
    co_await write_waiters_->async_wait(as_tuple_awaitable);
  }
  writing_ = true;
  boost::system::error_code ec;
  if (tls_)
    std::tie(ec, std::ignore) =
        co_await asio::async_write(*tls_, asio::buffer(data), as_tuple_awaitable);
  else
    std::tie(ec, std::ignore) =
        co_await asio::async_write(socket_, asio::buffer(data), as_tuple_awaitable);
  writing_ = false;
  if (write_waiters_) write_waiters_->cancel();
  co_return !ec;
}

}  // namespace sluice::proxy
