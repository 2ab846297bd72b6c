// The backend link with real sockets on loopback and a fake server: the test writes the
// server's replies by hand and reads what the client is sent. Release at every ReadyForQuery
// kind, pipelined extended protocol, errors mid-pipeline, pinning and its cleanup, loss of the
// server while lent, and what a leaving client leaves behind.
#include "proxy/backend_link.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "loopback_connector.hpp"
#include "proxy/poller.hpp"
#include "proxy/pool.hpp"
#include "proxy/secrets.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = ResponseTracker::Kind;

using testing::LoopbackConnector;
using testing::socket_pair;

struct Owner : BackendLink::Owner {
  ClientStatements statements;
  int released = 0;
  int lost = 0;
  bool fatal_forwarded = false;
  ClientStatements& client_statements() override { return statements; }
  void server_released() override { ++released; }
  void server_lost(bool fatal) override {
    ++lost;
    fatal_forwarded = fatal;
  }
  int kept = 0;
  Loss loss;
  void server_lost_session_kept(const Loss& l) override {
    ++kept;
    loss = l;
  }
};

std::string message(char type, std::string_view body) {
  std::string out(1, type);
  const uint32_t length = static_cast<uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(length >> shift);
  out.append(body);
  return out;
}
std::string ready(char status) {
  return message('Z', std::string(1, status));
}
std::string error(std::string_view severity, std::string_view sqlstate, std::string_view text) {
  std::string out;
  pgwire::write_error(out, severity, sqlstate, text);
  return out;
}
std::string complete(std::string_view tag) {
  return message('C', std::string(tag) + '\0');
}

struct Link : ::testing::Test {
  asio::io_context io;
  Poller poller{io.get_executor()};
  Config config = [] {
    Config c;
    c.adaptive_concurrency = false;
    return c;
  }();
  std::shared_ptr<const SecretStore> secrets = std::make_shared<SecretStore>();
  ssl::context tls{ssl::context::tls_server};
  Metrics metrics;
  ProxyContext ctx = [this] {
    ProxyContext c{io, config, secrets, &tls, nullptr, metrics};
    c.poller = &poller;
    return c;
  }();
  std::vector<tcp_socket> servers;  // the fake servers' ends
  LoopbackConnector connector{io, poller, servers};
  PoolManager pools{ctx, &connector};
  std::shared_ptr<const Credential> credential = [] {
    auto c = std::make_shared<Credential>();
    c->username = "app";
    return c;
  }();
  Pool& pool = pools.pool_for("db", credential);
  std::pair<tcp_socket, tcp_socket> client_sockets = socket_pair(io);
  Transport client{poller, std::move(client_sockets.first)};
  tcp_socket& client_peer = client_sockets.second;
  ClientSettings settings;
  Owner owner;
  std::unique_ptr<BackendLink> link;
  std::shared_ptr<ServerConnection> connection;

  bool run_done = false;
  std::string server_bytes;

