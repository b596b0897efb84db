#include "protocol/tls.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <sstream>
#include <sys/stat.h>

#include <fmt/format.h>
#include <openssl/core_names.h>
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
  p.known_hosts = state_dir + "/known-hosts";
  return p;
}

namespace {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

struct Validity {
  long not_before, not_after;  // seconds from now
};

Result<Cert> make_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                              const std::vector<std::pair<int, std::string>>& extensions, Validity validity) {
  Cert cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), validity.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), validity.not_after);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ldm for Linux"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  for (const auto& [nid, value] : extensions) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) return fail(fmt::format("cannot build certificate extension {}: {}", value, openssl_error()));
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (!X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()))
    return fail("cannot sign a certificate: " + openssl_error());
  return cert;
}

Result<> write_pem(const std::string& path, mode_t mode, const std::function<bool(FILE*)>& write) {
  FILE* f = fopen(path.c_str(), "w");
  if (!f) return fail(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  bool ok = write(f);
  fclose(f);
  chmod(path.c_str(), mode);
  if (!ok) return fail(fmt::format("cannot write {}: {}", path, openssl_error()));
  return {};
}

}  // namespace

// Two levels, because QEMU's TLS checks them: a host CA (CA:TRUE) signs the
// host's leaf certificate (CA:FALSE). server.crt holds the leaf then the CA;
// it is what another host puts in its trust directory.
Result<> ensure_host_certificate(const TlsPaths& paths, const std::string& hostname,
                                 const std::vector<std::string>& addresses) {
  std::error_code ec;
  fs::create_directories(paths.dir, ec);
  fs::create_directories(paths.trust_dir, ec);
  if (fs::exists(paths.cert) && fs::exists(paths.key)) return {};
  return create_host_certificate(paths, hostname, addresses);
}

Result<> create_host_certificate(const TlsPaths& paths, const std::string& hostname,
                                 const std::vector<std::string>& addresses, long not_before, long not_after) {
  std::error_code ec;
  fs::create_directories(paths.dir, ec);
  fs::create_directories(paths.trust_dir, ec);
  Validity validity{not_before, not_after};
  Key ca_key(EVP_EC_gen("P-256"), EVP_PKEY_free), leaf_key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!ca_key || !leaf_key) return fail("cannot generate the host keys: " + openssl_error());
  auto ca = make_certificate(ca_key.get(), hostname + " ldm CA", nullptr, nullptr,
                             {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                              {NID_key_usage, "critical,keyCertSign,cRLSign"},
                              {NID_subject_key_identifier, "hash"}},
                             validity);
  if (!ca) return fail(ca.error());
  std::string san = "DNS:" + hostname;
  for (const auto& a : addresses) san += ",IP:" + a;
  auto leaf = make_certificate(leaf_key.get(), hostname, ca->get(), ca_key.get(),
                               {{NID_basic_constraints, "critical,CA:FALSE"},
                                {NID_ext_key_usage, "serverAuth,clientAuth"},
                                {NID_subject_alt_name, san}},
                               validity);
  if (!leaf) return fail(leaf.error());

  umask(077);
  if (auto r = write_pem(paths.dir + "/ca.key", 0600,
                         [&](FILE* f) { return PEM_write_PrivateKey(f, ca_key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1; });
      !r)
    return r;
  if (auto r = write_pem(paths.key, 0600, [&](FILE* f) {
        return PEM_write_PrivateKey(f, leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
      });
      !r)
    return r;
  return write_pem(paths.cert, 0644,
                   [&](FILE* f) { return PEM_write_X509(f, leaf->get()) == 1 && PEM_write_X509(f, ca->get()) == 1; });
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
  for (const auto& file : trusted_files(paths)) {
    ctx->load_verify_file(file, ec);
    if (ec) return fail(fmt::format("cannot load trusted certificate {}: {}", file, ec.message()));
  }
  // Trusted certificates are self-signed leaves: accept them as anchors.
  X509_STORE_set_flags(SSL_CTX_get_cert_store(raw), X509_V_FLAG_PARTIAL_CHAIN);
  // Ask for the peer's certificate but let the handshake finish whatever it
  // is: the caller judges the verification result (verification_error) and
  // refuses with a message that names the fix.
  ctx->set_verify_mode(asio::ssl::verify_peer);
  ctx->set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
  return ctx;
}

namespace {

// Splits PEM text into its certificates and sorts them into CAs and leaves.
void split_pem(const std::string& pem, std::string& cas, std::string& leaves) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(out.get(), cert);
    char* data = nullptr;
    long n = BIO_get_mem_data(out.get(), &data);
    (X509_check_ca(cert) ? cas : leaves).append(data, static_cast<size_t>(n));
    X509_free(cert);
  }
  ERR_clear_error();
}

