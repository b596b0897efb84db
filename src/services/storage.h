// Is a volume on the target the same storage as on the source? Answered
// cheaply, without reading whole disks (ARCHITECTURE.md, "Same storage").
//
// A regular file carries a marker in an extended attribute
// (user.ldm.storage-token): the source writes a fresh random token at each
// check and the target reads it through its own path. The same file (shared
// by NFS, a cluster file system, or the same disk) shows the new token; a
// copy, or another file, does not. A block device is known by the identity
// the kernel reads from the hardware (WWID or serial in sysfs). Where neither
// exists, the size and digests of 16 sampled 4 KiB blocks stand in.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace ldm::services {

struct StorageIdentity {
  uint64_t size = 0;
  std::string token;    // file marker, or the device's WWID/serial ("wwid:...")
  std::string samples;  // SHA-256 over the sampled blocks (hex)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StorageIdentity, size, token, samples)

inline constexpr const char* kStorageTokenAttribute = "user.ldm.storage-token";

// The identities of several volumes, and why the ones that could not be read
// failed, both by the caller's key. The source marks (writes a fresh token
// where the file system allows, then reads it back); the target only reads.
struct StorageSurvey {
  std::map<std::string, StorageIdentity> identities;
  std::map<std::string, std::string> errors;
};
StorageSurvey survey_storage(const std::vector<std::pair<std::string, std::string>>& key_and_backend, bool mark);

// Why `there` is not the storage described by `here`, or empty when it is.
std::string storage_mismatch(const StorageIdentity& here, const StorageIdentity& there);

}  // namespace ldm::services