  void SetUp() override {
    ctx.pools = &pools;
    link = std::make_unique<BackendLink>(ctx, client, settings, owner);
    asio::co_spawn(io, link->run(), [this](std::exception_ptr) { run_done = true; });
    attach();
  }
  // The reply loop ends once the client left and no connection is lent: the fake servers hang
  // up, so whatever the link still holds is let go.
  void TearDown() override {
    asio::co_spawn(io, link->client_left(), asio::detached);
    for (auto& server : servers) server.close();
    run_until([&] { return run_done; }, std::chrono::seconds(2));
  }
  void attach() {
    std::optional<Borrowed> borrowed;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          borrowed = co_await pools.acquire(pool, Clock::now() + std::chrono::seconds(5));
        },
        asio::detached);
    ASSERT_TRUE(run_until([&] { return borrowed.has_value(); }));
    ASSERT_TRUE(borrowed->lease);
    connection = borrowed->lease.connection();
    link->attach(std::move(borrowed->lease));
  }
  // Runs the loop until `done` holds (or `limit` passes: then false).
  template <class Predicate>
  bool run_until(Predicate done, Clock::duration limit = std::chrono::seconds(5)) {
    const auto until = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() >= until) return false;
      io.restart();
      io.poll();
      if (!done()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }
  void server_sends(std::string_view bytes) { asio::write(servers.back(), asio::buffer(bytes)); }
  // What the client was sent so far.
  std::string client_received() {
    std::string out;
    client_peer.non_blocking(true);
    char buffer[4096];
    for (;;) {
      boost::system::error_code ec;
      const size_t n = client_peer.read_some(asio::buffer(buffer), ec);
      if (ec) break;
      out.append(buffer, n);
    }
    return out;
  }
  // Everything the fake server was sent so far.
  std::string server_received() {
    std::string& out = server_bytes;
    auto& server = servers.back();
    server.non_blocking(true);
    char buffer[4096];
    for (;;) {
      boost::system::error_code ec;
      const size_t n = server.read_some(asio::buffer(buffer), ec);
      if (ec) break;
      out.append(buffer, n);
    }
    return out;
  }
  void query() { link->tracker().expect({Kind::kSimpleQuery}); }
  void extended_round() {
    auto& tracker = link->tracker();
    tracker.note_unsynced();
    for (Kind kind : {Kind::kParse, Kind::kBind, Kind::kExecute, Kind::kSync})
      tracker.expect({kind});
  }
  bool released() {
    return run_until([&] { return owner.released > 0; });
  }
  // Lets the link take everything the server sent; true when it still holds the connection.
  bool still_lent() {
    run_until([] { return false; }, std::chrono::milliseconds(30));
    return link->attached() && owner.released == 0;
  }
};

TEST(Wakeup, ARedirectThatDeclinesResumesTheWaiterLaterNeverInside) {
  // BackendLink::attach(): a reply loop resumed inside the call would read a goodbye the
  // server sent before the client's request was recorded, and drop the connection unanswered.
  asio::io_context io;
  Wakeup wakeup(io.get_executor());
  bool resumed = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await wakeup.wait();
        resumed = true;
      },
      asio::detached);
  io.poll();
  ASSERT_FALSE(resumed);
  wakeup.notify_via([](std::optional<Wakeup::Resume>&) { return false; });
  EXPECT_FALSE(resumed) << "resumed inside notify_via()";
  io.restart();
  io.poll();
  EXPECT_TRUE(resumed);
}

TEST_F(Link, ReleasesAtReadyForQueryIdleAndForwardsTheReplies) {
  query();
  const std::string replies = complete("SELECT 1") + ready('I');
  server_sends(replies);
  ASSERT_TRUE(released());
  EXPECT_FALSE(link->attached());
  EXPECT_EQ(connection->state(), ServerState::kIdle);
  EXPECT_EQ(client_received(), replies);
  EXPECT_EQ(metrics.database_connections_currently_borrowed.load(), 0);
}

TEST_F(Link, AnIdleReplyLoopEndsWhenAskedAndStartsAgain) {
  query();
  server_sends(complete("SELECT 1") + ready('I'));
  ASSERT_TRUE(released());
  ASSERT_TRUE(run_until([&] { return link->idle(); }));
  link->end_idle_loop();  // the session parks
  ASSERT_TRUE(run_until([&] { return run_done; })) << "the loop did not end";
  // The next message: the loop runs again and relays the next borrow's replies.
  run_done = false;
  asio::co_spawn(io, link->run(), [this](std::exception_ptr) { run_done = true; });
  attach();
  query();
  const std::string replies = complete("SELECT 2") + ready('I');
  server_sends(replies);
  owner.released = 0;
  ASSERT_TRUE(released());
  EXPECT_NE(client_received().find(replies), std::string::npos);
}

