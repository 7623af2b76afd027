// pb_bench_catalog: the run catalog at scale (issue 15's targets).
//   pb_bench_catalog [--runs N] [--dir DIR]
// Writes N synthetic run folders (result.json only: 40 fixtures x 3 planets, batches of 120),
// then times: the first open (importing every folder), a filtered page, a fixture's history,
// a batch's rows, and gc of 90% of the runs (folders and rows). Prints one line per step.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "run_store.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  size_t n = 100000;
  std::string dir = (fs::temp_directory_path() / "pb-bench-catalog").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--runs") n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--dir") dir = argv[i + 1];
  }
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point t0) { return std::chrono::duration<double, std::milli>(clock::now() - t0).count(); };
  fs::remove_all(dir);
  fs::create_directories(dir + "/runs");
  const char* planets[] = {"pytorch", "tensorflow", "jax"};
  const char* verdicts[] = {"PASS", "PASS", "PASS", "EXACT", "FAIL", "SKIP"};
  auto t0 = clock::now();
  for (size_t i = 0; i < n; ++i) {
    // Ids and times one second apart, oldest first (as a year of nightlies would be).
    const long long s = 1700000000LL + static_cast<long long>(i);
    const std::time_t t = static_cast<std::time_t>(s);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char id[32], time[40];
    std::strftime(id, sizeof id, "%Y%m%dT%H%M%SZ-000000", &tm);
    std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    const nlohmann::json r = {{"id", id},
                              {"time", time},
                              {"source", "run"},
                              {"suite", "bedrock"},
                              {"batch", "batch-" + std::to_string(i / 120)},
                              {"planet", planets[i % 3]},
                              {"fixture", "fixture_" + std::to_string((i / 3) % 40)},
                              {"layer", "dense"},
                              {"verdict", verdicts[i % 6]},
                              {"max_abs", 1e-7 * double(i % 17)},
                              {"ms", {{"decode", 1.0}, {"compile", 2.0}}}};
    fs::create_directory(dir + "/runs/" + id);
    std::ofstream(dir + "/runs/" + id + "/result.json") << r.dump();
  }
  std::printf("wrote %zu run folders in %.0f ms\n", n, ms(t0));

  t0 = clock::now();
  pb::host::RunStore store(dir);
  std::printf("first open, importing %zu runs: %.0f ms\n", store.catalog().count_runs(), ms(t0));
  t0 = clock::now();
  { pb::host::RunStore again(dir); }
  std::printf("open again: %.1f ms\n", ms(t0));

  auto timed = [&](const char* what, pb::host::RunFilter f) {
    const auto t = clock::now();
    const size_t rows = store.catalog().runs(f).size();
    std::printf("%s: %zu rows in %.2f ms\n", what, rows, ms(t));
  };
  pb::host::RunFilter page, history, batch;
  page.verdict = "FAIL";
  page.planet = "tensorflow";
  timed("filtered page (verdict FAIL, planet tensorflow, 100 newest)", page);
  history.fixture_glob = "fixture_7";
  history.limit = 1000000;
  timed("fixture history (fixture_7, all)", history);
  batch.batch = "batch-42";
  batch.limit = 1000000;
  timed("one batch's rows", batch);

  t0 = clock::now();
  const size_t removed = store.gc(0, n / 10, false).size();
  std::printf("gc of %zu runs (90%%): %.0f ms; %zu kept\n", removed, ms(t0), store.catalog().count_runs());
  fs::remove_all(dir);
  return 0;
}
