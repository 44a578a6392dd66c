// The public SQL facade (carrel/sql.h): Sql forwards to the turn's
// SqlDatabase; SqlRow and SqlCursor accessors.
#include "carrel/sql.h"
#include "engine/sql/sql_database.h"
#include "engine/sql/turn_sql.h"

namespace carrel {
namespace {

Status column_error(size_t i, size_t size) {
  return Status::invalid_argument("SQL column " + std::to_string(i) +
                                  " is out of range; the row has " + std::to_string(size) +
                                  " columns");
}

const char* type_name(const SqlValue& v) {
  switch (v.index()) {
    case 0:
      return "null";
    case 1:
      return "integer";
    case 2:
      return "real";
    case 3:
      return "text";
    default:
      return "blob";
  }
}

Status type_error(size_t i, const SqlValue& v, const char* wanted) {
  return Status::invalid_argument("SQL column " + std::to_string(i) + " holds " + type_name(v) +
                                  ", not " + wanted);
}

}  // namespace

Result<SqlCursor> Sql::exec_values(std::string_view query, std::vector<SqlValue> args) {
  CARREL_ASSIGN_OR_RETURN(sql::SqlDatabase * db, detail::turn_sql(turn_));
  return db->exec(query, args);
}

Result<uint64_t> Sql::database_size() {
  CARREL_ASSIGN_OR_RETURN(sql::SqlDatabase * db, detail::turn_sql(turn_));
  return db->database_size();
}

Result<int64_t> SqlRow::get_int(size_t i) const {
  if (i >= values_.size()) return column_error(i, values_.size());
  if (const auto* v = std::get_if<int64_t>(&values_[i])) return *v;
  return type_error(i, values_[i], "integer");
}

Result<double> SqlRow::get_double(size_t i) const {
  if (i >= values_.size()) return column_error(i, values_.size());
  if (const auto* v = std::get_if<double>(&values_[i])) return *v;
  if (const auto* v = std::get_if<int64_t>(&values_[i])) return static_cast<double>(*v);
  return type_error(i, values_[i], "real");
}

Result<std::string> SqlRow::get_text(size_t i) const {
  if (i >= values_.size()) return column_error(i, values_.size());
  if (const auto* v = std::get_if<std::string>(&values_[i])) return *v;
  return type_error(i, values_[i], "text");
}

Result<std::string> SqlRow::get_blob(size_t i) const {
  if (i >= values_.size()) return column_error(i, values_.size());
  if (const auto* v = std::get_if<Blob>(&values_[i])) return v->bytes;
  if (const auto* v = std::get_if<std::string>(&values_[i])) return *v;
  return type_error(i, values_[i], "blob");
}

Result<SqlRow> SqlCursor::one() const {
  if (rows_.size() == 1) return rows_[0];
  return Status::invalid_argument("SQL query returned " + std::to_string(rows_.size()) +
                                  " rows; one() needs exactly one");
}

}  // namespace carrel
