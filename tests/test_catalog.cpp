// The run catalog (host/catalog.h): every committed run indexed, filters, batches, an older
// store imported, a lost row repaired, concurrent writers, and refusals naming the file; the
// store's content-addressed blobs (host/run_store.h), shared, served, collected and checked.
#include <httplib.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <regex>
#include <filesystem>
#include <functional>
#include <iostream>
#include <fstream>
#include <thread>

#include "catalog.h"
#include "diff.h"
#include "run_store.h"
#include "server.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using pb::host::CaseResult;
using pb::host::RunFilter;
using pb::host::RunStore;
using pb::host::Verdict;

namespace {

std::string commit(RunStore& s, const std::string& fixture, Verdict v, const std::string& batch = "", double max_abs = 1e-7) {
  auto run = s.begin();
  CaseResult r;
  r.planet = "pytorch";
  r.fixture = fixture;
  r.verdict = v;
  r.max_abs = max_abs;
  s.commit(*run, r, {"run", "unit", batch});
  return run->id();
}

std::vector<std::string> ids_of(const std::vector<json>& rows) {
  std::vector<std::string> out;
  for (const json& r : rows) out.push_back(r["id"]);
  return out;
}

RunFilter where(std::string batch, std::string glob = "", std::string verdict = "", std::string planet = "", std::string since = "") {
  RunFilter f;
  f.batch = std::move(batch);
  f.fixture_glob = std::move(glob);
  f.verdict = std::move(verdict);
  f.planet = std::move(planet);
  f.since = std::move(since);
  return f;
}

void sql(const std::string& file, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

// Three processes, each with its own store on `data`, doing `work`: their pids. A child that
// throws prints why and exits 1.
std::vector<pid_t> fork_writers(const std::string& data, const std::function<void(RunStore&, int)>& work) {
  std::vector<pid_t> children;
  for (int p = 0; p < 3; ++p) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        RunStore store(data);
        work(store, p);
      } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        rc = 1;
      }
      ::_exit(rc);
    }
    children.push_back(pid);
  }
  return children;
}

}  // namespace

TEST_CASE("catalog: committed runs are indexed and listed newest first, by batch, fixture, verdict and time", "[catalog]") {
  pbtest::TempDir tmp;
  RunStore store(tmp.file("data"));
  pb::host::BatchInfo info;
  info.suite = "unit";
  info.machine = pb::host::machine_info();
  const std::string batch = store.catalog().begin_batch(info);
  const std::string a = commit(store, "mlp_a", Verdict::PASS, batch);
  const std::string b = commit(store, "mlp_b", Verdict::FAIL, batch, 0.5);
  const std::string c = commit(store, "conv_c", Verdict::EXACT, batch);
  const std::string d = commit(store, "mlp_a", Verdict::PASS);  // not in the batch (a check)
  const json closed = store.catalog().end_batch(batch);
  CHECK(closed["counts"] == json({{"total", 3}, {"exact", 1}, {"pass", 1}, {"fail", 1}, {"error", 0}, {"skip", 0}}));
  CHECK(closed["suite"] == "unit");
  CHECK_FALSE(closed["ended"].get<std::string>().empty());
  CHECK(closed["machine"]["threads"].get<int>() > 0);

  auto list = [&](RunFilter f) { return ids_of(store.catalog().runs(f)); };
  CHECK(list({}) == std::vector<std::string>{d, c, b, a});
  CHECK(list(where(batch)) == std::vector<std::string>{c, b, a});
  CHECK(list(where("", "mlp_*")) == std::vector<std::string>{d, b, a});
  CHECK(list(where("", "", "FAIL")) == std::vector<std::string>{b});
  CHECK(list(where("", "", "", "sklearn")).empty());
  CHECK(list(where("", "", "", "", "2999-01-01")).empty());
  RunFilter two;
  two.limit = 2;
  CHECK(list(two) == std::vector<std::string>{d, c});
  CHECK(store.catalog().count_runs() == 4);

  const json row = store.catalog().runs(where("", "", "FAIL")).at(0);  // RunStore::summary's shape, plus the batch
  CHECK(row["batch"] == batch);
  CHECK(row["max_abs"] == 0.5);
  CHECK(row["fixture"] == "mlp_b");
  CHECK(store.result(b).value()["batch"] == batch);
  CHECK_FALSE(store.catalog().batch("no-such-batch"));
}

