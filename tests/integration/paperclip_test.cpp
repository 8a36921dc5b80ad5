// Paperclip -> ActiveStorage as a new user runs it, binary against real
// PostgreSQL, Redis and s3rver: a users table with Paperclip columns and its
// files laid out by Paperclip's template become ActiveStorage objects on a new
// bucket and blob/attachment rows an ActiveStorage app can read; then the same
// from a plain Disk folder with `migrate --switch`.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/db/pg_connection.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"
#include "enqueuer/sources/paperclip/paperclip_path.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/stack_suite.h"

namespace blobferry {
namespace {

using testing::BlobferryCli;
using testing::BlobFixture;
using testing::BlobSchema;
using testing::CliResult;
using Json = nlohmann::json;

constexpr const char* kAttachmentsTable =
    "CREATE TABLE active_storage_attachments (id bigserial PRIMARY KEY, name varchar NOT NULL, "
    "record_type varchar NOT NULL, record_id bigint NOT NULL, blob_id bigint NOT NULL REFERENCES "
    "active_storage_blobs (id), created_at timestamp(6) NOT NULL)";
constexpr const char* kAttachmentsIndex =
    "CREATE UNIQUE INDEX ON active_storage_attachments (record_type, record_id, name, blob_id)";

// One Paperclip record as the test made it.
struct Planted {
  std::string id;
  std::string file_name;
  std::string bytes;
  bool on_source = true;        // false: the row names a file nobody uploaded
  bool pre_attached = false;    // already has an ActiveStorage attachment of that name
};

// What ActiveStorage would read back for one attachment.
struct AttachedBlob {
  std::string record_id, key, filename, content_type, metadata, service_name, checksum;
  std::uint64_t byte_size = 0;
};

std::string get_bytes(Storage& storage, const std::string& key) {
  std::string bytes;
  storage.get(key, [&bytes](std::string_view chunk) { bytes.append(chunk); });
  return bytes;
}

// service is empty for a Rails 5.2/6.0 table, which has no service_name.
std::vector<AttachedBlob> attachments_of(PgConnection& db, const std::string& record_type, const std::string& name,
                                         const std::string& service) {
  PgResult r = db.exec(
      "SELECT a.record_id::text, b.key, b.filename, coalesce(b.content_type, ''), coalesce(b.metadata, ''), " +
          std::string(service.empty() ? "''" : "b.service_name") +
          ", coalesce(b.checksum, ''), b.byte_size::text FROM active_storage_attachments a "
      "JOIN active_storage_blobs b ON b.id = a.blob_id WHERE a.record_type = $1 AND a.name = $2 ORDER BY a.record_id",
      {record_type, name});
  std::vector<AttachedBlob> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.value(i, 0), r.value(i, 1), r.value(i, 2), r.value(i, 3), r.value(i, 4), r.value(i, 5),
                   r.value(i, 6), std::stoull(r.value(i, 7))});
  }
  return out;
}

long long count_of(PgConnection& db, const std::string& sql) { return std::stoll(db.exec(sql).value(0, 0)); }

// A digest of every application row: proves the app's tables (and their
// updated_at) were never written.
std::string table_digest(PgConnection& db, const std::string& table) {
  return db.exec("SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM " + table + " t").value(0, 0);
}

