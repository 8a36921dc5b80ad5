// S3 XML documents (errors, ListObjectsV2, multipart, copy) and the mapping
// of failed responses and transfers to blobferry::Error kinds.
#include "common/storage/s3/s3_xml.h"

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/storage/s3/curl_handles.h"

using blobferry::CompletedPart;
using blobferry::Error;
using blobferry::ErrorKind;
using blobferry::S3Failure;

namespace {

Error map(int status, std::string code, std::string retry_after = "") {
  return blobferry::s3_error(S3Failure{status, std::move(code), "server says so", std::move(retry_after)},
                             "PUT a.jpg on s3 bucket media at https://s3.example.com", "media");
}

ErrorKind kind_of_bad_response(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const Error& error) {
    EXPECT_EQ(error.reason(), "bad_response");
    return error.kind();
  }
  ADD_FAILURE() << "expected a bad_response Error";
  return ErrorKind::kConfig;
}

}  // namespace

TEST(S3Xml, ParsesAnErrorDocument) {
  const auto error = blobferry::parse_s3_error(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message>
<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>)");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "NoSuchKey");
  EXPECT_EQ(error->message, "The resource you requested does not exist");
}

TEST(S3Xml, OtherBodiesAreNotErrorDocuments) {
  EXPECT_FALSE(blobferry::parse_s3_error(""));
  EXPECT_FALSE(blobferry::parse_s3_error("<html><body>502 Bad Gateway</body></html>"));
  EXPECT_FALSE(blobferry::parse_s3_error("<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>"));
  EXPECT_FALSE(blobferry::parse_s3_error("not xml at all <"));
}

TEST(S3Xml, ListObjectsV2SinglePage) {
  const auto page = blobferry::parse_list_objects_v2(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix/><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
  <Contents><Key>a+b %.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>empty</Key><LastModified>2009-10-12T17:50:31.000Z</LastModified>
    <ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>0</Size></Contents>
</ListBucketResult>)");
  ASSERT_EQ(page.objects.size(), 2u);
  // Without <EncodingType>url</EncodingType> keys are verbatim, '+' and '%' included.
  EXPECT_EQ(page.objects[0].key, "a+b %.txt");
  EXPECT_EQ(page.objects[0].size, 434234u);
  EXPECT_EQ(page.objects[0].etag, "fba9dede5f27731c9771645a39863328");
  EXPECT_EQ(page.objects[0].last_modified, "2009-10-12T17:50:30.000Z");
  EXPECT_EQ(page.objects[1].key, "empty");
  EXPECT_EQ(page.objects[1].size, 0u);
  EXPECT_TRUE(page.common_prefixes.empty());
  EXPECT_TRUE(page.next_continuation_token.empty());
}

TEST(S3Xml, ListObjectsV2TruncatedPageCarriesTheContinuationToken) {
  const auto page = blobferry::parse_list_objects_v2(R"(<ListBucketResult>
  <Name>bucket</Name><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>true</IsTruncated>
  <ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwN=</NextContinuationToken>
  <Contents><Key>k1</Key><Size>1</Size><ETag>"e"</ETag></Contents>
</ListBucketResult>)");
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwN=");
}

TEST(S3Xml, ListObjectsV2CommonPrefixes) {
  const auto page = blobferry::parse_list_objects_v2(R"(<ListBucketResult>
  <Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>
  <Contents><Key>top.txt</Key><Size>3</Size><ETag>"e"</ETag></Contents>
  <CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>videos/</Prefix></CommonPrefixes>
</ListBucketResult>)");
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.common_prefixes, (std::vector<std::string>{"photos/", "videos/"}));
}

TEST(S3Xml, ListObjectsV2UrlEncodedKeysAreDecoded) {
  const auto page = blobferry::parse_list_objects_v2(R"(<ListBucketResult>
  <EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
  <Contents><Key>dir/a+b%2Bc%25d%E1%88%B4%0A</Key><Size>1</Size><ETag>"e"</ETag></Contents>
  <CommonPrefixes><Prefix>with+space/</Prefix></CommonPrefixes>
</ListBucketResult>)");
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, "dir/a b+c%dሴ\n");
  EXPECT_EQ(page.common_prefixes, (std::vector<std::string>{"with space/"}));
}

