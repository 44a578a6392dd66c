// Export and import of one object (docs/export-format.md): round trips
// between engines, refusals, and the line encodings.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <random>
#include <sstream>

#include "carrel/carrel.h"
#include "engine/loop/turn.h"
#include "engine/transfer/json_line.h"
#include "tests/store_probe.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using transfer::base64_decode;
using transfer::base64_encode;
using transfer::JsonLine;

constexpr UnixMs kT0 = 1700000000000;
constexpr UnixMs kLater = kT0 + 3600 * 1000;

TEST(JsonLineTest, Base64RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37));
    auto back = base64_decode(base64_encode(bytes));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  for (std::string bad : {"Zm9", "Zm9v!mE=", "Zm=vYmE=", "Z===", "=m9v", "Zm9vY=E="}) {
    EXPECT_EQ(base64_decode(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(JsonLineTest, ParsesWhatItWrites) {
  JsonLine line;
  line.add("s", std::string("q\"b\\n\n\t\x01 \xc3\xa9")).add("i", int64_t{-42}).add("t", true);
  auto f = JsonLine::parse(line.text());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(std::get<std::string>(f->at("s")), "q\"b\\n\n\t\x01 \xc3\xa9");
  EXPECT_EQ(std::get<int64_t>(f->at("i")), -42);
  EXPECT_EQ(std::get<bool>(f->at("t")), true);
  auto u = JsonLine::parse(R"({"a":"\u00e9\ud83d\ude00\/"})");
  ASSERT_TRUE(u.is_ok()) << u.status().to_string();
  EXPECT_EQ(std::get<std::string>(u->at("a")), "\xc3\xa9\xf0\x9f\x98\x80/");
  for (std::string bad :
       {"", "[]", "{\"a\":1,}", "{\"a\":1.5}", "{\"a\":null}", "{\"a\":{}}", "{\"a\":1,\"a\":2}",
        "{\"a\":1} x", "{\"a\":\"\\ud800\"}", "{\"a\":99999999999999999999}", "{a:1}"}) {
    auto r = JsonLine::parse(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    if (!bad.empty()) {
      EXPECT_NE(r.status().message().find("column"), std::string::npos) << r.status().message();
    }
  }
}

class EngineExportTest : public ::testing::Test {
 protected:
  std::unique_ptr<Engine> open(const testing::TempDir& dir, uint32_t page_bytes = 1024) {
    Options o;
    o.dir = dir.path();
    o.clock = clock_;
    o.workers = 2;
    o.sql_page_bytes = page_bytes;
    auto e = Engine::open(o);
    EXPECT_TRUE(e.is_ok()) << e.status().to_string();
    return e.is_ok() ? std::move(e).value() : nullptr;
  }
  // A bit of everything: binary KV, two tables with an index and large rows,
  // and alarms of each repeat kind (one with a retry count).
  static Status fill(Context& ctx) {
    for (int i = 0; i < 1500; ++i) {
      CARREL_RETURN_IF_ERROR(ctx.kv().put("key" + std::to_string(i), std::string(i % 50, 'v')));
    }
    CARREL_RETURN_IF_ERROR(ctx.kv().put(std::string("\0\xff\n\"", 4), std::string("\0bin", 4)));
    CARREL_RETURN_IF_ERROR(
        ctx.sql()
            .exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB); CREATE INDEX tv ON t(v);"
                  "CREATE TABLE u(x)")
            .status());
    for (int i = 0; i < 200; ++i) {
      CARREL_RETURN_IF_ERROR(ctx.sql()
                                 .exec("INSERT INTO t(v, b) VALUES (?, randomblob(?))",
                                       "row" + std::to_string(i), i * 10)
                                 .status());
    }
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("DELETE FROM t WHERE id % 7 = 0").status());
    CARREL_RETURN_IF_ERROR(ctx.alarms().set(kLater));
    CARREL_RETURN_IF_ERROR(
        ctx.alarms().schedule(std::string("n\0x", 3), kLater + 1, "pay\nload", Repeat::every(500)));
    return ctx.alarms().schedule("c", kLater + 2, "", Repeat::cron_expr("0 12 * * MON-FRI"));
  }
  static Result<std::vector<SqlRow>> rows(Context& ctx, const std::string& q) {
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec(q));
    return c.to_vector();
  }
  struct State {
    Entries kv;
    std::vector<SqlRow> schema, t, u;
    std::vector<AlarmEntry> alarms;
    std::string integrity;
    bool operator==(const State&) const = default;
  };
  static State read(Engine& e, const ObjectRef& ref) {
    State s;
    Status st = e.run(ref, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(s.kv, ctx.kv().list());
      CARREL_ASSIGN_OR_RETURN(s.schema, rows(ctx, "SELECT * FROM sqlite_master ORDER BY name"));
      CARREL_ASSIGN_OR_RETURN(auto tables, rows(ctx, "SELECT name FROM sqlite_master"));
      for (const SqlRow& table : tables) {  // the fill() tables, when present
        if (*table.get_text(0) == "t") {
          CARREL_ASSIGN_OR_RETURN(s.t, rows(ctx, "SELECT * FROM t ORDER BY id"));
        } else if (*table.get_text(0) == "u") {
          CARREL_ASSIGN_OR_RETURN(s.u, rows(ctx, "SELECT rowid, * FROM u ORDER BY rowid"));
        }
      }
      CARREL_ASSIGN_OR_RETURN(s.alarms, ctx.alarms().list());
      CARREL_ASSIGN_OR_RETURN(auto ic, rows(ctx, "PRAGMA integrity_check"));
      CARREL_ASSIGN_OR_RETURN(s.integrity, ic.at(0).get_text(0));
      return Status::ok();
    });
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return s;
  }
  std::string exported(Engine& e, const ObjectRef& ref) {
    std::ostringstream out;
    Status s = export_object(e, ref, out);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return out.str();
  }
  Status import_text(Engine& e, const ObjectRef& ref, const std::string& text) {
    std::istringstream in(text);
    return import_object(e, ref, in);
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kT0);
};