bool is_base36_key(const std::string& key) {
  if (key.size() != 28) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

// The ActiveStorage-compatible check: every attachment of (record_type, name)
// points at an existing record and a blob whose bytes on the target are the
// record's Paperclip file, whose checksum is the base64 MD5 of those bytes
// and byte_size their length; exactly the records that had a file on the
// source (and no attachment before) got one; no blob lacks its attachment.
void expect_active_storage(PgConnection& db, Storage& target, const std::string& table,
                           const std::string& record_type, const std::string& name,
                           const std::vector<Planted>& planted, const std::string& service) {
  std::map<std::string, const Planted*> by_id;
  std::set<std::string> expected_ids;
  for (const Planted& p : planted) {
    by_id[p.id] = &p;
    if (p.on_source && !p.pre_attached && !p.file_name.empty()) expected_ids.insert(p.id);
  }
  std::set<std::string> seen_ids, seen_keys;
  for (const AttachedBlob& blob : attachments_of(db, record_type, name, service)) {
    const Planted* p = by_id.count(blob.record_id) ? by_id[blob.record_id] : nullptr;
    ASSERT_NE(p, nullptr) << "attachment for a record that does not exist: " << blob.record_id;
    EXPECT_EQ(count_of(db, "SELECT count(*) FROM " + table + " WHERE id = " + blob.record_id), 1);
    EXPECT_TRUE(seen_ids.insert(blob.record_id).second) << "two attachments for record " << blob.record_id;
    if (p->pre_attached) continue;
    EXPECT_TRUE(seen_keys.insert(blob.key).second) << blob.key;
    EXPECT_TRUE(is_base36_key(blob.key)) << blob.key;
    EXPECT_EQ(blob.filename, p->file_name);
    EXPECT_EQ(blob.service_name, service);
    EXPECT_EQ(Json::parse(blob.metadata, nullptr, false), Json::parse(R"({"identified":true})"));
    const std::string bytes = get_bytes(target, blob.key);
    EXPECT_EQ(bytes, p->bytes) << "record " << blob.record_id;
    EXPECT_EQ(blob.checksum, base64_encode(md5_of(bytes))) << "record " << blob.record_id;
    EXPECT_EQ(blob.byte_size, bytes.size()) << "record " << blob.record_id;
  }
  std::set<std::string> attached_ours;
  for (const std::string& id : seen_ids) {
    if (!by_id[id]->pre_attached) attached_ours.insert(id);
  }
  EXPECT_EQ(attached_ours, expected_ids);
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM active_storage_blobs b WHERE NOT EXISTS "
                         "(SELECT 1 FROM active_storage_attachments a WHERE a.blob_id = b.id)"),
            0)
      << "a blob without its attachment";
}

std::string random_text(std::size_t size, std::mt19937_64& rng) { return testing::random_bytes(size, rng); }

class PaperclipTest : public testing::StackSuite {
 protected:
  // ActiveStorage's blob (`schema`) and attachment tables, as the Rails app
  // has them, in a fresh database `name`.
  static std::unique_ptr<BlobFixture> active_storage_tables(const std::string& url,
                                                            BlobSchema schema = BlobSchema::kRails7) {
    auto blobs = std::make_unique<BlobFixture>(url, schema);
    blobs->db().exec(kAttachmentsTable);
    blobs->db().exec(kAttachmentsIndex);
    return blobs;
  }

  // The stack's storage.yml plus `service`, a Disk service in plain-path mode
  // (Paperclip's filesystem storage) rooted at `root`; the new file's path.
  std::string storage_config_with_folder(const std::string& file, const std::string& service,
                                         const std::string& root) const {
    const std::string config_path = scratch_->file(file);
    std::ifstream in(stack_->storage_config());
    std::ofstream out(config_path);
    out << in.rdbuf() << "\n" << service << ":\n  service: Disk\n  root: " << root << "\n  layout: plain\n";
    return config_path;
  }
};

