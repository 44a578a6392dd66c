// The carrel VFS. See vfs.h for the invariants this file keeps.
#include "engine/sql/vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <unordered_map>

#include "engine/base/mutex.h"

namespace carrel::sql {
namespace {

// ---------------------------------------------------------------------------
// Registry of main database files (invariant 2).

Mutex g_registry_mutex;
uint64_t g_next_file_id GUARDED_BY(g_registry_mutex) = 1;

std::unordered_map<std::string, PageFileBinding*>& registry() {  // GUARDED_BY(g_registry_mutex)
  static auto* map = new std::unordered_map<std::string, PageFileBinding*>();
  return *map;
}

PageFileBinding* find_binding(const char* name) {
  if (name == nullptr) return nullptr;
  MutexLock lock(g_registry_mutex);
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second;
}

// ---------------------------------------------------------------------------
// The file object SQLite allocates (szOsFile bytes) and we fill in xOpen.
// Plain data on purpose: SQLite never calls xClose when xOpen fails, so
// nothing in it may need a destructor before xOpen succeeds.

struct CarrelFile {
  sqlite3_file base;         // first: SQLite hands us &base
  PageFileBinding* binding;  // main database file: its page set
  std::string* memory;       // any other file: an owned in-memory buffer
  TempBudget* budget;        // any other file: what it counts against (invariant 5), or null
};

thread_local TempBudget* t_temp_budget = nullptr;

CarrelFile* as_file(sqlite3_file* f) {
  return reinterpret_cast<CarrelFile*>(f);
}

// Keeps the PageSource's Status for the owner (invariant 3).
int fail(PageFileBinding* b, Status status, int sqlite_code) {
  b->io_error = std::move(status);
  return sqlite_code;
}

int io_code_for(const Status& status, int fallback) {
  return status.code() == Code::kNoSpace ? SQLITE_FULL : fallback;
}

// ---------------------------------------------------------------------------
// Main database file: a PageSource.

// Copies one page's slice [in_page, in_page + n) into out, straight from the
// page source (PageSource::read_slice); zeros for a page that was never
// written.
int read_slice(PageFileBinding* b, uint32_t page_no, uint64_t in_page, uint64_t n, char* out) {
  Result<bool> found = b->pages->read_slice(page_no, in_page, n, out);
  if (!found.is_ok()) return fail(b, found.status(), SQLITE_IOERR_READ);
  if (!*found) std::memset(out, 0, n);
  return SQLITE_OK;
}

// Decomposes the read by page. SQLite reads partial pages too (the 100-byte
// header at offset 0); past the end of the file it expects zeros and
// SQLITE_IOERR_SHORT_READ.
int pages_read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  PageFileBinding* b = as_file(f)->binding;
  const uint64_t page_bytes = b->pages->page_bytes();
  const uint64_t file_bytes = uint64_t{b->pages->page_count()} * page_bytes;
  auto* out = static_cast<char*>(buf);
  uint64_t done = 0;
  while (done < static_cast<uint64_t>(amount)) {
    const uint64_t pos = static_cast<uint64_t>(offset) + done;
    if (pos >= file_bytes) {
      std::memset(out + done, 0, amount - done);
      return SQLITE_IOERR_SHORT_READ;
    }
    const uint64_t in_page = pos % page_bytes;
    const uint64_t n = std::min<uint64_t>(amount - done, page_bytes - in_page);
    int rc = read_slice(b, static_cast<uint32_t>(pos / page_bytes), in_page, n, out + done);
    if (rc != SQLITE_OK) return rc;
    done += n;
  }
  return SQLITE_OK;
}

// Writes [in_page, in_page + n) of one page: directly for a whole page (what
// SQLite does for the main database), read-modify-write otherwise.
Status write_slice(PageSource* pages, uint32_t page_no, uint64_t in_page, const char* in,
                   uint64_t n) {
  if (in_page == 0 && n == pages->page_bytes()) {
    return pages->write_page(page_no, std::string_view(in, n));
  }
  std::string page;
  Result<bool> found = pages->read_page(page_no, &page);
  if (!found.is_ok()) return found.status();
  if (!*found || page.size() != pages->page_bytes()) page.assign(pages->page_bytes(), '\0');
  std::memcpy(page.data() + in_page, in, n);
  return pages->write_page(page_no, page);
}

int pages_write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  PageFileBinding* b = as_file(f)->binding;
  const uint64_t page_bytes = b->pages->page_bytes();
  const auto* in = static_cast<const char*>(buf);
  uint64_t done = 0;
  while (done < static_cast<uint64_t>(amount)) {
    const uint64_t pos = static_cast<uint64_t>(offset) + done;
    const uint64_t page_no = pos / page_bytes;
    if (page_no > UINT32_MAX) {
      return fail(b, Status::no_space("SQL database would exceed 2^32 pages"), SQLITE_FULL);
    }
    const uint64_t in_page = pos % page_bytes;
    const uint64_t n = std::min<uint64_t>(amount - done, page_bytes - in_page);
    Status st = write_slice(b->pages, static_cast<uint32_t>(page_no), in_page, in + done, n);
    if (!st.is_ok()) return fail(b, st, io_code_for(st, SQLITE_IOERR_WRITE));
    done += n;
  }
  return SQLITE_OK;
}

