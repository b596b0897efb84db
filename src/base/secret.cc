#include "base/secret.h"

#include <openssl/crypto.h>

namespace ldm {

void wipe(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace ldm
