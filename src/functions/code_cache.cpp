#include "functions/code_cache.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

namespace sluice::functions {
namespace fs = std::filesystem;
namespace {

// Readable (and where it was, executable) by the function's user, whatever our umask.
void open_up(const fs::path& folder) {
  using fs::perms;
  fs::permissions(folder, perms::owner_all | perms::group_read | perms::group_exec |
                              perms::others_read | perms::others_exec);
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    const bool executable =
        entry.is_directory() || (entry.status().permissions() & perms::owner_exec) != perms::none;
    perms mode = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
    if (executable) mode |= perms::owner_exec | perms::group_exec | perms::others_exec;
    if (!entry.is_symlink()) fs::permissions(entry.path(), mode);
  }
}

// unzip from Debian: it keeps the Unix modes zip files carry (bootstrap's exec bit).
void extract(const std::string& zip, const fs::path& into) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("cannot fork unzip");
  if (pid == 0) {
    ::execlp("unzip", "unzip", "-q", "-o", zip.c_str(), "-d", into.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(
        "cannot unzip the function's package " + zip +
        (WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is unzip installed?)" : ""));
}

}  // namespace

std::string CodeCache::folder(const std::string& code_file, const std::string& sha256) {
  std::error_code ec;
  if (fs::is_directory(code_file, ec)) return code_file;
  std::string name = sha256;  // base64: '/' and '+' are not file-name material
  for (char& c : name)
    if (c == '/')
      c = '_';
    else if (c == '+')
      c = '-';
  const fs::path target = fs::path(root_) / name;
  if (fs::is_directory(target, ec)) return target.string();
  fs::create_directories(root_);
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  const fs::path staging = fs::path(root_) / (name + ".partial");
  fs::remove_all(staging, ec);
  fs::create_directories(staging);
  try {
    extract(code_file, staging);
    open_up(staging);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  fs::rename(staging, target);
  return target.string();
}

}  // namespace sluice::functions