// users with Paperclip's four columns and a fingerprint: records without
// files, files missing on the source, ids past 1,000,000,000, a file without
// a stated size, one record already migrated by hand.
std::vector<Planted> seed_users(PgConnection& db, Storage& source, std::mt19937_64& rng) {
  db.exec("CREATE TABLE users (id bigint PRIMARY KEY, email varchar NOT NULL, updated_at timestamp(6) NOT NULL, "
          "avatar_file_name varchar, avatar_content_type varchar, avatar_file_size bigint, "
          "avatar_updated_at timestamp, avatar_fingerprint varchar)");
  PaperclipPathOptions layout;
  layout.class_name = "User";
  layout.attachment = "avatar";
  const PaperclipPath path(layout);
  std::vector<std::string> ids;
  for (int i = 1; i <= 30; ++i) ids.push_back(std::to_string(i));
  for (int i = 1; i <= 8; ++i) ids.push_back(std::to_string(1000000000LL + i));
  std::vector<Planted> planted;
  std::uniform_int_distribution<std::size_t> size(1, 40000);
  for (std::size_t n = 0; n < ids.size(); ++n) {
    Planted p;
    p.id = ids[n];
    const bool has_file = n % 7 != 3;
    if (has_file) {
      p.file_name = n % 5 == 0 ? "photo " + p.id + ".JPG" : "avatar-" + p.id + ".png";
      p.bytes = n == 4 ? "" : random_text(size(rng), rng);
      p.on_source = !(p.id == "5" || p.id == "1000000003");
    }
    const std::int64_t updated = 1600000000 + static_cast<std::int64_t>(n) * 1000;
    PaperclipRecord record{p.id, true, p.file_name, updated, ""};
    PgParams params{p.id, "u" + p.id + "@example.com"};
    if (has_file) {
      const std::string md5_hex = hex_encode(md5_of(p.bytes));
      params.push_back(p.file_name);
      params.push_back(n % 5 == 0 ? "image/jpeg" : "image/png");
      params.push_back(n == 6 ? std::nullopt : std::optional<std::string>(std::to_string(p.bytes.size())));
      params.push_back(std::to_string(updated));
      params.push_back(n % 2 ? std::optional<std::string>(md5_hex) : std::nullopt);
      if (p.on_source) testing::put_object(source, path.key_for(record), p.bytes);
    } else {
      for (int k = 0; k < 5; ++k) params.push_back(std::nullopt);
    }
    db.exec("INSERT INTO users VALUES ($1, $2, '2020-01-01 00:00:00', $3, $4, $5, to_timestamp($6::bigint) AT TIME ZONE 'UTC', $7)",
            params);
    planted.push_back(std::move(p));
  }
  // Record 2 was migrated by hand already: its attachment must stay the only one.
  db.exec("INSERT INTO active_storage_blobs (key, filename, content_type, metadata, service_name, byte_size, checksum, "
          "created_at) VALUES ('handmade0000000000000000000', 'old.png', 'image/png', '{}', 'source', 1, "
          "'XUFAKrxLKna5cZ2REBfFkg==', now())");
  db.exec("INSERT INTO active_storage_attachments (name, record_type, record_id, blob_id, created_at) "
          "SELECT 'avatar', 'User', 2, id, now() FROM active_storage_blobs WHERE key = 'handmade0000000000000000000'");
  planted[1].pre_attached = true;
  return planted;
}