// SQLite truncates the main database to whole pages; a partial last page is
// kept (rounded up) and its tail zeroed, so the file never shrinks below size.
int pages_truncate(sqlite3_file* f, sqlite3_int64 size) {
  PageFileBinding* b = as_file(f)->binding;
  const uint64_t page_bytes = b->pages->page_bytes();
  const uint64_t page_count = (static_cast<uint64_t>(size) + page_bytes - 1) / page_bytes;
  if (page_count > UINT32_MAX) return SQLITE_OK;  // nothing lies that far out
  if (page_count >= b->pages->page_count()) return SQLITE_OK;
  Status st = b->pages->truncate(static_cast<uint32_t>(page_count));
  if (st.is_ok() && size % page_bytes != 0) {
    const uint64_t tail = size % page_bytes;
    std::string zeros(page_bytes - tail, '\0');
    st = write_slice(b->pages, static_cast<uint32_t>(page_count - 1), tail, zeros.data(),
                     zeros.size());
  }
  if (!st.is_ok()) return fail(b, st, SQLITE_IOERR_TRUNCATE);
  return SQLITE_OK;
}

int pages_file_size(sqlite3_file* f, sqlite3_int64* size) {
  PageSource* pages = as_file(f)->binding->pages;
  *size = static_cast<sqlite3_int64>(uint64_t{pages->page_count()} * pages->page_bytes());
  return SQLITE_OK;
}

int pages_close(sqlite3_file* f) {
  as_file(f)->binding = nullptr;
  return SQLITE_OK;
}

// ---------------------------------------------------------------------------
// Every other file: a private in-memory buffer (invariant 1).

int memory_read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  const std::string& data = *as_file(f)->memory;
  auto* out = static_cast<char*>(buf);
  const uint64_t pos = static_cast<uint64_t>(offset);
  const uint64_t available = pos < data.size() ? data.size() - pos : 0;
  const uint64_t n = std::min<uint64_t>(available, amount);
  if (n > 0) std::memcpy(out, data.data() + pos, n);
  if (n == static_cast<uint64_t>(amount)) return SQLITE_OK;
  std::memset(out + n, 0, amount - n);
  return SQLITE_IOERR_SHORT_READ;
}

int memory_write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  std::string& data = *as_file(f)->memory;
  TempBudget* budget = as_file(f)->budget;
  const uint64_t end = static_cast<uint64_t>(offset) + amount;
  const uint64_t growth = end > data.size() ? end - data.size() : 0;
  if (budget != nullptr && budget->bytes_max != 0 &&
      budget->bytes_used + growth > budget->bytes_max) {
    budget->exceeded = true;  // invariant 5
    return SQLITE_FULL;
  }
  try {
    if (data.size() < end) data.resize(end, '\0');
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
  if (budget != nullptr) budget->bytes_used += growth;
  std::memcpy(data.data() + offset, buf, amount);
  return SQLITE_OK;
}

