// New ActiveStorage blob keys for Paperclip files: 28 lowercase base36
// characters from a cryptographic random source, as has_secure_token makes them.
#pragma once

#include <string>

namespace blobferry {

class PaperclipBlobKey {
 public:
  static constexpr std::size_t kLength = 28;

  // Throws Error kPermanent when OpenSSL's generator fails (no entropy).
  static std::string generate();
};

}  // namespace blobferry
