#include "protocol/tls.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <sys/stat.h>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace ldm::protocol {

namespace fs = std::filesystem;

namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return e ? buf : "unknown OpenSSL error";
}

Result<> add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return fail(fmt::format("cannot build certificate extension {}: {}", value, openssl_error()));
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return {};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> trusted_files(const TlsPaths& paths) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths.trust_dir, ec))
    if (e.path().extension() == ".pem") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TlsPaths TlsPaths::under(const std::string& state_dir) {
  TlsPaths p;
  p.dir = state_dir + "/tls";
  p.trust_dir = state_dir + "/trust";
  p.cert = p.dir + "/server.crt";
  p.key = p.dir + "/server.key";
  p.qemu_dir = p.dir + "/qemu";
  return p;
}

Result<> ensure_host_certificate(const TlsPaths& paths, const std::string& hostname,
                                 const std::vector<std::string>& addresses) {
  std::error_code ec;
  fs::create_directories(paths.dir, ec);
  fs::create_directories(paths.trust_dir, ec);
  if (fs::exists(paths.cert) && fs::exists(paths.key)) return {};

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) return fail("cannot generate the host key: " + openssl_error());
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ldm for Linux"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:" + hostname;
  for (const auto& a : addresses) san += ",IP:" + a;
  for (auto [nid, value] : {std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")},
                            std::pair{NID_key_usage, std::string("critical,digitalSignature,keyCertSign")},
                            std::pair{NID_ext_key_usage, std::string("serverAuth,clientAuth")},
                            std::pair{NID_subject_key_identifier, std::string("hash")},
                            std::pair{NID_subject_alt_name, san}})
    if (auto r = add_extension(cert.get(), nid, value); !r) return r;
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return fail("cannot sign the host certificate: " + openssl_error());

  umask(077);
  FILE* kf = fopen(paths.key.c_str(), "w");
  if (!kf) return fail(fmt::format("cannot write {}", paths.key));
  PEM_write_PrivateKey(kf, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  fclose(kf);
  chmod(paths.key.c_str(), 0600);
  FILE* cf = fopen(paths.cert.c_str(), "w");
  if (!cf) return fail(fmt::format("cannot write {}", paths.cert));
  PEM_write_X509(cf, cert.get());
  fclose(cf);
  chmod(paths.cert.c_str(), 0644);
  return {};
}

Result<std::shared_ptr<asio::ssl::context>> make_context(const TlsPaths& paths, bool server) {
  auto ctx = std::make_shared<asio::ssl::context>(server ? asio::ssl::context::tls_server
                                                         : asio::ssl::context::tls_client);
  SSL_CTX* raw = ctx->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // TLS 1.2 only with forward-secret AEAD suites; TLS 1.3 suites are all modern.
  SSL_CTX_set_cipher_list(raw, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
                               "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256");
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  asio::error_code ec;
  ctx->use_certificate_chain_file(paths.cert, ec);
  if (!ec) ctx->use_private_key_file(paths.key, asio::ssl::context::pem, ec);
  if (ec) return fail(fmt::format("cannot load the host certificate {}: {}", paths.cert, ec.message()));
  int trusted = 0;
  for (const auto& file : trusted_files(paths)) {
    ctx->load_verify_file(file, ec);
    if (ec) return fail(fmt::format("cannot load trusted certificate {}: {}", file, ec.message()));
    ++trusted;
  }
  (void)trusted;
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

Result<> write_qemu_credentials(const TlsPaths& paths) {
  std::error_code ec;
  fs::create_directories(paths.qemu_dir, ec);
  std::string own = read_file(paths.cert), key = read_file(paths.key);
  if (own.empty() || key.empty()) return fail("the host certificate is missing: " + paths.cert);
  std::string ca = own;
  for (const auto& file : trusted_files(paths)) ca += read_file(file);
  auto write = [&](const char* name, const std::string& content, mode_t mode) -> Result<> {
    std::string path = paths.qemu_dir + "/" + name;
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out) return fail("cannot write " + path);
    chmod(path.c_str(), mode);
    return {};
  };
  for (auto [name, content, mode] : {std::tuple{"ca-cert.pem", ca, 0644}, std::tuple{"server-cert.pem", own, 0644},
                                     std::tuple{"server-key.pem", key, 0600}, std::tuple{"client-cert.pem", own, 0644},
                                     std::tuple{"client-key.pem", key, 0600}})
    if (auto r = write(name, content, static_cast<mode_t>(mode)); !r) return r;
  return {};
}

std::string peer_name(asio::ssl::stream<asio::ip::tcp::socket>& stream) {
  X509* cert = SSL_get1_peer_certificate(stream.native_handle());
  if (!cert) return "";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

}  // namespace ldm::protocol
