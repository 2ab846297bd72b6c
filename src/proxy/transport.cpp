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

Transport::Transport(tcp_socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ec;
  auto endpoint = socket_.remote_endpoint(ec);
  if (!ec) peer_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  socket_.set_option(tcp::no_delay(true), ec);
  // Writes try a plain send first and wait only if the socket buffer is full.
  socket_.non_blocking(true, ec);
}

bool Transport::send_now(std::string_view& data) {
  boost::system::error_code ec;
  const size_t sent = socket_.write_some(asio::buffer(data), ec);
  data.remove_prefix(sent);
  return !ec || ec == asio::error::would_block || ec == asio::error::try_again;
}

awaitable<bool> Transport::send(std::string_view data) {
  // Almost always done in one non-blocking send, without an async operation whose
  // completion would be queued and resumed later.
  if (!send_now(data)) co_return false;
  if (data.empty()) co_return true;
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(data), as_tuple_awaitable);
  co_return !ec;
}

Transport::~Transport() {
  close();
}

tcp_socket& Transport::socket() {
  return socket_;
}

bool Transport::is_open() const {
  return socket_.is_open();
}

void Transport::close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp_socket::shutdown_both, ec);
  socket_.close(ec);
}

void Transport::SslFree::operator()(SSL* ssl) const {
  SSL_free(ssl);
}

namespace {
// The thread's OpenSSL error queue is kept empty: whoever sees a failure takes the error and
// clears the rest. So the hot path need not clear it before every call (it is not free).
boost::system::error_code last_tls_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code) return {static_cast<int>(code), asio::error::get_ssl_category()};
  return asio::error::connection_reset;
}
}  // namespace

void Transport::start_tls(ssl::context& ctx) {
  SSL* ssl = SSL_new(ctx.native_handle());
  if (!ssl) throw boost::system::system_error(asio::error::no_memory);
  tls_.reset(ssl);
  tls_in_ = BIO_new(BIO_s_mem());
  tls_out_ = BIO_new(BIO_s_mem());
  if (!tls_in_ || !tls_out_) {
    BIO_free(tls_in_);
    BIO_free(tls_out_);
    throw boost::system::system_error(asio::error::no_memory);
  }
  // An empty incoming BIO means "wait for more", not EOF.
  BIO_set_mem_eof_return(tls_in_, -1);
  SSL_set_bio(ssl, tls_in_, tls_out_);
}

awaitable<void> Transport::take_write_turn() {
  // One writer at a time: writes on a stream must not overlap.
  while (writing_) {
    if (!write_waiters_)
      write_waiters_ =
          std::make_unique<steady_timer>(socket_.get_executor(), steady_timer::time_point::max());
    co_await write_waiters_->async_wait(as_tuple_awaitable);
  }
  writing_ = true;
}

void Transport::give_write_turn() {
  writing_ = false;
  if (write_waiters_) write_waiters_->cancel();
}

awaitable<bool> Transport::send_tls_output() {
  bool ok = true;
  while (ok && BIO_ctrl_pending(tls_out_) > 0) {
    // Copied out first: a concurrent SSL_read may append to the BIO while this send waits.
    cipher_out_.resize(BIO_ctrl_pending(tls_out_));
    const int n = BIO_read(tls_out_, cipher_out_.data(), static_cast<int>(cipher_out_.size()));
    if (n <= 0) break;
    ok = co_await send(std::string_view(cipher_out_.data(), static_cast<size_t>(n)));
  }
  co_return ok;
}

awaitable<bool> Transport::send_tls_output_in_turn() {
  if (writing_)
    co_await take_write_turn();
  else
    writing_ = true;
  const bool sent = co_await send_tls_output();
  give_write_turn();
  co_return sent;
}

awaitable<bool> Transport::receive_tls_input(asio::mutable_buffer scratch,
                                             boost::system::error_code& error) {
  auto [ec, n] = co_await socket_.async_read_some(scratch, as_tuple_awaitable);
  if (n > 0) BIO_write(tls_in_, scratch.data(), static_cast<int>(n));
  if (ec && n == 0) {
    error = ec;
    co_return false;
  }
  co_return true;
}

