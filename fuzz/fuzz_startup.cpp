// libFuzzer: what a client sends before it is logged in. The input is a sequence of startup
// packets (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage) as the proxy reads them,
// and a StartupMessage's parameters go on to the settings parser, `options` included.
#include <cstddef>
#include <cstdint>
#include <variant>

#include "pgwire/codec.hpp"
#include "proxy/session_settings.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pgwire::Bytes rest(data, size);
  for (int round = 0; round < 3 && !rest.empty(); ++round) {
    pgwire::Bytes packet;
    if (pgwire::peek_startup_packet(rest, packet) != pgwire::FrameStatus::kReady) break;
    auto decoded = pgwire::decode_startup(packet);
    if (auto* startup = std::get_if<pgwire::StartupMessage>(&decoded)) {
      proxy::Settings settings;
      (void)proxy::settings_from_startup(startup->params, settings);
      if (!settings.empty()) (void)proxy::settings_sync_sql({}, settings);
      (void)pgwire::protocol_negotiation_needed(*startup);
    }
    rest = rest.subspan(packet.size());
  }
  return 0;
}
