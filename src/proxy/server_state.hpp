// The life of one server connection (see server_connection.hpp), and its names in metrics and
// logs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace sluice::proxy {

enum class ServerState : uint8_t { kOpening, kIdle, kLent, kPinned, kCancelling, kClosed };
inline constexpr size_t kServerStateCount = 6;

// One pool's connections by state (closed ones not counted), for the admin console.
using ServerStateCounts = std::array<uint32_t, kServerStateCount>;

constexpr const char* server_state_name(ServerState state) {
  switch (state) {
    case ServerState::kOpening:
      return "opening";
    case ServerState::kIdle:
      return "idle";
    case ServerState::kLent:
      return "lent";
    case ServerState::kPinned:
      return "pinned";
    case ServerState::kCancelling:
      return "cancelling";
    case ServerState::kClosed:
      return "closed";
  }
  return "unknown";
}

}  // namespace sluice::proxy