TEST_F(EngineExportTest, RoundTripAcrossEngines) {
  testing::TempDir a_dir, b_dir;
  auto a = open(a_dir);
  auto b = open(b_dir);
  ASSERT_TRUE(a && b);
  auto src = ObjectRef::named("Doc", "source");
  ASSERT_TRUE(a->run(src, fill).is_ok());
  // A retry count survives the trip too.
  ASSERT_TRUE(a->run(src, [](Context& ctx) {
                 auto& turn = detail::Turn::of(ctx);
                 return turn.alarms().put(
                     AlarmEntry{"retrying", kLater + 3, "r", Repeat::none(), 2});
               }).is_ok());
  State want = read(*a, src);
  ASSERT_EQ(want.integrity, "ok");
  ASSERT_EQ(want.alarms.size(), 4u);
  std::string text = exported(*a, src);

  // Into another engine, under another name: the target keeps its own identity.
  auto dst = ObjectRef::named("Copy", "target");
  // The target's SQL connection is open on its empty file before the import:
  // the import must not leave it trusting that cache.
  ASSERT_TRUE(read(*b, dst).schema.empty());
  Status s = import_text(*b, dst, text);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_TRUE(read(*b, dst) == want);
  // Exporting the copy gives the same lines apart from the header.
  std::string again = exported(*b, dst);
  EXPECT_EQ(again.substr(again.find('\n')), text.substr(text.find('\n')));
  // The copy is a normal object: it takes writes and its SQL grows.
  ASSERT_TRUE(b->run(dst, [](Context& ctx) {
                 return ctx.sql().exec("INSERT INTO t(v) VALUES ('after import')").status();
               }).is_ok());
  EXPECT_EQ(read(*b, dst).t.size(), want.t.size() + 1);
  // And it survives a restart, its alarms in the timetable.
  ASSERT_TRUE(b->close().is_ok());
  testing::expect_timetable_matches(*b);
  b.reset();
  b = open(b_dir);
  State after = read(*b, dst);
  EXPECT_EQ(after.kv, want.kv);
  EXPECT_EQ(after.alarms, want.alarms);
  EXPECT_EQ(after.integrity, "ok");
}

