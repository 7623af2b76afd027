#pragma once
// What the live PyTorch tests share: an embedded capture script run by Debian's Python (its
// argv[1] the capture library's folder, argv[2] the folder the streams go to), then
// `planetbridge check` on each stream it wrote. Skipped (PB-SKIP) without torch.
#include <string>

#include "test_util.h"

#define PB_REQUIRE_TORCH() PBTEST_SKIP_IF(pbtest::python_missing("torch"), "live PyTorch tests need it")

namespace pytorch_test {

// Writes `script` to <tmp>/capture.py and runs it; its output is the failure's message.
inline void run_capture_script(const pbtest::TempDir& tmp, const char* script) {
  pbtest::write_text(tmp.file("capture.py"), script);
  const std::string log = tmp.file("capture.log");
  const int rc = pbtest::shell(std::string(PB_PYTHON) + " " + pbtest::quote(tmp.file("capture.py")) + " " +
                               pbtest::quote(PB_SOURCE_DIR "/plugins/pytorch/capture") + " " + pbtest::quote(tmp.file("")) + " >" +
                               pbtest::quote(log) + " 2>&1");
  INFO(pbtest::read_text(log));
  REQUIRE(rc == 0);
}

// `planetbridge check STREAM --entity ENTITY` must say PASS or EXACT with a bit-identical reload.
inline void check_passes(const pbtest::TempDir& tmp, const std::string& stream, const std::string& entity) {
  const std::string log = tmp.file("check.log");
  const int rc = pbtest::shell(pbtest::quote(PB_CLI) + " check " + pbtest::quote(stream) + " --entity " + pbtest::quote(entity) +
                               " --data " + pbtest::quote(tmp.file("runs")) + " >" + pbtest::quote(log) + " 2>&1");
  const std::string out = pbtest::read_text(log);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("verdict   PASS") || Catch::Contains("verdict   EXACT"));
  CHECK_THAT(out, Catch::Contains("reload bit-identical") && !Catch::Contains("DIFFERS"));
}

// The same for <tmp>/<name>.pbstream, its checkpoint written to <tmp>/<name>.entity.
inline void check_passes(const pbtest::TempDir& tmp, const std::string& name) {
  check_passes(tmp, tmp.file(name + ".pbstream"), tmp.file(name + ".entity"));
}

}  // namespace pytorch_test
