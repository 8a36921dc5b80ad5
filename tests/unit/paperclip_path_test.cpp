// Paperclip's path interpolation, inflections and fingerprints, with fixed vectors.
#include <gtest/gtest.h>

#include <set>

#include "common/base/error.h"
#include "common/queue/job.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/sources/paperclip/paperclip_blob_key.h"
#include "enqueuer/sources/paperclip/paperclip_enqueuer.h"
#include "enqueuer/sources/paperclip/paperclip_inflector.h"
#include "enqueuer/sources/paperclip/paperclip_path.h"

namespace blobferry {
namespace {

PaperclipPathOptions user_avatar(const std::string& path_template = PaperclipPath::kDefaultTemplate) {
  PaperclipPathOptions options;
  options.path_template = path_template;
  options.class_name = "User";
  options.attachment = "avatar";
  return options;
}

PaperclipRecord record(const std::string& id, const std::string& file_name) {
  PaperclipRecord r;
  r.id = id;
  r.file_name = file_name;
  return r;
}

TEST(PaperclipInflector, UnderscoresClassNamesAndTurnsNamespacesIntoFolders) {
  EXPECT_EQ(PaperclipInflector::underscore("User"), "user");
  EXPECT_EQ(PaperclipInflector::underscore("UserProfile"), "user_profile");
  EXPECT_EQ(PaperclipInflector::underscore("Admin::Document"), "admin/document");
  EXPECT_EQ(PaperclipInflector::underscore("HTMLPage"), "html_page");
  EXPECT_EQ(PaperclipInflector::underscore("Api::V2::Photo"), "api/v2/photo");
}

TEST(PaperclipInflector, PluralisesTheLastWordLikeActiveSupport) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"user", "users"},         {"avatar", "avatars"},       {"admin/document", "admin/documents"},
      {"person", "people"},      {"salesperson", "salespeople"}, {"child", "children"},
      {"category", "categories"}, {"photo_gallery", "photo_galleries"}, {"key", "keys"},
      {"box", "boxes"},          {"church", "churches"},      {"status", "statuses"},
      {"bus", "buses"},          {"quiz", "quizzes"},         {"wife", "wives"},
      {"half", "halves"},        {"analysis", "analyses"},    {"datum", "data"},
      {"mouse", "mice"},         {"matrix", "matrices"},      {"index", "indices"},
      {"ox", "oxen"},            {"tomato", "tomatoes"},      {"photo", "photos"},
      {"octopus", "octopi"},     {"news", "news"},            {"fish", "fish"},
      {"admin/sheep", "admin/sheep"}, {"swordfish", "swordfishes"}, {"equipment", "equipment"},
  };
  for (const auto& [singular, plural] : cases) EXPECT_EQ(PaperclipInflector::pluralize(singular), plural) << singular;
}

TEST(PaperclipPath, IdPartitionPadsToNineDigitsThenTwelve) {
  EXPECT_EQ(PaperclipPath::id_partition("1", true), "000/000/001");
  EXPECT_EQ(PaperclipPath::id_partition("1234", true), "000/001/234");
  EXPECT_EQ(PaperclipPath::id_partition("999999999", true), "999/999/999");
  EXPECT_EQ(PaperclipPath::id_partition("1000000000", true), "001/000/000/000");
  EXPECT_EQ(PaperclipPath::id_partition("1000000007", true), "001/000/000/007");
  EXPECT_EQ(PaperclipPath::id_partition("123456789012", true), "123/456/789/012");
}

TEST(PaperclipPath, StringIdsUseTheirFirstNineCharacters) {
  EXPECT_EQ(PaperclipPath::id_partition("a1b2c3d4-e5f6-7788-99aa-bbccddeeff00", false), "a1b/2c3/d4-");
  EXPECT_EQ(PaperclipPath::id_partition("abcd", false), "abc");
  EXPECT_EQ(PaperclipPath::id_partition("ab", false), "");
}

TEST(PaperclipPath, DefaultTemplate) {
  const PaperclipPath path(user_avatar());
  EXPECT_EQ(path.key_for(record("42", "photo.jpg")), "users/avatars/000/000/042/original/photo.jpg");
  EXPECT_EQ(path.key_for(record("1000000001", "me.png")), "users/avatars/001/000/000/001/original/me.png");
}

TEST(PaperclipPath, NamespacedClassBecomesFolders) {
  PaperclipPathOptions options = user_avatar();
  options.class_name = "Admin::Document";
  options.attachment = "file";
  options.style = "thumb";
  EXPECT_EQ(PaperclipPath(options).key_for(record("7", "a b.pdf")), "admin/documents/files/000/000/007/thumb/a b.pdf");
}

TEST(PaperclipPath, BasenameExtensionAndLeadingSlash) {
  const PaperclipPath path(user_avatar("/:class/:id/:basename.:extension"));
  EXPECT_EQ(path.key_for(record("42", "archive.tar.gz")), "users/42/archive.tar.gz");
  EXPECT_EQ(PaperclipPath(user_avatar(":id/:basename:dotextension")).key_for(record("3", "README")), "3/README");
  EXPECT_EQ(PaperclipPath(user_avatar(":id/:extension")).key_for(record("3", "x.JPG")), "3/JPG");
}

