#include "cloud/sealed.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "auth/openssl_ptr.hpp"

namespace sluice::cloud {
namespace {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

using CipherContext = auth::OpenSslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

SealingKey SealingKey::load_or_create(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (key.size() != kKeySize)
      throw std::runtime_error("key file " + path + " does not hold a 32-byte key");
    return SealingKey(std::move(key));
  }
  std::string key(kKeySize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeySize) != 1)
    throw std::runtime_error("no randomness for a new key");
  // O_EXCL: never overwrite a key another process just made.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create key file " + path + ": " + std::strerror(errno));
  const bool written = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ::fchmod(fd, 0600);  // whatever the umask said
  ::close(fd);
  if (!written) throw std::runtime_error("cannot write key file " + path);
  return SealingKey(std::move(key));
}

std::string SealingKey::seal(std::string_view plaintext, std::string_view context) const {
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(nonce, kNonceSize) != 1) throw std::runtime_error("no randomness for a nonce");
  CipherContext ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  auto* body = nonce + kNonceSize;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, bytes(context), static_cast<int>(context.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), body, &n, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, body + plaintext.size()) != 1)
    throw std::runtime_error("AES-GCM sealing failed");
  return out;
}

std::optional<std::string> SealingKey::open(std::string_view sealed,
                                            std::string_view context) const {
  if (sealed.size() < kNonceSize + kTagSize) return std::nullopt;
  const auto* nonce = bytes(sealed);
  const size_t size = sealed.size() - kNonceSize - kTagSize;
  std::string out(size, '\0');
  auto* plain = reinterpret_cast<unsigned char*>(out.data());
  std::string tag(sealed.substr(kNonceSize + size));
  CipherContext ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, bytes(context), static_cast<int>(context.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), plain, &n, nonce + kNonceSize, static_cast<int>(size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain + n, &n) != 1)
    return std::nullopt;  // tampered with, or another key
  return out;
}

}  // namespace sluice::cloud
