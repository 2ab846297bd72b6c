// A client whose server connection was lost inside a transaction block keeps its connection to
// the proxy. Its transaction is gone (the server's end rolled it back), so until the client ends
// the block, PostgreSQL's rule for a failed transaction holds, and the proxy answers alone,
// without a server: COMMIT, END, ROLLBACK and ABORT end the block ("ROLLBACK", as PostgreSQL
// says for a failed one), every other command gets an error and the status stays 'E'.
//
// Pure: no I/O, so every answer is unit-tested.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pgwire/codec.hpp"
#include "proxy/prepared_statements.hpp"

namespace sluice::proxy {

// Whether `sql` is one statement that ends a transaction block without chaining another:
// COMMIT or END, ROLLBACK or ABORT, optionally WORK or TRANSACTION and AND NO CHAIN.
enum class BlockEnd { kNone, kCommit, kRollback };
BlockEnd transaction_block_end(std::string_view sql);

class FailedTransaction {
 public:
  // `loss_reported`: an error for the loss already reached the client (it had a request in
  // flight); otherwise the first command refused says what happened. `skipping`: the client
  // is inside an extended-protocol batch that failed; everything up to its Sync is dropped.
  // `cause`: the server's error (an ErrorResponse body) that ended the connection between
  // requests, told instead of the proxy's own when the loss was not reported yet.
  FailedTransaction(bool loss_reported, bool skipping, std::string cause = {})
      : loss_reported_(loss_reported), skipping_(skipping), cause_(std::move(cause)) {}

  enum class Outcome {
    kAnswered,   // the replies, if any, are in `out`; still in the failed block
    kEnded,      // the block ended: replies in `out`, the session goes back to normal
    kMalformed,  // a message that cannot be read: a protocol violation
  };
  // The answer to one client message of the kinds a session relays in a transaction (Query,
  // FunctionCall, Parse, Bind, Describe, Execute, Close, Flush, Sync, and COPY messages, which
  // are ignored as PostgreSQL ignores them outside COPY). `known`: the client's named
  // statements, for a Bind to one prepared before the loss.
  Outcome answer(const pgwire::Frame& frame, const ClientStatements& known, std::string& out);

 private:
  void refuse(std::string& out);
  // Whether the statement ends the block here. A COMMIT does only once the client was told
  // the block failed: answered "ROLLBACK" without an error, it would think it committed.
  bool ends_block(std::string_view sql) const;
  bool ends_block(std::string_view statement, const ClientStatements& known) const;

  bool loss_reported_;
  bool skipping_;
  std::string cause_;
  // Since the loss: statements parsed that end the block, and portals bound to one ("" is
  // the unnamed one).
  std::vector<std::string> parsed_ends_;
  std::vector<std::string> bound_ends_;
  bool ended_ = false;  // an Execute ended the block; the next Sync says 'I'
};

}  // namespace sluice::proxy