TEST_F(Link, AReplyLoopWithAConnectionLentIsNotIdle) {
  EXPECT_FALSE(link->idle());
  link->end_idle_loop();  // refused: the connection's replies are still due
  query();
  server_sends(complete("SELECT 1") + ready('I'));
  ASSERT_TRUE(released());
  EXPECT_FALSE(run_done);
}

TEST_F(Link, KeepsTheConnectionThroughATransactionAndAFailedOne) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  EXPECT_EQ(metrics.database_connections_currently_in_transaction.load(), 1);
  query();
  server_sends(error("ERROR", "22012", "division by zero") + ready('E'));
  EXPECT_TRUE(still_lent());
  query();
  server_sends(complete("ROLLBACK") + ready('I'));
  ASSERT_TRUE(released());
  EXPECT_EQ(metrics.database_connections_currently_in_transaction.load(), 0);
}

TEST_F(Link, PipelinedExtendedProtocolReleasesAfterTheLastSync) {
  extended_round();
  extended_round();
  const std::string round = message('1', "") + message('2', "") + complete("SELECT 1") + ready('I');
  server_sends(round);
  EXPECT_TRUE(still_lent()) << "the second round is still owed";
  server_sends(round);
  ASSERT_TRUE(released());
  EXPECT_EQ(client_received(), round + round);
}

TEST_F(Link, AnErrorMidPipelineSkipsToSync) {
  extended_round();
  extended_round();
  server_sends(message('1', "") + error("ERROR", "42601", "syntax error") + ready('I'));
  EXPECT_TRUE(still_lent());
  server_sends(message('1', "") + message('2', "") + complete("SELECT 1") + ready('I'));
  ASSERT_TRUE(released());
  EXPECT_TRUE(link->tracker().empty());
}

TEST_F(Link, AnUnexpectedParameterChangePinsAndTheCleanupUnpins) {
  query();
  server_sends(message('S', std::string("TimeZone\0Europe/Paris\0", 22)) + complete("SELECT 1") +
               ready('I'));
  EXPECT_TRUE(still_lent()) << "pinned: the connection stays with the session";
  EXPECT_EQ(link->pinned(), PinReason::kUnexpectedParameterChange);
  EXPECT_EQ(connection->state(), ServerState::kPinned);

  asio::co_spawn(io, link->client_left(), asio::detached);
  ASSERT_TRUE(
      run_until([&] { return server_received().find("DISCARD ALL") != std::string::npos; }));
  EXPECT_FALSE(link->pinned());
  server_sends(complete("DISCARD ALL") + ready('I'));
  ASSERT_TRUE(released());
  EXPECT_EQ(connection->state(), ServerState::kIdle);
  EXPECT_TRUE(connection->applied.empty());
}

// The frames of `bytes`, as (type, body) pairs.
std::vector<std::pair<char, std::string>> frames_of(std::string_view bytes) {
  std::vector<std::pair<char, std::string>> out;
  while (bytes.size() >= 5) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + 1;
    const size_t length = pgwire::read_be32(p);
    if (bytes.size() < 1 + length) break;
    out.emplace_back(bytes[0], std::string(bytes.substr(5, length - 4)));
    bytes.remove_prefix(1 + length);
  }
  return out;
}
// The message types of `bytes`, in order ("EZ").
std::string types_of(std::string_view bytes) {
  std::string out;
  for (const auto& [type, body] : frames_of(bytes)) out += type;
  return out;
}
std::string field(const std::string& error_body, char code) {
  auto fields = pgwire::decode_error_fields(
      pgwire::Bytes(reinterpret_cast<const uint8_t*>(error_body.data()), error_body.size()));
  return fields ? std::string(fields->get(code)) : "<malformed>";
}

