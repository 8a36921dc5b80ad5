// Incremental MD5 and SHA-256 over OpenSSL's EVP interface.
#include "common/base/digest.h"

#include <openssl/hmac.h>

#include "common/base/error.h"

namespace blobferry {
namespace {

// OpenSSL only fails here on allocation failure or a broken library; nothing
// a retry of the transfer could fix, so it is reported as permanent.
[[noreturn]] void throw_openssl(const char* call) {
  throw Error(ErrorKind::kPermanent, FailureReason::kInternal, std::string(call) + " failed");
}

}  // namespace

Digest::Digest(const EVP_MD* algorithm) : algorithm_(algorithm), ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) throw_openssl("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(ctx_.get(), algorithm_, nullptr) != 1) throw_openssl("EVP_DigestInit_ex");
}

Digest Digest::md5() { return Digest(EVP_md5()); }
Digest Digest::sha256() { return Digest(EVP_sha256()); }

void Digest::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) throw_openssl("EVP_DigestUpdate");
}

std::string Digest::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out, &length) != 1) throw_openssl("EVP_DigestFinal_ex");
  if (EVP_DigestInit_ex(ctx_.get(), algorithm_, nullptr) != 1) throw_openssl("EVP_DigestInit_ex");
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string md5_of(std::string_view bytes) {
  Digest digest = Digest::md5();
  digest.update(bytes);
  return digest.finish();
}

std::string sha256_of(std::string_view bytes) {
  Digest digest = Digest::sha256();
  digest.update(bytes);
  return digest.finish();
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &length)) {
    throw_openssl("HMAC");
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

}  // namespace blobferry
