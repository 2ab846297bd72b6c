#include "proxy/transport.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <openssl/err.h>

#include "proxy/tls.hpp"

namespace sluice::proxy {
namespace {

// glibc's recv() and send() are thread cancellation points: each call flips the thread's
// cancellation state with two atomic operations around the system call. The proxy never
// cancels threads, and these run twice per message, so the system calls are made directly.
ssize_t raw_recv(int fd, void* data, size_t size, int flags) {
  return ::syscall(SYS_recvfrom, fd, data, size, flags, nullptr, nullptr);
}
ssize_t raw_send(int fd, const void* data, size_t size, int flags) {
  return ::syscall(SYS_sendto, fd, data, size, flags, nullptr, 0);
}

}  // namespace

void ReadBuffer::make_room(size_t min_free) {
  if (begin_ > 0) {
    std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (data_.size() - end_ < min_free) data_.resize(end_ + min_free);
}

void ReadBuffer::shrink() {
  data_.resize(kKeepWhenIdle);
  data_.shrink_to_fit();
}

Transport::Transport(Poller& poller, tcp_socket socket)
    : poller_(poller), executor_(socket.get_executor()) {
  boost::system::error_code ec;
  remote_ = socket.remote_endpoint(ec);
  socket.set_option(tcp::no_delay(true), ec);
  socket.non_blocking(true, ec);
  fd_ = socket.release(ec);
  if (ec) throw boost::system::system_error(ec);
  watch_.fd = fd_;
  try {
    poller_.add(watch_);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

Transport::Transport(Poller& poller, executor ex, int accepted_fd, const tcp::endpoint& remote)
    : poller_(poller), executor_(std::move(ex)), fd_(accepted_fd), remote_(remote) {
  watch_.fd = fd_;
  try {
    poller_.add(watch_);
  } catch (...) {
    ::close(std::exchange(fd_, -1));
    throw;
  }
}

Transport::Transport(Poller& poller, executor ex, Detached parts)
    : poller_(poller), executor_(std::move(ex)) {
  remote_ = parts.remote;
  tls_ = std::move(parts.tls);
  tls_in_ = parts.tls_in;
  tls_out_ = parts.tls_out;
  records_ = std::move(parts.records);
  records_pending_ = std::move(parts.records_pending);
  fd_ = std::exchange(parts.fd, -1);
  watch_.fd = fd_;
  try {
    poller_.add(watch_);
  } catch (...) {
    ::close(std::exchange(fd_, -1));
    throw;
  }
}

Transport::Detached Transport::detach() {
  Detached parts;
  if (fd_ < 0) return parts;
  poller_.remove(watch_);
  parts.fd = std::exchange(fd_, -1);
  parts.tls = std::move(tls_);
  parts.tls_in = std::exchange(tls_in_, nullptr);
  parts.tls_out = std::exchange(tls_out_, nullptr);
  parts.records = std::move(records_);
  parts.records_pending = std::move(records_pending_);
  parts.remote = remote_;
  return parts;
}

std::string Transport::peer() const {
  if (remote_.port() == 0) return {};  // unknown (remote_endpoint() failed)
  return remote_.address().to_string() + ":" + std::to_string(remote_.port());
}

Transport::Detached::~Detached() {
  if (fd >= 0) ::close(fd);
}

Transport::~Transport() {
  close();
}

void Transport::close() {
  if (fd_ < 0) return;
  send_close_notify();
  poller_.remove(watch_);
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
}

void Transport::send_close_notify() {
  // TLS says goodbye with close_notify, so the peer can tell an end from a truncation. Sent as
  // far as the socket takes it now: a close never waits.
  if (records_) {
    if (fd_ < 0 || goodbye_sent_) return;
    goodbye_sent_ = true;
    if (records_->seal_alert(tls::Alert::kCloseNotify, backlog_)) send_backlog_now();
    return;
  }
  if (!tls_ || fd_ < 0 || !SSL_is_init_finished(tls_.get()) ||
      (SSL_get_shutdown(tls_.get()) & SSL_SENT_SHUTDOWN))
    return;
  if (SSL_shutdown(tls_.get()) < 0) ERR_clear_error();
  take_tls_output();
  send_backlog_now();
}

void Transport::say_goodbye() {
  send_close_notify();
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

awaitable<void> Transport::close_gracefully(size_t still_to_come,
                                            std::chrono::steady_clock::duration limit) {
  // Closing at once, with the peer's bytes unread, makes the kernel send a reset; and a client
  // that sees the end of the stream while still sending (libpq) reports that, not the FATAL
  // waiting in its buffer. So the rest of what it is sending is read and dropped first; then
  // the goodbye (close_notify, the write side shut), also when it has gone quiet; then what it
  // still sends is dropped until it closes too.
  if (fd_ < 0) co_return;
  constexpr auto kQuiet = std::chrono::milliseconds(500);
  steady_timer deadline(executor_, limit);
  deadline.async_wait([this](boost::system::error_code ec) {
    if (!ec) close();  // cancelled first when all ends in time
  });
  if (has_backlog()) co_await flush();
  bool goodbye = still_to_come == 0;
  if (goodbye) say_goodbye();
  steady_timer quiet(executor_);
  auto goodbye_when_quiet = [&] {
    if (goodbye) return;
    quiet.expires_after(kQuiet);  // a wait still pending ends as cancelled
    quiet.async_wait([this, &goodbye](boost::system::error_code ec) {
      if (ec || goodbye) return;  // cancelled: the frame holding `goodbye` may be gone
      goodbye = true;
      say_goodbye();
    });
  };
  goodbye_when_quiet();
  ReadBuffer scratch;
  size_t taken = 0;
  constexpr size_t kAfterGoodbye = 1024 * 1024;
  while (fd_ >= 0 && taken < still_to_come + kAfterGoodbye) {
    const ReadStatus status = read_now(scratch);
    if (status == ReadStatus::kClosed) break;  // the peer's end of stream, or an error
    if (status == ReadStatus::kWouldBlock) {
      co_await readable();
      continue;
    }
    taken += scratch.readable().size();
    scratch.consume(scratch.readable().size());
    if (!goodbye && taken >= still_to_come) {
      goodbye = true;
      say_goodbye();
    }
    goodbye_when_quiet();
  }
  quiet.cancel();
  deadline.cancel();
  close();
}

ssize_t Transport::receive(asio::mutable_buffer space) {
  for (;;) {
    if (fd_ < 0) return 0;
    if (!watch_.readable) return -1;
    const ssize_t n = raw_recv(fd_, space.data(), space.size(), 0);
    if (n > 0) {
      // A short read drained the socket: the next byte brings a new edge (but not the EOF
      // that follows the peer's last bytes: the edge that brought them announced it too).
      if (static_cast<size_t>(n) < space.size() && !watch_.peer_closing) watch_.readable = false;
      return n;
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      watch_.readable = false;
      return -1;
    }
    return 0;
  }
}

void Transport::park_reader(Poller::ParkedReader& reader) {
  // One look at the socket per idle spell: bytes already there (their edge consumed without a
  // read) would otherwise wait for an edge that never comes.
  if (!watch_.readable && fd_ >= 0) {
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      spdlog::warn("client {}: bytes were waiting when its session parked", peer());
      watch_.readable = true;
    }
  }
  poller_.park_reader(watch_, reader);
}

bool Transport::peer_sent_something(bool look_now) {
  if (fd_ < 0 || !records_pending_.empty()) return true;
  if (!watch_.readable && !look_now) return false;
  char byte;
  const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    watch_.readable = false;
    return false;
  }
  return true;
}

bool Transport::send_now(std::string_view& data) {
  while (!data.empty()) {
    if (fd_ < 0) return false;
    if (!watch_.writable) return true;
    const ssize_t n = raw_send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      watch_.writable = false;
      return true;
    }
    return false;
  }
  return true;
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
  secrets_ = std::make_unique<tls::HandshakeSecrets>();
  capture_traffic_secrets(ssl, secrets_.get());
}

void Transport::hand_over_records(bool as_server, uint64_t records_written) {
  SSL* ssl = tls_.get();
  std::unique_ptr<tls::HandshakeSecrets> secrets = std::move(secrets_);
  capture_traffic_secrets(ssl, nullptr);
  // TLS 1.2 stays with OpenSSL (its keys come from the master secret, and it is rare now). So
  // does a connection OpenSSL already read application data for (never, without read-ahead).
  if (SSL_version(ssl) != TLS1_3_VERSION || !secrets || !secrets->complete() ||
      SSL_has_pending(ssl))
    return;
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  const auto suite = cipher ? tls::suite_from_id(SSL_CIPHER_get_protocol_id(cipher)) : std::nullopt;
  if (!suite) return;
  auto records = std::make_unique<tls::RecordLayer>(
      as_server ? tls::RecordLayer::Role::kServer : tls::RecordLayer::Role::kClient, *suite,
      *secrets, 0, records_written);
  // Bytes that came after the peer's Finished (its first request, say) are records under the
  // new keys: they are opened here now.
  std::string pending(BIO_ctrl_pending(tls_in_), '\0');
  if (!pending.empty()) {
    const int n = BIO_read(tls_in_, pending.data(), static_cast<int>(pending.size()));
    pending.resize(static_cast<size_t>(std::max(n, 0)));
  }
  records_ = std::move(records);
  records_pending_ = std::move(pending);
  tls_.reset();  // frees the BIOs too
  tls_in_ = tls_out_ = nullptr;
}

void Transport::release_idle_memory() {
  if (backlog_.empty()) std::string().swap(backlog_);
  if (records_) {
    records_->release_idle_memory();
    if (records_pending_.empty()) std::string().swap(records_pending_);
    return;
  }
  // Memory BIOs keep the largest buffer they ever held (a whole TLS record, or the handshake's
  // certificate flight): fresh empty ones replace them when nothing waits in either.
  if (!tls_ || BIO_ctrl_pending(tls_in_) != 0 || BIO_ctrl_pending(tls_out_) != 0) return;
  // OpenSSL's record buffers too (about 34 KB). Not SSL_MODE_RELEASE_BUFFERS, which frees and
  // takes them again on every record: 7 % more instructions per TLS transaction.
  SSL_free_buffers(tls_.get());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (!in || !out) {
    BIO_free(in);
    BIO_free(out);
    return;
  }
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(tls_.get(), in, out);  // frees the old pair
  tls_in_ = in;
  tls_out_ = out;
}

awaitable<void> Transport::take_write_turn() {
  // One writer at a time: writes on a stream must not overlap.
  while (writing_) {
    if (!write_waiters_)
      write_waiters_ = std::make_unique<steady_timer>(executor_, steady_timer::time_point::max());
    co_await write_waiters_->async_wait(as_tuple_awaitable);
  }
  writing_ = true;
}

void Transport::give_write_turn() {
  writing_ = false;
  if (write_waiters_) write_waiters_->cancel();
}

void Transport::take_tls_output() {
  const size_t pending = BIO_ctrl_pending(tls_out_);
  if (pending == 0) return;
  const size_t old = backlog_.size();
  backlog_.resize(old + pending);
  const int n = BIO_read(tls_out_, backlog_.data() + old, static_cast<int>(pending));
  backlog_.resize(old + static_cast<size_t>(std::max(n, 0)));
}

bool Transport::send_backlog_now() {
  if (backlog_.empty()) return fd_ >= 0;
  std::string_view rest(backlog_.data() + backlog_sent_, backlog_.size() - backlog_sent_);
  if (!send_now(rest)) return false;
  backlog_sent_ = backlog_.size() - rest.size();
  if (rest.empty()) {
    backlog_.clear();
    backlog_sent_ = 0;
    // Memory of a large result goes back once it is out.
    if (backlog_.capacity() > 64 * 1024) backlog_.shrink_to_fit();
  }
  return true;
}

bool Transport::write(std::string_view data) {
  if (fd_ < 0) return false;
  if (records_) return write_records(data);
  if (tls_) {
    // Into the memory BIO, which never blocks, then out with the backlog. In pieces: a memory
    // BIO keeps the largest buffer it ever held, so a 20 MiB write would stay 20 MiB.
    constexpr size_t kPiece = 64 * 1024;
    do {
      const std::string_view piece = data.substr(0, kPiece);
      data.remove_prefix(piece.size());
      size_t written = 0;
      if (!piece.empty() && SSL_write_ex(tls_.get(), piece.data(), piece.size(), &written) != 1) {
        last_tls_error();  // takes the error off the queue; the caller only needs "failed"
        return false;
      }
      take_tls_output();
      if (!send_backlog_now()) return false;
    } while (!data.empty());
    return true;
  }
  if (backlog_.empty()) {
    // The common case: straight from the caller's buffer, no copy.
    if (!send_now(data)) return false;
    if (data.empty()) return true;
  }
  backlog_.append(data);
  return send_backlog_now();
}

awaitable<bool> Transport::flush() {
  for (;;) {
    if (!send_backlog_now()) co_return false;
    if (backlog_.empty()) co_return true;
    if (writing_) {
      // Another coroutine already waits for room: wait for it, then look again.
      co_await take_write_turn();
      give_write_turn();
      continue;
    }
    writing_ = true;
    co_await poller_.writable(watch_);
    give_write_turn();
  }
}

awaitable<bool> Transport::write_all(std::string_view data) {
  if (!write(data)) co_return false;
  if (backlog_.empty()) co_return true;
  co_return co_await flush();
}

awaitable<void> Transport::handshake(bool as_server, const TakeTurn& take_turn) {
  SSL* ssl = tls_.get();
  // Ciphertext goes through here into the BIO at once, so one buffer per thread serves every
  // handshake: none is allocated (and zero-filled) per login.
  thread_local std::array<char, 16 * 1024> scratch;
  for (;;) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl);
    const int reason = result == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, result);
    boost::system::error_code error = reason == SSL_ERROR_NONE || reason == SSL_ERROR_WANT_READ
                                          ? boost::system::error_code{}
                                          : last_tls_error();
    // What the last step sent under the application keys counts towards their sequence: a
    // server's last step sends only its session tickets (its Finished went out a step before);
    // a client's sends its Finished, under the handshake keys.
    uint64_t records_written = 0;
    if (reason == SSL_ERROR_NONE && as_server) {
      char* pending = nullptr;
      const long size = BIO_get_mem_data(tls_out_, &pending);
      if (size > 0) records_written = tls::count_records({pending, static_cast<size_t>(size)});
    }
    // Flight out first (even on failure: it may carry the alert that says why).
    take_tls_output();
    const bool sent = co_await flush();
    if (error) throw boost::system::system_error(error);
    if (!sent) throw boost::system::system_error(asio::error::connection_reset);
    if (reason == SSL_ERROR_NONE) {
      hand_over_records(as_server, records_written);
      co_return;
    }
    for (;;) {
      const ssize_t n = receive(asio::buffer(scratch));
      if (n > 0) {
        BIO_write(tls_in_, scratch.data(), static_cast<int>(n));
        // The step that answers the ClientHello is the expensive one (key exchange and
        // signature); the later ones take a few microseconds and need no turn.
        if (take_turn && !SSL_is_init_finished(ssl) && SSL_get_state(ssl) == TLS_ST_BEFORE)
          co_await take_turn();
        break;
      }
      if (n == 0) throw boost::system::system_error(asio::error::eof);
      co_await readable();
    }
  }
}