awaitable<void> Transport::handshake() {
  SSL* ssl = tls_.get();
  std::vector<char> scratch(16 * 1024);  // only while handshaking
  for (;;) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl);
    const int reason = result == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, result);
    boost::system::error_code error = reason == SSL_ERROR_NONE || reason == SSL_ERROR_WANT_READ
                                          ? boost::system::error_code{}
                                          : last_tls_error();
    // Flight out first (even on failure: it may carry the alert that says why).
    const bool sent = co_await send_tls_output_in_turn();
    if (error) throw boost::system::system_error(error);
    if (!sent) throw boost::system::system_error(asio::error::connection_reset);
    if (reason == SSL_ERROR_NONE) co_return;
    if (!co_await receive_tls_input(asio::buffer(scratch), error))
      throw boost::system::system_error(error);
  }
}

awaitable<void> Transport::start_tls_as_server(ssl::context& ctx) {
  start_tls(ctx);
  SSL_set_accept_state(tls_.get());
  co_await handshake();
}

awaitable<void> Transport::start_tls_as_client(ssl::context& ctx, const std::string& sni,
                                               bool verify_host) {
  start_tls(ctx);
  SSL_set_connect_state(tls_.get());
  if (!sni.empty()) {
    boost::system::error_code ec;
    asio::ip::make_address(sni, ec);
    const bool is_ip = !ec;
    // SNI carries host names only, never IP literals (RFC 6066).
    if (!is_ip) SSL_set_tlsext_host_name(tls_.get(), sni.c_str());
    if (verify_host) {
      X509_VERIFY_PARAM* param = SSL_get0_param(tls_.get());
      const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, sni.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, sni.c_str(), 0);
      if (!ok) throw boost::system::system_error(asio::error::invalid_argument);
    }
  }
  co_await handshake();
}

awaitable<bool> Transport::read_some(ReadBuffer& buffer, size_t min_free) {
  auto space = buffer.prepare(min_free);
  if (!tls_) {
    auto [ec, n] = co_await socket_.async_read_some(space, as_tuple_awaitable);
    buffer.commit(n);
    co_return !ec || n > 0;
  }
  // Nothing buffered anywhere: wait for bytes rather than ask OpenSSL to find none.
  bool need_input = BIO_ctrl_pending(tls_in_) == 0 && !SSL_has_pending(tls_.get());
  for (;;) {
    if (need_input) {
      boost::system::error_code ec;
      // Ciphertext lands in the caller's free space and is copied into the BIO at once, so
      // the plaintext may overwrite it: no ciphertext buffer per connection.
      if (!co_await receive_tls_input(space, ec)) co_return false;
    }
    size_t n = 0;
    const int result = SSL_read_ex(tls_.get(), space.data(), space.size(), &n);
    if (result == 1) {
      buffer.commit(n);
      co_return true;
    }
    const int reason = SSL_get_error(tls_.get(), result);
    if (reason != SSL_ERROR_WANT_READ) {  // close_notify, or a TLS error
      ERR_clear_error();
      co_return false;
    }
    need_input = true;  // a partial record: more bytes are needed whatever is buffered
    if (BIO_ctrl_pending(tls_out_) > 0) {
      // Reading produced something to send (a key update answer, session tickets).
      if (!co_await send_tls_output_in_turn()) co_return false;
    }
  }
}

awaitable<bool> Transport::write_all(std::string_view data) {
  if (writing_)
    co_await take_write_turn();
  else
    writing_ = true;
  boost::system::error_code ec;
  if (tls_) {
    // Into the memory BIO, which never blocks, then out in one send.
    size_t written = 0;
    const bool encrypted =
        data.empty() || SSL_write_ex(tls_.get(), data.data(), data.size(), &written) == 1;
    if (!encrypted) ec = last_tls_error();
    if (!co_await send_tls_output() && !ec) ec = asio::error::connection_reset;
  } else if (!co_await send(data)) {
    ec = asio::error::connection_reset;
  }
  give_write_turn();
  co_return !ec;
}

}  // namespace sluice::proxy
