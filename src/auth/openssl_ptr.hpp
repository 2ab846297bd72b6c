// Owning pointers for OpenSSL objects, each freed by its own *_free function.
#pragma once

#include <memory>

namespace sluice::auth {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <typename T, auto Free>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<Free>>;

}  // namespace sluice::auth
