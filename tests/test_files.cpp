// Temporaries left by killed writers (planetbridge/files.h): the run store and checkpoint saves
// remove them once their process is gone, never a living process's.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "planetbridge/entity.h"
#include "planetbridge/files.h"
#include "run_store.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {
// A pid no process can have (above any pid_max).
const std::string kDeadPid = "2000000000";
}  // namespace

TEST_CASE("files: a temporary is abandoned only when its process is gone", "[files]") {
  CHECK(pb::temporary_name("/x/model.entity") == "/x/model.entity.tmp." + std::to_string(::getpid()));
  CHECK(pb::abandoned_temporary("model.entity.tmp." + kDeadPid));
  CHECK_FALSE(pb::abandoned_temporary(fs::path(pb::temporary_name("model.entity")).filename().string()));  // this process
  CHECK_FALSE(pb::abandoned_temporary("model.entity"));
  CHECK_FALSE(pb::abandoned_temporary("model.entity.tmp."));
  CHECK_FALSE(pb::abandoned_temporary("model.entity.tmp.12x"));
}

TEST_CASE("files: the run store removes private folders of runs whose process died, at start", "[files][store]") {
  pbtest::TempDir tmp;
  const std::string runs = tmp.file("data/runs");
  fs::create_directories(runs + "/.20261203T000000Z-000001.tmp." + kDeadPid);
  pbtest::write_text(runs + "/.20261203T000000Z-000001.tmp." + kDeadPid + "/model.entity", "half a checkpoint");
  const std::string living = runs + "/.20261203T000000Z-000002.tmp." + std::to_string(::getpid());
  fs::create_directories(living);
  pb::host::RunStore store(tmp.file("data"));
  CHECK_FALSE(fs::exists(runs + "/.20261203T000000Z-000001.tmp." + kDeadPid));
  CHECK(fs::exists(living));
  // Its own runs use a temporary of this process, gone after commit or abandon.
  {
    auto run = store.begin();
    CHECK_THAT(run->entity_path(), Catch::Contains(".tmp." + std::to_string(::getpid())));
  }
  size_t hidden = 0;
  for (const auto& e : fs::directory_iterator(runs)) hidden += e.path().filename().string().rfind('.', 0) == 0;
  CHECK(hidden == 1);  // only the living process's
}

TEST_CASE("files: a checkpoint save removes what a killed save left beside it", "[files][entity]") {
  pbtest::TempDir tmp;
  const std::string path = tmp.file("m.entity");
  pbtest::write_text(path + ".tmp." + kDeadPid, "partial");
  pbtest::write_text(tmp.file("other.entity.tmp." + kDeadPid), "not ours");
  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {-1, 2}});
  g.nodes.push_back(pbtest::make_node("y", "Identity", {"x"}));
  g.outputs = {"y"};
  pb::entity::save(g, path);
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp." + kDeadPid));
  CHECK(fs::exists(tmp.file("other.entity.tmp." + kDeadPid)));  // another file's: left alone
}

// Issue 14: a check killed at any point leaves either a complete run or nothing listed, and
// the next start leaves no temporary behind.
TEST_CASE("files: checks killed at random points leave only complete runs", "[files][store][cli]") {
  pbtest::TempDir tmp;
  const std::string stream = std::string(PB_SOURCE_DIR) + "/plugins/pytorch/tests/streams/linear_square.json";
  const std::string data = tmp.file("data"), entity = tmp.file("m.entity");
  std::mt19937 rng(14);
  std::uniform_int_distribution<int> delay_us(0, 80000);
  int killed = 0;
  for (int i = 0; i < 50; ++i) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(PB_CLI, PB_CLI, "check", stream.c_str(), "--data", data.c_str(), "--entity", entity.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::usleep(useconds_t(delay_us(rng)));
    killed += ::kill(pid, SIGKILL) == 0;
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE((WIFSIGNALED(status) || WEXITSTATUS(status) == 0));  // killed, or finished cleanly
  }
  INFO(killed << " of 50 killed");
  const pb::host::RunStore store(data);  // a start: removes what dead processes left
  for (const std::string& id : store.ids()) {
    INFO(id);
    const auto doc = store.result(id);
    REQUIRE(doc.has_value());
    CHECK(doc->at("verdict") == "EXACT");
    CHECK(fs::file_size(store.stream_file(id)) == doc->at("stream_bytes").get<uint64_t>());
    CHECK(pb::entity::load(store.entity_file(id)).graph.outputs.size() == 1);
  }
  for (const auto& e : fs::directory_iterator(data + "/runs")) CHECK_FALSE(pb::abandoned_temporary(e.path().filename().string()));
  // The checkpoint beside --entity: the next save there removes a killed save's temporary.
  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {-1, 2}});
  g.nodes.push_back(pbtest::make_node("y", "Identity", {"x"}));
  g.outputs = {"y"};
  pb::entity::save(g, entity);
  for (const auto& e : fs::directory_iterator(tmp.path())) CHECK_FALSE(pb::abandoned_temporary(e.path().filename().string()));
}
