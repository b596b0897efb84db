#include "cli/password.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/crypto.h>

namespace ldm::cli {

Result<std::string> password_from_text(const std::string& text, const std::string& path) {
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return fail(fmt::format("The password file {} is empty: its first line must hold the password", path));
  if (line.size() > kMaxPasswordLength) {
    wipe(line);
    return fail(fmt::format("The password in {} is longer than {} characters", path, kMaxPasswordLength));
  }
  return line;
}

Result<std::string> read_password_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(fmt::format("Cannot read the password file {}: {}", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(fmt::format("The password file {} is not a regular file", path));
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    close(fd);
    return fail(fmt::format("The password file {} can be read by group or others (mode {:04o}); make it private "
                            "with 'chmod 600 {}' and try again",
                            path, st.st_mode & 07777, path));
  }
  std::string text;
  char buffer[512];
  ssize_t n = 0;
  // Only the first line matters; stop well past the longest allowed one.
  while (text.find('\n') == std::string::npos && text.size() <= kMaxPasswordLength + 2 &&
         (n = read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<size_t>(n));
  OPENSSL_cleanse(buffer, sizeof buffer);
  close(fd);
  auto password = password_from_text(text, path);
  wipe(text);
  return password;
}

Result<std::string> prompt_password(const std::string& prompt) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return fail("No terminal to ask for the target's password on: give it in a private file with -p FILE, or use "
                "certificates (-c)");
  termios saved{};
  bool terminal = tcgetattr(fd, &saved) == 0;
  if (terminal) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  (void)!write(fd, prompt.data(), prompt.size());
  std::string line;
  char c = 0;
  while (read(fd, &c, 1) == 1 && c != '\n' && line.size() <= kMaxPasswordLength) line.push_back(c);
  c = 0;
  if (terminal) tcsetattr(fd, TCSAFLUSH, &saved);
  close(fd);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > kMaxPasswordLength) {
    wipe(line);
    return fail(fmt::format("The password is longer than {} characters", kMaxPasswordLength));
  }
  return line;
}

std::string invoking_user() {
  if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "root";
}

}  // namespace ldm::cli