TEST(S3Xml, ListObjectsV2RejectsMalformedPages) {
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_list_objects_v2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
            }),
            ErrorKind::kTransient);
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_list_objects_v2(
                  "<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>");
            }),
            ErrorKind::kTransient);
  EXPECT_EQ(kind_of_bad_response([] { blobferry::parse_list_objects_v2("<Error><Code>X</Code></Error>"); }),
            ErrorKind::kTransient);
  EXPECT_EQ(kind_of_bad_response([] { blobferry::parse_list_objects_v2("<ListBucketResult>"); }),
            ErrorKind::kTransient);
}

TEST(S3Xml, InitiateMultipartUploadResult) {
  EXPECT_EQ(blobferry::parse_initiate_multipart_upload(R"(<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket><Key>example-object</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
</InitiateMultipartUploadResult>)"),
            "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_initiate_multipart_upload("<InitiateMultipartUploadResult/>");
            }),
            ErrorKind::kTransient);
}

TEST(S3Xml, CompleteMultipartUploadResult) {
  EXPECT_EQ(blobferry::parse_complete_multipart_upload(R"(<CompleteMultipartUploadResult>
  <Location>http://Example-Bucket.s3.amazonaws.com/Example-Object</Location>
  <Bucket>Example-Bucket</Bucket><Key>Example-Object</Key>
  <ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag>
</CompleteMultipartUploadResult>)"),
            "3858f62230ac3c915f300c664312c11f-9");
  // S3 may answer 200 with an <Error> body when completion fails late.
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_complete_multipart_upload("<Error><Code>InternalError</Code></Error>");
            }),
            ErrorKind::kTransient);
}

TEST(S3Xml, CopyObjectAndCopyPartResults) {
  EXPECT_EQ(blobferry::parse_copy_result(R"(<CopyObjectResult>
  <LastModified>2009-10-28T22:32:00</LastModified><ETag>"9b2cf535f27731c974343645a3985328"</ETag>
</CopyObjectResult>)"),
            "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(blobferry::parse_copy_result(
                "<CopyPartResult><LastModified>2011-04-11T20:34:56.000Z</LastModified>"
                "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyPartResult>"),
            "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(kind_of_bad_response([] { blobferry::parse_copy_result("<Error><Code>SlowDown</Code></Error>"); }),
            ErrorKind::kTransient);
}

// RGW 16 answers a successful completion with <ETag></ETag>: not a bad
// response (a retry would find the upload gone), the caller HEADs instead.
TEST(S3Xml, CompleteMultipartUploadResultWithEmptyEtagAsRgwSendsIt) {
  EXPECT_EQ(blobferry::parse_complete_multipart_upload(
                "<CompleteMultipartUploadResult><Location>rgw-target/k</Location><Bucket>rgw-target</Bucket>"
                "<Key>k</Key><ETag></ETag></CompleteMultipartUploadResult>"),
            "");
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_complete_multipart_upload("<CompleteMultipartUploadResult><Key>k</Key>"
                                                          "</CompleteMultipartUploadResult>");
            }),
            ErrorKind::kTransient);
}

// RGW's CopyObjectResult and CopyPartResult carry the ETag unquoted.
TEST(S3Xml, UnquotedCopyResultEtagsAsRgwSendsThem) {
  EXPECT_EQ(blobferry::parse_copy_result("<CopyObjectResult><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
                                         "<ETag>9b2cf535f27731c974343645a3985328-3</ETag></CopyObjectResult>"),
            "9b2cf535f27731c974343645a3985328-3");
  EXPECT_EQ(blobferry::parse_copy_result("<CopyPartResult><ETag>9b2cf535f27731c974343645a3985328</ETag>"
                                         "</CopyPartResult>"),
            "9b2cf535f27731c974343645a3985328");
}

