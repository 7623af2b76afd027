// The run catalog (host/catalog.h): every committed run indexed, filters, batches, an older
// store imported, a lost row repaired, concurrent writers, and refusals naming the file.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "catalog.h"
#include "run_store.h"
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
  std::vector<pid_t> children;
  for (int p = 0; p < 3; ++p) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        RunStore store(data);
        for (int i = 0; i < 20; ++i) commit(store, "p" + std::to_string(p), Verdict::PASS);
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);
    }
    children.push_back(pid);
  }
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
                       pbtest::ErrorAt(data + "/catalog.sqlite", "schema version 99; this planetbridge reads up to 1"));

  const std::string other = tmp.file("other");
  fs::create_directories(other);
  std::ofstream(other + "/catalog.sqlite") << std::string(4096, 'x');
  CHECK_THROWS_MATCHES(RunStore(other), pb::Error, pbtest::ErrorAt(other + "/catalog.sqlite", "not a database"));
}
