// The dashboard's nightly pages (host/dashboard.h): batches, a batch filtered on the server
// and in the page, a fixture's history, two batches compared, the run list, their JSON twins
// and their 400/404 answers; then the same pages in a real headless browser (Debian's
// chromium), which proves the inline script filters the rows. The store is written through
// RunStore and the catalog, no live planet.
#include <httplib.h>

#include <regex>
#include <thread>

#include "catalog.h"
#include "dashboard.h"
#include "plugin_loader.h"
#include "run_store.h"
#include "server.h"
#include "test_util.h"

namespace {

using nlohmann::json;
using pb::host::CaseResult;
using pb::host::Verdict;

struct Case {
  const char* planet;
  const char* layer;
  std::string fixture;
  Verdict verdict;
  double max_abs;
  const char* engine;
};

// Two batches of suite "nightly" (the second with two regressions: mlp_b now FAILs, gru_f is
// new and ERRORs; lstm_d fixed; tree_e newly skipped; torch's version changed), then one of
// suite "other", and a serve run outside any batch.
struct Store {
  pbtest::TempDir tmp;
  std::string data = tmp.file("data"), first, second, other, serve_run;

  Store() {
    pb::host::RunStore store(data);
    first = batch(store, "nightly",
                  {{"pytorch", "dense", "mlp_a", Verdict::PASS, 1e-7, "torch 1.13"},
                   {"pytorch", "dense", "mlp_b", Verdict::PASS, 2e-7, "torch 1.13"},
                   {"pytorch", "cnn2", "conv_c", Verdict::EXACT, 0, "torch 1.13"},
                   {"pytorch", "lstm", "lstm_d", Verdict::FAIL, 0.5, "torch 1.13"},
                   {"sklearn", "sklearn", "tree_e", Verdict::PASS, 1e-9, "sklearn 1.2"}});
    second = batch(store, "nightly",
                   {{"pytorch", "dense", "mlp_a", Verdict::PASS, 1e-7, "torch 2.0"},
                    {"pytorch", "dense", "mlp_b", Verdict::FAIL, 0.25, "torch 2.0"},
                    {"pytorch", "dense", "<img src=x onerror=alert(1)>", Verdict::PASS, 1e-6, "torch 2.0"},
                    {"pytorch", "cnn2", "conv_c", Verdict::EXACT, 0, "torch 2.0"},
                    {"pytorch", "lstm", "lstm_d", Verdict::PASS, 1e-6, "torch 2.0"},
                    {"pytorch", "gru", "gru_f", Verdict::ERROR, 0, "torch 2.0"},
                    {"sklearn", "sklearn", "tree_e", Verdict::SKIP, 0, "sklearn 1.2"}});
    other = batch(store, "other", {{"pytorch", "dense", "mlp_a", Verdict::PASS, 1e-7, "torch 2.0"}});
    serve_run = commit(store, {"pytorch", "", "served_model", Verdict::EXACT, 0, "torch 2.0"}, {"serve", "", ""});
  }

  static std::string commit(pb::host::RunStore& store, const Case& c, const pb::host::RunInfo& info) {
    auto run = store.begin();
    CaseResult r;
    r.planet = c.planet;
    r.layer = c.layer;
    r.fixture = c.fixture;
    r.verdict = c.verdict;
    r.max_abs = c.max_abs;
    r.engine = c.engine;
    if (c.verdict != Verdict::PASS && c.verdict != Verdict::EXACT) r.message = "why " + c.fixture;
    store.commit(*run, r, info);
    return run->id();
  }

  static std::string batch(pb::host::RunStore& store, const std::string& suite, const std::vector<Case>& cases) {
    // Batch ids carry the start time to the millisecond: one process begins one per millisecond.
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    pb::host::BatchInfo info;
    info.suite = suite;
    info.host_version = "test";
    const std::string id = store.catalog().begin_batch(info);
    for (const Case& c : cases) commit(store, c, {"run", suite, id});
    store.catalog().end_batch(id);
    return id;
  }
};

struct Dashboard {
  Store store;
  pb::host::PluginRegistry plugins;
  pb::host::Server server{plugins, options()};
  int port = server.start("127.0.0.1", 0);