TEST_CASE("catalog: a store without a catalog is imported on first open, and a lost row is repaired", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  std::vector<std::string> ids;
  {
    RunStore store(data);
    for (int i = 0; i < 5; ++i) ids.push_back(commit(store, "f" + std::to_string(i), Verdict::PASS));
  }
  fs::remove(data + "/catalog.sqlite");  // a store written before the catalog existed
  {
    RunStore store(data);
    CHECK(store.catalog().count_runs() == 5);
    CHECK(ids_of(store.catalog().runs({})) == std::vector<std::string>(ids.rbegin(), ids.rend()));
  }
  // A process killed between moving a run into place and writing its row.
  sql(data + "/catalog.sqlite", "DELETE FROM runs WHERE id = '" + ids[2] + "'");
  RunStore store(data);
  CHECK(store.catalog().count_runs() == 5);
  CHECK(store.catalog().runs(where("", "f2")).size() == 1);
}

TEST_CASE("catalog: processes committing at once lose no row", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  { RunStore init(data); }
  const std::vector<pid_t> children = fork_writers(data, [](RunStore& store, int p) {
    for (int i = 0; i < 20; ++i) commit(store, "p" + std::to_string(p), Verdict::PASS);
  });
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  RunStore store(data);
  CHECK(store.catalog().count_runs() == 60);
  CHECK(store.ids().size() == 60);
}

TEST_CASE("catalog: a newer schema or a file that is not a catalog is refused, naming the file", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  { RunStore store(data); }
  sql(data + "/catalog.sqlite", "PRAGMA user_version = 99");
  CHECK_THROWS_MATCHES(RunStore(data), pb::Error,
                       pbtest::ErrorAt(data + "/catalog.sqlite", "schema version 99; this planetbridge reads up to " +
                                                                     std::to_string(pb::host::Catalog::kSchemaVersion)));

  const std::string other = tmp.file("other");
  fs::create_directories(other);
  std::ofstream(other + "/catalog.sqlite") << std::string(4096, 'x');
  CHECK_THROWS_MATCHES(RunStore(other), pb::Error, pbtest::ErrorAt(other + "/catalog.sqlite", "not a database"));
}

TEST_CASE("diff: regressions, fixes, new, removed, newly skipped, error growth, slower and engine changes", "[catalog]") {
  auto row = [](const std::string& fixture, const std::string& verdict, double max_abs = 1e-7, double ms = 10, const std::string& engine = "torch 1") {
    return json{{"planet", "pytorch"}, {"fixture", fixture},   {"verdict", verdict}, {"max_abs", max_abs},
                {"run_median_ms", ms}, {"engine", engine},     {"tolerance", {{"atol", 1e-5}, {"rtol", 1e-5}}}};
  };
  const std::vector<json> before = {row("same", "PASS"),  row("breaks", "EXACT"), row("heals", "FAIL"), row("gone", "PASS"),
                                    row("skips", "PASS"), row("drifts", "PASS", 1e-7), row("tiny", "PASS", 1e-9),
                                    row("slow", "PASS", 1e-7, 100), row("upgraded", "PASS")};
  const std::vector<json> after = {row("same", "PASS"),   row("breaks", "ERROR"), row("heals", "PASS"), row("skips", "SKIP"),
                                   row("drifts", "PASS", 5e-6), row("tiny", "PASS", 5e-7),  // 500x, but below 10% of atol
                                   row("slow", "PASS", 1e-7, 400), row("upgraded", "PASS", 1e-7, 10, "torch 2"),
                                   row("fresh", "PASS"), row("fresh_bad", "FAIL")};
  const json d = pb::host::diff_runs(before, after);
  auto fixtures = [&](const char* key) {
    std::vector<std::string> out;
    for (const json& r : d[key]) out.push_back(r["fixture"]);
    return out;
  };
  CHECK(fixtures("regressions") == std::vector<std::string>{"breaks", "drifts", "fresh_bad"});
  CHECK(fixtures("fixed") == std::vector<std::string>{"heals"});
  CHECK(fixtures("new") == std::vector<std::string>{"fresh", "fresh_bad"});
  CHECK(fixtures("removed") == std::vector<std::string>{"gone"});
  CHECK(fixtures("new_skip") == std::vector<std::string>{"skips"});
  CHECK(fixtures("slower") == std::vector<std::string>{"slow"});
  CHECK(fixtures("engine_changes") == std::vector<std::string>{"upgraded"});
  CHECK(d["unchanged"] == 2);  // same, tiny
  CHECK(d["regressed"] == true);
  CHECK_THAT(pb::host::diff_text(d, "A", "B"), Catch::Contains("REGRESSION  pytorch breaks: EXACT -> ERROR"));
  CHECK_THAT(pb::host::diff_markdown(d, "A", "B"), Catch::Contains("**3 regressions**") && Catch::Contains("| | pytorch | heals | FAIL -> PASS |"));
  CHECK(pb::host::diff_runs(before, before)["regressed"] == false);
}