TEST(PaperclipPath, UpdatedAtIsEpochSecondsAndEmptyWhenNull) {
  const PaperclipPath path(user_avatar(":id/:updated_at/:filename"));
  PaperclipRecord r = record("5", "f.txt");
  r.updated_at = 1700000000;
  EXPECT_EQ(path.key_for(r), "5/1700000000/f.txt");
  r.updated_at.reset();
  EXPECT_EQ(path.key_for(r), "5//f.txt");
}

TEST(PaperclipPath, HashIsHmacSha1OfPaperclipsHashData) {
  // openssl: printf users/avatars/42/original/1700000000 | openssl dgst -sha1 -hmac s3cret
  PaperclipPathOptions options = user_avatar(":class/:attachment/:hash.:extension");
  options.hash_secret = "s3cret";
  PaperclipRecord r = record("42", "me.png");
  r.updated_at = 1700000000;
  EXPECT_EQ(PaperclipPath(options).key_for(r), "users/avatars/eaee29517fd0bb77c0ff32002ff7fbaf05bd8bca.png");
}

TEST(PaperclipPath, IdPartitionIsNotReadAsId) {
  EXPECT_EQ(PaperclipPath(user_avatar(":id_partition/:id")).key_for(record("12", "f")), "000/000/012/12");
}

TEST(PaperclipPath, UnknownInterpolationIsAConfigError) {
  for (const char* bad : {":class/:foo/:filename", ":rails_root/public/system/:class/:filename", ":url", ":timestamp"}) {
    try {
      PaperclipPath path(user_avatar(bad));
      FAIL() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig) << bad;
      EXPECT_NE(std::string(e.what()).find("unknown interpolation"), std::string::npos) << e.what();
    }
  }
}

TEST(PaperclipPath, HashWithoutSecretIsAConfigError) {
  try {
    PaperclipPath path(user_avatar(":class/:hash.:extension"));
    FAIL() << "accepted :hash without a secret";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("--hash-secret"), std::string::npos);
  }
}

TEST(PaperclipBlobKey, TwentyEightBase36CharactersAllDifferent) {
  const std::string alphabet = kActiveStorageKeyAlphabet;
  std::set<std::string> seen;
  std::set<char> characters;
  for (int i = 0; i < 2000; ++i) {
    const std::string key = PaperclipBlobKey::generate();
    ASSERT_EQ(key.size(), 28u);
    for (char c : key) {
      ASSERT_NE(alphabet.find(c), std::string::npos) << key;
      characters.insert(c);
    }
    seen.insert(key);
  }
  EXPECT_EQ(seen.size(), 2000u);
  EXPECT_EQ(characters.size(), 36u);  // 56,000 draws reach every character
}

TEST(PaperclipFingerprint, Md5HexBecomesActiveStorageChecksum) {
  EXPECT_EQ(fingerprint_to_checksum("5d41402abc4b2a76b9719d911017c592"), "XUFAKrxLKna5cZ2REBfFkg==");
  EXPECT_EQ(fingerprint_to_checksum("5D41402ABC4B2A76B9719D911017C592"), "XUFAKrxLKna5cZ2REBfFkg==");
  EXPECT_EQ(fingerprint_to_checksum(""), "");
  // SHA-256 fingerprints (kt-paperclip option) cannot check an MD5.
  EXPECT_EQ(fingerprint_to_checksum(std::string(64, 'a')), "");
}

TEST(PaperclipJob, CarriesSourceKeyNewKeyAndRecordThroughJson) {
  MigrationPlan plan;
  plan.migration = "pc";
  plan.from = "old";
  plan.to = "new";
  PaperclipEntry entry;
  entry.record_type = "User";
  entry.record_id = "1000000001";
  entry.key = "abcdefghijklmnopqrstuvwxyz01";
  entry.source_key = "users/avatars/001/000/000/001/original/me.png";
  entry.content_type = "image/png";
  entry.expected_size = 5;
  entry.expected_md5 = "XUFAKrxLKna5cZ2REBfFkg==";
  Job job = PaperclipEnqueuer::job_for(plan, entry);
  job.id = new_job_id();
  const Job decoded = decode_job(encode_job(job));
  ASSERT_EQ(decoded.objects.size(), 1u);
  const JobObject& o = decoded.objects.front();
  EXPECT_EQ(o.key, entry.source_key);
  EXPECT_EQ(o.destination_key(), entry.key);
  EXPECT_EQ(o.size, 5u);
  EXPECT_EQ(o.checksum, entry.expected_md5);
  EXPECT_EQ(o.record, "User#1000000001");
  EXPECT_EQ(decoded.source, "old");
  EXPECT_EQ(decoded.target, "new");
}

TEST(PaperclipPlan, StoredPlanKeepsTheColumnsButNeverTheHashSecret) {
  MigrationPlan plan;
  plan.migration = "pc";
  plan.source = "paperclip";
  plan.from = "old";
  plan.to = "new";
  plan.paperclip = {"users", "avatar", "Admin::User", ":class/:hash", "thumb", "very-secret"};
  const std::string json = plan.to_json();
  EXPECT_EQ(json.find("very-secret"), std::string::npos);
  const MigrationPlan back = MigrationPlan::from_json(json);
  EXPECT_EQ(back.paperclip.table, "users");
  EXPECT_EQ(back.paperclip.attachment, "avatar");
  EXPECT_EQ(back.paperclip.record_type, "Admin::User");
  EXPECT_EQ(back.paperclip.path, ":class/:hash");
  EXPECT_EQ(back.paperclip.style, "thumb");
  EXPECT_TRUE(back.paperclip.hash_secret.empty());
}

}  // namespace
}  // namespace blobferry