Json status_of(const BlobferryCli& cli, const std::string& migration) {
  const CliResult status = cli.run({"status", "--migration", migration, "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.all();
  return Json::parse(status.out, nullptr, false);
}

std::uint64_t counter(const Json& status, const char* name) {
  if (!status.is_object() || !status.contains(name) || !status[name].is_number()) return 0;
  return status[name].get<std::uint64_t>();
}

TEST_F(PaperclipTest, UsersBucketBecomesActiveStorageRowsOnANewBucket) {
  const std::string url = database("paperclip_users");
  auto blobs = active_storage_tables(url);
  PgConnection& db = blobs->db();
  auto source = open_service("source");
  auto target = open_service("target");
  std::vector<Planted> planted = seed_users(db, *source, blobs->rng());
  std::string users_before = table_digest(db, "users");

  BlobferryCli cli = StackSuite::cli(url);
  const std::vector<std::string> enqueue{"enqueue", "--migration", "pc",   "--from", "source", "--to", "target",
                                         "--source", "paperclip", "--table", "users", "--attachment", "avatar",
                                         "--record-type", "User", "--page-size", "7"};
  const std::vector<std::string> worker{"worker", "--migration", "pc", "--exit-when-empty", "--concurrency", "4"};

  const CliResult dry = cli.run([&] { auto a = enqueue; a.push_back("--dry-run"); return a; }());
  EXPECT_EQ(dry.exit_code, 0) << dry.all();
  EXPECT_NE(dry.out.find("dry run: 32 User records"), std::string::npos) << dry.out;

  CliResult r = cli.run(enqueue);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("queued 32 copy jobs"), std::string::npos) << r.out;
  r = cli.run(worker);
  EXPECT_EQ(r.exit_code, 0) << r.all();  // drained; the two missing files are failures, not worker errors
  Json status = status_of(cli, "pc");
  EXPECT_EQ(counter(status, "copied"), 30u) << status.dump();
  EXPECT_EQ(counter(status, "failed"), 2u) << status.dump();

  // The crash between copy and rows: the queue is lost and enqueue runs
  // again. The keys come back from blobferry's bookkeeping, so every object is
  // already on the target and nothing is copied twice.
  r = cli.run({"cancel", "--migration", "pc", "--purge", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  r = cli.run(enqueue);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  r = cli.run(worker);
  EXPECT_EQ(r.exit_code, 0) << r.all();
  status = status_of(cli, "pc");
  EXPECT_EQ(counter(status, "copied"), 0u) << status.dump();
  EXPECT_EQ(counter(status, "skipped"), 30u) << status.dump();
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM blobferry_paperclip_blobs"), 32);

  // Missing files are reported with their key and record, and block nothing.
  r = cli.run({"report", "--migration", "pc", "--failed"});
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("users/avatars/000/000/005/original/avatar-5.png"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("record User#5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("users/avatars/001/000/000/003/original/avatar-1000000003.png"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("record User#1000000003"), std::string::npos) << r.out;

  r = cli.run({"validate", "--migration", "pc"});
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.out.find("30 verified, 2 missing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("User#5"), std::string::npos) << r.out;
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM active_storage_attachments"), 1) << "rows before switch";

  // The app deletes a user after its file was copied: it gets no rows.
  db.exec("DELETE FROM users WHERE id = 1000000008");
  users_before = table_digest(db, "users");
  planted.back().on_source = false;  // no attachment expected for it any more
  r = cli.run({"switch", "--migration", "pc", "--batch-size", "8"});
  EXPECT_EQ(r.exit_code, 1) << r.all();  // two records wait for their files
  EXPECT_NE(r.out.find("wrote 29 ActiveStorage blob and attachment rows"), std::string::npos) << r.out;
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM blobferry_paperclip_blobs WHERE outcome = 'record_gone'"), 1);
  expect_active_storage(db, *target, "users", "User", "avatar", planted, "target");

  // A second run finds nothing new: no copies, no rows.
  const long long blobs_after = count_of(db, "SELECT count(*) FROM active_storage_blobs");
  r = cli.run(enqueue);
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("queued 2 copy jobs"), std::string::npos) << r.out;  // only the two still missing
  cli.run(worker);
  cli.run({"validate", "--migration", "pc"});
  r = cli.run({"switch", "--migration", "pc"});
  EXPECT_NE(r.out.find("wrote 0 "), std::string::npos) << r.out;
  EXPECT_EQ(counter(status_of(cli, "pc"), "copied"), 0u);
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM active_storage_blobs"), blobs_after);
  expect_active_storage(db, *target, "users", "User", "avatar", planted, "target");
  EXPECT_EQ(table_digest(db, "users"), users_before) << "the application table was written";
}

TEST_F(PaperclipTest, NamespacedModelFromAPlainDiskFolderWithMigrateSwitch) {
  const std::string url = database("paperclip_docs");
  auto blobs = active_storage_tables(url);
  PgConnection& db = blobs->db();
  db.exec("CREATE TABLE admin_documents (id bigint PRIMARY KEY, updated_at timestamp NOT NULL, "
          "file_file_name varchar, file_content_type varchar, file_file_size integer, file_updated_at timestamp)");

  // public/system as Paperclip's filesystem storage leaves it, served by a
  // Disk service in plain-path mode.
  const std::string root = scratch_->file("public/system");
  const std::string config_path = storage_config_with_folder("storage-paperclip.yml", "paperclip_files", root);
  PaperclipPathOptions layout;
  layout.class_name = "Admin::Document";
  layout.attachment = "file";
  const PaperclipPath path(layout);
  std::vector<Planted> planted;
  for (int i = 1; i <= 6; ++i) {
    Planted p;
    p.id = std::to_string(i == 6 ? 1000000000 : i);
    p.file_name = "report " + p.id + ".pdf";
    p.bytes = random_text(1000 * i, blobs->rng());
    PaperclipRecord record{p.id, true, p.file_name, std::nullopt, ""};
    const std::filesystem::path file = std::filesystem::path(root) / path.key_for(record);
    ASSERT_EQ(path.key_for(record).rfind("admin/documents/files/", 0), 0u) << path.key_for(record);
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << p.bytes;
    db.exec("INSERT INTO admin_documents VALUES ($1, '2021-02-03 04:05:06', $2, 'application/pdf', $3, now())",
            {p.id, p.file_name, i == 2 ? std::nullopt : std::optional<std::string>(std::to_string(p.bytes.size()))});
    planted.push_back(std::move(p));
  }
  const std::string before = table_digest(db, "admin_documents");

  BlobferryCli cli = StackSuite::cli(url);
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config_path);
  const std::vector<std::string> migrate{"migrate", "--from", "paperclip_files", "--to", "target", "--source",
                                         "paperclip", "--table", "admin_documents", "--attachment", "file",
                                         "--record-type", "Admin::Document", "--switch", "--no-progress"};
  CliResult r = cli.run(migrate);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("copied 6 objects"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote 6 ActiveStorage blob and attachment rows"), std::string::npos) << r.out;
  auto target = open_service("target");
  expect_active_storage(db, *target, "admin_documents", "Admin::Document", "file", planted, "target");

  r = cli.run(migrate);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("copied 0 objects"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote 0 "), std::string::npos) << r.out;
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM active_storage_attachments"), 6);
  EXPECT_EQ(table_digest(db, "admin_documents"), before);
}

// Rails 5.2/6.0 tables: blob rows without service_name, checksum NOT NULL.
TEST_F(PaperclipTest, Rails60TablesGetRowsWithoutServiceName) {
  const std::string url = database("paperclip_rails60");
  auto blobs = active_storage_tables(url, BlobSchema::kRails60);
  PgConnection& db = blobs->db();
  db.exec("CREATE TABLE photos (id integer PRIMARY KEY, image_file_name varchar, image_content_type varchar, "
          "image_file_size integer, image_updated_at timestamp, image_fingerprint varchar)");
  const std::string root = scratch_->file("rails60/system");
  const std::string config_path = storage_config_with_folder("storage-rails60.yml", "old_photos", root);
  std::vector<Planted> planted;
  for (int i = 1; i <= 3; ++i) {
    Planted p;
    p.id = std::to_string(i);
    p.file_name = "p" + p.id + ".gif";
    p.bytes = random_text(100 * i, blobs->rng());
    // A custom :path with :hash: the secret comes from the environment.
    PaperclipPathOptions layout;
    layout.path_template = "/photos/:id/:hash.:extension";
    layout.class_name = "Photo";
    layout.attachment = "image";
    layout.hash_secret = "app-secret";
    const std::int64_t updated = 1500000000 + i;
    const std::string key = PaperclipPath(layout).key_for({p.id, true, p.file_name, updated, ""});
    std::filesystem::create_directories((std::filesystem::path(root) / key).parent_path());
    std::ofstream(std::filesystem::path(root) / key, std::ios::binary) << p.bytes;
    db.exec("INSERT INTO photos VALUES ($1, $2, 'image/gif', $3, to_timestamp($4::bigint) AT TIME ZONE 'UTC', $5)",
            {p.id, p.file_name, std::to_string(p.bytes.size()), std::to_string(updated), hex_encode(md5_of(p.bytes))});
    planted.push_back(std::move(p));
  }
  BlobferryCli cli = StackSuite::cli(url);
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config_path);
  cli.set_env("BLOBFERRY_PAPERCLIP_HASH_SECRET", "app-secret");
  const CliResult r = cli.run({"migrate", "--from", "old_photos", "--to", "target", "--source", "paperclip", "--table",
                               "photos", "--attachment", "image", "--record-type", "Photo", "--path",
                               "/photos/:id/:hash.:extension", "--switch", "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(r.all().find("app-secret"), std::string::npos) << "the hash secret was printed";
  auto target = open_service("target");
  expect_active_storage(db, *target, "photos", "Photo", "image", planted, "");
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM active_storage_attachments"), 3);
}

// The owner fixes the data after a migration reported a missing file: the
// record's _file_name is cleared (the file is gone for good), or pointed at a
// file that exists. Each re-run then settles it from the app's columns, not
// from blobferry's own bookkeeping: the cleared one is dropped, the renamed
// one planned again under a new key and copied, and the re-run exits 0.
TEST_F(PaperclipTest, ReRunAfterTheOwnerFixesTheDataExitsZero) {
  const std::string url = database("paperclip_fixed");
  auto blobs = active_storage_tables(url);
  PgConnection& db = blobs->db();
  auto source = open_service("source");
  auto target = open_service("target");
  const std::string columns = "(id bigint PRIMARY KEY, avatar_file_name varchar, avatar_content_type varchar, "
                              "avatar_file_size bigint, avatar_updated_at timestamp)";
  db.exec("CREATE TABLE owners " + columns);
  db.exec("CREATE TABLE members " + columns);
  auto key_of = [](const char* model, const std::string& id, const std::string& file_name, std::int64_t updated) {
    PaperclipPathOptions layout;
    layout.class_name = model;
    layout.attachment = "avatar";
    return PaperclipPath(layout).key_for({id, true, file_name, updated, ""});
  };
  // Per table: 1 has its file; 2 names a file nobody uploaded (cleared later);
  // 3 names a missing file too (renamed later to one that exists).
  std::map<std::string, std::map<std::string, std::string>> bytes;  // table -> id -> bytes planted
  auto plant = [&](const std::string& table, const char* model, const std::string& id, const std::string& file_name,
                   std::int64_t updated, bool upload) {
    const std::string data = random_text(500 + 100 * std::stoi(id), blobs->rng());
    if (upload) testing::put_object(*source, key_of(model, id, file_name, updated), data);
    bytes[table][id] = data;
    db.exec("INSERT INTO " + table + " VALUES ($1, $2, 'image/png', $3, to_timestamp($4::bigint) AT TIME ZONE 'UTC') "
            "ON CONFLICT (id) DO UPDATE SET avatar_file_name = EXCLUDED.avatar_file_name, "
            "avatar_file_size = EXCLUDED.avatar_file_size, avatar_updated_at = EXCLUDED.avatar_updated_at",
            {id, file_name, std::to_string(data.size()), std::to_string(updated)});
  };
  for (const auto& [table, model] : {std::pair<std::string, const char*>{"owners", "Owner"}, {"members", "Member"}}) {
    plant(table, model, "1", "one.png", 1600000001, true);
    plant(table, model, "2", "two.png", 1600000002, false);
    plant(table, model, "3", "three.png", 1600000003, false);
  }
  auto fix = [&](const std::string& table, const char* model) {
    db.exec("UPDATE " + table + " SET avatar_file_name = NULL, avatar_content_type = NULL, avatar_file_size = NULL, "
            "avatar_updated_at = NULL WHERE id = 2");
    plant(table, model, "3", "three-again.png", 1600000033, true);
  };
  auto expect_rows = [&](const std::string& table, const std::string& record_type) {
    const std::vector<AttachedBlob> attached = attachments_of(db, record_type, "avatar", "target");
    ASSERT_EQ(attached.size(), 2u) << table;
    EXPECT_EQ(attached[0].record_id, "1");
    EXPECT_EQ(attached[0].filename, "one.png");
    EXPECT_EQ(get_bytes(*target, attached[0].key), bytes[table]["1"]);
    EXPECT_EQ(attached[1].record_id, "3");
    EXPECT_EQ(attached[1].filename, "three-again.png");
    EXPECT_EQ(get_bytes(*target, attached[1].key), bytes[table]["3"]) << "the renamed file, not the first one planned";
    EXPECT_EQ(attached[1].checksum, base64_encode(md5_of(bytes[table]["3"])));
  };

  BlobferryCli cli = StackSuite::cli(url);

  // In one process: migrate --switch.
  const std::vector<std::string> migrate{"migrate", "--from", "source", "--to", "target", "--source", "paperclip",
                                         "--table", "owners", "--attachment", "avatar", "--record-type", "Owner",
                                         "--switch", "--no-progress"};
  CliResult r = cli.run(migrate);
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.out.find(key_of("Owner", "2", "two.png", 1600000002) + " (Owner#2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote 1 ActiveStorage blob and attachment rows"), std::string::npos) << r.out;
  r = cli.run(migrate);
  EXPECT_EQ(r.exit_code, 1) << "nothing fixed yet: " << r.all();
  fix("owners", "Owner");
  r = cli.run(migrate);
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("wrote 1 ActiveStorage blob and attachment rows"), std::string::npos) << r.out;
  expect_rows("owners", "Owner");
  EXPECT_EQ(count_of(db, "SELECT count(*) FROM blobferry_paperclip_blobs WHERE record_type = 'Owner' AND "
                         "outcome = 'file_gone'"),
            1);
  r = cli.run(migrate);
  EXPECT_EQ(r.exit_code, 0) << "a re-run after the fix stays done: " << r.all();
  EXPECT_NE(r.out.find("wrote 0 "), std::string::npos) << r.out;

  // Distributed: enqueue, worker, then validate and switch after the fix.
  const std::vector<std::string> enqueue{"enqueue", "--migration", "members", "--from", "source", "--to", "target",
                                         "--source", "paperclip", "--table", "members", "--attachment", "avatar",
                                         "--record-type", "Member"};
  const std::vector<std::string> worker{"worker", "--migration", "members", "--exit-when-empty"};
  ASSERT_EQ(cli.run(enqueue).exit_code, 0);
  cli.run(worker);
  r = cli.run({"validate", "--migration", "members"});
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.out.find("1 verified, 2 missing"), std::string::npos) << r.out;
  fix("members", "Member");
  // Before anything is re-planned, validate already stops waiting for the
  // cleared record; the renamed one needs the new file's copy.
  r = cli.run({"validate", "--migration", "members"});
  EXPECT_EQ(r.exit_code, 0) << r.all();
  ASSERT_EQ(cli.run(enqueue).exit_code, 0);
  cli.run(worker);
  r = cli.run({"validate", "--migration", "members"});
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("1 verified, 0 missing"), std::string::npos) << r.out;
  r = cli.run({"switch", "--migration", "members"});
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("wrote 2 ActiveStorage blob and attachment rows"), std::string::npos) << r.out;
  expect_rows("members", "Member");
}

TEST_F(PaperclipTest, BadPaperclipOptionsAreOneLineExitTwo) {
  const std::string url = database("paperclip_bad");
  auto blobs = active_storage_tables(url);
  blobs->db().exec("CREATE TABLE users (id bigint PRIMARY KEY, avatar_file_name varchar)");
  BlobferryCli cli = StackSuite::cli(url);
  const std::vector<std::string> base{"enqueue", "--migration", "bad", "--from", "source", "--to", "target",
                                      "--source", "paperclip", "--record-type", "User"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return cli.run(args);
  };
  struct Case {
    std::vector<std::string> extra;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--table", "users", "--attachment", "avatar", "--path", ":class/:foo/:filename"}, "unknown interpolation :foo"},
      {{"--table", "users", "--attachment", "avatar", "--path", ":class/:hash"}, "--hash-secret"},
      {{"--table", "users", "--attachment", "photo"}, "photo_file_name"},
      {{"--table", "people", "--attachment", "avatar"}, "table people not found"},
      {{"--attachment", "avatar"}, "--table"},
  };
  for (const Case& c : cases) {
    const CliResult r = with(c.extra);
    EXPECT_EQ(r.exit_code, 2) << r.all();
    EXPECT_EQ(testing::non_empty_lines(r.err).size(), 1u) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace blobferry
