// TLS for ldmd-to-ldmd traffic and QEMU's migration stream.
//
// Each host has a self-signed certificate, STATE/tls/server.crt (+ server.key),
// made at first start. A host trusts exactly the certificates in
// STATE/trust/*.pem (certificate mode, `-c`): both ends verify each other.
// TLS 1.2 is the minimum, 1.3 preferred; plaintext is never accepted.
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
  static TlsPaths under(const std::string& state_dir);
};

// Creates the host certificate if missing: EC P-256, self-signed leaf
// (CA:FALSE) that peers trust directly; SAN = host name and addresses.
Result<> ensure_host_certificate(const TlsPaths& paths, const std::string& hostname,
                                 const std::vector<std::string>& addresses);

// A context for either end, verifying the peer against the trust directory.
// Re-create it to re-read the trust directory (ldmd does on SIGHUP).
Result<std::shared_ptr<asio::ssl::context>> make_context(const TlsPaths& paths, bool server);

// Lays out QEMU's x509 credentials directory (ca-cert.pem = trusted peers +
// ourselves, server-/client- cert and key = ours).
Result<> write_qemu_credentials(const TlsPaths& paths);

// The certificate's subject common name, for messages.
std::string peer_name(asio::ssl::stream<asio::ip::tcp::socket>& stream);

}  // namespace ldm::protocol
