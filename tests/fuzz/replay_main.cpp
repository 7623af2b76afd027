// Runs a fuzz target's LLVMFuzzerTestOneInput on files, without libFuzzer: the ctest replay of
// tests/fuzz/regressions/<target>/ and tests/fuzz/corpus/<target>/ in every build.
//   fuzz_replay_<target> PATH...   (a file, or a folder whose files are replayed in name order;
//                                   a missing folder and dot files are skipped)
// Exit status 0 when every input returns; 1 when an exception escapes. A crash or an abort
// (a sanitizer report, a target's own check) ends the process with its signal.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> in_dir;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') in_dir.push_back(e.path());
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::exists(p, ec)) {
      files.push_back(p);
    } else {
      std::printf("replay: %s does not exist (nothing to replay there)\n", p.c_str());
    }
  }
  int failed = 0;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::printf("replay: cannot read %s\n", f.c_str());
      ++failed;
      continue;
    }
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::printf("replay: %s (%zu bytes)\n", f.c_str(), bytes.size());
    std::fflush(stdout);
    try {
      // A copy of exactly the input's size, as libFuzzer passes it (ASan sees reads past the end).
      std::vector<uint8_t> exact(bytes);
      LLVMFuzzerTestOneInput(exact.empty() ? nullptr : exact.data(), exact.size());
    } catch (const std::exception& e) {
      std::printf("replay: FAILED %s: exception escaped: %s\n", f.c_str(), e.what());
      ++failed;
    } catch (...) {
      std::printf("replay: FAILED %s: a non-standard exception escaped\n", f.c_str());
      ++failed;
    }
  }
  std::printf("replay: %zu inputs, %d failed\n", files.size(), failed);
  return failed ? 1 : 0;
}
