// The public Kv facade: each call goes to the current turn.
#include "carrel/kv.h"

#include "engine/loop/turn.h"

namespace carrel {

Result<std::optional<std::string>> Kv::get(std::string_view key) { return turn_->kv_get(key); }
Result<Entries> Kv::get_many(const std::vector<std::string>& keys) {
  return turn_->kv_get_many(keys);
}
Status Kv::put(std::string_view key, std::string_view value) { return turn_->kv_put(key, value); }
Status Kv::put_many(const Entries& entries) { return turn_->kv_put_many(entries); }
Result<bool> Kv::del(std::string_view key) { return turn_->kv_del(key); }
Result<size_t> Kv::del_many(const std::vector<std::string>& keys) {
  return turn_->kv_del_many(keys);
}
Status Kv::delete_all() { return turn_->kv_delete_all(); }
Result<Entries> Kv::list(const ListOptions& options) { return turn_->kv_list(options); }

}  // namespace carrel