TEST_F(Link, ServerLossMidQueryAnswersAnErrorAndTheSessionGoesOn) {
  query();
  servers.back().close();
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_EQ(owner.lost, 0);
  EXPECT_FALSE(owner.loss.in_transaction);
  EXPECT_TRUE(owner.loss.reported);
  EXPECT_FALSE(owner.loss.mid_batch);
  EXPECT_FALSE(link->attached());
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  EXPECT_EQ(pools.total(), 0u);
  EXPECT_EQ(metrics.client_sessions_kept_after_server_loss.load(), 1u);
  const auto frames = frames_of(client_received());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].first, 'E');
  EXPECT_EQ(field(frames[0].second, 'S'), "ERROR");
  EXPECT_EQ(field(frames[0].second, 'C'), "08006");
  EXPECT_EQ(frames[1], (std::pair<char, std::string>{'Z', "I"}));
}

TEST_F(Link, AServerFatalReachesTheClientAsAnErrorAndTheSessionGoesOn) {
  query();
  server_sends(message('D', std::string("\0\0", 2)) +
               error("FATAL", "57P01", "terminating connection"));
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_EQ(owner.lost, 0);
  const auto frames = frames_of(client_received());
  ASSERT_EQ(frames.size(), 3u) << "a row, one error, ReadyForQuery";
  EXPECT_EQ(frames[0].first, 'D');
  EXPECT_EQ(frames[1].first, 'E');
  EXPECT_EQ(field(frames[1].second, 'S'), "ERROR");
  EXPECT_EQ(field(frames[1].second, 'V'), "ERROR");
  EXPECT_EQ(field(frames[1].second, 'C'), "57P01");
  EXPECT_EQ(field(frames[1].second, 'M'), "terminating connection");
  EXPECT_EQ(frames[2], (std::pair<char, std::string>{'Z', "I"}));
  EXPECT_EQ(connection->state(), ServerState::kClosed);
}

TEST_F(Link, ServerLossInsideATransactionBlockLeavesItFailed) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  client_received();
  query();
  servers.back().close();
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_TRUE(owner.loss.in_transaction);
  EXPECT_TRUE(owner.loss.reported);
  const auto frames = frames_of(client_received());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(field(frames[0].second, 'C'), "08006");
  EXPECT_EQ(frames[1], (std::pair<char, std::string>{'Z', "E"}));
  EXPECT_EQ(metrics.database_connections_currently_in_transaction.load(), 0);
}

TEST_F(Link, ServerLossBetweenStatementsOfATransactionSaysNothingYet) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  client_received();
  servers.back().close();
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_TRUE(owner.loss.in_transaction);
  EXPECT_FALSE(owner.loss.reported) << "the client's next command is told";
  EXPECT_EQ(client_received(), "");
}

TEST_F(Link, AFatalBetweenStatementsOfATransactionWaitsForTheClientsNextCommand) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  client_received();
  server_sends(error("FATAL", "57P01", "terminating connection due to administrator command"));
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_TRUE(owner.loss.in_transaction);
  EXPECT_FALSE(owner.loss.reported);
  EXPECT_EQ(client_received(), "") << "nothing unasked-for: libpq would take it as an answer";
  EXPECT_EQ(field(owner.loss.unsent_error, 'S'), "ERROR");
  EXPECT_EQ(field(owner.loss.unsent_error, 'C'), "57P01");
}

TEST_F(Link, ServerLossEachPipelinedRequestGetsItsErrorAndTheOpenBatchSkipsToSync) {
  extended_round();
  extended_round();
  link->tracker().note_unsynced();  // a third batch, its Sync still to come
  link->tracker().expect({Kind::kParse});
  server_sends(message('1', "") + error("FATAL", "57P01", "terminating connection"));
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_TRUE(owner.loss.mid_batch);
  const std::string types = types_of(client_received());
  // The first batch: ParseComplete, the server's error (demoted), ReadyForQuery; the second: an
  // error and ReadyForQuery; the third: an error (its Sync gets ReadyForQuery when it comes).
  EXPECT_EQ(types, "1EZEZE");
}

TEST_F(Link, AFatalAnsweringALoneSyncGetsItsReadyForQuery) {
  link->tracker().expect(Kind::kSync);
  server_sends(error("FATAL", "57P01", "terminating connection"));
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  const std::string types = types_of(client_received());
  EXPECT_EQ(types, "EZ");
}

