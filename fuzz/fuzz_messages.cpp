// libFuzzer: the protocol codec on hostile bytes. Frames are cut from the input as the proxy cuts
// them (peek_frame, peek_frame_head), and each is decoded by every decoder that could meet a frame
// of its type, from a client or from a server.
#include <cstddef>
#include <cstdint>

#include "pgwire/codec.hpp"

using namespace sluice::pgwire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes rest(data, size);
  for (int i = 0; i < 64 && !rest.empty(); ++i) {
    Frame frame;
    if (peek_frame(rest, 1 << 20, frame) != FrameStatus::kReady) {
      // Not whole: the head of a message streamed through, as the proxy takes it (a Bind's
      // names are read from its head alone).
      if (peek_frame_head(rest, 16, 1u << 30, frame) == FrameStatus::kReady && frame.type == 'B')
        (void)decode_bind(frame.body);
      break;
    }
    const Bytes body = frame.body;
    switch (frame.type) {
      case 'Q':
        (void)decode_query(body);
        break;
      case 'P':
        (void)decode_parse(body);
        break;
      case 'B':
        (void)decode_bind(body);
        break;
      case 'D':
        (void)decode_describe_or_close(body);
        (void)decode_data_row(body);
        break;
      case 'C':
        (void)decode_describe_or_close(body);
        break;
      case 'E':
        (void)decode_execute_portal(body);
        (void)decode_error_fields(body);
        break;
      case 'N':
        (void)decode_error_fields(body);
        break;
      case 'p':
        (void)decode_password(body);
        (void)decode_sasl_initial_response(body);
        break;
      case 'R':
        if (auto request = decode_authentication(body)) (void)decode_sasl_mechanisms(request->data);
        break;
      case 'S':
        (void)decode_parameter_status(body);
        break;
      case 'Z':
        (void)decode_ready_for_query(body);
        break;
      case 'K':
        (void)decode_backend_key_data(body);
        break;
      default:
        break;
    }
    rest = rest.subspan(frame.wire_size());
  }
  return 0;
}
