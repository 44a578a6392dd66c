#include "engine/store/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "carrel/id.h"
#include "engine/store/codec.h"
#include "engine/store/keys.h"

namespace carrel::store {
namespace {

// Invariant (2): one seed per sealed database, so the same key and value
// checksum differently in each. Fixed numbers, not the enum's order: they
// are part of the stored format.
constexpr uint64_t kKvSeed = 0x6b76'0000'0000'0001;
constexpr uint64_t kPagesSeed = 0x7067'0000'0000'0002;
constexpr uint64_t kAlarmsSeed = 0x616c'0000'0000'0003;
constexpr uint64_t kDeadSeed = 0x646c'0000'0000'0004;
// A user key or alarm name in a message is cut to this many bytes.
constexpr size_t kKeyShownBytesMax = 64;
static_assert(kChecksumBytes == sizeof(XXH64_hash_t), "the trailer holds one XXH3-64");

uint64_t seed_of(Db db) {
  switch (db) {
    case Db::kKv:
      return kKvSeed;
    case Db::kPages:
      return kPagesSeed;
    case Db::kAlarms:
      return kAlarmsSeed;
    case Db::kDead:
      return kDeadSeed;
    default:
      break;
  }
  CARREL_ASSERT(false, "checksum.h (1): only sealed databases hold checksums");
  return 0;
}

// Invariant (2): the value's hash (with the database's seed) seeds the key's,
// so (key, value) pairs that concatenate to the same bytes still checksum
// differently. The value is hashed unseeded: XXH3 with a seed derives a
// secret for every input over 240 bytes (an SQL page), and the key is short.
uint64_t checksum(Db db, std::string_view key, std::string_view value) {
  uint64_t value_hash = XXH3_64bits(value.data(), value.size());
  return XXH3_64bits_withSeed(key.data(), key.size(), value_hash ^ seed_of(db));
}

// Printable ASCII as is, other bytes as \xNN, cut at kKeyShownBytesMax.
std::string shown(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < kKeyShownBytesMax; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out.push_back(static_cast<char>(c));
    } else {
      out.append("\\x").push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (bytes.size() > kKeyShownBytesMax) out.append("...");
  return out;
}

// Invariant (3): the trailer follows the value, so sealing appends.
void append_trailer(Db db, std::string_view key, std::string* value) {
  uint64_t sum = checksum(db, key, *value);
  Writer(value).u64(sum);
}

}  // namespace

bool is_sealed(Db db) {
  return db == Db::kKv || db == Db::kPages || db == Db::kAlarms || db == Db::kDead;
}

std::string sealable(std::string_view value) {
  std::string out;
  out.reserve(value.size() + kChecksumBytes);
  out.assign(value);
  return out;
}

std::string seal(Db db, std::string_view key, std::string_view value) {
  std::string out = sealable(value);
  append_trailer(db, key, &out);
  return out;
}

SealedBytes seal_shared(Db db, std::string_view key, std::string value) {
  append_trailer(db, key, &value);
  return std::make_shared<const std::string>(std::move(value));
}

Result<std::string_view> open(Db db, std::string_view key, std::string_view stored) {
  Reader r(stored, "stored value");
  std::string_view value;
  uint64_t sum = 0;
  if (stored.size() < kChecksumBytes || !r.raw(stored.size() - kChecksumBytes, &value) ||
      !r.u64(&sum)) {
    return Status::corruption(describe_value(db, key) + " is " + std::to_string(stored.size()) +
                              " bytes, too short to hold its checksum: the stored data is "
                              "damaged; restore the object from a backup or an export");
  }
  if (sum != checksum(db, key, value)) {
    return Status::corruption(describe_value(db, key) +
                              " fails its checksum: the stored data is damaged and is not "
                              "served; restore the object from a backup or an export");
  }
  return value;
}

Result<std::optional<std::string_view>> read_sealed(const ReadTxn& txn, Db db,
                                                    std::string_view key) {
  CARREL_ASSIGN_OR_RETURN(auto stored, txn.get(db, key));
  if (!stored) return stored;
  CARREL_ASSIGN_OR_RETURN(std::string_view value, open(db, key, *stored));
  return std::optional<std::string_view>{value};
}

std::string describe_value(Db db, std::string_view key) {
  if (key.size() < kPrefixBytes) return std::string(db_name(db)) + " key '" + shown(key) + "'";
  // keys.h (2): the key names the object by its number; callers that know
  // the id name it too (the turn's object, the CLI's).
  std::string object = " of object number " + std::to_string(prefix_of(key).value);
  std::string_view suffix = key.substr(kPrefixBytes);
  switch (db) {
    case Db::kKv:
      return "KV key '" + shown(suffix) + "'" + object;
    case Db::kPages:
      if (suffix.size() == 4) return "SQL page " + std::to_string(read_u32(suffix, 0)) + object;
      return "SQL page key '" + shown(suffix) + "'" + object;
    case Db::kAlarms:
      return "alarm '" + shown(suffix) + "'" + object;
    case Db::kDead:
      return "dead letter '" + shown(suffix) + "'" + object;
    default:
      return std::string(db_name(db)) + " key '" + shown(suffix) + "'" + object;
  }
}

}  // namespace carrel::store
