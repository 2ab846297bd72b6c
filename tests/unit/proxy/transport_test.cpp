// Transport over the Poller, on real loopback TCP connections: reads wait for edges and are
// not lost between them, large writes finish once the peer drains, close wakes waiters.
#include "proxy/transport.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "proxy/tls.hpp"

namespace sluice::proxy {
namespace {

struct Pair {
  std::unique_ptr<Transport> ours;
  tcp_socket theirs;
};

// A connected pair: `ours` is a Transport, `theirs` a plain blocking Asio socket.
Pair connected_pair(asio::io_context& io, Poller& poller) {
  tcp_acceptor acceptor(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp_socket client(io.get_executor());
  client.connect(acceptor.local_endpoint());
  tcp_socket server = acceptor.accept();
  return Pair{std::make_unique<Transport>(poller, std::move(server)), std::move(client)};
}

template <class T>
T run(asio::io_context& io, awaitable<T> task) {
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  io.restart();
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (io.run_one_for(std::chrono::seconds(5)) == 0) ADD_FAILURE() << "timed out";
  }
  return future.get();
}

// Starts `task` and runs what is ready without blocking; the task must still be waiting.
std::future<bool> start_pending(asio::io_context& io, awaitable<bool> task) {
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  io.restart();
  io.poll();
  EXPECT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "finished before anything it waits for happened";
  return future;
}

// Runs the loop until `future` is ready; false if nothing happened for 5 s.
bool finish(asio::io_context& io, std::future<bool>& future) {
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
    if (io.run_one_for(std::chrono::seconds(5)) == 0) return false;
  return true;
}

std::string text(const ReadBuffer& buffer) {
  auto bytes = buffer.readable();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

TEST(Transport, ReadsWhatArrivesAfterTheSocketWasDrained) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  ReadBuffer inbound;

  asio::write(theirs, asio::buffer(std::string("first")));
  EXPECT_TRUE(run(io, ours->read_some(inbound)));
  EXPECT_EQ(text(inbound), "first");
  inbound.consume(5);

  // The short read marked the socket drained; the next bytes must still be seen.
  auto later = start_pending(io, ours->read_some(inbound));
  asio::write(theirs, asio::buffer(std::string("second")));
  ASSERT_TRUE(finish(io, later)) << "the edge was lost";
  EXPECT_TRUE(later.get());
  EXPECT_EQ(text(inbound), "second");
}

TEST(Transport, AServerSocketReadyInTheSameBatchIsServedBeforeTheClients) {
  // A server's reply returns its connection to the pool before a client's request that came
  // in the same batch looks for one: the request then finds it idle instead of waiting.
  asio::io_context io;
  Poller poller(io.get_executor());
  auto first_client = connected_pair(io, poller);
  auto second_client = connected_pair(io, poller);
  auto server = connected_pair(io, poller);
  server.ours->serve_first_in_batch();
  std::vector<std::string> order;
  auto read_then_note = [&](Transport& transport, std::string name) -> awaitable<void> {
    ReadBuffer inbound;
    while (transport.read_now(inbound) != ReadStatus::kWouldBlock)
      inbound.consume(inbound.readable().size());
    co_await transport.readable();
    order.push_back(name);
  };
  asio::co_spawn(io, read_then_note(*first_client.ours, "first client"), asio::detached);
  asio::co_spawn(io, read_then_note(*second_client.ours, "second client"), asio::detached);
  asio::co_spawn(io, read_then_note(*server.ours, "server"), asio::detached);
  io.poll();
  ASSERT_TRUE(order.empty());
  // Ready in this order, all before the loop looks.
  asio::write(first_client.theirs, asio::buffer(std::string("Q")));
  asio::write(second_client.theirs, asio::buffer(std::string("Q")));
  asio::write(server.theirs, asio::buffer(std::string("Z")));
  io.restart();
  while (order.size() < 3)
    if (io.run_one_for(std::chrono::seconds(5)) == 0) break;
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], "server");
  EXPECT_EQ(order[1], "first client");
  EXPECT_EQ(order[2], "second client");
}

TEST(Transport, ReportsTheEndOfTheStream) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  ReadBuffer inbound;
  asio::write(theirs, asio::buffer(std::string("bye")));
  theirs.close();
  EXPECT_TRUE(run(io, ours->read_some(inbound)));
  EXPECT_EQ(text(inbound), "bye");
  EXPECT_FALSE(run(io, ours->read_some(inbound)));
}

TEST(Transport, SeesTheEndOfTheStreamThatCameWithTheLastBytes) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  ReadBuffer inbound;
  // Waiting first: one edge then announces both the bytes and the end (a server that sends a
  // notice and exits), and the short read that drains the bytes must not wait for another.
  auto first = start_pending(io, ours->read_some(inbound));
  asio::write(theirs, asio::buffer(std::string("last words")));
  theirs.close();
  ASSERT_TRUE(finish(io, first));
  EXPECT_TRUE(first.get());
  EXPECT_EQ(text(inbound), "last words");
  auto end = asio::co_spawn(io, ours->read_some(inbound), asio::use_future);
  ASSERT_TRUE(finish(io, end)) << "the end of the stream was never seen";
  EXPECT_FALSE(end.get());
}