TEST_F(Link, AFatalAnsweringAParseThenSyncGetsItsReadyForQuery) {
  link->tracker().note_unsynced();
  link->tracker().expect(Kind::kParse);
  link->tracker().expect(Kind::kSync);
  server_sends(error("FATAL", "57P01", "terminating connection"));
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  const std::string types = types_of(client_received());
  EXPECT_EQ(types, "EZ");
}

// psycopg prepares with Parse and Sync and takes exactly one result: after its ParseComplete,
// an error for the lost server would make two (it raised ValueError, the session went on out
// of step). The loss is told at the next command instead.
TEST_F(Link, ServerLossAfterAParseCompleteAnswersItsSyncAloneInsideABlock) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  client_received();
  link->tracker().note_unsynced();
  link->tracker().expect({Kind::kParse});
  link->tracker().expect({Kind::kSync});
  server_sends(message('1', ""));
  EXPECT_TRUE(still_lent());
  servers.back().close();
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_TRUE(owner.loss.in_transaction);
  EXPECT_FALSE(owner.loss.reported) << "the client's next command is told";
  const auto frames = frames_of(client_received());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].first, '1');
  EXPECT_EQ(frames[1], (std::pair<char, std::string>{'Z', "E"}));
}

TEST_F(Link, AFatalAfterAParseCompleteWaitsForTheNextCommand) {
  link->tracker().note_unsynced();
  link->tracker().expect({Kind::kParse});
  link->tracker().expect({Kind::kSync});
  server_sends(message('1', "") +
               error("FATAL", "57P01", "terminating connection due to administrator command"));
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_FALSE(owner.loss.reported);
  EXPECT_EQ(types_of(client_received()), "1Z");
  EXPECT_EQ(field(owner.loss.unsent_error, 'C'), "57P01");
}

TEST_F(Link, ServerLossBeforeTheSyncOfAnExecutionOutsideABlockStillSaysItMayNotHaveRun) {
  // That Sync commits: whether it did is unknown, so the client gets the error.
  extended_round();
  server_sends(message('1', "") + message('2', "") + complete("UPDATE 1"));
  EXPECT_TRUE(still_lent());
  servers.back().close();
  ASSERT_TRUE(run_until([&] { return owner.kept > 0; }));
  EXPECT_TRUE(owner.loss.reported);
  EXPECT_EQ(types_of(client_received()), "12CEZ");
}

TEST_F(Link, APinnedSessionLosesItsConnectionAndItsClient) {
  query();
  server_sends(message('S', std::string("TimeZone\0Europe/Paris\0", 22)) + complete("SELECT 1") +
               ready('I'));
  EXPECT_TRUE(still_lent());
  ASSERT_TRUE(link->pinned());
  query();
  const std::string fatal = error("FATAL", "57P01", "terminating connection");
  server_sends(fatal);
  ASSERT_TRUE(run_until([&] { return owner.lost > 0; }));
  EXPECT_EQ(owner.kept, 0);
  EXPECT_TRUE(owner.fatal_forwarded);
  EXPECT_NE(client_received().find(fatal), std::string::npos) << "the FATAL as the server sent it";
}

TEST_F(Link, AnUnrequestedReadyForQueryDropsTheConnection) {
  server_sends(ready('I'));
  ASSERT_TRUE(run_until([&] { return owner.lost > 0; }));
  EXPECT_EQ(connection->state(), ServerState::kClosed);
}

TEST_F(Link, AClientLeavingInsideATransactionRollsItBack) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  asio::co_spawn(io, link->client_left(), asio::detached);
  ASSERT_TRUE(run_until([&] { return server_received().find("ROLLBACK") != std::string::npos; }));
  server_sends(complete("ROLLBACK") + ready('I'));
  ASSERT_TRUE(run_until([&] { return connection->state() == ServerState::kIdle; }));
}