TEST_F(EngineExportTest, EmptyObjectRoundTrips) {
  testing::TempDir dir;
  auto e = open(dir);
  auto src = ObjectRef::named("Doc", "empty");
  std::string text = exported(*e, src);
  EXPECT_NE(text.find("\"carrel_export\":1"), std::string::npos) << text;
  EXPECT_NE(text.find("{\"end\":true,\"kv\":0,\"pages\":0,\"alarms\":0}"), std::string::npos)
      << text;
  auto dst = ObjectRef::named("Doc", "empty-copy");
  ASSERT_TRUE(import_text(*e, dst, text).is_ok());
  EXPECT_TRUE(read(*e, dst).kv.empty());
}

TEST_F(EngineExportTest, ImportRefusesANonEmptyObject) {
  testing::TempDir dir;
  auto e = open(dir);
  auto src = ObjectRef::named("Doc", "src");
  ASSERT_TRUE(e->run(src, fill).is_ok());
  std::string text = exported(*e, src);
  struct Case {
    const char* name;
    std::function<Status(Context&)> prepare;
  };
  for (const Case& c :
       {Case{"kv", [](Context& ctx) { return ctx.kv().put("x", "y"); }},
        Case{"sql", [](Context& ctx) { return ctx.sql().exec("CREATE TABLE z(a)").status(); }},
        Case{"alarm", [](Context& ctx) { return ctx.alarms().set(kLater); }}}) {
    auto dst = ObjectRef::named("Doc", std::string("full-") + c.name);
    ASSERT_TRUE(e->run(dst, c.prepare).is_ok());
    auto before = read(*e, dst);
    Status s = import_text(*e, dst, text);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.name << ": " << s.to_string();
    EXPECT_NE(s.message().find("empty"), std::string::npos) << s.message();
    EXPECT_TRUE(read(*e, dst) == before) << c.name << ": a refused import wrote something";
  }
  ASSERT_TRUE(e->close().is_ok());
  testing::expect_timetable_matches(*e);
}

TEST_F(EngineExportTest, MalformedInputNamesTheLine) {
  testing::TempDir dir;
  auto e = open(dir);
  auto src = ObjectRef::named("Doc", "src");
  ASSERT_TRUE(e->run(src, fill).is_ok());
  std::string text = exported(*e, src);
  std::vector<std::string> lines;
  std::istringstream split(text);
  for (std::string l; std::getline(split, l);) lines.push_back(l);
  ASSERT_GT(lines.size(), 1510u);
  auto join = [](const std::vector<std::string>& ls) {
    std::string out;
    for (auto& l : ls) out += l + "\n";
    return out;
  };
  struct Case {
    std::string what;
    size_t line;  // 1-based line the error must name
    std::vector<std::string> lines;
  };
  std::vector<Case> cases;
  auto edited = [&](size_t line, std::string replacement) {
    auto ls = lines;
    ls[line - 1] = std::move(replacement);
    return ls;
  };
  cases.push_back({"not json", 7, edited(7, "{\"kv\":")});
  cases.push_back({"bad base64", 3, edited(3, R"({"kv":"a!==","value":""})")});
  cases.push_back({"unknown line", 5, edited(5, R"({"mystery":1})")});
  cases.push_back({"unknown field", 4, edited(4, R"({"kv":"","value":"","extra":1})")});
  cases.push_back({"repeated key", 3, edited(3, lines[1])});
  cases.push_back({"version", 1, edited(1, R"({"carrel_export":2})")});
  cases.push_back({"no header", 1, edited(1, lines[1])});
  auto no_end = lines;
  no_end.pop_back();
  cases.push_back({"truncated", no_end.size(), no_end});
  auto trailing = lines;
  trailing.push_back("{}");
  cases.push_back({"after end", trailing.size(), trailing});
  auto dropped = lines;
  dropped.erase(dropped.begin() + 10);
  cases.push_back({"count mismatch", dropped.size(), dropped});
  size_t page_line = 0;
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].rfind("{\"page\":", 0) == 0) page_line = i + 1;
  ASSERT_NE(page_line, 0u);
  cases.push_back({"short page", page_line, edited(page_line, R"({"page":0,"data":"AAAA"})")});
  cases.push_back(
      {"page past end", page_line, edited(page_line, R"({"page":999999,"data":"AAAA"})")});
  for (const Case& c : cases) {
    auto dst = ObjectRef::named("Doc", "dst");
    Status s = import_text(*e, dst, join(c.lines));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.what << ": " << s.to_string();
    EXPECT_NE(s.message().find("line " + std::to_string(c.line)), std::string::npos)
        << c.what << ": " << s.message();
    // Nothing was written: the object never committed.
    EXPECT_EQ(e->current_bookmark(dst).status().code(), Code::kNotFound) << c.what;
  }
  EXPECT_EQ(import_text(*e, ObjectRef::named("Doc", "dst"), "").code(), Code::kInvalidArgument);
}