TEST_CASE("diff: sides are batches (latest of a suite), run --json reports or runs --json listings; anything else is refused", "[catalog]") {
  pbtest::TempDir tmp;
  RunStore store(tmp.file("data"));
  pb::host::BatchInfo info;
  info.suite = "nightly";
  const std::string first = store.catalog().begin_batch(info);
  commit(store, "a", Verdict::PASS, first);
  store.catalog().end_batch(first);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // batch ids and start times have a millisecond's resolution
  const std::string second = store.catalog().begin_batch(info);
  commit(store, "a", Verdict::FAIL, second);
  store.catalog().end_batch(second);

  std::string label;
  const auto latest = pb::host::diff_side(store.catalog(), "latest", "nightly", second, &label);
  CHECK(label == "batch " + first);
  REQUIRE(latest.size() == 1);
  CHECK(latest[0]["verdict"] == "PASS");
  CHECK(pb::host::diff_runs(latest, pb::host::diff_side(store.catalog(), second, "", "", &label))["regressions"].size() == 1);
  CHECK_THROWS_MATCHES(pb::host::diff_side(store.catalog(), "latest", "other-suite", "", &label), pb::Error,
                       pbtest::ErrorAt("--baseline", "no earlier finished batch of suite \"other-suite\""));

  const std::string report = tmp.file("report.json");
  std::ofstream(report) << json({{"cases", {{{"planet", "pytorch"}, {"fixture", "a"}, {"verdict", "EXACT"}, {"run_id", "r1"}}}}}).dump();
  const auto from_file = pb::host::diff_side(store.catalog(), report, "", "", &label);
  REQUIRE(from_file.size() == 1);
  CHECK(from_file[0]["id"] == "r1");
  std::ofstream(tmp.file("bad.json")) << R"({"cases": [{"planet": "pytorch"}]})";
  CHECK_THROWS_MATCHES(pb::host::diff_side(store.catalog(), tmp.file("bad.json"), "", "", &label), pb::Error,
                       pbtest::ErrorAt(tmp.file("bad.json") + ": cases[0]", "expected an object with planet, fixture and verdict"));
  CHECK_THROWS_MATCHES(pb::host::diff_side(store.catalog(), tmp.file("none.json"), "", "", &label), pb::Error,
                       pbtest::ErrorAt(tmp.file("none.json"), "neither a batch"));
}