TEST(S3Xml, ListMultipartUploadsPages) {
  const auto page = blobferry::parse_list_multipart_uploads(R"(<ListMultipartUploadsResult>
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlkZWEgd2h5</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5n</UploadId></Upload>
  <Upload><Key>my-movie.m2ts</Key><UploadId>YW55IGlkZWEgd2h5</UploadId></Upload>
</ListMultipartUploadsResult>)");
  ASSERT_EQ(page.uploads.size(), 2u);
  EXPECT_EQ(page.uploads[0].first, "my-divisor");
  EXPECT_EQ(page.uploads[0].second, "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5n");
  EXPECT_EQ(page.uploads[1].first, "my-movie.m2ts");
  EXPECT_EQ(page.next_key_marker, "my-movie.m2ts");
  EXPECT_EQ(page.next_upload_id_marker, "YW55IGlkZWEgd2h5");
  const auto last = blobferry::parse_list_multipart_uploads(
      "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>");
  EXPECT_TRUE(last.uploads.empty());
  EXPECT_TRUE(last.next_key_marker.empty());
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_list_multipart_uploads(
                  "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>");
            }),
            ErrorKind::kTransient);
}

TEST(S3Xml, CompleteMultipartUploadBodyListsPartsInOrderWithQuotedEtags) {
  const std::vector<CompletedPart> parts = {{2, "\"bbb\""}, {1, "aaa"}, {10, "c<d"}};
  EXPECT_EQ(blobferry::complete_multipart_upload_body(parts),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>\"aaa\"</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>\"bbb\"</ETag></Part>"
            "<Part><PartNumber>10</PartNumber><ETag>\"c&lt;d\"</ETag></Part>"
            "</CompleteMultipartUpload>");
}

TEST(S3Xml, UnquoteEtag) {
  EXPECT_EQ(blobferry::unquote_etag("\"abc\""), "abc");
  EXPECT_EQ(blobferry::unquote_etag("abc"), "abc");
  EXPECT_EQ(blobferry::unquote_etag("W/\"abc-2\""), "abc-2");
  EXPECT_EQ(blobferry::unquote_etag("\""), "\"");
  EXPECT_EQ(blobferry::unquote_etag(""), "");
}

TEST(S3Xml, RetryAfterSeconds) {
  EXPECT_EQ(blobferry::parse_retry_after("120"), std::chrono::seconds{120});
  EXPECT_EQ(blobferry::parse_retry_after(" 3 "), std::chrono::seconds{3});
  EXPECT_EQ(blobferry::parse_retry_after(""), std::chrono::milliseconds{0});
  EXPECT_EQ(blobferry::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::chrono::milliseconds{0});
  EXPECT_EQ(blobferry::parse_retry_after("-5"), std::chrono::milliseconds{0});
}

TEST(S3ErrorMapping, ThrottlingHonoursRetryAfter) {
  const Error slow_down = map(503, "SlowDown", "7");
  EXPECT_EQ(slow_down.kind(), ErrorKind::kThrottled);
  EXPECT_EQ(slow_down.reason(), "throttled");
  EXPECT_EQ(slow_down.retry_after(), std::chrono::seconds{7});
  EXPECT_EQ(slow_down.http_status(), 503);
  EXPECT_EQ(map(429, "").kind(), ErrorKind::kThrottled);
  EXPECT_EQ(map(429, "TooManyRequests").retry_after(), std::chrono::milliseconds{0});
  EXPECT_EQ(map(500, "InternalError", "2").kind(), ErrorKind::kThrottled);
}

