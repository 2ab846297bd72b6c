// The zero-downtime upgrade's messages and the pure decisions around them.
#include "proxy/handover_codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace sluice::proxy::handover {
namespace {

Message listener_message(const std::string& label, uint32_t count,
                         ListenerKind kind = ListenerKind::kClient) {
  return Message::listener(kind, label, count);
}

TEST(HandoverCodec, EveryMessageRoundTrips) {
  const std::vector<Message> messages = {
      Message::hello(4242),        listener_message("127.0.0.1:6432", 4),
      listener_message("fd:7", 1), listener_message("[::1]:9187", 1, ListenerKind::kMetrics),
      Message::end(17, 3),         Message::ready(4242),
      Message::done(17),           Message::refused("busy"),
  };
  for (const Message& message : messages) EXPECT_EQ(decode(encode(message)), message);
}

TEST(HandoverCodec, TheWireFormatIsFixed) {
  // Version 1 must stay readable by the next release: these bytes are the contract.
  EXPECT_EQ(encode(Message::hello(0x01020304)),
            std::string("SLHO\x00\x01\x01\x01\x02\x03\x04", 11));
  EXPECT_EQ(encode(listener_message("fd:3", 2)), std::string("SLHO\x00\x01\x02\x01\x00\x04"
                                                             "fd:3\x00\x00\x00\x02",
                                                             18));
}

TEST(HandoverCodec, RefusesWhatIsNotOneWholeMessage) {
  const std::string hello = encode(Message::hello(1));
  EXPECT_THROW(decode(""), HandoverError);
  EXPECT_THROW(decode("GET / HTTP/1.1\r\n"), HandoverError);
  EXPECT_THROW(decode(hello.substr(0, hello.size() - 1)), HandoverError);  // cut short
  EXPECT_THROW(decode(hello + "x"), HandoverError);                        // trailing bytes
  std::string unknown_type = hello;
  unknown_type[6] = 99;
  EXPECT_THROW(decode(unknown_type), HandoverError);
  EXPECT_THROW(decode(std::string(kMaxMessageSize + 1, 'S')), HandoverError);
}

TEST(HandoverCodec, AnotherVersionIsNamedInTheError) {
  std::string hello = encode(Message::hello(1));
  hello[5] = 2;
  try {
    decode(hello);
    FAIL() << "version 2 accepted";
  } catch (const HandoverError& e) {
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos) << e.what();
  }
}

TEST(HandoverCodec, ListenerFieldsAreChecked) {
  EXPECT_THROW(decode(encode(listener_message("", 1))), HandoverError);  // no label
  EXPECT_THROW(decode(encode(listener_message("a:1", 0))), HandoverError);
  EXPECT_THROW(decode(encode(listener_message("a:1", kMaxDescriptorsPerMessage + 1))),
               HandoverError);
  std::string kind = encode(listener_message("a:1", 1));
  kind[7] = 9;
  EXPECT_THROW(decode(kind), HandoverError);
  // A label field claiming more bytes than the message has.
  std::string label = encode(listener_message("a:1", 1));
  label[9] = 100;
  EXPECT_THROW(decode(label), HandoverError);
  EXPECT_THROW(encode(listener_message(std::string(kMaxLabelSize + 1, 'a'), 1)), HandoverError);
}

TEST(HandoverCodec, ManySocketsSpanSeveralMessages) {
  Listener listener{ListenerKind::kClient, "0.0.0.0:6432", {}};
  for (int fd = 100; fd < 100 + 150; ++fd) listener.fds.push_back(fd);
  const auto chunks = chunk_listener(listener);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].first, 0u);
  EXPECT_EQ(chunks[0].message.count, kMaxDescriptorsPerMessage);
  EXPECT_EQ(chunks[2].first, 2 * kMaxDescriptorsPerMessage);
  EXPECT_EQ(chunks[2].message.count, 150 - 2 * kMaxDescriptorsPerMessage);
  for (const auto& chunk : chunks) EXPECT_EQ(chunk.message.label, "0.0.0.0:6432");
}

TEST(HandoverCodec, TheCollectorRegroupsAnOffer) {
  OfferCollector offer;
  offer.add(listener_message("127.0.0.1:6432", 2), {10, 11});
  offer.add(listener_message("fd:3", 1), {12});
  offer.add(listener_message("127.0.0.1:6432", 1), {13});
  offer.add(listener_message("127.0.0.1:9187", 1, ListenerKind::kMetrics), {14});
  EXPECT_FALSE(offer.complete());
  EXPECT_THROW(offer.take(), HandoverError);
  offer.add(Message::end(7, 4), {});
  ASSERT_TRUE(offer.complete());
  const auto listeners = offer.take();
  ASSERT_EQ(listeners.size(), 3u);
  EXPECT_EQ(listeners[0].label, "127.0.0.1:6432");
  EXPECT_EQ(listeners[0].fds, (std::vector<int>{10, 11, 13}));
  EXPECT_EQ(listeners[1].label, "fd:3");
  EXPECT_EQ(listeners[2].kind, ListenerKind::kMetrics);
}

TEST(HandoverCodec, TheCollectorKeepsEveryDescriptorOfABadOfferToClose) {
  OfferCollector offer;
  offer.add(listener_message("a:1", 1), {20});
  // Two arrived where one was announced: refused, but both are kept for closing.
  EXPECT_THROW(offer.add(listener_message("a:1", 1), {21, 22}), HandoverError);
  EXPECT_EQ(offer.all_fds(), (std::vector<int>{20, 21, 22}));
  OfferCollector short_offer;
  short_offer.add(listener_message("a:1", 1), {30});
  EXPECT_THROW(short_offer.add(Message::end(7, 2), {}), HandoverError);
  OfferCollector refused;
  EXPECT_THROW(refused.add(Message::refused("no"), {}), HandoverError);
  OfferCollector out_of_turn;
  EXPECT_THROW(out_of_turn.add(Message::ready(1), {40}), HandoverError);
  EXPECT_EQ(out_of_turn.all_fds(), (std::vector<int>{40}));
}

// Every socket is accepted from, and every worker accepts.
void expect_covering(size_t sockets, size_t workers) {
  const auto assignment = assign_sockets(sockets, workers);
  ASSERT_EQ(assignment.size(), workers);
  std::set<size_t> covered;
  for (const auto& share : assignment) {
    EXPECT_FALSE(share.empty()) << sockets << " sockets, " << workers << " workers";
    covered.insert(share.begin(), share.end());
  }
  EXPECT_EQ(covered.size(), sockets);
  EXPECT_TRUE(std::all_of(covered.begin(), covered.end(), [&](size_t s) { return s < sockets; }));
}

TEST(HandoverCodec, AnyNumberOfSocketsCoversAnyNumberOfWorkers) {
  for (size_t sockets = 1; sockets <= 9; ++sockets)
    for (size_t workers = 1; workers <= 9; ++workers) expect_covering(sockets, workers);
  EXPECT_EQ(assign_sockets(4, 2), (std::vector<std::vector<size_t>>{{0, 2}, {1, 3}}));
  EXPECT_EQ(assign_sockets(1, 3), (std::vector<std::vector<size_t>>{{0}, {0}, {0}}));
}

}  // namespace
}  // namespace sluice::proxy::handover