namespace {
// The report with what differs between runs of the same cases removed: times, run ids, paths.
json comparable(const std::string& file) {
  json d = json::parse(pbtest::read_text(file));
  d["summary"].erase("seconds");
  for (json& c : d["cases"])
    for (const char* k : {"run_id", "entity", "ms", "timing"}) c.erase(k);
  return d;
}
std::string comparable_junit(const std::string& x) {
  static const std::regex varying(R"(time="[^"]*"|(entity|timing|run) +[^\n]*\n)");
  return std::regex_replace(x, varying, "");
}
}  // namespace

TEST_CASE("catalog: four shards merged give the report and JUnit of one run; a run against its own baseline has no regression", "[catalog][cli]") {
  PBTEST_SKIP_IF(pbtest::python_missing("sklearn"), "the live sharding test runs the sklearn planet");
  pbtest::TempDir tmp;
  const std::string run = std::string(PB_CLI) + " --plugin-dir " + pbtest::quote(fs::path(PB_SKLEARN_PLUGIN).parent_path().string()) +
                          " run " + pbtest::quote(PB_SOURCE_DIR "/config/suites/bedrock.yaml") + " --planet sklearn --layer sklearn --data " +
                          pbtest::quote(tmp.file("data"));
  // The first night against `latest`: no earlier batch, so every case is new and none regressed.
  REQUIRE(pbtest::shell(run + " --json " + tmp.file("full.json") + " --junit " + tmp.file("full.xml") + " --baseline latest --diff-json " +
                        tmp.file("first.json") + " >/dev/null 2>&1") == 0);
  const json first = json::parse(pbtest::read_text(tmp.file("first.json")));
  CHECK(first["regressions"].empty());
  CHECK(first["new"].size() == json::parse(pbtest::read_text(tmp.file("full.json")))["cases"].size());
  std::string shards;
  for (int i = 1; i <= 4; ++i) {
    const std::string report = tmp.file("s" + std::to_string(i) + ".json");
    REQUIRE(pbtest::shell(run + " --shard " + std::to_string(i) + "/4 --json " + report + " >/dev/null 2>&1") == 0);
    shards += " " + report;
  }
  const std::string merge = std::string(PB_CLI) + " merge" + shards;
  REQUIRE(pbtest::shell(merge + " --json " + tmp.file("merged.json") + " --junit " + tmp.file("merged.xml") + " >/dev/null 2>&1") == 0);
  const json full = comparable(tmp.file("full.json")), merged = comparable(tmp.file("merged.json"));
  CHECK(full["cases"].size() > 4);
  CHECK(full == merged);
  CHECK_THAT(json::parse(pbtest::read_text(tmp.file("s1.json")))["balanced_by"].get<std::string>(), Catch::StartsWith("crc32:"));
  CHECK(comparable_junit(pbtest::read_text(tmp.file("full.xml"))) == comparable_junit(pbtest::read_text(tmp.file("merged.xml"))));

  // A shard missing, or given twice, is an error naming the cases.
  const std::string out = tmp.file("merge.out");
  CHECK(pbtest::shell(std::string(PB_CLI) + " merge " + tmp.file("s1.json") + " " + tmp.file("s2.json") + " >" + out + " 2>&1") == 2);
  // (Split by the full run's measured durations, which every shard read from this store.)
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("the reports do not cover planned cases") && Catch::Contains("(a shard is missing)"));
  CHECK(pbtest::shell(std::string(PB_CLI) + " merge " + tmp.file("s1.json") + " " + tmp.file("s1.json") + " >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("is also in"));
  CHECK(pbtest::shell(run + " --shard 5/4 >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("--shard: expected I/N with 1 <= I <= N"));

  // The same cases again, against the latest batch (a shard's): the cases in both are unchanged.
  CHECK(pbtest::shell(run + " --baseline " + tmp.file("full.json") + " --diff-json " + tmp.file("diff.json") + " >/dev/null 2>&1") == 0);
  const json d = json::parse(pbtest::read_text(tmp.file("diff.json")));
  CHECK(d["regressions"].empty());
  CHECK(d["new"].empty());
  CHECK(d["unchanged"].get<size_t>() + d["slower"].size() == full["cases"].size());
}

TEST_CASE("catalog: gc removes old runs but the newest, their rows and emptied batches; a row without a folder is forgotten", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  std::vector<std::string> ids;
  std::string old_batch;
  {
    RunStore store(data);
    pb::host::BatchInfo info;
    info.suite = "old";
    old_batch = store.catalog().begin_batch(info);
    for (int i = 0; i < 6; ++i) ids.push_back(commit(store, "f" + std::to_string(i), Verdict::PASS, i < 3 ? old_batch : ""));
    store.catalog().end_batch(old_batch);
  }
  // The first four ran 40 days ago (as far as the catalog knows).
  for (int i = 0; i < 4; ++i) sql(data + "/catalog.sqlite", "UPDATE runs SET time = '2000-01-0" + std::to_string(i + 1) + "T00:00:00.000Z' WHERE id = '" + ids[i] + "'");
  RunStore store(data);
  CHECK(store.gc(30, 3, true).runs == std::vector<std::string>{ids[0], ids[1], ids[2]});  // ids[3] is among the 3 newest
  CHECK(store.catalog().count_runs() == 6);  // a dry run removes nothing
  CHECK(store.gc(30, 3, false).runs == std::vector<std::string>{ids[0], ids[1], ids[2]});
  CHECK(store.catalog().count_runs() == 3);
  CHECK(store.ids() == std::vector<std::string>{ids[5], ids[4], ids[3]});
  CHECK_FALSE(store.catalog().batch(old_batch));  // every run of it is gone
  for (int i = 0; i < 3; ++i) CHECK_FALSE(fs::exists(store.run_dir(ids[i])));
  CHECK(store.gc(0, 0, false).runs.size() == 3);
  CHECK(store.catalog().count_runs() == 0);

  // A gc interrupted between removing a folder and its row: the next open forgets the row.
  const std::string id = commit(store, "again", Verdict::PASS);
  fs::remove_all(store.run_dir(id));
  RunStore reopened(data);
  CHECK(reopened.catalog().count_runs() == 0);
}

TEST_CASE("catalog: runs and diff name what they cannot find, and exit 2", "[catalog][cli]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data"), out = tmp.file("out");
  {
    RunStore store(data);
    commit(store, "a", Verdict::PASS);
  }
  CHECK(pbtest::shell(std::string(PB_CLI) + " runs --data " + data + " --batch nope >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("--batch: no batch \"nope\" in " + data + "/catalog.sqlite"));
  CHECK(pbtest::shell(std::string(PB_CLI) + " runs --data " + data + " --fixture 'a*' --json >" + out + " 2>&1") == 0);
  CHECK(json::parse(pbtest::read_text(out))["runs"].size() == 1);
  CHECK(pbtest::shell(std::string(PB_CLI) + " diff --data " + data + " nope " + tmp.file("none.json") + " >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("nope: neither a batch in"));
  CHECK(pbtest::shell(std::string(PB_CLI) + " gc --data " + data + " --keep-days 0 --keep-last 0 --dry-run >" + out + " 2>&1") == 0);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("would remove 1 runs"));
}

namespace {

const std::string kAbcSha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // FIPS 180-2's "abc"

// A run keeping `stream` and, unless empty, `entity` as the checkpoint the ladder wrote.
std::string commit_bytes(RunStore& s, const std::string& stream, const std::string& entity) {
  auto run = s.begin();
  CaseResult r;
  r.planet = "pytorch";
  r.fixture = "blobs";
  r.verdict = Verdict::PASS;
  run->keep_stream(reinterpret_cast<const uint8_t*>(stream.data()), stream.size());
  if (!entity.empty()) {
    pbtest::write_text(run->entity_path(), entity);
    r.entity_path = run->entity_path();
  }
  s.commit(*run, r, {"run", "unit", ""});
  return run->id();
}

ino_t inode(const std::string& path) {
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

std::vector<std::string> blob_files(const std::string& data) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(data + "/blobs"))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string blob(const std::string& data, const std::string& sha256) { return data + "/blobs/" + sha256.substr(0, 2) + "/" + sha256; }

}  // namespace

TEST_CASE("blobs: identical runs link one blob per content, named by its SHA-256; other bytes get their own", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  RunStore store(data);
  const std::string a = commit_bytes(store, "abc", "checkpoint 1");
  const std::string b = commit_bytes(store, "abc", "checkpoint 1");
  const json ra = store.result(a).value();
  CHECK(ra["stream_sha256"] == kAbcSha256);
  CHECK(ra["stream_bytes"] == 3);
  CHECK(ra["entity_bytes"] == 12);
  const std::string entity_sha = ra["entity_sha256"];
  CHECK(store.result(b).value()["entity_sha256"] == entity_sha);

  // One file per content: each run's file is a link to it.
  std::vector<std::string> expected = {blob(data, kAbcSha256), blob(data, entity_sha)};
  std::sort(expected.begin(), expected.end());
  CHECK(blob_files(data) == expected);
  CHECK(store.stream_file(a) == store.run_dir(a) + "/stream.pbstream");
  for (const std::string& id : {a, b}) {
    CHECK(inode(store.stream_file(id)) == inode(blob(data, kAbcSha256)));
    CHECK(inode(store.entity_file(id)) == inode(blob(data, entity_sha)));
    CHECK(pbtest::read_text(store.entity_file(id)) == "checkpoint 1");
  }

  const std::string c = commit_bytes(store, "abd", "checkpoint 2");
  CHECK(blob_files(data).size() == 4);
  CHECK(inode(store.stream_file(c)) != inode(store.stream_file(a)));
  CHECK(pbtest::read_text(store.stream_file(c)) == "abd");

  // The catalog indexes what each run links.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((data + "/catalog.sqlite").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT stream_hash, entity_hash, entity_bytes FROM runs WHERE id = ?1", -1, &q, nullptr) == SQLITE_OK);
  sqlite3_bind_text(q, 1, b.c_str(), -1, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(q) == SQLITE_ROW);
  CHECK(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)) == kAbcSha256);
  CHECK(reinterpret_cast<const char*>(sqlite3_column_text(q, 1)) == entity_sha);
  CHECK(sqlite3_column_int64(q, 2) == 12);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST_CASE("blobs: check --entity keeps a copy, so the user rewriting their file changes no run", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data"), mine = tmp.file("mine.entity");
  RunStore store(data);
  pbtest::write_text(mine, "the user's checkpoint");
  auto run = store.begin();
  CaseResult r;
  r.entity_path = mine;
  store.commit(*run, r, {"check", "", ""});
  CHECK(r.entity_path == mine);
  const std::string kept = store.entity_file(run->id());
  CHECK(inode(kept) != inode(mine));
  pbtest::write_text(mine, "rewritten in place");
  CHECK(pbtest::read_text(kept) == "the user's checkpoint");
  CHECK(inode(kept) == inode(blob(data, store.result(run->id()).value()["entity_sha256"])));
}

TEST_CASE("blobs: the API serves a run's stream and checkpoint; a damaged one is a 500 naming the file", "[catalog][serve]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  std::string id;
  {
    RunStore store(data);
    id = commit_bytes(store, "abc", "checkpoint 1");
    commit_bytes(store, "abc", "checkpoint 1");
  }
  const pb::host::PluginRegistry no_planets;
  pb::host::ServerOptions opt;
  opt.data_dir = data;
  pb::host::Server server(no_planets, opt);
  httplib::Client client("127.0.0.1", server.start("127.0.0.1", 0));
  auto stream = client.Get(("/api/v1/streams/" + id).c_str());
  REQUIRE(stream);
  CHECK(stream->status == 200);
  CHECK(stream->body == "abc");
  auto entity = client.Get(("/api/v1/entities/" + id).c_str());
  REQUIRE(entity);
  CHECK(entity->body == "checkpoint 1");

  fs::resize_file(blob(data, kAbcSha256), 2);  // every run linking it sees the damage
  auto damaged = client.Get(("/api/v1/streams/" + id).c_str());
  REQUIRE(damaged);
  CHECK(damaged->status == 500);
  const json error = json::parse(damaged->body)["error"];
  CHECK(error["path"] == data + "/runs/" + id + "/stream.pbstream");
  CHECK_THAT(error["message"].get<std::string>(),
             Catch::Contains("damaged: 2 bytes, but its result.json records a stream of 3 bytes, sha256 " + kAbcSha256));

  // The run's document is still served, the damaged checkpoint named beside it.
  fs::resize_file(data + "/runs/" + id + "/model.entity", 3);
  auto doc = client.Get(("/api/v1/runs/" + id).c_str());
  REQUIRE(doc);
  CHECK(doc->status == 200);
  CHECK_THAT(json::parse(doc->body)["graph_error"].get<std::string>(), Catch::Contains(data + "/runs/" + id + "/model.entity") &&
                                                                            Catch::Contains("damaged: 3 bytes"));
}

TEST_CASE("blobs: a missing or damaged file is an error naming it; a damaged blob is never shared again", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  RunStore store(data);
  const std::string a = commit_bytes(store, "abc", "checkpoint 1");
  const std::string entity_sha = store.result(a).value()["entity_sha256"];

  fs::resize_file(blob(data, kAbcSha256), 1);
  CHECK_THROWS_MATCHES(store.stream_file(a), pb::Error,
                       pbtest::ErrorAt(store.run_dir(a) + "/stream.pbstream", "damaged: 1 bytes, but its result.json records a stream of 3 bytes"));
  // The next run with these bytes stores them afresh, and the blob is theirs from then on.
  const std::string b = commit_bytes(store, "abc", "checkpoint 1");
  CHECK(pbtest::read_text(store.stream_file(b)) == "abc");
  CHECK(inode(store.stream_file(b)) == inode(blob(data, kAbcSha256)));
  CHECK(inode(store.stream_file(b)) != inode(store.run_dir(a) + "/stream.pbstream"));

  fs::remove(store.run_dir(a) + "/model.entity");
  CHECK_THROWS_MATCHES(store.entity_file(a), pb::Error,
                       pbtest::ErrorAt(store.run_dir(a) + "/model.entity",
                                       "cannot read the run's checkpoint (No such file or directory); its result.json records a checkpoint "
                                       "of 12 bytes, sha256 " + entity_sha));
  // A blob removed by hand loses no run (each links its bytes); the next run makes it again.
  fs::remove(blob(data, entity_sha));
  CHECK(pbtest::read_text(store.entity_file(b)) == "checkpoint 1");
  const std::string c = commit_bytes(store, "abc", "checkpoint 1");
  CHECK(inode(store.entity_file(c)) == inode(blob(data, entity_sha)));
  // Unknown runs, and runs that kept nothing, have no files rather than errors.
  CHECK(store.stream_file("20000101T000000Z-000000").empty());
  const std::string skip = commit(store, "skipped", Verdict::SKIP);
  CHECK(store.stream_file(skip).empty());
  CHECK(store.entity_file(skip).empty());
}

TEST_CASE("blobs: a run folder from before blobs is indexed and read in place", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data"), id = "20000101T000000Z-000000", dir = data + "/runs/" + id;
  fs::create_directories(dir);
  pbtest::write_text(dir + "/stream.pbstream", "old stream");
  pbtest::write_text(dir + "/model.entity", "old checkpoint");
  pbtest::write_text(dir + "/result.json", json({{"id", id}, {"time", "2000-01-01T00:00:00.000Z"}, {"source", "run"}, {"fixture", "old"},
                                                 {"verdict", "PASS"}, {"stream_bytes", 10}, {"stored_entity", true}, {"entity_bytes", 14}})
                                                .dump());
  RunStore store(data);
  CHECK(store.catalog().count_runs() == 1);
  CHECK(pbtest::read_text(store.stream_file(id)) == "old stream");
  CHECK(pbtest::read_text(store.entity_file(id)) == "old checkpoint");
  CHECK(blob_files(data).empty());  // not migrated: its files stay where they are
  pbtest::write_text(dir + "/model.entity", "short");
  CHECK_THROWS_MATCHES(store.entity_file(id), pb::Error,
                       pbtest::ErrorAt(dir + "/model.entity", "damaged: 5 bytes, but its result.json records a checkpoint of 14 bytes"));

  const uint64_t result_bytes = fs::file_size(dir + "/result.json");
  const RunStore::GcReport g = store.gc(1, 0, false);
  CHECK(g.runs == std::vector<std::string>{id});
  CHECK(g.blobs == 0);
  CHECK(g.bytes == 10 + 5 + result_bytes);
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("blobs: gc removes a blob with the last run linking it, never before", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  std::vector<std::string> ids;
  {
    RunStore store(data);
    ids.push_back(commit_bytes(store, "abc", "checkpoint 1"));  // old
    ids.push_back(commit_bytes(store, "xyz", "checkpoint 2"));  // old, alone with its bytes
    ids.push_back(commit_bytes(store, "abc", "checkpoint 1"));  // kept: shares the first run's blobs
  }
  for (int i = 0; i < 2; ++i)
    sql(data + "/catalog.sqlite", "UPDATE runs SET time = '2000-01-0" + std::to_string(i + 1) + "T00:00:00.000Z' WHERE id = '" + ids[i] + "'");
  RunStore store(data);
  const uint64_t result_bytes =
      fs::file_size(store.run_dir(ids[0]) + "/result.json") + fs::file_size(store.run_dir(ids[1]) + "/result.json");

  const RunStore::GcReport dry = store.gc(30, 0, true);
  CHECK(dry.runs == std::vector<std::string>{ids[0], ids[1]});
  CHECK(dry.blobs == 2);  // "xyz" and "checkpoint 2"
  CHECK(dry.bytes == result_bytes + 3 + 12);
  CHECK(blob_files(data).size() == 4);

  const RunStore::GcReport g = store.gc(30, 0, false);
  CHECK(g.runs == dry.runs);
  CHECK(g.blobs == dry.blobs);
  CHECK(g.bytes == dry.bytes);
  CHECK(blob_files(data).size() == 2);
  CHECK(pbtest::read_text(store.stream_file(ids[2])) == "abc");  // the kept run's blobs survive
  CHECK(inode(store.stream_file(ids[2])) == inode(blob(data, kAbcSha256)));

  // A blob no run links (its commit died before the run's folder was in place) goes too.
  fs::create_directories(data + "/blobs/00");
  pbtest::write_text(data + "/blobs/00/" + std::string(64, '0'), "orphan");
  const RunStore::GcReport last = store.gc(0, 0, false);
  CHECK(last.runs == std::vector<std::string>{ids[2]});
  CHECK(last.blobs == 3);
  CHECK(blob_files(data).empty());
}

TEST_CASE("blobs: gc --dry-run counts runs, blobs and bytes", "[catalog][cli]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data"), out = tmp.file("out");
  {
    RunStore store(data);
    commit_bytes(store, "abc", "checkpoint 1");
    commit_bytes(store, "abc", "checkpoint 1");
  }
  CHECK(pbtest::shell(std::string(PB_CLI) + " gc --data " + data + " --keep-days 0 --keep-last 1 --dry-run >" + out + " 2>&1") == 0);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("would remove 1 runs") && Catch::Contains("and 0 blobs no run links, freeing"));
  CHECK(pbtest::shell(std::string(PB_CLI) + " gc --data " + data + " --keep-days 0 --keep-last 0 >" + out + " 2>&1") == 0);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("removed 2 runs") && Catch::Contains("and 2 blobs no run links, freed"));
  CHECK(blob_files(data).empty());
}

TEST_CASE("blobs: processes committing identical runs while gc runs lose no bytes", "[catalog]") {
  pbtest::TempDir tmp;
  const std::string data = tmp.file("data");
  { RunStore init(data); }
  std::vector<pid_t> children = fork_writers(data, [](RunStore& store, int) {
    for (int i = 0; i < 20; ++i) commit_bytes(store, "abc", "checkpoint 1");
  });
  RunStore store(data);
  size_t collected = 0;
  for (size_t done = 0; done < children.size();) {
    collected += store.gc(0, 0, false).runs.size();
    for (pid_t& pid : children) {
      int status = 0;
      if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        pid = 0;
        ++done;
      }
    }
  }
  for (const std::string& id : store.ids()) {
    CHECK(pbtest::read_text(store.stream_file(id)) == "abc");
    CHECK(pbtest::read_text(store.entity_file(id)) == "checkpoint 1");
  }
  CHECK(collected + store.ids().size() == 60);
  store.gc(0, 0, false);
  CHECK(blob_files(data).empty());
}
