// Human-readable message names for logs, and the set of valid frontend message types.
#include "pgwire/codec.hpp"

namespace sluice::pgwire {

std::string_view frontend_message_name(char type) {
  switch (type) {
    case 'Q':
      return "Query";
    case 'P':
      return "Parse";
    case 'B':
      return "Bind";
    case 'E':
      return "Execute";
    case 'D':
      return "Describe";
    case 'C':
      return "Close";
    case 'H':
      return "Flush";
    case 'S':
      return "Sync";
    case 'F':
      return "FunctionCall";
    case 'd':
      return "CopyData";
    case 'c':
      return "CopyDone";
    case 'f':
      return "CopyFail";
    case 'X':
      return "Terminate";
    case 'p':
      return "PasswordMessage";
    default:
      return "unknown";
  }
}

std::string_view backend_message_name(char type) {
  switch (type) {
    case 'R':
      return "Authentication";
    case 'K':
      return "BackendKeyData";
    case '2':
      return "BindComplete";
    case '3':
      return "CloseComplete";
    case 'C':
      return "CommandComplete";
    case 'd':
      return "CopyData";
    case 'c':
      return "CopyDone";
    case 'G':
      return "CopyInResponse";
    case 'H':
      return "CopyOutResponse";
    case 'W':
      return "CopyBothResponse";
    case 'D':
      return "DataRow";
    case 'I':
      return "EmptyQueryResponse";
    case 'E':
      return "ErrorResponse";
    case 'V':
      return "FunctionCallResponse";
    case 'v':
      return "NegotiateProtocolVersion";
    case 'n':
      return "NoData";
    case 'N':
      return "NoticeResponse";
    case 'A':
      return "NotificationResponse";
    case 't':
      return "ParameterDescription";
    case 'S':
      return "ParameterStatus";
    case '1':
      return "ParseComplete";
    case 's':
      return "PortalSuspended";
    case 'Z':
      return "ReadyForQuery";
    case 'T':
      return "RowDescription";
    default:
      return "unknown";
  }
}

bool is_frontend_message_type(char type) {
  return frontend_message_name(type) != "unknown";
}

}  // namespace sluice::pgwire
