// carrel export: one object's state as NDJSON (docs/export-format.md), read
// from one snapshot of a read-only environment (invariant (1) of cli.h), so
// it works beside a running engine. The format is written by the engine's
// own writer (engine/transfer/export_writer.h), as export_object writes it
// from a turn.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "carrel/clock.h"
#include "engine/alarm/entry.h"
#include "engine/history/tail.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/transfer/export_writer.h"
#include "tools/cli/cli.h"
#include "tools/cli/output.h"
#include "tools/cli/safe_io.h"
#include "tools/cli/scan.h"
#include "tools/cli/snapshot_pages.h"

namespace carrel::cli {
namespace {

namespace fs = std::filesystem;
using store::Db;

// The object's KV entries, SQL pages and alarms as the inspection's snapshot
// holds them; a value that fails its checksum is Corruption naming it.
class SnapshotExportSource final : public transfer::ExportSource {
 public:
  SnapshotExportSource(const Inspection& in, uint32_t sql_pages)
      : in_(in), prefix_(store::object_prefix(in.object.number())), sql_pages_(sql_pages) {}

  Status for_each_kv(const std::function<Status(std::string_view, std::string_view)>& f) override {
    return each_of_object(
        Db::kKv, [&](std::string_view suffix, std::string_view value) { return f(suffix, value); });
  }
  Status for_each_page(const std::function<Status(uint32_t)>& on_count,
                       const std::function<Status(uint32_t, std::string_view)>& on_page) override {
    SnapshotPageSource pages(in_.txn, in_.object.ref.id, in_.object.number(),
                             in_.store->sql_page_bytes(), sql_pages_);
    CARREL_RETURN_IF_ERROR(on_count(sql_pages_));
    std::string page;
    for (uint32_t n = 0; n < sql_pages_; ++n) {
      if (stop_requested()) return Status::aborted("export: " + stop_reason());
      CARREL_ASSIGN_OR_RETURN(bool found, pages.read_page(n, &page));
      if (!found) page.assign(pages.page_bytes(), '\0');  // every page is listed
      CARREL_RETURN_IF_ERROR(on_page(n, page));
    }
    return Status::ok();
  }
  Result<std::vector<AlarmEntry>> alarms() override {
    std::vector<AlarmEntry> out;
    CARREL_RETURN_IF_ERROR(
        each_of_object(Db::kAlarms, [&](std::string_view name, std::string_view value) {
          CARREL_ASSIGN_OR_RETURN(AlarmEntry e, alarm::decode_entry(name, value));
          out.push_back(std::move(e));
          return Status::ok();
        }));
    return out;
  }

 private:
  // f(key after the object's number, checked value) on each of the object's
  // entries in db, in key order.
  Status each_of_object(Db db, const std::function<Status(std::string_view, std::string_view)>& f) {
    CARREL_ASSIGN_OR_RETURN(ScanCursor cur, ScanCursor::open(*in_.store, in_.txn, db));
    for (bool ok = cur.seek(prefix_); ok && cur.key().starts_with(prefix_); ok = cur.next()) {
      CARREL_ASSIGN_OR_RETURN(std::string_view value, cur.opened());
      CARREL_RETURN_IF_ERROR(f(cur.key().substr(store::kPrefixBytes), value));
    }
    return cur.status();
  }

  const Inspection& in_;
  std::string prefix_;  // the object's number (store/keys.h (2))
  uint32_t sql_pages_;
};

// Export targets: never a file of the engine directory; an existing file only with --force.
Status check_export_target(const Globals& g, const std::string& out, bool force) {
  std::error_code ec;
  fs::path target = fs::weakly_canonical(out, ec);
  if (ec) return Status::invalid_argument("export file '" + out + "': " + ec.message());
  CARREL_ASSIGN_OR_RETURN(bool inside, path_is_within(out, g.dir));
  if (inside) {
    return Status::invalid_argument("export file '" + out + "' lies inside the engine directory '" +
                                    g.dir + "'; write it elsewhere");
  }
  if (fs::is_directory(target, ec)) {
    return Status::invalid_argument("export file '" + out + "' is a directory; name a file");
  }
  fs::path parent = fs::path(out).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec)) {
    return Status::invalid_argument("export file '" + out + "': '" + parent.string() +
                                    (fs::exists(parent, ec)
                                         ? "' is a file, not a directory"
                                         : "' does not exist; make the directory first"));
  }
  if (!force && fs::exists(target, ec)) {
    return Status::invalid_argument("export file '" + out + "' exists; give --force to replace it");
  }
  return Status::ok();
}

}  // namespace

int cmd_export(const Globals& g, const std::string& obj, const std::optional<std::string>& out,
               bool force) {
  bool to_file = out && *out != "-";
  if (to_file) {
    Status s = check_export_target(g, *out, force);
    if (!s.is_ok()) return fail(s);
  }
  auto in = inspect(g, &obj);
  if (!in.is_ok()) return fail(in.status());
  const ObjectRef& ref = in->object.ref;
  // The record as of the snapshot (the one resolve_object read may be older).
  auto record = history::current_record(in->txn.get(), *in->store, ref.id);
  if (!record.is_ok()) return fail(record.status().with_context("export " + ref.label()));
  SnapshotExportSource source(*in, *record ? (*record)->sql_pages : 0);
  auto write = [&](std::ostream& f) -> Status {
    return transfer::write_export(ref, in->store->sql_page_bytes(), SystemClock().now_ms(), source,
                                  f);
  };
  if (!to_file) {
    Status s = write(std::cout);
    std::cout.flush();
    if (s.is_ok() && !std::cout) s = Status::io_error("cannot write the export to stdout");
    return s.is_ok() ? kExitOk : fail(s.with_context("export " + ref.label()));
  }
  // Invariant (3) of safe_io.h: a failed export leaves no partial file.
  Status s = write_file_atomically(*out, write);
  if (!s.is_ok()) return fail(s.with_context("export " + ref.label()));
  if (!g.json) std::cerr << "exported " << display_bytes(ref.label()) << " to " << *out << '\n';
  return kExitOk;
}

}  // namespace carrel::cli