int memory_truncate(sqlite3_file* f, sqlite3_int64 size) {
  std::string& data = *as_file(f)->memory;
  if (static_cast<uint64_t>(size) >= data.size()) return SQLITE_OK;
  if (TempBudget* budget = as_file(f)->budget) budget->bytes_used -= data.size() - size;
  data.resize(size);
  return SQLITE_OK;
}

int memory_file_size(sqlite3_file* f, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(as_file(f)->memory->size());
  return SQLITE_OK;
}

int memory_close(sqlite3_file* f) {
  TempBudget* budget = as_file(f)->budget;
  if (budget != nullptr && as_file(f)->memory != nullptr) {
    budget->bytes_used -= as_file(f)->memory->size();
  }
  delete as_file(f)->memory;
  as_file(f)->memory = nullptr;
  return SQLITE_OK;
}

// ---------------------------------------------------------------------------
// Shared methods (invariant 4).

int no_sync(sqlite3_file*, int) {
  return SQLITE_OK;
}
int no_lock(sqlite3_file*, int) {
  return SQLITE_OK;
}
int no_reserved_lock(sqlite3_file*, int* reserved) {
  *reserved = 0;
  return SQLITE_OK;
}
int no_file_control(sqlite3_file*, int, void*) {
  return SQLITE_NOTFOUND;
}
// Small, so SQLite never journals neighbouring pages of one "sector".
int sector_size(sqlite3_file*) {
  return 512;
}
// Only what holds for writes into memory: a write changes exactly the bytes
// written (POWERSAFE_OVERWRITE), appends and writes are never reordered. Not
// ATOMIC*: SQLite must keep journaling, as ROLLBACK restores pages from it.
int device_characteristics(sqlite3_file*) {
  return SQLITE_IOCAP_POWERSAFE_OVERWRITE | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL;
}

sqlite3_io_methods make_methods(int (*close)(sqlite3_file*),
                                int (*read)(sqlite3_file*, void*, int, sqlite3_int64),
                                int (*write)(sqlite3_file*, const void*, int, sqlite3_int64),
                                int (*truncate)(sqlite3_file*, sqlite3_int64),
                                int (*file_size)(sqlite3_file*, sqlite3_int64*)) {
  sqlite3_io_methods m{};
  m.iVersion = 1;  // no shared memory: WAL is never used
  m.xClose = close;
  m.xRead = read;
  m.xWrite = write;
  m.xTruncate = truncate;
  m.xSync = no_sync;
  m.xFileSize = file_size;
  m.xLock = no_lock;
  m.xUnlock = no_lock;
  m.xCheckReservedLock = no_reserved_lock;
  m.xFileControl = no_file_control;
  m.xSectorSize = sector_size;
  m.xDeviceCharacteristics = device_characteristics;
  return m;
}

const sqlite3_io_methods kPageMethods =
    make_methods(pages_close, pages_read, pages_write, pages_truncate, pages_file_size);
const sqlite3_io_methods kMemoryMethods =
    make_methods(memory_close, memory_read, memory_write, memory_truncate, memory_file_size);

// ---------------------------------------------------------------------------
// The VFS.

sqlite3_vfs* g_default_vfs = nullptr;  // set once by register_vfs

int vfs_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  CarrelFile* file = as_file(f);
  file->base.pMethods = nullptr;
  file->binding = nullptr;
  file->memory = nullptr;
  file->budget = nullptr;
  if (flags & SQLITE_OPEN_MAIN_DB) {
    file->binding = find_binding(name);
    if (file->binding == nullptr) return SQLITE_CANTOPEN;
    file->base.pMethods = &kPageMethods;
  } else {
    file->memory = new (std::nothrow) std::string();
    if (file->memory == nullptr) return SQLITE_NOMEM;
    file->base.pMethods = &kMemoryMethods;
    file->budget = t_temp_budget;
  }
  if (out_flags != nullptr) *out_flags = flags;
  return SQLITE_OK;
}

}  // namespace

TempBudgetScope::TempBudgetScope(TempBudget* budget) : previous_(t_temp_budget) {
  t_temp_budget = budget;
}
TempBudgetScope::~TempBudgetScope() {
  t_temp_budget = previous_;
}