// The RFC 7919 ffdhe2048 group as PKCS#3 PEM. Without a dh-params.pem, QEMU's
// TLS server generates fresh 2048-bit parameters each time its credentials are
// loaded: 150-200 ms of every incoming migration on this machine, for a value
// TLS 1.3 does not use and a standard group serves as well under 1.2.
std::string standard_dh_parameters() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr),
                                                                  EVP_PKEY_CTX_free);
  EVP_PKEY* params = nullptr;
  char group[] = "ffdhe2048";
  OSSL_PARAM settings[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                           OSSL_PARAM_construct_end()};
  if (!ctx || EVP_PKEY_paramgen_init(ctx.get()) <= 0 || EVP_PKEY_CTX_set_params(ctx.get(), settings) <= 0 ||
      EVP_PKEY_paramgen(ctx.get(), &params) <= 0) {
    ERR_clear_error();
    return "";
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> owned(params, EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  if (!PEM_write_bio_Parameters(out.get(), params)) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

Result<> write_qemu_credentials(const TlsPaths& paths) {
  std::error_code ec;
  fs::create_directories(paths.qemu_dir, ec);
  std::string own = read_file(paths.cert), key = read_file(paths.key);
  if (own.empty() || key.empty()) return fail("the host certificate is missing: " + paths.cert);
  std::string cas, leaf, ignored;
  split_pem(own, cas, leaf);
  for (const auto& file : trusted_files(paths)) split_pem(read_file(file), cas, ignored);
  auto write = [&](const char* name, const std::string& content, mode_t mode) -> Result<> {
    std::string path = paths.qemu_dir + "/" + name;
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out) return fail("cannot write " + path);
    chmod(path.c_str(), mode);
    return {};
  };
  for (auto [name, content, mode] : {std::tuple{"ca-cert.pem", cas, 0644}, std::tuple{"server-cert.pem", leaf, 0644},
                                     std::tuple{"server-key.pem", key, 0600}, std::tuple{"client-cert.pem", leaf, 0644},
                                     std::tuple{"client-key.pem", key, 0600}})
    if (auto r = write(name, content, static_cast<mode_t>(mode)); !r) return r;
  std::string dh = standard_dh_parameters();
  if (dh.empty()) return fail("cannot produce the ffdhe2048 DH parameters for QEMU: " + openssl_error());
  return write("dh-params.pem", dh, 0644);
}

std::string peer_name(asio::ssl::stream<asio::ip::tcp::socket>& stream) {
  X509* cert = SSL_get1_peer_certificate(stream.native_handle());
  if (!cert) return "";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

std::string verification_error(asio::ssl::stream<asio::ip::tcp::socket>& stream) {
  if (!SSL_get0_peer_certificate(stream.native_handle())) return "it presented no certificate";
  long result = SSL_get_verify_result(stream.native_handle());
  if (result == X509_V_OK) return "";
  return X509_verify_cert_error_string(result);
}

bool certificate_names(asio::ssl::stream<asio::ip::tcp::socket>& stream, const std::string& host) {
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (!cert) return false;
  if (X509_check_ip_asc(cert, host.c_str(), 0) == 1) return true;
  return X509_check_host(cert, host.c_str(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
}

std::string certificate_names_text(asio::ssl::stream<asio::ip::tcp::socket>& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (!cert) return "";
  std::string out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    std::string text;
    if (name->type == GEN_DNS) {
      text.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                  static_cast<size_t>(ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD && ASN1_STRING_length(name->d.iPAddress) == 4) {
      const unsigned char* a = ASN1_STRING_get0_data(name->d.iPAddress);
      text = fmt::format("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    }
    if (!text.empty()) out += (out.empty() ? "" : ", ") + text;
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string peer_fingerprint(asio::ssl::stream<asio::ip::tcp::socket>& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (!cert) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!X509_digest(cert, EVP_sha256(), digest, &length)) return "";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += fmt::format("{}{:02X}", i ? ":" : "", digest[i]);
  return out;
}

std::string remembered_fingerprint(const TlsPaths& paths, const std::string& host) {
  std::ifstream in(paths.known_hosts);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, print;
    if (fields >> name >> print && name == host) return print;
  }
  return "";
}

Result<KnownHost> check_known_host(const TlsPaths& paths, const std::string& host, const std::string& fingerprint) {
  if (fingerprint.empty()) return fail(fmt::format("{} presented no certificate", host));
  if (std::string known = remembered_fingerprint(paths, host); !known.empty())
    return known == fingerprint ? KnownHost::Matches : KnownHost::Changed;
  std::ofstream out(paths.known_hosts, std::ios::app);
  out << host << ' ' << fingerprint << '\n';
  if (!out) return fail(fmt::format("cannot write {}: {}", paths.known_hosts, std::strerror(errno)));
  return KnownHost::Added;
}

}  // namespace ldm::protocol
