#include "cli/client.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "base/messages.h"

namespace ldm::cli {

std::string socket_path() {
  const char* env = std::getenv("LDM_SOCKET");
  return env && *env ? env : protocol::kDefaultSocket;
}

Result<protocol::Response> call(const std::string& path, const protocol::Request& request,
                                std::chrono::seconds timeout) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(msg::cannot_reach_daemon(path, std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail(msg::cannot_reach_daemon(path, "socket path too long"));
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail(msg::cannot_reach_daemon(path, std::strerror(errno)));

  std::string out = protocol::encode(request);
  for (size_t sent = 0; sent < out.size();) {
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(msg::cannot_reach_daemon(path, std::strerror(errno)));
    sent += static_cast<size_t>(n);
  }
  OPENSSL_cleanse(out.data(), out.size());  // a migration request may hold a password
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail(fmt::format("ldmd did not answer within {} seconds", timeout.count()));
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("ldmd closed the connection without answering (did it stop?)");
    line.append(buf, static_cast<size_t>(n));
    if (line.size() > 64 * protocol::kMaxControlMessage) return fail("ldmd's answer is too large");
  }
  return protocol::decode_response(line.substr(0, line.find('\n')));
}

}  // namespace ldm::cli
