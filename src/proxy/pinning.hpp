// Which client actions leave state in a server session that transaction pooling cannot carry
// to another connection. Pure: it reads SQL text, nothing else.
#pragma once

#include <optional>
#include <string_view>

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
};

std::string_view pin_reason_text(PinReason reason);
// Short snake_case label for metrics.
std::string_view pin_reason_label(PinReason reason);

// Scans a simple-protocol query string or a Parse statement text. Comments, string literals,
// quoted identifiers and dollar-quoted bodies are skipped, so `SELECT 'SET x'` does not pin.
std::optional<PinReason> statement_pin_reason(std::string_view sql);

// DEALLOCATE [PREPARE] ALL or DISCARD ALL among the statements of `sql`: every prepared
// statement of the session is gone afterwards.
bool drops_all_statements(std::string_view sql);

}  // namespace sluice::proxy
