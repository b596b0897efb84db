// TLS for ldmd-to-ldmd traffic and QEMU's migration stream.
//
// Each host has a self-signed certificate, STATE/tls/server.crt (+ server.key),
// made at first start. A host trusts exactly the certificates in
// STATE/trust/*.pem. TLS 1.2 is the minimum, 1.3 preferred; plaintext is never
// accepted.
//
// The handshake itself accepts any certificate; what a peer may do is decided
// right after it, so that the refusal reaches the user as a sentence rather
// than a TLS alert: in certificate mode (`-c`) both ends must pass
// verification; in password mode the target may not know the source (the
// user authenticates instead), and the source pins a target it does not
// trust in STATE/known-hosts at first contact, as ssh does, refusing a
// different certificate later.
//
// QEMU's TLS (GnuTLS) reads a directory of fixed file names; we lay one out in
// STATE/tls/qemu from the same material, so the stream QEMU sends is encrypted
// and verified with the same trust as ldmd's own connection.
#pragma once

#include <string>
#include <vector>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "base/result.h"

namespace ldm::protocol {

struct TlsPaths {
  std::string dir;         // STATE/tls
  std::string trust_dir;   // STATE/trust
  std::string cert, key;   // STATE/tls/server.crt, server.key
  std::string qemu_dir;    // STATE/tls/qemu
  std::string known_hosts; // STATE/known-hosts
  static TlsPaths under(const std::string& state_dir);
};

// Creates the host certificate if missing: EC P-256, self-signed leaf
// (CA:FALSE) that peers trust directly; SAN = host name and addresses.
Result<> ensure_host_certificate(const TlsPaths& paths, const std::string& hostname,
                                 const std::vector<std::string>& addresses);

// Writes a host certificate whatever is there, valid from `not_before` to
// `not_after` seconds from now (tests make expired ones with it).
Result<> create_host_certificate(const TlsPaths& paths, const std::string& hostname,
                                 const std::vector<std::string>& addresses, long not_before = -3600,
                                 long not_after = 10L * 365 * 24 * 3600);

// A context for either end, verifying the peer against the trust directory.
// Re-create it to re-read the trust directory (ldmd does on SIGHUP).
Result<std::shared_ptr<asio::ssl::context>> make_context(const TlsPaths& paths, bool server);

// Lays out QEMU's x509 credentials directory (ca-cert.pem = trusted peers +
// ourselves, server-/client- cert and key = ours).
Result<> write_qemu_credentials(const TlsPaths& paths);

// The certificate's subject common name, for messages.
std::string peer_name(asio::ssl::stream<asio::ip::tcp::socket>& stream);

// Why the peer's certificate fails verification against the trust directory
// ("certificate has expired", "no certificate"), or "" when it passes.
std::string verification_error(asio::ssl::stream<asio::ip::tcp::socket>& stream);

// Does the peer's certificate name `host` (a DNS name or an IP address)?
bool certificate_names(asio::ssl::stream<asio::ip::tcp::socket>& stream, const std::string& host);
// The names it does carry, for messages: "hostB, 127.0.0.3".
std::string certificate_names_text(asio::ssl::stream<asio::ip::tcp::socket>& stream);

// SHA-256 of the peer's certificate, as colon-separated hex.
std::string peer_fingerprint(asio::ssl::stream<asio::ip::tcp::socket>& stream);

// Password mode's trust on first use: the target's fingerprint is compared
// with the one remembered for `host` in STATE/known-hosts, or remembered.
enum class KnownHost { Matches, Added, Changed };
// The fingerprint remembered for `host`, or "" when there is none.
std::string remembered_fingerprint(const TlsPaths& paths, const std::string& host);
Result<KnownHost> check_known_host(const TlsPaths& paths, const std::string& host, const std::string& fingerprint);

}  // namespace ldm::protocol
