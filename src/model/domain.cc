#include "model/domain.h"

#include <algorithm>

namespace ldm::model {

const char* to_string(DomainState state) {
  switch (state) {
    case DomainState::Inactive: return "inactive";
    case DomainState::Bound: return "bound";
    case DomainState::Active: return "active";
  }
  return "?";
}

uint64_t Domain::memory_size() const {
  uint64_t total = 0;
  for (const auto& b : memory) total += b.size;
  return total;
}

namespace {
template <class Vec, class Pred>
auto find_in(Vec& v, Pred pred) -> decltype(&v.front()) {
  auto it = std::find_if(v.begin(), v.end(), pred);
  return it == v.end() ? nullptr : &*it;
}
}  // namespace

Domain* HostModel::find(const std::string& name) {
  return find_in(domains, [&](const Domain& d) { return d.name == name; });
}
const Domain* HostModel::find(const std::string& name) const {
  return find_in(domains, [&](const Domain& d) { return d.name == name; });
}
DiskService* HostModel::find_disk_service(const std::string& name) {
  return find_in(disk_services, [&](const DiskService& s) { return s.name == name; });
}
const DiskService* HostModel::find_disk_service(const std::string& name) const {
  return find_in(disk_services, [&](const DiskService& s) { return s.name == name; });
}
const Volume* HostModel::find_volume(const std::string& volume, const std::string& vds) const {
  const DiskService* s = find_disk_service(vds);
  return s ? find_in(s->volumes, [&](const Volume& v) { return v.name == volume; }) : nullptr;
}
const VirtualSwitch* HostModel::find_switch(const std::string& name) const {
  return find_in(switches, [&](const VirtualSwitch& s) { return s.name == name; });
}
const ConsoleConcentrator* HostModel::find_console(const std::string& name) const {
  return find_in(consoles, [&](const ConsoleConcentrator& c) { return c.name == name; });
}

std::string flags_of(const Domain& d) {
  std::string f = "------";
  if (d.transitioning) f[0] = 's';
  if (d.state == DomainState::Active) f[1] = 'n';
  if (d.delayed_reconf) f[2] = 'd';
  if (d.migration.error)
    f[5] = 'e';
  else if (d.migration.role == "source")
    f[5] = 's';
  else if (d.migration.role == "target")
    f[5] = 't';
  return f;
}

}  // namespace ldm::model
