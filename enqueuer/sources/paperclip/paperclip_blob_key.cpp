// New ActiveStorage blob keys for Paperclip files: 28 lowercase base36
// characters from a cryptographic random source, as has_secure_token makes them.
#include "enqueuer/sources/paperclip/paperclip_blob_key.h"

#include <openssl/rand.h>

#include "common/base/error.h"
#include "enqueuer/sources/blobs/blob_table.h"

namespace blobferry {

std::string PaperclipBlobKey::generate() {
  constexpr unsigned kAlphabetSize = sizeof(kActiveStorageKeyAlphabet) - 1;  // 36
  // 252 is the largest multiple of 36 below 256: bytes from 252 up are drawn
  // again, so every character is equally likely.
  constexpr unsigned kLimit = 256 / kAlphabetSize * kAlphabetSize;
  std::string key;
  key.reserve(kLength);
  unsigned char bytes[64];
  while (key.size() < kLength) {
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
      throw Error(ErrorKind::kPermanent, FailureReason::kRandomFailed, "RAND_bytes failed: no cryptographic random source for blob keys");
    }
    for (unsigned char b : bytes) {
      if (b >= kLimit) continue;
      key += kActiveStorageKeyAlphabet[b % kAlphabetSize];
      if (key.size() == kLength) break;
    }
  }
  return key;
}

}  // namespace blobferry
