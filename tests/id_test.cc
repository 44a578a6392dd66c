#include <gtest/gtest.h>

#include <set>

#include "carrel/context.h"
#include "carrel/id.h"

namespace carrel {
namespace {

TEST(ObjectIdTest, FromNameIsStableAcrossReleases) {
  // Fixed value (checked with `printf "Workspace\0acme" | xxhsum -H2`): changing the
  // derivation would orphan every stored object.
  EXPECT_EQ(id_from_name("Workspace", "acme").to_hex(), id_from_name("Workspace", "acme").to_hex());
  EXPECT_EQ(id_from_name("Workspace", "acme").to_hex(), "c012dbc7a89195dce46f41d5df184c2e");
}

TEST(ObjectIdTest, ClassAndNameAreSeparated) {
  EXPECT_NE(id_from_name("ab", "c"), id_from_name("a", "bc"));
  EXPECT_NE(id_from_name("Room", "x"), id_from_name("Room", "y"));
  EXPECT_NE(id_from_name("Room", "x"), id_from_name("Chat", "x"));
}

TEST(ObjectIdTest, HexRoundTrip) {
  ObjectId id = id_from_name("Room", "lobby");
  std::string hex = id.to_hex();
  ASSERT_EQ(hex.size(), 32u);
  auto parsed = ObjectId::parse(hex);
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(*parsed, id);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(*ObjectId::parse(upper), id);
}

TEST(ObjectIdTest, ParseRejectsBadInput) {
  EXPECT_EQ(ObjectId::parse("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ObjectId::parse("abc").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ObjectId::parse(std::string(33, 'a')).status().code(), Code::kInvalidArgument);
  auto bad = ObjectId::parse("0123456789abcdef0123456789abcdeg");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("position 32"), std::string::npos) << bad.status().message();
}

TEST(ObjectIdTest, UniqueIdsDiffer) {
  std::set<ObjectId> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(new_unique_id("Room"));
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace carrel
