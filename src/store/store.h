// The crash-safe store of a host's configuration: SQLite in WAL mode with
// synchronous=FULL, so a change is durable once save() returns, and a kill -9 at
// any moment leaves either the old or the new configuration, never a mix.
//
// Rows: one per domain and one per service, each a JSON document of the model
// type; a settings table for host-wide values. The migration journal lives here
// too (later), so that a step and its journal entry commit together.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "model/domain.h"

struct sqlite3;

namespace ldm::store {

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens (creating if needed) the database at `path`.
  static Result<std::unique_ptr<Store>> open(const std::string& path);

  // Loads domains and services into `into` (whose capacity and hostname the
  // caller has already set from its configuration).
  Result<> load(model::HostModel& into);

  // Writes the rows that differ between `before` and `after` in one
  // transaction. REQUIRES: `before` is what the store holds now.
  Result<> save(const model::HostModel& before, const model::HostModel& after);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Result<> exec(const char* sql);
  sqlite3* db_;
};

}  // namespace ldm::store