awaitable<void> Transport::start_tls_as_server(ssl::context& ctx, TakeTurn take_turn) {
  start_tls(ctx);
  SSL_set_accept_state(tls_.get());
  co_await handshake(true, take_turn);
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
  co_await handshake(false);
}

ReadStatus Transport::read_records(ReadBuffer& buffer, size_t min_free) {
  for (;;) {
    // After our close_notify the peer may still be sending (close_gracefully drops it), so
    // reads go on; after a fatal alert nothing it sends can be trusted.
    if (peer_said_goodbye_ || records_failed_) return ReadStatus::kClosed;
    // The start of a record kept from the last read goes first, then the socket's bytes; whole
    // records are opened in place, their plaintext packed at the front of the free space.
    const size_t held = records_pending_.size();
    auto space = buffer.prepare(std::max(min_free, held + tls::kMaxRecordSize));
    auto* base = static_cast<uint8_t*>(space.data());
    size_t have = held;
    // Only a partial record is kept between reads, except right after the handshake, when
    // what followed the peer's Finished may hold whole ones: those are opened before reading.
    if (tls::count_records(records_pending_) == 0) {
      const ssize_t n = receive(asio::buffer(base + held, space.size() - held));
      if (n == 0) return ReadStatus::kClosed;
      if (n < 0) return ReadStatus::kWouldBlock;
      have += static_cast<size_t>(n);
    }
    if (held) std::memcpy(base, records_pending_.data(), held);
    const size_t unsent = backlog_.size();
    const tls::RecordLayer::Opened opened = records_->open(base, have, backlog_);
    records_pending_.assign(reinterpret_cast<const char*>(base) + opened.consumed,
                            have - opened.consumed);
    if (opened.error) {
      // Say why, then nothing more: the caller closes.
      records_failed_ = true;
      if (goodbye_sent_) return ReadStatus::kClosed;
      goodbye_sent_ = true;
      if (records_->seal_alert(*opened.error, backlog_)) send_backlog_now();
      return ReadStatus::kClosed;
    }
    if (backlog_.size() != unsent && !send_backlog_now()) return ReadStatus::kClosed;
    peer_said_goodbye_ = opened.peer_closed;
    if (opened.plaintext > 0) {
      buffer.commit(opened.plaintext);
      return ReadStatus::kData;
    }
  }
}

