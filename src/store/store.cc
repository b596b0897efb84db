#include "store/store.h"

#include <map>
#include <sqlite3.h>

#include <fmt/format.h>

namespace ldm::store {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services (kind TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
                                     doc TEXT NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

// A row's identity and content, for diffing two models.
struct Row {
  int64_t seq;
  std::string doc;
};
using Rows = std::map<std::pair<std::string, std::string>, Row>;  // (kind, name) -> row

template <class T>
void add_rows(Rows& rows, const char* kind, const std::vector<T>& items) {
  int64_t seq = 0;
  for (const auto& item : items) rows[{kind, item.name}] = Row{seq++, nlohmann::json(item).dump()};
}

Rows rows_of(const model::HostModel& m) {
  Rows rows;
  add_rows(rows, "domain", m.domains);
  add_rows(rows, "vds", m.disk_services);
  add_rows(rows, "vsw", m.switches);
  add_rows(rows, "vcc", m.consoles);
  return rows;
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, const std::string& s) { sqlite3_bind_text(stmt_, i, s.c_str(), -1, SQLITE_TRANSIENT); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

Store::~Store() { sqlite3_close(db_); }

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return fail(fmt::format("Cannot open the store {}: {}", path, why));
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;", kSchema})
    if (auto r = store->exec(sql); !r) return fail(fmt::format("Cannot prepare the store {}: {}", path, r.error().text()));
  return store;
}

Result<> Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    return fail(why);
  }
  return {};
}

Result<> Store::load(model::HostModel& into) {
  auto read = [&](const char* sql, auto&& each) -> Result<> {
    Statement st(db_, sql);
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      std::string kind = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      std::string doc = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));
      auto j = nlohmann::json::parse(doc, nullptr, false);
      if (j.is_discarded()) return fail(fmt::format("The store holds an unreadable {} record", kind));
      try {
        each(kind, j);
      } catch (const nlohmann::json::exception& e) {
        return fail(fmt::format("The store holds an invalid {} record: {}", kind, e.what()));
      }
    }
    if (rc != SQLITE_DONE) return fail(fmt::format("Cannot read the store: {}", sqlite3_errmsg(db_)));
    return {};
  };
  into.domains.clear();
  into.disk_services.clear();
  into.switches.clear();
  into.consoles.clear();
  auto r = read("SELECT 'domain', doc FROM domains ORDER BY seq", [&](const std::string&, const nlohmann::json& j) {
    into.domains.push_back(j.get<model::Domain>());
  });
  if (!r) return r;
  r = read("SELECT kind, doc FROM services ORDER BY kind, seq", [&](const std::string& kind, const nlohmann::json& j) {
    if (kind == "vds") into.disk_services.push_back(j.get<model::DiskService>());
    if (kind == "vsw") into.switches.push_back(j.get<model::VirtualSwitch>());
    if (kind == "vcc") into.consoles.push_back(j.get<model::ConsoleConcentrator>());
  });
  if (!r) return r;
  Statement st(db_, "SELECT value FROM settings WHERE key='power_policy'");
  if (sqlite3_step(st.get()) == SQLITE_ROW) {
    std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
    into.power_policy = v == "elastic" ? model::PowerPolicy::Elastic : model::PowerPolicy::Performance;
  }
  return {};
}

Result<> Store::save(const model::HostModel& before, const model::HostModel& after) {
  Rows old_rows = rows_of(before), new_rows = rows_of(after);
  if (auto r = exec("BEGIN IMMEDIATE"); !r) return fail("Cannot write the store: " + r.error().text());
  auto rollback = [&](const std::string& why) {
    exec("ROLLBACK");
    return fail(fmt::format("Cannot write the store: {}", why));
  };
  for (const auto& [key, row] : old_rows) {
    if (new_rows.contains(key)) continue;
    Statement st(db_, key.first == "domain" ? "DELETE FROM domains WHERE name=?2"
                                            : "DELETE FROM services WHERE kind=?1 AND name=?2");
    st.bind(1, key.first);
    st.bind(2, key.second);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return rollback(sqlite3_errmsg(db_));
  }
  for (const auto& [key, row] : new_rows) {
    auto old = old_rows.find(key);
    if (old != old_rows.end() && old->second.doc == row.doc && old->second.seq == row.seq) continue;
    Statement st(db_, key.first == "domain"
                          ? "INSERT OR REPLACE INTO domains (name, seq, doc) VALUES (?2, ?3, ?4)"
                          : "INSERT OR REPLACE INTO services (kind, name, seq, doc) VALUES (?1, ?2, ?3, ?4)");
    st.bind(1, key.first);
    st.bind(2, key.second);
    st.bind(3, row.seq);
    st.bind(4, row.doc);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return rollback(sqlite3_errmsg(db_));
  }
  if (before.power_policy != after.power_policy) {
    Statement st(db_, "INSERT OR REPLACE INTO settings (key, value) VALUES ('power_policy', ?1)");
    st.bind(1, std::string(after.power_policy == model::PowerPolicy::Elastic ? "elastic" : "performance"));
    if (sqlite3_step(st.get()) != SQLITE_DONE) return rollback(sqlite3_errmsg(db_));
  }
  if (auto r = exec("COMMIT"); !r) return rollback(r.error().text());
  return {};
}

}  // namespace ldm::store
