// Incremental MD5 and SHA-256 over OpenSSL's EVP interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace blobferry {

struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

// Move-only; update() as bytes stream past, finish() once for the raw digest.
class Digest {
 public:
  static Digest md5();
  static Digest sha256();

  void update(std::string_view bytes);
  // Raw digest bytes; the Digest starts over afterwards.
  std::string finish();

 private:
  explicit Digest(const EVP_MD* algorithm);
  const EVP_MD* algorithm_;
  EvpMdCtxPtr ctx_;
};

// One-shot helpers returning raw digest bytes.
std::string md5_of(std::string_view bytes);
std::string sha256_of(std::string_view bytes);
std::string hmac_sha256(std::string_view key, std::string_view message);

}  // namespace blobferry
