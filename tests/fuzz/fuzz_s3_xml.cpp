// libFuzzer target: every S3 XML document parser, and the header parsers, on the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/base/error.h"
#include "common/storage/s3/s3_xml.h"

namespace {

template <typename Parse>
void parse_or_reject(Parse parse) {
  try {
    parse();
  } catch (const blobferry::Error&) {
  }
}

}  // namespace

// Any blobferry::Error is a clean rejection; anything else escapes and fails the run.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto document = blobferry::parse_s3_error(body)) {
    blobferry::S3Failure failure{400, document->code, document->message, std::string(body.substr(0, 16))};
    (void)blobferry::s3_error(failure, "PUT fuzz", "bucket");
    failure.http_status = 503;
    (void)blobferry::s3_error(failure, "GET fuzz", "bucket");
  }
  parse_or_reject([&] { (void)blobferry::parse_list_objects_v2(body); });
  parse_or_reject([&] { (void)blobferry::parse_initiate_multipart_upload(body); });
  parse_or_reject([&] { (void)blobferry::parse_complete_multipart_upload(body); });
  parse_or_reject([&] { (void)blobferry::parse_copy_result(body); });
  (void)blobferry::unquote_etag(body);
  (void)blobferry::parse_retry_after(body);
  return 0;
}
