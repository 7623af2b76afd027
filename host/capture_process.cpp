#include "capture_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <streambuf>
#include <vector>

extern char** environ;

namespace pb::host {

// An input streambuf over a pipe that gives up after a timeout instead of hanging.
class CaptureProcess::PipeBuf : public std::streambuf {
 public:
  PipeBuf(int fd, double timeout_s) : fd_(fd), timeout_ms_(static_cast<int>(timeout_s * 1000)) {}
  bool timed_out = false;

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    pollfd p{fd_, POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, timeout_ms_);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      timed_out = true;
      return traits_type::eof();
    }
    ssize_t n;
    do n = ::read(fd_, buf_, sizeof buf_);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return traits_type::eof();
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  int fd_;
  int timeout_ms_;
  char buf_[1 << 16];
};

namespace {

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

void write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the child closed stdin early; it will report why
    done += static_cast<size_t>(n);
  }
}

}  // namespace

CaptureProcess::CaptureProcess(const CaptureCommand& cmd, const std::string& request, double frame_timeout_s)
    : command_line_(join_argv(cmd.argv)), timeout_s_(frame_timeout_s) {
  if (cmd.argv.empty()) throw Error("capture", "the plugin gave an empty capture command");
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
    throw Error("capture", std::string("pipe: ") + std::strerror(errno));

  char tmpl[] = "/tmp/planetbridge-capture-XXXXXX";
  int err_fd = ::mkstemp(tmpl);
  if (err_fd < 0) throw Error("capture", std::string("cannot create a stderr log: ") + std::strerror(errno));
  stderr_path_ = tmpl;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& [k, v] : cmd.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = cmd.argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  int rc = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_fd);
  if (rc != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::unlink(stderr_path_.c_str());
    throw Error("capture", "cannot start " + command_line_ + ": " + std::strerror(rc));
  }
  stdout_fd_ = out_pipe[0];
  buf_ = std::make_unique<PipeBuf>(stdout_fd_, timeout_s_);
  in_ = std::make_unique<std::istream>(buf_.get());
  // Write the request from a thread so a child that answers before reading all of it can't
  // deadlock against us.
  int in_fd = in_pipe[1];
  ::signal(SIGPIPE, SIG_IGN);  // a child that exits early must not kill the host
  writer_ = std::thread([in_fd, request] {
    write_all(in_fd, request);
    ::close(in_fd);
  });
}

CaptureProcess::~CaptureProcess() {
  if (!exited_) kill_now();
  if (writer_.joinable()) writer_.join();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (!stderr_path_.empty()) ::unlink(stderr_path_.c_str());
}

void CaptureProcess::pause(bool stopped) {
  if (pid_ > 0 && !exited_) ::kill(pid_, stopped ? SIGSTOP : SIGCONT);
}

void CaptureProcess::kill_now() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    exited_ = true;
  }
}

std::optional<Frame> CaptureProcess::next() {
  if (stdout_fd_ < 0) return std::nullopt;
  try {
    auto f = read_frame(*in_);
    if (buf_->timed_out) throw Error("capture", "timed out");
    return f;
  } catch (const Error& e) {
    if (buf_->timed_out) {
      kill_now();
      throw Error("capture", "no reply within " + std::to_string(int(timeout_s_)) + " s from " + command_line_ +
                                 "; killed it" + stderr_tail());
    }
    throw Error("capture", "bad reply from " + command_line_ + ": " + e.what() + stderr_tail());
  }
}

std::string CaptureProcess::finish() {
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
  if (!exited_) {
    ::waitpid(pid_, &status_, 0);
    exited_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (WIFEXITED(status_)) return "exit status " + std::to_string(WEXITSTATUS(status_));
  if (WIFSIGNALED(status_)) return std::string("killed by signal ") + strsignal(WTERMSIG(status_));
  return "ended";
}

std::string CaptureProcess::stderr_tail() const {
  std::ifstream f(stderr_path_);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!all.empty() && (all.back() == '\n' || all.back() == ' ')) all.pop_back();
  if (all.empty()) return "";
  const size_t keep = 1500;
  if (all.size() > keep) all = "..." + all.substr(all.size() - keep);
  return "\n--- capture stderr (tail) ---\n" + all;
}

}  // namespace pb::host
