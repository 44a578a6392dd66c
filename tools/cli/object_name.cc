// OBJ arguments: what the CLI prints for an object is accepted back.
//
// Invariants:
//  (1) Every label the CLI prints resolves to the object it was printed for:
//      CLASS:NAME (the name tried first, so a name that looks like an id is
//      still a name), CLASS:<id hex> of an object without a name, a name
//      escaped by display_bytes(), and a name or id cut with "..." in a table
//      (a unique prefix).
//  (2) A prefix resolves only when exactly one object matches; otherwise the
//      error lists up to kAmbiguousShown of the matches.
//  (3) Lookups read one snapshot and scan at most kObjectScanMax records.
#include <algorithm>

#include "engine/history/tail.h"
#include "tools/cli/cli.h"
#include "tools/cli/nearest_word.h"
#include "tools/cli/output.h"
#include "tools/cli/scan.h"

namespace carrel::cli {
namespace {

constexpr size_t kAmbiguousShown = 5;
constexpr size_t kObjectScanMax = 1'000'000;

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The text without a trailing "..." or "…" (how tables cut long cells), or nullopt.
std::optional<std::string> cut_prefix(std::string_view s) {
  for (std::string_view mark : {std::string_view("..."), std::string_view("\xe2\x80\xa6")}) {
    if (s.size() > mark.size() && s.substr(s.size() - mark.size()) == mark) {
      return std::string(s.substr(0, s.size() - mark.size()));
    }
  }
  return std::nullopt;
}

// Undoes display_bytes(): \xNN, \n, \t, \r, \\. nullopt when s has no escape
// or a malformed one.
std::optional<std::string> unescape(std::string_view s) {
  if (s.find('\\') == std::string_view::npos) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    if (++i >= s.size()) return std::nullopt;
    switch (s[i]) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case 'x':
        if (i + 2 >= s.size() || !is_hex(s.substr(i + 1, 2))) return std::nullopt;
        out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

struct Found {
  ObjectId id;
  store::ObjectRecord record;
};

std::string label_of(const Found& f) {
  return f.record.class_name + ":" + (f.record.name.empty() ? f.id.to_hex() : f.record.name);
}

// The record of id (stored plus the log tail, history/tail.h), or nullopt.
Result<std::optional<store::ObjectRecord>> record_of(store::Store& store, const store::ReadTxn& txn,
                                                     const ObjectId& id) {
  return history::current_record(txn.get(), store, id);
}

// Every record for which match() holds (invariant (3)); stops after kAmbiguousShown + 1.
template <typename Match>
Result<std::vector<Found>> scan(store::Store& store, const store::ReadTxn& txn, Match match) {
  std::vector<Found> out;
  CARREL_ASSIGN_OR_RETURN(auto cur, ScanCursor::open(store, txn, store::Db::kObjects));
  size_t seen = 0;
  for (bool ok = cur.first(); ok && out.size() <= kAmbiguousShown; ok = cur.next()) {
    if (++seen > kObjectScanMax) {
      return Status::invalid_argument("more than " + std::to_string(kObjectScanMax) +
                                      " objects to search; name the object in full");
    }
    ObjectId id = ObjectId::from_raw(cur.key());
    auto rec = store::ObjectRecord::decode(cur.value());
    if (!rec.is_ok()) continue;  // verify reports it; it matches nothing here
    if (match(id, *rec)) out.push_back(Found{id, std::move(*rec)});
  }
  CARREL_RETURN_IF_ERROR(cur.status());
  // Class and name are stored from creation on (commit/records.h (5)); the
  // counts may be newer in the log tail.
  for (Found& f : out) {
    CARREL_ASSIGN_OR_RETURN(auto now, record_of(store, txn, f.id));
    if (now) f.record = std::move(*now);
  }
  return out;
}

Status ambiguous(const ObjectSpec& spec, const std::vector<Found>& found) {
  std::string m = "object '" + display_bytes(spec.text) + "' is ambiguous: it matches ";
  for (size_t i = 0; i < found.size() && i < kAmbiguousShown; ++i) {
    m += (i ? ", " : "") + display_bytes(label_of(found[i]));
  }
  if (found.size() > kAmbiguousShown) m += ", ...";
  return Status::invalid_argument(m + "; give more of the name or id");
}

Status unknown(store::Store& store, const store::ReadTxn& txn, const ObjectSpec& spec) {
  std::string m = "unknown object '" + display_bytes(spec.text) + "' (";
  m += spec.id_prefix.empty() ? "id " + spec.id.to_hex() + " has no record"
                              : "no id starts with " + spec.id_prefix;
  m += " in " + store.dir() + ")";
  if (!spec.class_name.empty() && !spec.hash_id) {
    // The nearest name of the same class, for a typo.
    std::vector<std::string> names;
    size_t seen = 0;
    auto cur = ScanCursor::open(store, txn, store::Db::kObjects);
    for (bool ok = cur.is_ok() && cur->first(); ok && ++seen <= kObjectScanMax; ok = cur->next()) {
      auto rec = store::ObjectRecord::decode(cur->value());
      if (rec.is_ok() && rec->class_name == spec.class_name && !rec->name.empty()) {
        names.push_back(rec->name);
      }
    }
    if (auto near = nearest_word(spec.name, names)) {
      m += "; did you mean '" + display_bytes(spec.class_name + ":" + *near) + "'?";
    }
  }
  return Status::not_found(m);
}

Result<ResolvedObject> resolved(const ObjectSpec& spec, const ObjectId& id,
                                store::ObjectRecord rec) {
  if (!spec.bare_id && rec.class_name != spec.class_name) {
    return Status::invalid_argument("object '" + display_bytes(spec.text) + "': id " + id.to_hex() +
                                    " belongs to class '" + display_bytes(rec.class_name) + "'");
  }
  ResolvedObject r;
  r.ref = ObjectRef{rec.class_name, id, rec.name};
  r.record = std::move(rec);
  return r;
}

}  // namespace

Result<ObjectSpec> parse_object(const std::string& text) {
  ObjectSpec spec;
  spec.text = text;
  auto bad = [&](std::string why) {
    return Status::invalid_argument("object '" + display_bytes(text) + "' " + why +
                                    "; expected CLASS:NAME, CLASS:#ID or an ID (docs/cli.md)");
  };
  // An id, whole or a prefix: bare or after '#'.
  auto id_form = [&](std::string_view s) -> Status {
    std::string hex(s);
    if (auto cut = cut_prefix(hex)) hex = *cut;
    auto not_id = [&](const std::string& why) {
      return bad("is not an object id: " + why +
                 "; an id is 32 hex digits, or a prefix of them that matches one object");
    };
    if (hex.empty()) return not_id("it has no hex digits");
    auto odd = std::find_if_not(hex.begin(), hex.end(), [](char c) { return is_hex({&c, 1}); });
    if (odd != hex.end()) {
      return not_id("'" + display_bytes(std::string_view(&*odd, 1)) + "' is not a hex digit");
    }
    if (hex.size() > 32) return not_id("it has " + std::to_string(hex.size()) + " hex digits");
    if (hex.size() == 32) {
      CARREL_ASSIGN_OR_RETURN(spec.id, ObjectId::parse(hex));
    } else {
      spec.id_prefix = lower(hex);
    }
    return Status::ok();
  };
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    spec.bare_id = true;
    std::string_view s(text);
    if (!s.empty() && s[0] == '#') s.remove_prefix(1);
    CARREL_RETURN_IF_ERROR(id_form(s));
    return spec;
  }
  spec.class_name = text.substr(0, colon);
  std::string rest = text.substr(colon + 1);
  if (spec.class_name.empty()) return bad("has an empty class");
  if (rest.empty()) return bad("has an empty name");
  if (rest[0] == '#') {
    spec.hash_id = true;
    CARREL_RETURN_IF_ERROR(id_form(std::string_view(rest).substr(1)));
    return spec;
  }
  spec.name = rest;
  spec.id = id_from_name(spec.class_name, spec.name);
  return spec;
}

Result<ResolvedObject> resolve_object(store::Store& store, const ObjectSpec& spec,
                                      bool must_exist) {
  CARREL_ASSIGN_OR_RETURN(auto txn, store.begin_read());
  // An id (bare or '#'), whole or a prefix.
  if (spec.bare_id || spec.hash_id) {
    if (spec.id_prefix.empty()) {
      CARREL_ASSIGN_OR_RETURN(auto rec, record_of(store, txn, spec.id));
      if (!rec && spec.hash_id && !must_exist) {
        ResolvedObject r;  // a new object with that id (as new_unique_id() makes them)
        r.ref = ObjectRef{spec.class_name, spec.id, ""};
        return r;
      }
      if (!rec) return unknown(store, txn, spec);
      return resolved(spec, spec.id, std::move(*rec));
    }
    CARREL_ASSIGN_OR_RETURN(auto found, scan(store, txn, [&](const ObjectId& id, const auto& r) {
                              return id.to_hex().compare(0, spec.id_prefix.size(),
                                                         spec.id_prefix) == 0 &&
                                     (spec.bare_id || r.class_name == spec.class_name);
                            }));
    if (found.empty()) return unknown(store, txn, spec);
    if (found.size() > 1) return ambiguous(spec, found);
    return resolved(spec, found[0].id, std::move(found[0].record));
  }
  // CLASS:NAME, tried as printed labels are made (invariant (1)): the name,
  // then an id, then the unescaped name, then a unique prefix of a cut cell.
  CARREL_ASSIGN_OR_RETURN(auto rec, record_of(store, txn, spec.id));
  if (rec) return resolved(spec, spec.id, std::move(*rec));
  if (auto id = ObjectId::parse(spec.name); id.is_ok()) {
    CARREL_ASSIGN_OR_RETURN(auto by_id, record_of(store, txn, *id));
    if (by_id) return resolved(spec, *id, std::move(*by_id));
  }
  std::optional<std::string> plain = unescape(spec.name);
  if (plain) {
    ObjectId id = id_from_name(spec.class_name, *plain);
    CARREL_ASSIGN_OR_RETURN(auto by_plain, record_of(store, txn, id));
    if (by_plain) return resolved(spec, id, std::move(*by_plain));
  }
  if (auto cut = cut_prefix(spec.name)) {
    std::string p = unescape(*cut).value_or(*cut);
    CARREL_ASSIGN_OR_RETURN(auto found, scan(store, txn, [&](const ObjectId& id, const auto& r) {
                              if (r.class_name != spec.class_name) return false;
                              std::string shown = r.name.empty() ? id.to_hex() : r.name;
                              return shown.compare(0, p.size(), p) == 0 ||
                                     shown.compare(0, cut->size(), *cut) == 0;
                            }));
    if (found.size() > 1) return ambiguous(spec, found);
    if (found.size() == 1) return resolved(spec, found[0].id, std::move(found[0].record));
  }
  if (must_exist) return unknown(store, txn, spec);
  ResolvedObject r;  // a new object, named as given (CLASS:#ID makes one by id)
  r.ref = ObjectRef{spec.class_name, spec.id, spec.name};
  return r;
}

}  // namespace carrel::cli