bool Transport::write_records(std::string_view data) {
  // Sealed into a per-thread buffer and sent from there; only what the socket does not take
  // stays in the backlog, so an idle connection keeps no copy of its last reply.
  constexpr size_t kPiece = 64 * 1024;
  thread_local std::string sealed;
  if (goodbye_sent_) return false;  // nothing may follow close_notify or a fatal alert
  while (!data.empty()) {
    const std::string_view piece = data.substr(0, kPiece);
    data.remove_prefix(piece.size());
    if (!backlog_.empty()) {
      if (!records_->seal(piece, backlog_) || !send_backlog_now()) return false;
      continue;
    }
    sealed.clear();
    if (!records_->seal(piece, sealed)) return false;
    std::string_view rest(sealed);
    if (!send_now(rest)) return false;
    if (!rest.empty()) backlog_.append(rest);
  }
  return send_backlog_now();
}

ReadStatus Transport::read_now(ReadBuffer& buffer, size_t min_free) {
  if (records_) return read_records(buffer, min_free);
  auto space = buffer.prepare(min_free);
  if (!tls_) {
    const ssize_t n = receive(space);
    if (n > 0) {
      buffer.commit(static_cast<size_t>(n));
      return ReadStatus::kData;
    }
    return n == 0 ? ReadStatus::kClosed : ReadStatus::kWouldBlock;
  }
  SSL* ssl = tls_.get();
  // Nothing buffered anywhere: read the socket rather than ask OpenSSL to find none.
  bool need_input = BIO_ctrl_pending(tls_in_) == 0 && !SSL_has_pending(ssl);
  for (;;) {
    if (need_input) {
      // Ciphertext lands in the caller's free space and is copied into the BIO at once, so
      // the plaintext may overwrite it: no ciphertext buffer per connection.
      const ssize_t n = receive(space);
      if (n == 0) return ReadStatus::kClosed;
      if (n < 0) return ReadStatus::kWouldBlock;
      BIO_write(tls_in_, space.data(), static_cast<int>(n));
    }
    size_t n = 0;
    const int result = SSL_read_ex(ssl, space.data(), space.size(), &n);
    if (BIO_ctrl_pending(tls_out_) > 0) {
      // Reading produced something to send (a key update answer, session tickets): it goes
      // now if the socket takes it, else ahead of the next write.
      take_tls_output();
      if (!send_backlog_now()) return ReadStatus::kClosed;
    }
    if (result == 1) {
      buffer.commit(n);
      return ReadStatus::kData;
    }
    if (SSL_get_error(ssl, result) != SSL_ERROR_WANT_READ) {  // close_notify, or a TLS error
      ERR_clear_error();
      return ReadStatus::kClosed;
    }
    need_input = true;  // a partial record: more bytes are needed whatever is buffered
  }
}

awaitable<bool> Transport::read_some(ReadBuffer& buffer, size_t min_free) {
  for (;;) {
    const ReadStatus status = read_now(buffer, min_free);
    if (status == ReadStatus::kData) co_return true;
    if (status == ReadStatus::kClosed) co_return false;
    co_await readable();
  }
}

}  // namespace sluice::proxy
