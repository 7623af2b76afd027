#pragma once
// A planet's capture process (docs/capture-protocol.md): started once per suite run, sent one
// request on stdin, read back as a sequence of frames on stdout.
#include <sys/types.h>

#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "planetbridge/dialect.h"
#include "planetbridge/stream.h"

namespace pb::host {

class CaptureProcess {
 public:
  // Starts the command; throws pb::Error if it cannot be started.
  // Each frame must arrive within `frame_timeout_s` seconds, or the process is killed.
  CaptureProcess(const CaptureCommand& cmd, const std::string& request, double frame_timeout_s);
  ~CaptureProcess();
  CaptureProcess(const CaptureProcess&) = delete;
  CaptureProcess& operator=(const CaptureProcess&) = delete;

  // The next frame; nullopt when the process closed stdout. Throws pb::Error on a malformed
  // frame or a timeout (the message includes the stderr tail).
  std::optional<Frame> next();

  // Waits for exit; returns a description such as "exit status 1" plus the stderr tail.
  std::string finish();
  std::string stderr_tail() const;
  const std::string& command_line() const { return command_line_; }

  // Stops (SIGSTOP) or resumes (SIGCONT) the process: while the ladder times a case's repeats,
  // the planet building its next model would take the cores the kernels' threads wait for (on
  // 2 cores a third of the tiny cases measured 5-30 ms instead of 0.02 ms).
  void pause(bool stopped);

 private:
  void kill_now();
  class PipeBuf;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::unique_ptr<PipeBuf> buf_;  // kept across frames: it may hold the next frame's start
  std::unique_ptr<std::istream> in_;
  std::string stderr_path_;
  std::string command_line_;
  std::thread writer_;
  double timeout_s_;
  bool exited_ = false;
  int status_ = 0;
};

}  // namespace pb::host
