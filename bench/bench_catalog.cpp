// pb_bench_catalog: the run catalog at scale (issue 15's targets).
//   pb_bench_catalog [--runs N] [--dir DIR]
// Writes N synthetic run folders (result.json only: 40 fixtures x 3 planets, batches of 120),
// then times: the first open (importing every folder), a filtered page, a fixture's history,
// a batch's rows, the dashboard's pages served over HTTP (the first view, then the median of 5
// more), and gc of 90% of the runs (folders and rows). Prints one line per step.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugin_loader.h"
#include "run_store.h"
#include "server.h"

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
  const char* layers[] = {"dense", "cnn2", "lstm", "mha"};
  auto t0 = clock::now();
  // The batches' rows come first (as `run` begins its batch before its cases); ids carry the
  // start time to the millisecond, hence one per millisecond.
  std::vector<std::string> batches;
  {
    pb::host::RunStore empty(dir);
    pb::host::BatchInfo info;
    info.suite = "bedrock";
    for (size_t b = 0; b * 120 < n; ++b) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      batches.push_back(empty.catalog().begin_batch(info));
    }
  }
  std::printf("began %zu batches in %.0f ms\n", batches.size(), ms(t0));
  t0 = clock::now();
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
                              {"batch", batches[i / 120]},
                              {"planet", planets[i % 3]},
                              {"fixture", "fixture_" + std::to_string((i / 3) % 40)},
                              {"layer", layers[(i / 3) % 4]},
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
  batch.batch = batches[42];
  batch.limit = 1000000;
  timed("one batch's rows", batch);

  t0 = clock::now();
  for (const std::string& b : batches) store.catalog().end_batch(b);
  std::printf("closing %zu batches (counts from their rows): %.0f ms\n", batches.size(), ms(t0));

  // The dashboard as a browser gets it: query, diff, render and HTTP on loopback.
  {
    pb::host::PluginRegistry no_planets;
    pb::host::ServerOptions opt;
    opt.data_dir = dir;
    pb::host::Server server(no_planets, opt);
    httplib::Client client("127.0.0.1", server.start("127.0.0.1", 0));
    auto serve_page = [&](const char* what, const std::string& path) {
      std::vector<double> times;
      size_t bytes = 0;
      for (int i = 0; i < 6; ++i) {
        const auto t = clock::now();
        auto res = client.Get(path.c_str());
        if (!res || res->status != 200) {
          std::printf("%s: GET %s failed\n", what, path.c_str());
          return;
        }
        times.push_back(ms(t));
        bytes = res->body.size();
      }
      // The first view reads cold pages (and fills the batches page's memory of changes).
      const double first = times.front();
      times.erase(times.begin());
      std::sort(times.begin(), times.end());
      std::printf("%s: first %.2f ms, then %.2f ms median (%.2f to %.2f), %zu bytes\n", what, first, times[times.size() / 2], times.front(),
                  times.back(), bytes);
    };
    const std::string newest = batches.back();
    serve_page("GET / (20 newest batches, each diffed with its previous)", "/");
    serve_page("GET /?page=20 (batches 381-400)", "/?page=20");
    serve_page("GET /batches/{id} (120 runs by case)", "/batches/" + newest);
    serve_page("GET /batches/{id}?verdict=FAIL&layer=lstm", "/batches/" + newest + "?verdict=FAIL&layer=lstm");
    serve_page("GET /fixtures/tensorflow/fixture_7 (100 newest, charted)", "/fixtures/tensorflow/fixture_7");
    serve_page("GET /fixtures/tensorflow/fixture_7?page=8", "/fixtures/tensorflow/fixture_7?page=8");
    serve_page("GET /runs?verdict=FAIL&planet=tensorflow (200 newest)", "/runs?verdict=FAIL&planet=tensorflow");
    serve_page("GET /compare (two batches of 120)", "/compare?a=" + batches[batches.size() - 2] + "&b=" + newest);
  }

  t0 = clock::now();
  const size_t removed = store.gc(0, n / 10, false).runs.size();
  std::printf("gc of %zu runs (90%%): %.0f ms; %zu kept\n", removed, ms(t0), store.catalog().count_runs());
  fs::remove_all(dir);
  return 0;
}
