// DiskStorage in a temp folder: both layouts, ranges, listing, capabilities, integrity and escape attempts.
#include "common/storage/disk/disk_storage.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/config_error_of.h"

namespace blobferry {
namespace {

namespace fs = std::filesystem;

std::string md5_hex(std::string_view bytes) { return hex_encode(md5_of(bytes)); }
std::string md5_base64(std::string_view bytes) { return base64_encode(md5_of(bytes)); }

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// Every file below root, relative, sorted: what a test leaves behind.
std::vector<std::string> files_under(const std::string& root) {
  std::vector<std::string> files;
  if (!fs::exists(root)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_directory()) files.push_back(fs::relative(entry.path(), root).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

ListRequest request(std::string prefix, std::string delimiter, std::string start_after, int max_keys) {
  ListRequest list;
  list.prefix = std::move(prefix);
  list.delimiter = std::move(delimiter);
  list.start_after = std::move(start_after);
  list.max_keys = max_keys;
  return list;
}

using testing::error_of;

class DiskStorageTest : public ::testing::TestWithParam<DiskLayout> {
 protected:
  DiskStorageTest() : storage_(config(root_.path() + "/root", GetParam())) {}

  static ServiceConfig config(const std::string& root, DiskLayout layout) {
    ServiceConfig service;
    service.name = "local";
    service.kind = ServiceKind::kDisk;
    service.service_type = "Disk";
    service.root = root;
    service.layout = layout;
    return service;
  }

  std::string root() const { return root_.path() + "/root"; }
  bool plain() const { return GetParam() == DiskLayout::kPlain; }

  std::string put(const std::string& key, const std::string& body, PutOptions options = {}) {
    MemoryByteSource source(body);
    return storage_.put(key, source, options);
  }

  std::optional<std::string> read(const std::string& key, std::optional<ByteRange> range = std::nullopt) {
    std::string bytes;
    auto info = storage_.get(key, [&bytes](std::string_view chunk) { bytes.append(chunk); }, range);
    if (!info) return std::nullopt;
    return bytes;
  }

  std::vector<std::string> keys(const ListRequest& request) {
    std::vector<std::string> found;
    for (const ObjectInfo& object : storage_.list(request).objects) found.push_back(object.key);
    return found;
  }

  // Every key, fetched page by page with continuation tokens.
  std::vector<std::string> all_keys(ListRequest request) {
    std::vector<std::string> found;
    while (true) {
      ListPage page = storage_.list(request);
      for (const ObjectInfo& object : page.objects) found.push_back(object.key);
      for (const std::string& prefix : page.common_prefixes) found.push_back("[" + prefix + "]");
      if (page.next_continuation_token.empty()) return found;
      request.continuation_token = page.next_continuation_token;
    }
  }

  testing::TempDir root_{"blobferry-disk-test"};
  DiskStorage storage_;
};

INSTANTIATE_TEST_SUITE_P(Layouts, DiskStorageTest,
                         ::testing::Values(DiskLayout::kActiveStorage, DiskLayout::kPlain),
                         [](const auto& param_info) {
                           return param_info.param == DiskLayout::kPlain ? std::string("plain") : std::string("activestorage");
                         });

TEST_P(DiskStorageTest, DescribeNamesRootAndLayout) {
  EXPECT_EQ(storage_.describe(), "disk " + root() + (plain() ? " (plain layout)" : " (activestorage layout)"));
}

TEST_P(DiskStorageTest, PutHeadGetRoundTrip) {
  const std::string body = "hello, disk";
  EXPECT_EQ(put("xyzw1234abcd", body), md5_hex(body));
  auto head = storage_.head("xyzw1234abcd");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->key, "xyzw1234abcd");
  EXPECT_EQ(head->size, body.size());
  EXPECT_EQ(head->etag, md5_hex(body));
  EXPECT_EQ(head->last_modified.size(), std::string("2024-01-02T03:04:05.678Z").size()) << head->last_modified;
  EXPECT_EQ(read("xyzw1234abcd"), body);
  EXPECT_EQ(read_file(storage_.path_for("xyzw1234abcd")), body);
}

TEST_P(DiskStorageTest, LayoutDecidesWhereTheFileLives) {
  put("abcdefgh", "x");
  if (plain()) {
    EXPECT_EQ(storage_.path_for("abcdefgh"), root() + "/abcdefgh");
    EXPECT_EQ(storage_.path_for("users/avatars/000/001/original/me.png"),
              root() + "/users/avatars/000/001/original/me.png");
  } else {
    EXPECT_EQ(storage_.path_for("abcdefgh"), root() + "/ab/cd/abcdefgh");
    // ActiveStorage variant keys hold slashes after their first 4 characters.
    EXPECT_EQ(storage_.path_for("variants/abc123/f00d"), root() + "/va/ri/variants/abc123/f00d");
  }
  EXPECT_EQ(files_under(root()), std::vector<std::string>{plain() ? "abcdefgh" : "ab/cd/abcdefgh"});
}

TEST_P(DiskStorageTest, ReadsFilesRailsWroteAndHashesThem) {
  const std::string key = "q1w2e3r4t5y6u7i8o9p0a1s2d3f4";
  write_file(plain() ? root() + "/" + key : root() + "/q1/w2/" + key, "written by Rails");
  auto head = storage_.head(key);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->etag, md5_hex("written by Rails"));
  EXPECT_TRUE(head->metadata.empty());
  EXPECT_EQ(read(key), "written by Rails");
}

TEST_P(DiskStorageTest, MissingKeysAreNullopt) {
  EXPECT_EQ(storage_.head("nothere1"), std::nullopt);  // root does not even exist yet
  put("abcdefgh", "x");
  EXPECT_EQ(storage_.head("abcdzzzz"), std::nullopt);
  EXPECT_EQ(storage_.head("zzzzzzzz"), std::nullopt);
  EXPECT_EQ(read("zzzzzzzz"), std::nullopt);
  if (plain()) {
    EXPECT_EQ(storage_.head("abcdefgh/below-a-file"), std::nullopt);
    put("folder/file", "x");
    EXPECT_EQ(storage_.head("folder"), std::nullopt) << "a folder is no object";
  }
}

TEST_P(DiskStorageTest, PutReplacesAtomicallyAndLeavesNoTempFiles) {
  put("abcdefgh", "first version");
  put("abcdefgh", "second");
  EXPECT_EQ(read("abcdefgh"), "second");
  EXPECT_EQ(storage_.head("abcdefgh")->etag, md5_hex("second"));
  EXPECT_EQ(files_under(root()).size(), 1u);
}

TEST_P(DiskStorageTest, EmptyObjects) {
  EXPECT_EQ(put("empty000", ""), "d41d8cd98f00b204e9800998ecf8427e");
  auto head = storage_.head("empty000");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->size, 0u);
  EXPECT_EQ(head->etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(read("empty000"), "");
  EXPECT_EQ(error_of([&] { read("empty000", ByteRange{0, 0}); }).reason(), "invalid_range");
}

TEST_P(DiskStorageTest, Ranges) {
  std::string body;
  for (int i = 0; i < 700000; ++i) body.push_back(static_cast<char>('a' + i % 26));
  put("rangekey", body);
  EXPECT_EQ(read("rangekey", ByteRange{0, 0}), "a");
  EXPECT_EQ(read("rangekey", ByteRange{3, 5}), "def");
  EXPECT_EQ(read("rangekey", ByteRange{262140, 262150}), body.substr(262140, 11)) << "across a chunk boundary";
  EXPECT_EQ(read("rangekey", ByteRange{699990, 10000000}), body.substr(699990)) << "last is clamped";
  EXPECT_EQ(read("rangekey", ByteRange{0, 699999}), body);
  const Error beyond = error_of([&] { read("rangekey", ByteRange{700000, 700001}); });
  EXPECT_EQ(beyond.kind(), ErrorKind::kPermanent);
  EXPECT_EQ(beyond.reason(), "invalid_range");
  EXPECT_EQ(error_of([&] { read("rangekey", ByteRange{5, 3}); }).reason(), "invalid_range");

  auto info = storage_.get("rangekey", [](std::string_view) {}, ByteRange{3, 5});
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, body.size()) << "the whole object's size";
  EXPECT_EQ(info->etag, md5_hex(body)) << "cached by put";
}

TEST_P(DiskStorageTest, GetStreamsInChunksAndStopsWhenTheSinkThrows) {
  put("bigobject", std::string(1024 * 1024 + 5, 'z'));
  std::vector<std::size_t> sizes;
  storage_.get("bigobject", [&sizes](std::string_view chunk) { sizes.push_back(chunk.size()); });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{262144, 262144, 262144, 262144, 5}));
  int calls = 0;
  EXPECT_THROW(storage_.get("bigobject",
                            [&calls](std::string_view) {
                              ++calls;
                              throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "consumer gone");
                            }),
               Error);
  EXPECT_EQ(calls, 1);
}

