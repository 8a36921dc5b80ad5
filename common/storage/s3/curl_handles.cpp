// Owning handles for libcurl (easy, multi, header lists) and what a failed transfer means.
#include "common/storage/s3/curl_handles.h"

#include <mutex>

namespace blobferry {

void ensure_curl_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error(ErrorKind::kPermanent, FailureReason::kInternal, "curl_global_init failed");
    }
  });
}

CurlEasyPtr make_curl_easy() {
  ensure_curl_initialized();
  CurlEasyPtr handle(curl_easy_init());
  if (!handle) throw Error(ErrorKind::kPermanent, FailureReason::kInternal, "curl_easy_init failed");
  return handle;
}

void append_curl_header(CurlSlistPtr& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (!grown) throw Error(ErrorKind::kPermanent, FailureReason::kInternal, "curl_slist_append failed");
  // On success curl_slist_append returns the same head (or the new one when
  // the list was empty), so ownership simply moves to the returned pointer.
  list.release();
  list.reset(grown);
}

namespace {

bool is_tls_trust_failure(CURLcode code) {
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return true;
    default:
      return false;
  }
}

bool is_bad_configuration(CURLcode code) {
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
      return true;
    default:
      return false;
  }
}

}  // namespace

Error curl_failure(CURLcode code, const std::string& operation, const std::string& detail) {
  const std::string what = detail.empty() ? curl_easy_strerror(code) : detail;
  const std::string message = operation + " failed: " + what;
  if (is_tls_trust_failure(code)) {
    return Error(ErrorKind::kConfig, FailureReason::kConfig,
                 message + " (set ssl_ca_bundle: to the CA that signed the endpoint's certificate)");
  }
  if (is_bad_configuration(code)) return Error(ErrorKind::kConfig, FailureReason::kConfig, message);
  if (code == CURLE_OUT_OF_MEMORY) return Error(ErrorKind::kPermanent, FailureReason::kInternal, message);
  // Everything else is the network or the peer misbehaving mid-transfer:
  // refused or reset connections, timeouts and stalls, partial bodies, TLS
  // handshakes cut short. A later attempt may well succeed.
  return Error(ErrorKind::kTransient, FailureReason::kNetwork, message);
}

}  // namespace blobferry
