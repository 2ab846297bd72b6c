// A byte stream to a client or a server: plain TCP, upgraded to TLS in place when the
// peer asks (clients: SSLRequest) or we ask (servers). Serializes writes so two coroutines
// may send on it without interleaving bytes.
//
// The socket leaves Asio once accepted or connected: its readiness comes from the Poller
// (see poller.hpp), and reads and writes are plain non-blocking recv()/send().
//
// TLS drives OpenSSL over two memory BIOs for the handshake: ciphertext comes in through the
// same speculative socket reads as plaintext connections, and goes out in one send per write.
// Once a TLS 1.3 handshake is done, OpenSSL hands over: the traffic secrets go to a
// tls::RecordLayer and the SSL object is freed (see src/tls/record_layer.hpp for why); TLS 1.2
// connections stay with OpenSSL throughout. Asio's
// ssl::stream layers composed operations per record, and an fd BIO would need a readiness
// wait, which Asio's edge-triggered epoll reactor re-arms with an epoll_ctl every time; both
// cost measurably more CPU per transaction than PgBouncer (see docs/architecture.md).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgwire/codec.hpp"
#include "proxy/asio.hpp"
#include "proxy/poller.hpp"
#include "tls/record_layer.hpp"

namespace sluice::proxy {

// Bytes received but not yet consumed. Grows only when one message needs it.
// Value-initializes nothing: a read buffer's free space is written by recv before anything reads
// it, and zero-filling 16 KB of room for a TLS record on every connection cost about 20,000
// instructions per login.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

class ReadBuffer {
 public:
  pgwire::Bytes readable() const { return {data_.data() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  // Inline, as prepare() and shrink_if_idle()'s common case: several times per transaction.
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Room for at least `min_free` more bytes (compacting first, growing if still short).
  asio::mutable_buffer prepare(size_t min_free) {
    if (data_.size() - end_ < min_free) make_room(min_free);
    return asio::buffer(data_.data() + end_, data_.size() - end_);
  }
  void commit(size_t n) { end_ += n; }
  // Releases memory of idle connections that once carried a large message.
  void shrink_if_idle() {
    if (empty() && data_.size() > kKeepWhenIdle) shrink();
  }
  // Gives all its memory back when nothing is buffered (an idle client's).
  void release_if_empty() {
    if (empty() && !data_.empty()) {
      Storage().swap(data_);
      begin_ = end_ = 0;
    }
  }

 private:
  static constexpr size_t kKeepWhenIdle = 64 * 1024;
  void make_room(size_t min_free);
  void shrink();

  using Storage = std::vector<uint8_t, UninitializedAllocator<uint8_t>>;
  Storage data_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

enum class ReadStatus { kData, kWouldBlock, kClosed };

class Transport {
 public:
  struct SslFree {
    void operator()(SSL* ssl) const;
  };
  // A connection's socket and TLS session between two workers (see detach()). Closes the
  // socket if no Transport takes it.
  struct Detached {
    Detached() = default;
    Detached(Detached&& other) noexcept
        : fd(std::exchange(other.fd, -1)),
          tls(std::move(other.tls)),
          tls_in(other.tls_in),
          tls_out(other.tls_out),
          records(std::move(other.records)),
          records_pending(std::move(other.records_pending)),
          remote(other.remote) {}
    Detached& operator=(Detached&& other) noexcept {
      if (this != &other) {
        std::swap(fd, other.fd);
        std::swap(tls, other.tls);
        std::swap(tls_in, other.tls_in);
        std::swap(tls_out, other.tls_out);
        std::swap(records, other.records);
        std::swap(records_pending, other.records_pending);
        std::swap(remote, other.remote);
      }
      return *this;
    }
    ~Detached();
    int fd = -1;
    std::unique_ptr<SSL, SslFree> tls;
    BIO* tls_in = nullptr;   // owned by tls
    BIO* tls_out = nullptr;  // owned by tls
    std::unique_ptr<tls::RecordLayer> records;
    std::string records_pending;
    tcp::endpoint remote;
  };

  // Takes the socket over from Asio.
  Transport(Poller& poller, tcp_socket socket);
  // Takes over a client connection accepted with accept4(SOCK_NONBLOCK): Asio never sees it
  // (registering it with Asio's reactor only to release it costs two epoll_ctl calls), and
  // TCP_NODELAY comes from the listening socket.
  Transport(Poller& poller, executor ex, int accepted_fd, const tcp::endpoint& remote);
  // Takes over a socket (and TLS session) another worker's Transport detached.
  Transport(Poller& poller, executor ex, Detached parts);
  // Stops watching the socket here and gives it, with its TLS session, to whoever takes the
  // connection over on another worker. Only when nothing is buffered, waited on or unsent;
  // this Transport is closed afterwards (without touching the socket).
  Detached detach();
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // TLS as the server side (a client sent SSLRequest and we answered 'S'). `take_turn`, if
  // set, is awaited before the handshake step that answers the ClientHello (see
  // LoginGate::next_step()).
  using TakeTurn = std::function<awaitable<void>()>;
  awaitable<void> start_tls_as_server(ssl::context& ctx, TakeTurn take_turn = {});
  // TLS as the client side, towards a PostgreSQL server. `sni` may be empty.
  awaitable<void> start_tls_as_client(ssl::context& ctx, const std::string& sni, bool verify_host);

  // Reading. The hot path is read_now() and, when it would block, `co_await readable()`:
  // no coroutine frame of our own per message. read_some() wraps both.
  //
  // Reads what is there now into `buffer` (plaintext, for TLS), without waiting.
  ReadStatus read_now(ReadBuffer& buffer, size_t min_free = 16384);
  // Returns once a read may find something (or the transport was closed).
  awaitable<void> readable() { return poller_.readable(watch_); }
  // See Poller::wait_readable_instead().
  bool wait_readable_instead(std::optional<Poller::Resume>& waiter) {
    return poller_.wait_readable_instead(watch_, waiter);
  }
  // Reads at least one byte into `buffer`; false on EOF or error (the peer is gone).
  awaitable<bool> read_some(ReadBuffer& buffer, size_t min_free = 16384);
  // False only while nothing can have arrived since read_now() last found the socket drained.
  bool may_have_input() const { return fd_ < 0 || watch_.readable; }
  // A server connection's socket (see Poller::Watch::first_in_batch).
  void serve_first_in_batch() { watch_.first_in_batch = true; }
  // See Poller::wake_reader() and Poller::park_reader().
  void wake_reader() { poller_.wake_reader(watch_); }
  void park_reader(Poller::ParkedReader& reader);

  // Writing. write() sends at once what the socket takes and keeps the rest, in order, in a
  // backlog; whoever wrote co_awaits flush() when has_backlog() says so, which is how a slow
  // reader slows down its writer. Writes never interleave, whichever coroutine makes them.
  //
  // False when the peer is gone.
  bool write(std::string_view data);
  bool has_backlog() const { return !backlog_.empty(); }
  // Waits until the backlog is sent; false when the peer is gone.
  awaitable<bool> flush();
  // write() and flush().
  awaitable<bool> write_all(std::string_view data);

  bool tls() const { return tls_ != nullptr || records_ != nullptr; }
  // Whether TLS records are ours now (OpenSSL handed the connection over after its handshake).
  bool tls_records_handed_over() const { return records_ != nullptr; }
  // Idle: gives back the TLS buffers and cipher contexts (taken again at the next record).
  void release_idle_memory();
  bool is_open() const { return fd_ >= 0; }
  // Closes now (after a TLS close_notify, as far as the socket takes it).
  void close();
  // Shuts the socket down both ways but keeps it open: a read under way ends (EOF) and writes
  // fail, as if the peer had gone, and the owner closes it as it would then.
  void shut_down() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }
  // Ends the connection so that the peer reads everything written first (a FATAL, say) rather
  // than a reset: `still_to_come` more bytes of what it is sending are read and dropped (or
  // until it goes quiet for half a second), then a close_notify for TLS and the write side shut,
  // then what it still sends is dropped until it closes too. All within `limit`; then closes.
  awaitable<void> close_gracefully(size_t still_to_come, std::chrono::steady_clock::duration limit);
  // Bytes (or EOF) may have arrived since the last read found the socket drained. Peeks only
  // when the poller saw an edge since, so asking costs nothing on a quiet socket; `look_now`
  // peeks anyway (the edge may be in a batch the poller has not reported yet).
  bool peer_sent_something(bool look_now = false);
  const executor& get_executor() const { return executor_; }
  const tcp::endpoint& remote_endpoint() const { return remote_; }
  // "address:port", for log lines (made when asked: an idle connection holds one string less).
  std::string peer() const;

 private:
  void start_tls(ssl::context& ctx);
  void send_close_notify();
  // close_notify, then the write side shut: the peer reads the end after all that was written.
  void say_goodbye();
  awaitable<void> handshake(bool as_server, const TakeTurn& take_turn = {});
  // After a TLS 1.3 handshake: the records are ours from here, OpenSSL's state is freed.
  // `records_written`: records OpenSSL sent under the application keys (session tickets).
  void hand_over_records(bool as_server, uint64_t records_written);
  ReadStatus read_records(ReadBuffer& buffer, size_t min_free);
  bool write_records(std::string_view data);
  // Moves what OpenSSL wrote into the outgoing BIO to the end of the backlog.
  void take_tls_output();
  // Sends what the socket takes of the backlog right now; false on a hard error.
  bool send_backlog_now();
  // Sends what the socket takes of `data` right now (consuming it); false on a hard error.
  bool send_now(std::string_view& data);
  awaitable<void> take_write_turn();
  void give_write_turn();

  // Reads into `space`: >0 bytes, 0 on EOF or error, -1 when drained (then wait for an edge).
  ssize_t receive(asio::mutable_buffer space);

  Poller& poller_;
  executor executor_;
  int fd_ = -1;
  Poller::Watch watch_;
  tcp::endpoint remote_;
  std::unique_ptr<SSL, SslFree> tls_;
  BIO* tls_in_ = nullptr;                           // owned by tls_
  BIO* tls_out_ = nullptr;                          // owned by tls_
  std::unique_ptr<tls::HandshakeSecrets> secrets_;  // from the key log, during the handshake
  std::unique_ptr<tls::RecordLayer> records_;       // after a TLS 1.3 handshake
  std::string records_pending_;     // the start of a record not whole yet (ciphertext)
  bool peer_said_goodbye_ = false;  // close_notify (or a fatal alert) read: nothing follows
  bool goodbye_sent_ = false;       // close_notify or a fatal alert sent: no more writes
  bool records_failed_ = false;     // a fatal alert sent: no more reads either
  std::string backlog_;             // written, not yet taken by the socket (ciphertext for TLS)
  size_t backlog_sent_ = 0;
  bool writing_ = false;                         // a coroutine waits for room in the socket
  std::unique_ptr<steady_timer> write_waiters_;  // lazily made; wakes queued flushers
};

}  // namespace sluice::proxy