TEST(Transport, WriteLargerThanTheSocketBuffersCompletesAsThePeerReads) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  const std::string big(16 * 1024 * 1024, 'x');
  auto written = asio::co_spawn(io, ours->write_all(big), asio::use_future);
  io.restart();
  io.poll();
  ASSERT_EQ(written.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "16 MB fit in the socket buffers; the test proves nothing";
  theirs.non_blocking(true);
  size_t received = 0;
  std::vector<char> chunk(1 << 20);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (written.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    boost::system::error_code ec;
    received += theirs.read_some(asio::buffer(chunk), ec);
    io.poll();
  }
  EXPECT_TRUE(written.get());
  theirs.non_blocking(false);
  while (received < big.size()) received += theirs.read_some(asio::buffer(chunk));
  EXPECT_EQ(received, big.size());
}

// A reader parked without a coroutine (an idle session) is called back once: at the next bytes,
// or after a close.
struct CountingReader : Poller::ParkedReader {
  int calls = 0;
  void resume_reading() override { ++calls; }
};

// Runs the loop until `done` holds; false if nothing happened for 5 s.
template <class Predicate>
bool run_until(asio::io_context& io, Predicate done) {
  io.restart();
  while (!done())
    if (io.run_one_for(std::chrono::seconds(5)) == 0) return false;
  return true;
}

TEST(Transport, AParkedReaderIsCalledAtTheNextBytesOnly) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  ReadBuffer inbound;
  asio::write(theirs, asio::buffer(std::string("first")));
  EXPECT_TRUE(run(io, ours->read_some(inbound)));
  ASSERT_FALSE(ours->may_have_input()) << "the short read left the socket drained";

  CountingReader reader;
  ours->park_reader(reader);
  io.restart();
  io.poll();
  EXPECT_EQ(reader.calls, 0) << "called before anything arrived";
  asio::write(theirs, asio::buffer(std::string("second")));
  ASSERT_TRUE(run_until(io, [&] { return reader.calls > 0; })) << "the edge was lost";
  EXPECT_TRUE(ours->may_have_input());
  asio::write(theirs, asio::buffer(std::string("third")));
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(reader.calls, 1) << "called again without parking again";
}

TEST(Transport, CloseCallsAParkedReaderAndAWokenReaderFindsNothingNew) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  ReadBuffer inbound;
  asio::write(theirs, asio::buffer(std::string("x")));
  EXPECT_TRUE(run(io, ours->read_some(inbound)));

  // Woken without an edge (the sweep asking an idle reader to park): nothing to read.
  auto woken = asio::co_spawn(
      io,
      [&]() -> awaitable<bool> {
        co_await ours->readable();
        co_return ours->may_have_input();
      },
      asio::use_future);
  io.restart();
  io.poll();
  ours->wake_reader();
  io.restart();
  io.poll();
  ASSERT_EQ(woken.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_FALSE(woken.get());

  CountingReader reader;
  ours->park_reader(reader);
  ours->close();
  ASSERT_TRUE(run_until(io, [&] { return reader.calls > 0; }));
  EXPECT_EQ(reader.calls, 1);
}

TEST(Transport, CloseWakesAPendingReader) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  ReadBuffer inbound;
  auto pending = start_pending(io, ours->read_some(inbound));
  ours->close();
  ASSERT_TRUE(finish(io, pending)) << "close did not wake the reader";
  EXPECT_FALSE(pending.get());
  EXPECT_FALSE(ours->is_open());
}

TEST(Transport, PeerSentSomethingOnlyAfterBytesArrive) {
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  EXPECT_FALSE(ours->peer_sent_something());
  asio::write(theirs, asio::buffer(std::string("X")));
  // The poller learns of the edge when the loop runs.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!ours->peer_sent_something()) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    io.restart();
    io.run_one_for(std::chrono::milliseconds(100));
  }
  theirs.close();
  EXPECT_TRUE(ours->peer_sent_something());
}

TEST(Transport, PeerSentSomethingLooksNowWhenAskedBeforeThePollerReports) {
  // After a lent connection's server went away, the pool peeks at idle ones whose end is in the
  // socket already but not yet in a batch the poller reported.
  asio::io_context io;
  Poller poller(io.get_executor());
  auto [ours, theirs] = connected_pair(io, poller);
  EXPECT_FALSE(ours->peer_sent_something(true)) << "a quiet socket";
  theirs.close();
  EXPECT_FALSE(ours->peer_sent_something()) << "the loop has not run: no edge reported";
  EXPECT_TRUE(ours->peer_sent_something(true));
}

}  // namespace
}  // namespace sluice::proxy