TEST_P(DiskStorageTest, ContentMd5IsVerified) {
  PutOptions right;
  right.content_md5 = md5_base64("body");
  EXPECT_EQ(put("checked1", "body", right), md5_hex("body"));

  PutOptions wrong;
  wrong.content_md5 = md5_base64("other");
  const Error error = error_of([&] { put("checked2", "body", wrong); });
  EXPECT_EQ(error.kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(storage_.head("checked2"), std::nullopt);

  const Error replace = error_of([&] { put("checked1", "new body", wrong); });
  EXPECT_EQ(replace.kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(read("checked1"), "body") << "a rejected put replaces nothing";

  PutOptions malformed;
  malformed.content_md5 = "not-base64!";
  EXPECT_EQ(error_of([&] { put("checked3", "body", malformed); }).reason(), "invalid_digest");
  EXPECT_EQ(files_under(root()).size(), 1u) << "no temp file left behind";
}

TEST_P(DiskStorageTest, ShortBodyIsAnIntegrityErrorAndStoresNothing) {
  // A source that announces more bytes than it yields.
  class ShortSource : public ByteSource {
   public:
    std::uint64_t size() const override { return 10; }
    std::size_t read(char* buf, std::size_t n) override {
      if (done_ || n < 3) return 0;
      done_ = true;
      std::copy_n("abc", 3, buf);
      return 3;
    }
    bool rewind() override { return false; }

   private:
    bool done_ = false;
  } source;
  EXPECT_EQ(error_of([&] { storage_.put("shortone", source, {}); }).kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(storage_.head("shortone"), std::nullopt);
  for (const std::string& file : files_under(root())) ADD_FAILURE() << "left behind: " << file;
}

TEST_P(DiskStorageTest, MetadataIsKeptInExtendedAttributes) {
  PutOptions options;
  options.metadata = {{"content-type", "image/png"},
                      {"cache-control", "max-age=60"},
                      {"x-amz-meta-blobferry-md5", "XrY7u+Ae7tCTyyK7j1rNww=="}};
  put("withmeta", "png bytes", options);
  auto head = storage_.head("withmeta");
  ASSERT_TRUE(head);
  char probe[8];
  if (getxattr(storage_.path_for("withmeta").c_str(), "user.blobferry.metadata", probe, 0) < 0 &&
      (errno == ENOTSUP || errno == EOPNOTSUPP)) {
    GTEST_SKIP() << "no extended attributes on this filesystem";
  }
  EXPECT_EQ(head->metadata, options.metadata);
  auto info = storage_.get("withmeta", [](std::string_view) {});
  ASSERT_TRUE(info);
  EXPECT_EQ(info->metadata, options.metadata);
}

TEST_P(DiskStorageTest, CachedEtagIsNotTrustedAfterTheFileChanges) {
  put("mutable1", "original");
  // Someone rewrites the file in place: same inode, xattrs kept, new content.
  std::ofstream(storage_.path_for("mutable1"), std::ios::binary | std::ios::trunc) << "rewritten!";
  auto head = storage_.head("mutable1");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->etag, md5_hex("rewritten!"));
}

TEST_P(DiskStorageTest, OddKeysRoundTrip) {
  std::vector<std::string> odd = {
      "with space.txt",   "unicode-\xc3\xbcn\xc3\xaf-\xe6\x97\xa5\xe6\x9c\xac.bin",
      "+%=&?#~()!$'@,;",  "back\\slash\\is\\data",
      "trailing.dot.",    " leading space",
      "\xc3\xa9t\xc3\xa9-\xc3\xa0-la-plage",
  };
  if (plain()) {
    odd.push_back("folder with space/sub+dir/file (1).jpg");
    odd.push_back("...dots/x.");
  } else {
    odd.push_back("variants/key with space/v1");
  }
  for (const std::string& key : odd) {
    SCOPED_TRACE(key);
    EXPECT_EQ(put(key, "body of " + key), md5_hex("body of " + key));
    EXPECT_EQ(read(key), "body of " + key);
    EXPECT_EQ(storage_.head(key)->size, ("body of " + key).size());
  }
  std::vector<std::string> expected = odd;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(all_keys({}), expected);
  EXPECT_EQ(all_keys(request("", "", "", 2)), expected);
}

// Only the ActiveStorage layout splits keys into folders and needs four characters.
class ActiveStorageLayoutTest : public DiskStorageTest {};

INSTANTIATE_TEST_SUITE_P(Layouts, ActiveStorageLayoutTest, ::testing::Values(DiskLayout::kActiveStorage),
                         [](const auto&) { return std::string("activestorage"); });

TEST_P(ActiveStorageLayoutTest, FoldersUseCharactersNotBytes) {
  // Ruby's key[0..1] is two characters: "éé" is 4 bytes.
  put("\xc3\xa9\xc3\xa9zzrest", "x");
  EXPECT_EQ(storage_.path_for("\xc3\xa9\xc3\xa9zzrest"), root() + "/\xc3\xa9\xc3\xa9/zz/\xc3\xa9\xc3\xa9zzrest");
  EXPECT_EQ(all_keys({}), std::vector<std::string>{"\xc3\xa9\xc3\xa9zzrest"});
}

TEST_P(DiskStorageTest, ListingInByteOrderWithPrefixStartAfterAndPages) {
  std::vector<std::string> all = {"abcd0001", "abcd0002", "abce0001", "b0000000", "zz990000", "abcd-dash", "abcd~tilde",
                                   "ABCD0000", "a0000000"};
  if (plain()) {
    for (const char* nested : {"abcd/nested", "abcd0001x/deeper/file", "a-b", "a/b", "a.c"}) all.push_back(nested);
  } else {
    for (const char* nested : {"abcd/nested", "abcd0003/x"}) all.push_back(nested);  // ActiveStorage allows '/' from the 5th character
  }
  for (const std::string& key : all) put(key, key);
  std::vector<std::string> sorted = all;
  std::sort(sorted.begin(), sorted.end());

  EXPECT_EQ(all_keys({}), sorted);
  for (int page_size : {1, 2, 3, 5}) EXPECT_EQ(all_keys(request("", "", "", page_size)), sorted) << page_size;

  std::vector<std::string> with_prefix;
  std::copy_if(sorted.begin(), sorted.end(), std::back_inserter(with_prefix),
               [](const std::string& key) { return key.rfind("abcd", 0) == 0; });
  EXPECT_EQ(all_keys(request("abcd", "", "", 1000)), with_prefix);
  EXPECT_EQ(all_keys(request("abcd", "", "", 2)), with_prefix);

  std::vector<std::string> after;
  std::copy_if(sorted.begin(), sorted.end(), std::back_inserter(after),
               [](const std::string& key) { return key > "abcd0002"; });
  EXPECT_EQ(all_keys(request("", "", "abcd0002", 1000)), after);
  EXPECT_EQ(all_keys(request("", "", "abcd0002", 1)), after);
  EXPECT_EQ(all_keys(request("", "", "zzzz", 1000)), std::vector<std::string>{});

  ListPage first = storage_.list(request("", "", "", 3));
  EXPECT_EQ(first.objects.size(), 3u);
  EXPECT_EQ(first.next_continuation_token, first.objects.back().key);
  EXPECT_EQ(first.objects.front().size, first.objects.front().key.size());
  EXPECT_EQ(first.objects.front().etag, md5_hex(first.objects.front().key)) << "cached by put";
  ListPage everything = storage_.list({});
  EXPECT_TRUE(everything.next_continuation_token.empty());
}

TEST_P(DiskStorageTest, ListingWithDelimiterRollsUpCommonPrefixes) {
  std::vector<std::string> all = {"photos/2023/a.jpg", "photos/2023/b.jpg", "photos/2024/c.jpg", "photos/top.jpg",
                                  "photos-old/x.jpg",  "readme.txt"};
  if (!plain()) all = {"photos/2023/a.jpg", "photos/2023/b.jpg", "photos/2024/c.jpg", "photos/top.jpg",
                       "phot-old/x.jpg", "readme.txt"};
  for (const std::string& key : all) put(key, "x");

  ListPage root_level = storage_.list(request("", "/", "", 1000));
  if (plain()) {
    EXPECT_EQ(root_level.common_prefixes, (std::vector<std::string>{"photos-old/", "photos/"}));
  } else {
    EXPECT_EQ(root_level.common_prefixes, (std::vector<std::string>{"phot-old/", "photos/"}));
  }
  std::vector<std::string> top_keys;
  for (const auto& object : root_level.objects) top_keys.push_back(object.key);
  EXPECT_EQ(top_keys, std::vector<std::string>{"readme.txt"});

  ListPage photos = storage_.list(request("photos/", "/", "", 1000));
  EXPECT_EQ(photos.common_prefixes, (std::vector<std::string>{"photos/2023/", "photos/2024/"}));
  ASSERT_EQ(photos.objects.size(), 1u);
  EXPECT_EQ(photos.objects[0].key, "photos/top.jpg");

  // A page boundary on a common prefix resumes after all its keys.
  EXPECT_EQ(all_keys(request("photos/", "/", "", 1)),
            (std::vector<std::string>{"[photos/2023/]", "[photos/2024/]", "photos/top.jpg"}));
}

TEST_P(DiskStorageTest, ListingSkipsStagingTempAndStrayFiles) {
  put("abcdefgh", "x");
  // Parts an older blobferry staged for a multipart upload to Disk.
  fs::create_directories(root() + "/.blobferry-uploads/0123456789abcdef0123456789abcdef");
  write_file(root() + "/.blobferry-uploads/0123456789abcdef0123456789abcdef/part-00001", "part");
  write_file(root() + "/ab/cd/.blobferry-tmp-0123456789abcdef", "half written");
  write_file(root() + "/.blobferry-tmp-0123456789abcdef", "half written");
  if (!plain()) {
    write_file(root() + "/.DS_Store", "finder");
    write_file(root() + "/ab/cd/zzzzstray", "not in its folder");
    write_file(root() + "/abc/de/abcdeXX", "folder name too long");
  }
  fs::create_symlink("/etc/hostname", root() + (plain() ? "/link" : "/ab/cd/abcdlink"));
  EXPECT_EQ(all_keys({}), std::vector<std::string>{"abcdefgh"});
}

TEST_P(DiskStorageTest, ListingAMissingRootIsAConfigError) {
  const Error error = error_of([&] { storage_.list({}); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find(root()), std::string::npos);
}

// Files have no parts and no in-service copy: the copy engine streams one
// put() to Disk however large the object, so Disk declares neither capability.
TEST_P(DiskStorageTest, HasNoOptionalCapabilities) {
  const StorageCapabilities can = storage_.capabilities();
  EXPECT_EQ(can.chunked_writer, nullptr);
  EXPECT_EQ(can.server_side_copier, nullptr);
}

TEST_P(DiskStorageTest, KeysThatWouldEscapeTheRootAreRefused) {
  fs::create_directories(root());
  const std::string outside = root_.path() + "/outside";
  write_file(outside, "precious");
  std::vector<std::string> bad = {"../outside", "/etc/passwd", "a/../../outside", "abcd/../../outside",
                                  std::string("ab\0cdefg", 8), "", "abcd/./x", "abcd//x", "abcd/x/",
                                  "abcd/.blobferry-uploads", "abcd/.blobferry-tmp-0123456789abcdef"};
  if (plain()) bad.push_back(".blobferry-uploads/x");
  if (!plain()) bad.push_back("..abcdef");  // its first folder would be root/..
  for (const std::string& key : bad) {
    SCOPED_TRACE(key);
    const Error put_error = error_of([&] { put(key, "overwritten"); });
    EXPECT_EQ(put_error.kind(), ErrorKind::kPermanent) << put_error.what();
    EXPECT_EQ(put_error.reason(), "invalid_key") << put_error.what();
    EXPECT_EQ(error_of([&] { storage_.head(key); }).reason(), "invalid_key");
    EXPECT_EQ(error_of([&] { read(key); }).reason(), "invalid_key");
  }
  EXPECT_NE(std::string(error_of([&] { put("../outside", "x"); }).what()).find("would escape the Disk root"),
            std::string::npos);
  EXPECT_EQ(read_file(outside), "precious");
  EXPECT_EQ(files_under(root()), std::vector<std::string>{});
}

TEST_P(ActiveStorageLayoutTest, KeysNeedFourCharacters) {
  EXPECT_EQ(error_of([&] { put("abc", "x"); }).reason(), "invalid_key");
  EXPECT_EQ(error_of([&] { put("ab/cdef", "x"); }).reason(), "invalid_key");
  EXPECT_NE(std::string(error_of([&] { put("abc", "x"); }).what()).find("layout: plain"), std::string::npos);
}

TEST_P(DiskStorageTest, SymlinksUnderTheRootAreNeverFollowed) {
  const std::string outside = root_.path() + "/outside";
  fs::create_directories(outside);
  write_file(outside + "/secret", "do not read");
  fs::create_directories(root() + "/li/nk");
  // A folder link on the way to a key, and a file link as the key itself.
  const std::string folder_link = plain() ? root() + "/linked" : root() + "/li/nk/linkfolder";
  const std::string folder_key = plain() ? "linked/secret" : "linkfolder/secret";
  fs::create_directory_symlink(outside, folder_link);
  const std::string file_link = plain() ? root() + "/linkfile" : root() + "/li/nk/linkfile";
  const std::string file_key = "linkfile";
  fs::create_symlink(outside + "/secret", file_link);
  if (!plain()) {
    fs::create_directory_symlink(outside, root() + "/ev");  // a first-level ActiveStorage folder
  }

  for (const std::string& key : {folder_key, file_key}) {
    SCOPED_TRACE(key);
    const Error head_error = error_of([&] { storage_.head(key); });
    EXPECT_EQ(head_error.reason(), "invalid_key") << head_error.what();
    EXPECT_NE(std::string(head_error.what()).find("symbolic link"), std::string::npos) << head_error.what();
    EXPECT_EQ(error_of([&] { read(key); }).reason(), "invalid_key");
  }
  EXPECT_EQ(error_of([&] { put(folder_key, "overwritten"); }).reason(), "invalid_key");
  if (!plain()) {
    EXPECT_EQ(error_of([&] { put("evilkeyx", "overwritten"); }).reason(), "invalid_key");
  }
  put(file_key, "replaces the link, not its target");
  EXPECT_EQ(read_file(outside + "/secret"), "do not read");
  EXPECT_EQ(files_under(outside), std::vector<std::string>{"secret"});
  EXPECT_EQ(all_keys({}), std::vector<std::string>{file_key}) << "links are not listed or walked";
}

TEST_P(DiskStorageTest, CheckCreatesTheRootAndLeavesNothing) {
  EXPECT_FALSE(fs::exists(root()));
  storage_.check();
  EXPECT_TRUE(fs::is_directory(root()));
  EXPECT_EQ(files_under(root()), std::vector<std::string>{});
}

TEST_P(DiskStorageTest, CheckOfARootThatIsAFileIsAConfigError) {
  write_file(root(), "not a folder");
  const Error error = error_of([&] { storage_.check(); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find(root()), std::string::npos) << error.what();
}

TEST_P(DiskStorageTest, ReadOnlyRootIsAConfigError) {
  fs::create_directories(root());
  put("existing", "x");
  fs::permissions(root(), fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  // root ignores permissions, so the checks run in a child that gave up root.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && setuid(65534) != 0) _exit(10);
    int failures = 0;
    for (auto action : std::vector<std::function<void()>>{[&] { storage_.check(); }, [&] { put("newkeyxx", "x"); },
                                                           [&] { put("existing", "y"); }}) {
      try {
        action();
        ++failures;
      } catch (const Error& e) {
        const std::string message = e.what();
        if (e.kind() != ErrorKind::kConfig || message.find(root()) == std::string::npos) ++failures;
      }
    }
    if (read("existing") != "x") ++failures;
    _exit(failures);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  fs::permissions(root(), fs::perms::owner_all);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "checks that did not give kConfig naming the root";
}

TEST_P(DiskStorageTest, ConcurrentPutsIntoOneFolder) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string key = "abcd" + std::to_string(t) + "-" + std::to_string(i);
        MemoryByteSource body(key);
        storage_.put(key, body, {});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(all_keys({}).size(), 200u);
  EXPECT_EQ(files_under(root()).size(), 200u);
}

TEST(DiskStorage, NeedsARoot) {
  ServiceConfig service;
  service.name = "local";
  service.kind = ServiceKind::kDisk;
  EXPECT_EQ(error_of([&] { DiskStorage storage(service); }).kind(), ErrorKind::kConfig);
}

}  // namespace
}  // namespace blobferry