TEST(S3ErrorMapping, ServerErrorsAndTimeoutsAreTransient) {
  EXPECT_EQ(map(500, "InternalError").kind(), ErrorKind::kTransient);
  EXPECT_EQ(map(500, "InternalError").reason(), "server_error");
  EXPECT_EQ(map(502, "").kind(), ErrorKind::kTransient);
  EXPECT_EQ(map(503, "ServiceUnavailable").kind(), ErrorKind::kTransient);
  EXPECT_EQ(map(400, "RequestTimeout").kind(), ErrorKind::kTransient);
  EXPECT_EQ(map(408, "").kind(), ErrorKind::kTransient);
}

TEST(S3ErrorMapping, DigestMismatchIsIntegrity) {
  EXPECT_EQ(map(400, "BadDigest").kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(map(400, "InvalidDigest").kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(map(400, "BadDigest").reason(), "integrity");
}

TEST(S3ErrorMapping, MissingBucketIsAConfigurationError) {
  const Error error = map(404, "NoSuchBucket");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_EQ(std::string(error.what()).rfind("missing bucket media: create it or fix `bucket:`", 0), 0u)
      << error.what();
}

TEST(S3ErrorMapping, ClientErrorsArePermanent) {
  EXPECT_EQ(map(403, "AccessDenied").kind(), ErrorKind::kPermanent);
  EXPECT_EQ(map(403, "AccessDenied").reason(), "access_denied");
  EXPECT_EQ(map(403, "SignatureDoesNotMatch").reason(), "access_denied");
  EXPECT_EQ(map(404, "NoSuchKey").reason(), "not_found");
  EXPECT_EQ(map(404, "").kind(), ErrorKind::kPermanent);
  EXPECT_EQ(map(400, "InvalidArgument").reason(), "bad_request");
  EXPECT_EQ(map(409, "BucketNotEmpty").reason(), "client_error");
  EXPECT_EQ(map(416, "InvalidRange").kind(), ErrorKind::kPermanent);
  EXPECT_EQ(map(501, "NotImplemented").kind(), ErrorKind::kPermanent);
  EXPECT_EQ(map(501, "NotImplemented").reason(), "unsupported");
}

TEST(S3ErrorMapping, MessageIsOneLineNamingOperationAndServerCode) {
  const Error error = blobferry::s3_error(S3Failure{403, "AccessDenied", "Access\nDenied", ""},
                                          "GET k on s3 bucket b at http://h", "b");
  EXPECT_STREQ(error.what(), "GET k on s3 bucket b at http://h failed: HTTP 403 AccessDenied: Access Denied");
}

Error check_failure(int status, std::string code, std::string bucket_region = "", std::string retry_after = "") {
  return blobferry::s3_check_error(
      S3Failure{status, std::move(code), "server says so", std::move(retry_after)},
      blobferry::S3CheckContext{"listing s3 bucket media for service amazon", "service amazon (s3 bucket media)",
                                "media", "us-east-1", std::move(bucket_region)});
}

TEST(S3CheckErrorMapping, RefusalsNameTheSettingToFix) {
  const std::pair<const char*, const char*> cases[] = {
      {"InvalidAccessKeyId", "fix access_key_id and secret_access_key"},
      {"SignatureDoesNotMatch", "fix access_key_id and secret_access_key"},
      {"ExpiredToken", "renew session_token"},
      {"RequestTimeTooSkewed", "fix the clock"},
      {"AccessDenied", "need permission to list, read and write"},
  };
  for (const auto& [code, fix] : cases) {
    const Error error = check_failure(403, code);
    EXPECT_EQ(error.kind(), ErrorKind::kConfig) << code;
    EXPECT_EQ(error.reason(), "config") << code;
    EXPECT_EQ(std::string(error.what()).rfind("service amazon (s3 bucket media): ", 0), 0u) << error.what();
    EXPECT_NE(std::string(error.what()).find(fix), std::string::npos) << error.what();
  }
  const Error region = check_failure(301, "PermanentRedirect", "eu-west-1");
  EXPECT_EQ(region.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(region.what()).find("set `region: eu-west-1`"), std::string::npos) << region.what();
}

TEST(S3CheckErrorMapping, SharesTheObjectClassifierForTheRest) {
  EXPECT_EQ(check_failure(503, "SlowDown").kind(), ErrorKind::kThrottled) << "throttling stays retryable";
  EXPECT_EQ(check_failure(500, "InternalError").kind(), ErrorKind::kTransient);
  EXPECT_EQ(check_failure(500, "InternalError").reason(), "server_error");
  const Error missing = check_failure(404, "NoSuchBucket");
  EXPECT_EQ(missing.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(missing.what()).find("missing bucket media"), std::string::npos) << missing.what();
  // Any other refusal means the settings are wrong.
  const Error other = check_failure(400, "InvalidArgument");
  EXPECT_EQ(other.kind(), ErrorKind::kConfig);
  EXPECT_EQ(other.reason(), "config");
  EXPECT_NE(std::string(other.what()).find("HTTP 400 InvalidArgument"), std::string::npos) << other.what();
  EXPECT_EQ(check_failure(400, "InvalidArgument", "us-east-1").kind(), ErrorKind::kConfig)
      << "the bucket's own region is no complaint";
}

TEST(S3FailureReading, TakesCodeAndMessageFromAnErrorDocumentOnly) {
  const S3Failure failure = blobferry::read_s3_failure(
      503, "2", "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>");
  EXPECT_EQ(failure.http_status, 503);
  EXPECT_EQ(failure.code, "SlowDown");
  EXPECT_EQ(failure.message, "Reduce your rate");
  EXPECT_EQ(failure.retry_after, "2");
  const S3Failure bare = blobferry::read_s3_failure(502, "", "<html>Bad Gateway</html>");
  EXPECT_TRUE(bare.code.empty());
  EXPECT_TRUE(bare.message.empty());
}

TEST(CurlFailure, NetworkTroubleIsTransient) {
  for (CURLcode code : {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                        CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_COULDNT_RESOLVE_HOST}) {
    const Error error = blobferry::curl_failure(code, "GET k", "");
    EXPECT_EQ(error.kind(), ErrorKind::kTransient) << code;
    EXPECT_EQ(error.reason(), "network");
  }
}

TEST(CurlFailure, TlsTrustAndBadUrlsAreConfiguration) {
  const Error tls = blobferry::curl_failure(CURLE_PEER_FAILED_VERIFICATION, "HEAD k", "certificate expired");
  EXPECT_EQ(tls.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(tls.what()).find("HEAD k failed: certificate expired"), std::string::npos);
  EXPECT_NE(std::string(tls.what()).find("ssl_ca_bundle"), std::string::npos);
  EXPECT_EQ(blobferry::curl_failure(CURLE_URL_MALFORMAT, "GET k", "").kind(), ErrorKind::kConfig);
}

TEST(S3Xml, ListPartsPagesAndUnquotesEtags) {
  const auto page = blobferry::parse_list_parts(R"(<ListPartsResult>
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId><PartNumberMarker>0</PartNumberMarker>
  <NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>3</PartNumber><ETag>&quot;aaa&quot;</ETag><Size>10</Size></Part>
</ListPartsResult>)");
  ASSERT_EQ(page.parts.size(), 2u);
  EXPECT_EQ(page.parts[0].number, 1);
  EXPECT_EQ(page.parts[0].etag, "7778aef83f66abc1fa1e8477f296d394");
  EXPECT_EQ(page.parts[1].number, 3);
  EXPECT_EQ(page.parts[1].etag, "aaa");
  EXPECT_EQ(page.next_part_number_marker, 3);
  const auto last = blobferry::parse_list_parts("<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>");
  EXPECT_TRUE(last.parts.empty());
  EXPECT_EQ(last.next_part_number_marker, 0);
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_list_parts("<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>");
            }),
            ErrorKind::kTransient);
  EXPECT_EQ(kind_of_bad_response([] {
              blobferry::parse_list_parts("<ListPartsResult><Part><ETag>x</ETag></Part></ListPartsResult>");
            }),
            ErrorKind::kTransient);
}