namespace {

int vfs_delete(sqlite3_vfs*, const char*, int) {
  return SQLITE_OK;
}

// No journal, WAL or other side file ever exists (invariant 4).
int vfs_access(sqlite3_vfs*, const char*, int, int* result) {
  *result = 0;
  return SQLITE_OK;
}

int vfs_full_pathname(sqlite3_vfs*, const char* name, int out_bytes, char* out) {
  const size_t n = std::strlen(name) + 1;
  if (n > static_cast<size_t>(out_bytes)) return SQLITE_CANTOPEN;
  std::memcpy(out, name, n);
  return SQLITE_OK;
}

// Extensions are never loaded (load_extension is disabled and refused).
void* vfs_dl_open(sqlite3_vfs*, const char*) {
  return nullptr;
}
void vfs_dl_error(sqlite3_vfs*, int n, char* out) {
  sqlite3_snprintf(n, out, "carrel does not load SQLite extensions");
}
void (*vfs_dl_sym(sqlite3_vfs*, void*, const char*))(void) {
  return nullptr;
}
void vfs_dl_close(sqlite3_vfs*, void*) {}

int vfs_randomness(sqlite3_vfs*, int n, char* out) {
  return g_default_vfs->xRandomness(g_default_vfs, n, out);
}
int vfs_sleep(sqlite3_vfs*, int us) {
  return g_default_vfs->xSleep(g_default_vfs, us);
}
int vfs_current_time(sqlite3_vfs*, double* now) {
  return g_default_vfs->xCurrentTime(g_default_vfs, now);
}
int vfs_get_last_error(sqlite3_vfs*, int, char*) {
  return 0;
}
int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* now_ms) {
  if (g_default_vfs->iVersion >= 2 && g_default_vfs->xCurrentTimeInt64 != nullptr) {
    return g_default_vfs->xCurrentTimeInt64(g_default_vfs, now_ms);
  }
  double days = 0;
  int rc = vfs_current_time(vfs, &days);
  *now_ms = static_cast<sqlite3_int64>(days * 86400000.0);
  return rc;
}

sqlite3_vfs make_vfs() {
  sqlite3_vfs v{};
  v.iVersion = 2;
  v.szOsFile = sizeof(CarrelFile);
  v.mxPathname = 512;
  v.zName = kVfsName;
  v.xOpen = vfs_open;
  v.xDelete = vfs_delete;
  v.xAccess = vfs_access;
  v.xFullPathname = vfs_full_pathname;
  v.xDlOpen = vfs_dl_open;
  v.xDlError = vfs_dl_error;
  v.xDlSym = vfs_dl_sym;
  v.xDlClose = vfs_dl_close;
  v.xRandomness = vfs_randomness;
  v.xSleep = vfs_sleep;
  v.xCurrentTime = vfs_current_time;
  v.xGetLastError = vfs_get_last_error;
  v.xCurrentTimeInt64 = vfs_current_time_int64;
  return v;
}

Status register_once() {
  g_default_vfs = sqlite3_vfs_find(nullptr);
  if (g_default_vfs == nullptr) return Status::io_error("SQLite has no default VFS");
  static sqlite3_vfs vfs = make_vfs();  // SQLite keeps the pointer: static lifetime
  int rc = sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  if (rc != SQLITE_OK) {
    return Status::io_error(std::string("registering the carrel SQLite VFS failed: ") +
                            sqlite3_errstr(rc));
  }
  return Status::ok();
}

}  // namespace

Status register_vfs() {
  static std::once_flag once;
  static Status result;
  std::call_once(once, [] { result = register_once(); });
  return result;
}

PageFileRegistration::PageFileRegistration(PageFileBinding* binding) {
  MutexLock lock(g_registry_mutex);
  file_name_ = "carrel-page-file-" + std::to_string(g_next_file_id++);
  registry().emplace(file_name_, binding);
}

PageFileRegistration::~PageFileRegistration() {
  MutexLock lock(g_registry_mutex);
  registry().erase(file_name_);
}

}  // namespace carrel::sql