TEST_F(Link, AClientLeavingMidRequestCancelsAndClosesTheConnection) {
  query();
  EXPECT_TRUE(still_lent());
  asio::co_spawn(io, link->client_left(), asio::detached);
  ASSERT_TRUE(run_until([&] { return !link->attached(); }));
  EXPECT_EQ(connector.cancels, 1);
  EXPECT_EQ(connection->state(), ServerState::kClosed);
}

TEST_F(Link, ALargeRowStreamsToTheClientAsItArrives) {
  query();
  const std::string body(1024 * 1024, 'r');
  const std::string row = message('D', body);
  server_sends(row.substr(0, 200 * 1024));
  // Passed on before the rest exists: a whole-message relay would have sent nothing yet.
  std::string received;
  ASSERT_TRUE(run_until([&] {
    received += client_received();
    return received.size() >= 150 * 1024;
  }));
  EXPECT_TRUE(still_lent());
  server_sends(row.substr(200 * 1024));
  const std::string tail = complete("SELECT 1") + ready('I');
  server_sends(tail);
  ASSERT_TRUE(released());
  received += client_received();
  EXPECT_EQ(received, row + tail);
}

TEST_F(Link, ASimpleQueryReplyInPiecesGoesThroughAsItCame) {
  // Descriptions and rows are stepped over by their length words: split anywhere (inside a
  // length word, a body, between messages), the reply still reaches the client byte for byte
  // and the connection goes back at its ReadyForQuery only.
  query();
  std::string replies = message('T', std::string(30, 't'));
  for (int row = 0; row < 5; ++row) replies += message('D', std::string(10 + row, 'd'));
  replies += message('N', std::string("SNOTICE\0Mhello\0\0", 16));
  replies += complete("SELECT 5") + ready('I');
  std::string received;
  for (size_t at = 0; at < replies.size(); at += 7) {
    server_sends(replies.substr(at, 7));
    run_until([] { return false; }, std::chrono::milliseconds(2));
    received += client_received();
    if (at + 7 < replies.size()) {
      EXPECT_EQ(owner.released, 0) << "released before the end";
    }
  }
  ASSERT_TRUE(released());
  received += client_received();
  EXPECT_EQ(received, replies);
}

TEST_F(Link, ServerLossHalfwayThroughARowToTheClientEndsTheSession) {
  query();
  const std::string row = message('D', std::string(1024 * 1024, 'r'));
  server_sends(row.substr(0, 200 * 1024));
  std::string received;
  ASSERT_TRUE(run_until([&] {
    received += client_received();
    return received.size() >= 150 * 1024;
  }));
  servers.back().close();  // the client holds half a message: nothing can follow it
  ASSERT_TRUE(run_until([&] { return owner.lost > 0; }));
  EXPECT_EQ(owner.kept, 0);
}

TEST_F(Link, HalfAClientMessageKeepsTheConnectionFromThePool) {
  // A COPY failed while the client was midway through a CopyData message to this connection:
  // its rest must reach no other client's server.
  query();
  link->set_client_mid_message(true);
  server_sends(error("ERROR", "22P02", "invalid input syntax") + ready('I'));
  ASSERT_TRUE(released());
  EXPECT_FALSE(link->attached());
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  EXPECT_EQ(pools.total(), 0u);
  link->set_client_mid_message(false);
}

TEST_F(Link, AClientLeavingMidMessageClosesTheConnection) {
  query();
  server_sends(complete("BEGIN") + ready('T'));
  EXPECT_TRUE(still_lent());
  link->set_client_mid_message(true);
  asio::co_spawn(io, link->client_left(), asio::detached);
  ASSERT_TRUE(run_until([&] { return !link->attached(); }));
  EXPECT_EQ(connection->state(), ServerState::kClosed);
  EXPECT_EQ(server_received().find("ROLLBACK"), std::string::npos)
      << "nothing may follow half a message";
}

}  // namespace
}  // namespace sluice::proxy