TEST_F(EngineExportTest, AnInputCutInsideALineIsNamedAsATruncatedExport) {
  testing::TempDir dir;
  auto e = open(dir);
  auto src = ObjectRef::named("Doc", "src");
  ASSERT_TRUE(e->run(src, fill).is_ok());
  std::string text = exported(*e, src);
  size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  // The end line loses its last bytes and its newline.
  Status s = import_text(*e, ObjectRef::named("Doc", "dst"), text.substr(0, text.size() - 4));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("the input ends inside line " + std::to_string(lines) +
                             ", which is not whole (truncated export?)"),
            std::string::npos)
      << s.message();
}

TEST_F(EngineExportTest, AnInputThatIsNoExportIsNamedAsSuch) {
  testing::TempDir dir;
  auto e = open(dir);
  for (const char* text : {"hello\n", "{\"name\":\"x\"}\n", "\x89PNG\r\n"}) {
    Status s = import_text(*e, ObjectRef::named("Doc", "dst"), text);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_EQ(s.message().rfind("import: the input is not a carrel export: line 1 ", 0), 0u)
        << s.message();
  }
}

TEST_F(EngineExportTest, PageSizeMustMatch) {
  testing::TempDir a_dir, b_dir;
  auto a = open(a_dir, 1024);
  auto b = open(b_dir, 4096);
  auto src = ObjectRef::named("Doc", "src");
  ASSERT_TRUE(a->run(src, fill).is_ok());
  Status s = import_text(*b, ObjectRef::named("Doc", "dst"), exported(*a, src));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("1024"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("4096"), std::string::npos) << s.message();
}

TEST_F(EngineExportTest, ImportHitsTurnLimitsCleanly) {
  testing::TempDir a_dir, b_dir;
  auto a = open(a_dir);
  auto src = ObjectRef::named("Doc", "src");
  ASSERT_TRUE(a->run(src, fill).is_ok());
  std::string text = exported(*a, src);
  Options o;
  o.dir = b_dir.path();
  o.clock = clock_;
  o.alarms_per_object_max = 2;
  auto b = Engine::open(o);
  ASSERT_TRUE(b.is_ok());
  auto dst = ObjectRef::named("Doc", "dst");
  Status s = import_text(**b, dst, text);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("alarms_per_object_max"), std::string::npos) << s.message();
  EXPECT_EQ((*b)->current_bookmark(dst).status().code(), Code::kNotFound);
}

// A SQLite database built by real SQLite (not through carrel), as its file bytes.
std::string sqlite_image(const std::string& sql, uint32_t page_bytes = 1024) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  std::string setup = "PRAGMA page_size=" + std::to_string(page_bytes) + ";" + sql;
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, setup.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
  std::string image(reinterpret_cast<char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(db);
  return image;
}

// An export of an otherwise empty object whose SQL pages are `image`;
// sql_pages says `count` (default: the pages given).
std::string export_of_pages(const std::string& image, std::optional<int64_t> count = {},
                            uint32_t page_bytes = 1024) {
  auto ref = ObjectRef::named("Doc", "made");
  std::string text = JsonLine()
                         .add("carrel_export", int64_t{1})
                         .add("class", ref.class_name)
                         .add("name", ref.name)
                         .add("id", ref.id.to_hex())
                         .add("page_bytes", int64_t{page_bytes})
                         .add("exported_ms", kT0)
                         .text() +
                     "\n";
  int64_t pages = static_cast<int64_t>(image.size() / page_bytes);
  text += JsonLine().add("sql_pages", count.value_or(pages)).text() + "\n";
  for (int64_t n = 0; n < pages; ++n) {
    std::string page = image.substr(static_cast<size_t>(n) * page_bytes, page_bytes);
    text += JsonLine().add("page", n).add("data", base64_encode(page)).text() + "\n";
  }
  text += JsonLine()
              .add("end", true)
              .add("kv", int64_t{0})
              .add("pages", pages)
              .add("alarms", int64_t{0})
              .text() +
          "\n";
  return text;
}