  pb::host::ServerOptions options() const {
    pb::host::ServerOptions o;
    o.data_dir = store.data;
    o.version = "test";
    return o;
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
  httplib::Result get(const std::string& path) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c.Get(path.c_str());
  }
  std::string html(const std::string& path) const {
    auto res = get(path);
    REQUIRE(res);
    INFO(path << ": " << res->body);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("Content-Type") == "text/html; charset=utf-8");
    return res->body;
  }
  json api(const std::string& path) const {
    auto res = get(path);
    REQUIRE(res);
    INFO(path << ": " << res->body);
    REQUIRE(res->status == 200);
    return json::parse(res->body);
  }
  // A refusal: its status and the JSON error's path, and a part of its message.
  void refused(const std::string& path, int status, const std::string& where, const std::string& part) const {
    auto res = get(path);
    REQUIRE(res);
    INFO(path << ": " << res->body);
    CHECK(res->status == status);
    const json e = json::parse(res->body);
    REQUIRE(e.contains("error"));
    CHECK(e["error"]["path"] == where);
    CHECK_THAT(e["error"]["message"].get<std::string>(), Catch::Contains(part));
  }
};

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// The rows of a batch page: (fixture, verdict, hidden) of each <tr class="run" ...> tag.
struct Row {
  std::string fixture, verdict;
  bool hidden;
};
std::vector<Row> run_rows(const std::string& html) {
  std::vector<Row> rows;
  static const std::regex tag(R"(<tr class="run"[^>]*>)"), fixture(R"re(data-fixture="([^"]*)")re"),
      verdict(R"re(data-verdict="([^"]*)")re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string t = it->str();
    std::smatch f, v;
    REQUIRE(std::regex_search(t, f, fixture));
    REQUIRE(std::regex_search(t, v, verdict));
    rows.push_back({f[1], v[1], t.find(" hidden") != std::string::npos});
  }
  return rows;
}

// The first href="..." after `marker` in a page (HTML-unescaped: &amp; -> &).
std::string href_after(const std::string& html, const std::string& marker) {
  const size_t at = html.find(marker);
  REQUIRE(at != std::string::npos);
  const size_t h = html.find("href=\"", at);
  REQUIRE(h != std::string::npos);
  std::string link = html.substr(h + 6, html.find('"', h + 6) - h - 6);
  for (size_t amp; (amp = link.find("&amp;")) != std::string::npos;) link.replace(amp, 5, "&");
  return link;
}

}  // namespace

TEST_CASE("dashboard: the batches page lists batches newest first with counts and regressions, paged", "[dashboard]") {
  Dashboard d;
  const std::string page = d.html("/");
  const size_t second = page.find(">" + d.store.second + "<"), first = page.find(">" + d.store.first + "<"),
               other = page.find(">" + d.store.other + "<");
  REQUIRE(second != std::string::npos);
  REQUIRE(first != std::string::npos);
  REQUIRE(other != std::string::npos);
  CHECK(other < second);
  CHECK(second < first);
  CHECK(count(page, "<tr class=\"batch\">") == 3);
  // The second nightly against the first: 2 regressions, 1 fixed, and a link to compare them.
  const std::string row = page.substr(second, page.find("</tr>", second) - second);
  CHECK_THAT(row, Catch::Contains("<b class=\"bad\">2</b>") && Catch::Contains("/compare?a=" + d.store.first + "&amp;b=" + d.store.second));
  CHECK_THAT(page, Catch::Contains("first of its suite") && Catch::Contains("href=\"/runs\""));
  CHECK_THAT(page, !Catch::Contains(d.store.serve_run));  // runs outside batches are on /runs

  const std::string paged = d.html("/?limit=1&page=2");
  CHECK(count(paged, "<tr class=\"batch\">") == 1);
  CHECK_THAT(paged, Catch::Contains(d.store.second) && !Catch::Contains("href=\"/batches/" + d.store.first + "\"") &&
                        Catch::Contains("batches 2–2 of 3") && Catch::Contains("href=\"/?limit=1\"") &&
                        Catch::Contains("href=\"/?page=3&amp;limit=1\""));

  const json api = d.api("/api/v1/batches");
  CHECK(api["total"] == 3);
  REQUIRE(api["batches"].size() == 3);
  CHECK(api["batches"][1]["id"] == d.store.second);
  CHECK(api["batches"][1]["previous"] == d.store.first);
  CHECK(api["batches"][1]["changes"]["regressions"] == 2);
  CHECK(api["batches"][1]["changes"]["fixed"] == 1);
  CHECK(api["batches"][1]["counts"]["fail"] == 1);
  CHECK(api["batches"][2]["previous"].is_null());
  CHECK(d.api("/api/v1/batches?limit=2&page=2")["batches"].size() == 1);

  d.refused("/?page=0", 400, "page", "expected an integer from 1");
  d.refused("/?limit=x", 400, "limit", "got \"x\"");
  d.refused("/api/v1/batches?limit=100000", 400, "limit", "from 1 to 10000");
}

TEST_CASE("dashboard: a batch page groups its runs by planet and layer, filters on the server, pages and escapes", "[dashboard]") {
  Dashboard d;
  const std::string path = "/batches/" + d.store.second;
  const std::string page = d.html(path);
  CHECK(run_rows(page).size() == 7);
  CHECK(count(page, "<tr class=\"group\"") == 5);  // pytorch: cnn2, dense, gru, lstm; sklearn: sklearn
  CHECK(page.find("pytorch · cnn2") < page.find("pytorch · dense"));
  CHECK(page.find("pytorch · lstm") < page.find("sklearn · sklearn"));
  CHECK_THAT(page, Catch::Contains("href=\"/fixtures/pytorch/mlp_b\"") && Catch::Contains("id=\"compare\" href=\"/compare?a=" + d.store.first));
  // Names from runs are text, in the page and in links.
  CHECK_THAT(page, Catch::Contains("&lt;img src=x onerror=alert(1)&gt;") && !Catch::Contains("<img src") &&
                       Catch::Contains("/fixtures/pytorch/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"));

  auto fixtures = [](const std::string& html) {
    std::vector<std::string> out;
    for (const Row& r : run_rows(html)) out.push_back(r.fixture);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(fixtures(d.html(path + "?verdict=FAIL")) == V{"mlp_b"});
  CHECK(fixtures(d.html(path + "?planet=sklearn")) == V{"tree_e"});
  CHECK(fixtures(d.html(path + "?layer=dense&fixture=mlp_*")) == V{"mlp_a", "mlp_b"});
  CHECK(fixtures(d.html(path + "?verdict=&planet=&layer=&fixture=")).size() == 7);  // an empty form field filters nothing
  const std::string paged = d.html(path + "?limit=3&page=2");
  CHECK(fixtures(paged) == V{"mlp_b", "gru_f", "lstm_d"});
  CHECK_THAT(paged, Catch::Contains("runs 4–6 of 7") && Catch::Contains("?page=3&amp;limit=3"));
  CHECK_THAT(d.html(path + "?verdict=ERROR&limit=1"), Catch::Contains("runs 1–1 of 1"));

  const json api = d.api("/api/v1/batches/" + d.store.second + "?verdict=PASS");
  CHECK(api["batch"]["id"] == d.store.second);
  CHECK(api["batch"]["previous"] == d.store.first);
  CHECK(api["total"] == 3);
  CHECK(api["runs"].size() == 3);
  CHECK(api["groups"].size() == 6);  // (planet, layer, verdict) triples

  d.refused("/batches/nope", 404, "id", "no batch \"nope\"");
  d.refused("/api/v1/batches/nope", 404, "id", "no batch \"nope\"");
  d.refused(path + "?verdict=BAD", 400, "verdict", "expected EXACT, PASS, FAIL, ERROR or SKIP, got \"BAD\"");
  d.refused(path + "?page=-1", 400, "page", "expected an integer");
}

TEST_CASE("dashboard: a fixture page charts its history newest first with verdicts and engine changes, paged", "[dashboard]") {
  Dashboard d;
  const std::string page = d.html("/fixtures/pytorch/mlp_a");
  CHECK_THAT(page, Catch::Contains("<svg id=\"history\"") && Catch::Contains("class=\"engine-change\"") &&
                       Catch::Contains("torch 1.13 → torch 2.0"));
  CHECK(count(page, "<circle class=\"pt v-PASS\"") == 3);
  // Newest first in the table: the "other" batch, then the second and first nightly.
  const size_t other = page.find(">" + d.store.other + "<"), second = page.find(">" + d.store.second + "<"),
               first = page.find(">" + d.store.first + "<");
  REQUIRE(first != std::string::npos);
  CHECK(other < second);
  CHECK(second < first);
  const std::string fail = d.html("/fixtures/pytorch/mlp_b");
  CHECK(count(fail, "<circle class=\"pt v-FAIL\"") == 1);
  CHECK(count(fail, "<circle class=\"pt v-PASS\"") == 1);
  const std::string paged = d.html("/fixtures/pytorch/mlp_a?limit=1&page=3");
  CHECK_THAT(paged, Catch::Contains(d.store.first) && !Catch::Contains(">" + d.store.second + "<") && Catch::Contains("runs 3–3 of 3"));
  CHECK_THAT(d.html("/fixtures/pytorch/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"), Catch::Contains("&lt;img src=x") && !Catch::Contains("<img src"));

  d.refused("/fixtures/pytorch/no_such_fixture", 404, "fixture", "no run of fixture \"no_such_fixture\" on planet \"pytorch\"");
  d.refused("/fixtures/jax/mlp_a", 404, "fixture", "on planet \"jax\"");
  d.refused("/fixtures/pytorch/mlp_a?limit=0", 400, "limit", "expected an integer from 1");
}

TEST_CASE("dashboard: the compare page tables what changed between two batches", "[dashboard]") {
  Dashboard d;
  const std::string page = d.html("/compare?a=" + d.store.first + "&b=" + d.store.second);
  auto section = [&](const std::string& id) {
    const size_t at = page.find("<h2 id=\"" + id + "\">");
    REQUIRE(at != std::string::npos);
    return page.substr(at, page.find("<h2", at + 1) - at);
  };
  CHECK_THAT(section("regressions"), Catch::Contains("Regressions (2)") && Catch::Contains(">mlp_b<") && Catch::Contains(">gru_f<"));
  CHECK_THAT(section("fixed"), Catch::Contains("Fixed (1)") && Catch::Contains(">lstm_d<"));
  CHECK_THAT(section("new"), Catch::Contains("New (2)") && Catch::Contains("&lt;img"));
  CHECK_THAT(section("removed"), Catch::Contains("Removed (0)"));
  CHECK_THAT(section("new_skip"), Catch::Contains("Newly skipped (1)") && Catch::Contains(">tree_e<"));
  CHECK_THAT(section("engine_changes"), Catch::Contains("torch 1.13 -&gt; torch 2.0"));
  CHECK_THAT(page, Catch::Contains("href=\"/fixtures/pytorch/mlp_b\"") && Catch::Contains("href=\"/batches/" + d.store.first + "\""));

  const json api = d.api("/api/v1/compare?a=" + d.store.first + "&b=" + d.store.second);
  CHECK(api["regressions"].size() == 2);
  CHECK(api["a"] == d.store.first);

  d.refused("/compare?a=" + d.store.first, 400, "b", "expected a batch id");
  d.refused("/compare?b=" + d.store.first, 400, "a", "expected a batch id");
  d.refused("/compare?a=nope&b=" + d.store.first, 404, "a", "no batch \"nope\"");
  d.refused("/api/v1/compare?a=" + d.store.first + "&b=nope", 404, "b", "no batch \"nope\"");
}

TEST_CASE("dashboard: /runs lists every run, batches and serve alike, with filters and pages", "[dashboard]") {
  Dashboard d;
  const std::string all = d.html("/runs");
  CHECK(count(all, "<tr><td class=\"mono\"><a href=\"/runs/") == 14);
  CHECK_THAT(all, Catch::Contains(d.store.serve_run) && Catch::Contains("14 runs"));
  CHECK(count(d.html("/runs?batch=" + d.store.first), "<tr><td class=\"mono\">") == 5);
  CHECK(count(d.html("/runs?layer=cnn2"), "<tr><td class=\"mono\">") == 2);
  CHECK(count(d.html("/runs?fixture=mlp_*&verdict=PASS&planet=pytorch"), "<tr><td class=\"mono\">") == 4);
  CHECK(count(d.html("/runs?since=2000-01-01T00:00"), "<tr><td class=\"mono\">") == 14);
  const std::string paged = d.html("/runs?limit=5&page=3");
  CHECK(count(paged, "<tr><td class=\"mono\">") == 4);
  CHECK_THAT(paged, Catch::Contains("runs 11–14 of 14") && Catch::Contains("href=\"/runs?page=2&amp;limit=5\""));
  CHECK_THAT(d.html("/runs?verdict=ERROR&planet=sklearn"), Catch::Contains("No run matches"));
  d.refused("/runs?since=yesterday", 400, "since", "expected a UTC date or time");
  d.refused("/runs?verdict=pass", 400, "verdict", "got \"pass\"");
}

TEST_CASE("dashboard: a batch still running shows its runs so far and its changes against the previous", "[dashboard]") {
  Dashboard d;
  pb::host::RunStore store(d.store.data);
  pb::host::BatchInfo info;
  info.suite = "nightly";
  const std::string running = store.catalog().begin_batch(info);
  Store::commit(store, {"pytorch", "dense", "mlp_a", Verdict::FAIL, 0.5, "torch 2.0"}, {"run", "nightly", running});
  Store::commit(store, {"pytorch", "dense", "mlp_b", Verdict::PASS, 1e-7, "torch 2.0"}, {"run", "nightly", running});
  const json newest = d.api("/api/v1/batches")["batches"][0];
  CHECK(newest["id"] == running);
  CHECK(newest["ended"] == "");
  CHECK(newest["counts"] == json({{"total", 2}, {"exact", 0}, {"pass", 1}, {"fail", 1}, {"error", 0}, {"skip", 0}}));
  CHECK(newest["previous"] == d.store.second);
  CHECK(newest["changes"]["regressions"] == 1);  // mlp_a PASS -> FAIL
  CHECK(newest["changes"]["fixed"] == 1);        // mlp_b FAIL -> PASS
  CHECK(newest["changes"]["removed"] == 5);
  CHECK_THAT(d.html("/"), Catch::Contains("<i>running</i>"));
  CHECK(d.api("/api/v1/batches/" + running)["batch"]["counts"]["total"] == 2);
  // One more run: the counts follow (nothing of a running batch is remembered).
  Store::commit(store, {"pytorch", "dense", "conv_c", Verdict::EXACT, 0, "torch 2.0"}, {"run", "nightly", running});
  CHECK(d.api("/api/v1/batches")["batches"][0]["counts"]["exact"] == 1);
}

TEST_CASE("dashboard: in headless chromium, links lead from the batches to a batch, filtered by its script, a fixture and a compare", "[dashboard]") {
  PBTEST_SKIP_IF(pbtest::shell("command -v chromium >/dev/null 2>&1") == 0 ? "" : "chromium is not installed",
                 "the browser test needs Debian's chromium (scripts/setup.sh installs it)");
  Dashboard d;
  const pbtest::TempDir profile;
  // The DOM after the page's scripts ran, as chromium serializes it.
  auto dom = [&](const std::string& path) {
    const std::string out = profile.file("dom.html");
    const int rc = pbtest::shell("timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir=" + pbtest::quote(profile.file("profile")) +
                                 " --dump-dom " + pbtest::quote(d.url(path)) + " >" + pbtest::quote(out) + " 2>/dev/null");
    INFO(path);
    REQUIRE(rc == 0);
    return pbtest::read_text(out);
  };

  const std::string batches = dom("/");
  REQUIRE_THAT(batches, Catch::Contains("<table id=\"batches\">"));
  const std::string batch_link = href_after(batches, "<tr class=\"batch\"><td class=\"mono\">");  // the newest: "other"
  CHECK(batch_link == "/batches/" + d.store.other);
  const std::string second_link = href_after(batches, "<tr class=\"batch\"><td class=\"mono\">" + std::string("<a href=\"/batches/") + d.store.second);
  CHECK(second_link == "/batches/" + d.store.second);

  // Unfiltered, every row shows; the hash's filter is applied by the page's script alone.
  std::vector<Row> rows = run_rows(dom(second_link));
  REQUIRE(rows.size() == 7);
  for (const Row& r : rows) CHECK_FALSE(r.hidden);
  const std::string filtered = dom(second_link + "#planet=pytorch&fixture=mlp_*");
  rows = run_rows(filtered);
  REQUIRE(rows.size() == 7);
  std::vector<std::string> shown;
  for (const Row& r : rows)
    if (!r.hidden) shown.push_back(r.fixture);
  CHECK(shown == std::vector<std::string>{"mlp_a", "mlp_b"});
  CHECK_THAT(filtered, Catch::Contains("2 of 7 rows of this page shown"));
  CHECK_THAT(filtered, Catch::Contains("<tr class=\"group\" data-group=\"sklearn/sklearn\" hidden=\"\">"));
  rows = run_rows(dom(second_link + "#verdict=FAIL"));
  shown.clear();
  for (const Row& r : rows)
    if (!r.hidden) shown.push_back(r.verdict);
  CHECK(shown == std::vector<std::string>{"FAIL"});

  const std::string fixture = dom(href_after(filtered, "data-fixture=\"mlp_b\""));
  CHECK_THAT(fixture, Catch::Contains("<svg id=\"history\"") && Catch::Contains("class=\"pt v-PASS\"") &&
                          Catch::Contains("class=\"pt v-FAIL\""));
  const std::string compare = dom(href_after(filtered, "id=\"compare\""));
  CHECK_THAT(compare, Catch::Contains("Regressions (2)") && Catch::Contains("Fixed (1)"));
}

TEST_CASE("dashboard: the batches page names what a batch selected beyond its suite (shard, planets, layers, fixture)", "[dashboard]") {
  json sharded = {{"id", "B1"}, {"suite", "bedrock"}, {"started", "2026-12-03T00:00:00.000Z"},
                  {"filters", {{"planets", {"sklearn"}}, {"layers", json::array()}, {"fixture", "sk_*"}, {"shard", "2/4"}}}};
  json whole = {{"id", "B2"}, {"suite", "bedrock"}, {"started", "2026-12-02T00:00:00.000Z"},
                {"filters", {{"planets", json::array()}, {"layers", json::array()}, {"fixture", ""}, {"shard", "1/1"}}}};
  pb::host::Paging paging;
  paging.total = 2;
  const std::string page = pb::host::dashboard_batches({sharded, whole}, paging, "test");
  CHECK_THAT(page, Catch::Contains("shard 2/4 · planets sklearn · fixture sk_*"));
  CHECK(count(page, "shard ") == 1);  // the whole suite's batch says nothing more
}
