// Deterministic random-input robustness: every decoder is fed random and mutated buffers.
// The assertions are weak on purpose; the point is that nothing crashes or trips ASan/UBSan.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "pgwire/codec.hpp"

namespace sluice::pgwire {
namespace {

Bytes bytes_of(const std::vector<uint8_t>& v) {
  return Bytes(v.data(), v.size());
}

void feed_all_decoders(Bytes buf) {
  Frame f;
  const FrameStatus fs = peek_frame(buf, 4096, f);
  if (fs == FrameStatus::kReady) {
    EXPECT_LE(f.wire_size(), buf.size());
    EXPECT_LE(f.wire_size(), 4096u);
  }
  Bytes pkt;
  if (peek_startup_packet(buf, pkt) == FrameStatus::kReady) {
    EXPECT_LE(pkt.size(), buf.size());
    const StartupPacket sp = decode_startup(pkt);
    if (const auto* msg = std::get_if<StartupMessage>(&sp)) {
      EXPECT_NE(msg->find("user"), nullptr);
      EXPECT_NE(msg->find("database"), nullptr);
    }
  }
  (void)decode_startup(buf);
  (void)decode_error_fields(buf);
  (void)decode_parameter_status(buf);
  (void)decode_ready_for_query(buf);
  (void)decode_backend_key_data(buf);
  if (auto a = decode_authentication(buf)) (void)decode_sasl_mechanisms(a->data);
  (void)decode_sasl_mechanisms(buf);
  (void)decode_query(buf);
  (void)decode_parse(buf);
  (void)decode_bind(buf);
  (void)decode_describe_or_close(buf);
  if (auto r = decode_sasl_initial_response(buf)) {
    EXPECT_LE(r->data.size(), buf.size());
  }
  (void)decode_password(buf);
  const std::string_view text(reinterpret_cast<const char*>(buf.data()), buf.size());
  std::string error;
  (void)parse_options(text, error);
  (void)frontend_message_name(buf.empty() ? 0 : static_cast<char>(buf[0]));
  (void)backend_message_name(buf.empty() ? 0 : static_cast<char>(buf[0]));
}

TEST(Robustness, RandomBuffers) {
  std::mt19937 rng(20240611);
  // Bias towards the bytes that matter to the parsers: NULs, small lengths, letters.
  const uint8_t interesting[] = {0,   0,   0,   1,   3,   4,   8,   16,   0xff, 0x80,
                                 'S', 'P', 'I', '=', '-', 'c', ' ', '\\', 'u'};
  for (int i = 0; i < 10000; ++i) {
    const size_t size = std::uniform_int_distribution<size_t>(0, i % 10 == 0 ? 300 : 40)(rng);
    std::vector<uint8_t> buf(size);
    const bool biased = rng() % 2 == 0;
    for (auto& b : buf) {
      b = biased ? interesting[rng() % sizeof(interesting)] : static_cast<uint8_t>(rng());
    }
    feed_all_decoders(bytes_of(buf));
    // Also every body as it would arrive after a 5-byte header.
    if (buf.size() > 5) feed_all_decoders(bytes_of(buf).subspan(5));
  }
}

TEST(Robustness, MutatedValidMessages) {
  std::vector<std::string> seeds;
  {
    std::string s;
    const std::pair<std::string, std::string> params[] = {
        {"user", "alice"}, {"database", "db"}, {"options", "-c a=b --c-d=e"}};
    write_startup(s, params);
    seeds.push_back(s);
  }
  {
    std::string s;
    write_cancel_request(s, 1, 2);
    seeds.push_back(s);
  }
  {
    std::string s;
    write_error(s, "ERROR", "42000", "msg", "detail");
    seeds.push_back(s);
  }
  {
    std::string s;
    write_sasl_initial_response(s, "SCRAM-SHA-256", "n,,n=,r=abc");
    seeds.push_back(s);
  }
  {
    std::string s;
    const std::string_view mechs[] = {"SCRAM-SHA-256"};
    write_auth_sasl(s, mechs);
    seeds.push_back(s);
  }
  {
    std::string s;
    MessageWriter w(s);
    w.begin('P');
    w.cstring("s");
    w.cstring("select $1");
    w.int16(1);
    w.int32(23);
    w.end();
    seeds.push_back(s);
  }

  std::mt19937 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const std::string& seed = seeds[static_cast<size_t>(i) % seeds.size()];
    std::vector<uint8_t> buf(seed.begin(), seed.end());
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !buf.empty(); ++m) {
      switch (rng() % 4) {
        case 0:  // flip a byte
          buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:  // truncate
          buf.resize(rng() % buf.size());
          break;
        case 2:  // insert a byte
          buf.insert(buf.begin() + static_cast<std::ptrdiff_t>(rng() % (buf.size() + 1)),
                     static_cast<uint8_t>(rng()));
          break;
        default:  // zero a byte
          buf[rng() % buf.size()] = 0;
          break;
      }
    }
    feed_all_decoders(bytes_of(buf));
    if (buf.size() > 5) feed_all_decoders(bytes_of(buf).subspan(5));
  }
}

}  // namespace
}  // namespace sluice::pgwire