class ImportValidationTest : public EngineExportTest {
 protected:
  // Imports text into a fresh object; expects InvalidArgument naming every
  // part and nothing written.
  void expect_refused(const std::string& text, std::vector<std::string> parts) {
    testing::TempDir dir;
    auto e = open(dir);
    auto dst = ObjectRef::named("Doc", "dst");
    Status s = import_text(*e, dst, text);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
    for (const std::string& part : parts) {
      EXPECT_NE(s.message().find(part), std::string::npos)
          << "lacks \"" << part << "\": " << s.message();
    }
    EXPECT_EQ(e->current_bookmark(dst).status().code(), Code::kNotFound);
  }
};

TEST_F(ImportValidationTest, ADatabaseBuiltBySqliteImportsAndIsQueryable) {
  testing::TempDir dir;
  auto e = open(dir);
  auto dst = ObjectRef::named("Doc", "dst");
  std::string image = sqlite_image(
      "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'one'), (2, 'two');"
      "CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('hello world');"
      "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)");
  Status s = import_text(*e, dst, export_of_pages(image));
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  Status q = e->run(dst, [](Context& ctx) -> Status {
    CARREL_ASSIGN_OR_RETURN(auto c, ctx.sql().exec("SELECT count(*) FROM t JOIN f"));
    EXPECT_EQ(std::get<int64_t>(c.to_vector().at(0)[0]), 2);
    return Status::ok();
  });
  EXPECT_TRUE(q.is_ok()) << q.to_string();
}

TEST_F(ImportValidationTest, ARandomPageIsRefused) {
  std::mt19937 rng(7);
  std::string page(1024, '\0');
  for (char& c : page) c = static_cast<char>(rng());
  expect_refused(export_of_pages(page), {"not a SQLite database"});
}

TEST_F(ImportValidationTest, APageCountWithoutItsPagesIsRefused) {
  expect_refused(export_of_pages("", int64_t{4294967295}),
                 {"sql_pages line says 4294967295 pages but 0 page lines"});
}

TEST_F(ImportValidationTest, AReservedTableNameIsRefused) {
  expect_refused(export_of_pages(sqlite_image("CREATE TABLE _carrel_meta(k, v)")),
                 {"_carrel_meta", "reserved"});
}

TEST_F(ImportValidationTest, AReservedIndexNameIsRefused) {
  expect_refused(export_of_pages(sqlite_image("CREATE TABLE t(a); CREATE INDEX _Carrel_i ON t(a)")),
                 {"_Carrel_i", "reserved"});
}

TEST_F(ImportValidationTest, AVirtualTableOfAModuleSqlRefusesIsRefused) {
  expect_refused(export_of_pages(sqlite_image("CREATE VIRTUAL TABLE old USING fts4(body)")),
                 {"\"old\"", "fts4", "not allowed"});
}

TEST_F(ImportValidationTest, AnotherPageSizeInTheHeaderIsRefused) {
  std::string image = sqlite_image("CREATE TABLE t(a)", 2048);
  expect_refused(export_of_pages(image), {"2048-byte pages", "sql_page_bytes is 1024"});
}

TEST_F(ImportValidationTest, MorePagesThanTheHeaderCountsAreRefused) {
  std::string image = sqlite_image("CREATE TABLE t(a)") + std::string(1024, '\0');
  expect_refused(export_of_pages(image), {"counts 2 pages but 3 were given"});
}

TEST_F(ImportValidationTest, ADamagedBTreeFailsIntegrityCheck) {
  std::string image = sqlite_image(
      "CREATE TABLE t(a INTEGER PRIMARY KEY, b); "
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) "
      "INSERT INTO t SELECT x, printf('%050d', x) FROM c");
  ASSERT_GT(image.size(), 4096u);
  // Page 3 (a leaf of t): scramble its cell pointers, keep its header byte.
  for (size_t i = 2 * 1024 + 8; i < 2 * 1024 + 40; ++i) image[i] = static_cast<char>(0x7f);
  expect_refused(export_of_pages(image), {"the SQL database"});
}

}  // namespace
}  // namespace carrel
