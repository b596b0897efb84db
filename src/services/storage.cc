#include "services/storage.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace ldm::services {

namespace {

constexpr size_t kSampleBlock = 4096;
constexpr int kSamples = 16;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

std::string hex(const unsigned char* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\n')) line.pop_back();
  return line;
}

// The hardware identity of a block device, when sysfs knows one.
std::string device_identity(dev_t rdev) {
  std::string base = fmt::format("/sys/dev/block/{}:{}", major(rdev), minor(rdev));
  for (const char* leaf : {"/device/wwid", "/wwid", "/device/serial", "/serial", "/dm/uuid"}) {
    std::string id = first_line(base + leaf);
    if (!id.empty()) return fmt::format("wwid:{}", id);
  }
  return {};
}

Result<StorageIdentity> identify(const std::string& backend, bool write_marker) {
  Fd f;
  f.fd = open(backend.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return fail(fmt::format("cannot open {}: {}", backend, std::strerror(errno)));
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return fail(fmt::format("cannot stat {}: {}", backend, std::strerror(errno)));
  StorageIdentity id;
  if (S_ISBLK(st.st_mode)) {
    off_t end = lseek(f.fd, 0, SEEK_END);
    id.size = end > 0 ? static_cast<uint64_t>(end) : 0;
    id.token = device_identity(st.st_rdev);
  } else {
    id.size = static_cast<uint64_t>(st.st_size);
    if (write_marker) {
      unsigned char random[16];
      RAND_bytes(random, sizeof random);
      std::string token = hex(random, sizeof random);
      // Refused where user attributes are unsupported: the samples stand in.
      (void)fsetxattr(f.fd, kStorageTokenAttribute, token.data(), token.size(), 0);
    }
    char buffer[128];
    ssize_t n = fgetxattr(f.fd, kStorageTokenAttribute, buffer, sizeof buffer);
    if (n > 0) id.token.assign(buffer, static_cast<size_t>(n));
  }

  // Sixteen blocks spread evenly over the storage, the first and last included.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<unsigned char> block(kSampleBlock);
  uint64_t span = id.size > kSampleBlock ? id.size - kSampleBlock : 0;
  for (int i = 0; i < kSamples; ++i) {
    auto offset = static_cast<off_t>(span / (kSamples - 1) * static_cast<uint64_t>(i) / kSampleBlock * kSampleBlock);
    ssize_t n = pread(f.fd, block.data(), block.size(), offset);
    if (n > 0) EVP_DigestUpdate(ctx, block.data(), static_cast<size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  id.samples = hex(digest, length);
  return id;
}

}  // namespace

StorageSurvey survey_storage(const std::vector<std::pair<std::string, std::string>>& key_and_backend, bool mark) {
  StorageSurvey survey;
  for (const auto& [key, backend] : key_and_backend) {
    auto id = identify(backend, mark);
    if (id)
      survey.identities[key] = *id;
    else
      survey.errors[key] = id.error().text();
  }
  return survey;
}

std::string storage_mismatch(const StorageIdentity& here, const StorageIdentity& there) {
  if (here.size != there.size)
    return fmt::format("its size differs ({} bytes here, {} bytes there)", here.size, there.size);
  if (!here.token.empty() || !there.token.empty()) {
    if (here.token != there.token)
      return here.token.rfind("wwid:", 0) == 0 || there.token.rfind("wwid:", 0) == 0
                 ? "it is another device (its hardware identity differs)"
                 : "a marker written to it here is not visible there (another file, or a copy)";
    return {};
  }
  if (here.samples != there.samples) return "its content differs in sampled blocks";
  return {};
}

}  // namespace ldm::services
