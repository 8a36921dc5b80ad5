// The process's libcurl share handle: one DNS cache and one TLS session cache for every request of every thread.
#include "common/storage/s3/curl_share.h"

#include <array>
#include <mutex>

#include "common/base/error.h"
#include "common/storage/s3/curl_handles.h"

namespace blobferry {
namespace {

// libcurl asks for a lock per kind of shared data; one mutex each, so a DNS
// look-up never waits for a TLS session being stored.
std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

void lock_shared(CURL*, curl_lock_data data, curl_lock_access, void*) { locks.at(data).lock(); }
void unlock_shared(CURL*, curl_lock_data data, void*) { locks.at(data).unlock(); }

template <typename T>
void share_option(CURLSH* share, CURLSHoption option, T value) {
  if (const CURLSHcode code = curl_share_setopt(share, option, value); code != CURLSHE_OK) {
    throw Error(ErrorKind::kPermanent, FailureReason::kInternal,
                std::string("curl_share_setopt failed: ") + curl_share_strerror(code));
  }
}

CurlSharePtr make_share() {
  ensure_curl_initialized();
  CurlSharePtr share(curl_share_init());
  if (!share) throw Error(ErrorKind::kPermanent, FailureReason::kInternal, "curl_share_init failed");
  share_option(share.get(), CURLSHOPT_LOCKFUNC, lock_shared);
  share_option(share.get(), CURLSHOPT_UNLOCKFUNC, unlock_shared);
  share_option(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  share_option(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  return share;
}

}  // namespace

CURLSH* CurlShare::handle() {
  // Leaked on purpose: an easy handle cleaned up after static destruction
  // (a pool in a static Storage) would still point to it.
  static CURLSH* const share = make_share().release();
  return share;
}

}  // namespace blobferry