namespace sluice::proxy {
namespace {

TEST(ReadBuffer, GivesItsMemoryBackOnlyWhenEmpty) {
  ReadBuffer buffer;
  auto space = buffer.prepare(16384);
  std::memcpy(space.data(), "abc", 3);
  buffer.commit(3);
  buffer.release_if_empty();
  EXPECT_EQ(text(buffer), "abc") << "buffered bytes are kept";
  buffer.consume(3);
  buffer.release_if_empty();
  EXPECT_TRUE(buffer.empty());
  space = buffer.prepare(16);  // taken again when needed
  std::memcpy(space.data(), "d", 1);
  buffer.commit(1);
  EXPECT_EQ(text(buffer), "d");
}

// A TLS connection between two Transports over loopback, handshake done.
struct TlsPair {
  explicit TlsPair(asio::io_context& io, Poller& poller, int client_max_version = 0,
                   bool server_hands_over = true)
      : server_tls(make_server_tls_context("", "", fingerprint, server_hands_over)),
        client_tls(make_client_tls_context(TargetTls::kRequire, "")) {
    if (client_max_version)
      SSL_CTX_set_max_proto_version(client_tls->native_handle(), client_max_version);
    tcp_acceptor acceptor(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp_socket client_socket(io.get_executor());
    client_socket.connect(acceptor.local_endpoint());
    server = std::make_unique<Transport>(poller, acceptor.accept());
    client = std::make_unique<Transport>(poller, std::move(client_socket));
    auto handshake = asio::co_spawn(io, server->start_tls_as_server(*server_tls), asio::use_future);
    run(io, client->start_tls_as_client(*client_tls, "", false));
    while (handshake.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
      if (io.run_one_for(std::chrono::seconds(5)) == 0) break;
    handshake.get();
  }
  // `from` writes, `to` reads it all.
  static std::string exchange(asio::io_context& io, Transport& from, Transport& to,
                              const std::string& message) {
    EXPECT_TRUE(from.write(message));
    ReadBuffer got;
    while (got.readable().size() < message.size()) {
      if (from.has_backlog()) asio::co_spawn(io, from.flush(), asio::detached);
      if (!run(io, to.read_some(got))) return std::string("<closed>");
    }
    return text(got);
  }
  std::string fingerprint;
  std::unique_ptr<ssl::context> server_tls;
  std::unique_ptr<ssl::context> client_tls;
  std::unique_ptr<Transport> server;
  std::unique_ptr<Transport> client;
};

TEST(Transport, Tls13RecordsAreHandedOverAfterTheHandshake) {
  asio::io_context io;
  Poller poller(io.get_executor());
  TlsPair tls(io, poller);
  // Both sides: OpenSSL did the handshake, the records are the RecordLayer's now.
  EXPECT_TRUE(tls.server->tls_records_handed_over());
  EXPECT_TRUE(tls.client->tls_records_handed_over());
  EXPECT_TRUE(tls.server->tls());
  const std::string big(300000, 'z');
  EXPECT_EQ(TlsPair::exchange(io, *tls.client, *tls.server, "to the server"), "to the server");
  EXPECT_EQ(TlsPair::exchange(io, *tls.server, *tls.client, big), big);
  EXPECT_EQ(TlsPair::exchange(io, *tls.client, *tls.server, big), big);
  // close_notify: the reader sees the end of the stream, not an error mid-record.
  tls.client->close();
  ReadBuffer rest;
  EXPECT_FALSE(run(io, tls.server->read_some(rest)));
}

TEST(Transport, RecordLayerOpensslKeepsTheServerSideWithOpenSsl) {
  asio::io_context io;
  Poller poller(io.get_executor());
  TlsPair tls(io, poller, 0, false);
  EXPECT_FALSE(tls.server->tls_records_handed_over());
  EXPECT_TRUE(tls.client->tls_records_handed_over());
  EXPECT_EQ(TlsPair::exchange(io, *tls.client, *tls.server, "hello"), "hello");
  EXPECT_EQ(TlsPair::exchange(io, *tls.server, *tls.client, "back"), "back");
}

TEST(Transport, Tls12StaysWithOpenSsl) {
  asio::io_context io;
  Poller poller(io.get_executor());
  TlsPair tls(io, poller, TLS1_2_VERSION);
  EXPECT_FALSE(tls.server->tls_records_handed_over());
  EXPECT_FALSE(tls.client->tls_records_handed_over());
  EXPECT_TRUE(tls.server->tls());
  EXPECT_EQ(TlsPair::exchange(io, *tls.client, *tls.server, "hello"), "hello");
  EXPECT_EQ(TlsPair::exchange(io, *tls.server, *tls.client, "back"), "back");
}

TEST(Transport, TlsGoesOnAfterAnIdleConnectionGaveItsBuffersBack) {
  for (int version : {0, TLS1_2_VERSION}) {
    asio::io_context io;
    Poller poller(io.get_executor());
    TlsPair tls(io, poller, version);
    auto exchange = [&](const std::string& message) {
      return TlsPair::exchange(io, *tls.client, *tls.server, message);
    };
    EXPECT_EQ(exchange(std::string(40000, 'x')), std::string(40000, 'x'));
    tls.server->release_idle_memory();
    tls.client->release_idle_memory();
    EXPECT_EQ(exchange("after the release"), "after the release");
    EXPECT_EQ(exchange(std::string(20000, 'y')), std::string(20000, 'y'));
    EXPECT_EQ(TlsPair::exchange(io, *tls.server, *tls.client, "and back"), "and back");
  }
}

}  // namespace
}  // namespace sluice::proxy
