// Owning handles for libcurl (easy, multi and share handles, header lists) and what a failed transfer means.
#pragma once

#include <memory>
#include <string>

#include <curl/curl.h>

#include "common/base/error.h"

namespace blobferry {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistDeleter>;

struct CurlMultiDeleter {
  void operator()(CURLM* handle) const { curl_multi_cleanup(handle); }
};
using CurlMultiPtr = std::unique_ptr<CURLM, CurlMultiDeleter>;

struct CurlShareDeleter {
  void operator()(CURLSH* handle) const { curl_share_cleanup(handle); }
};
using CurlSharePtr = std::unique_ptr<CURLSH, CurlShareDeleter>;

// curl_global_init is not thread-safe in older libcurl, so every handle is
// made through here, which runs it exactly once per process.
void ensure_curl_initialized();

// A fresh easy handle; throws Error when libcurl cannot allocate one.
CurlEasyPtr make_curl_easy();

// Appends one "Name: value" line; throws Error when libcurl cannot allocate.
void append_curl_header(CurlSlistPtr& list, const std::string& line);

// Translates a failed transfer (anything but CURLE_OK) into an Error.
// operation names the request ("GET photos/a.jpg on s3 bucket …"); detail is
// libcurl's error buffer, which may be empty. Unreachable hosts, timeouts and
// broken connections are transient; TLS verification and malformed URLs are
// configuration errors, since retrying cannot fix them.
Error curl_failure(CURLcode code, const std::string& operation, const std::string& detail);

}  // namespace blobferry
