// `sluice apply FILE`: a declarative stack (TOML) created in dependency order through the API,
// with IDs and ARNs optionally pinned, so examples/meal-planner/stack.toml reproduces the guide's
// account exactly. Resources that exist already (same pinned ID or name) are left as they are,
// so applying twice is harmless. The format is in docs/control-plane.md.
#pragma once

#include <string>

namespace sluice::cli {

// Returns the process exit code; prints one line per resource, errors on stderr.
int apply_stack(const std::string& file, const std::string& endpoint_url);

}  // namespace sluice::cli
