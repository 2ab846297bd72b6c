// Which client actions leave state in a server session that transaction pooling cannot carry
// to another connection. Pure: it reads SQL text, nothing else.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proxy {

enum class PinReason {
  kSetStatement,            // SET / RESET / set_config (session scope)
  kPreparedStatement,       // PREPARE / EXECUTE / DEALLOCATE
  kNamedProtocolStatement,  // Parse with a statement name
  kDiscard,
  kTemporaryObject,  // temporary table, sequence or view
  kHoldCursor,       // DECLARE … WITH HOLD outlives its transaction
  kListen,
  kLoad,
  kSequenceFunction,           // nextval / setval: currval and lastval are per session
  kAdvisoryLock,               // session-level advisory locks
  kUnexpectedParameterChange,  // the server reported a setting changed by something we did not see
  kSetRole,                    // SET ROLE / SET SESSION AUTHORIZATION: who the session is
};
inline constexpr size_t kPinReasonCount = 12;

std::string_view pin_reason_text(PinReason reason);
// Short snake_case label for metrics.
std::string_view pin_reason_label(PinReason reason);

// What a simple-protocol query string or a Parse statement text does to the session: the first
// state that pins it, if any, and whether it changes settings (SET, RESET, set_config), which
// the proxy tracks instead of pinning. All statements of the string are looked at.
struct StatementEffects {
  std::optional<PinReason> pin;
  bool changes_settings = false;
};
StatementEffects statement_effects(std::string_view sql);

// Names that may be custom settings ("app.tenant"): every dotted name in `sql`, literals
// included (set_config() takes its name as one). PostgreSQL's pg_settings does not list custom
// settings, so the proxy asks for these by name when it reads a session's settings back.
void collect_custom_setting_names(std::string_view sql, std::vector<std::string>& out);

// The same as one reason (kSetStatement when settings change and nothing pins).
// Scans a simple-protocol query string or a Parse statement text. Comments, string literals,
// quoted identifiers and dollar-quoted bodies are skipped, so `SELECT 'SET x'` does not pin.
std::optional<PinReason> statement_pin_reason(std::string_view sql);

// DEALLOCATE [PREPARE] ALL or DISCARD ALL among the statements of `sql`: every prepared
// statement of the session is gone afterwards.
bool drops_all_statements(std::string_view sql);

}  // namespace sluice::proxy
