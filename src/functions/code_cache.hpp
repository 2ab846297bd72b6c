// Where an execution environment finds its function's code (LAMBDA_TASK_ROOT): a local folder
// used where it lies, or a zip package extracted once per CodeSha256 into a folder that the
// unprivileged function user may read.
#pragma once

#include <string>

namespace sluice::functions {

class CodeCache {
 public:
  explicit CodeCache(std::string root) : root_(std::move(root)) {}

  // The folder to run from. `code_file` is a .zip or a folder; `sha256` (base64) names the
  // extraction. Throws std::runtime_error when the package cannot be read.
  std::string folder(const std::string& code_file, const std::string& sha256);

 private:
  std::string root_;
};

}  // namespace sluice::functions
