#include "report.h"

#include <algorithm>

#include <cstdio>
#include <iomanip>
#include <sstream>

namespace pb::host {

Summary summarize(const std::vector<CaseResult>& results, double seconds) {
  Summary s;
  s.seconds = seconds;
  for (const CaseResult& r : results) {
    switch (r.verdict) {
      case Verdict::EXACT: ++s.exact; break;
      case Verdict::PASS: ++s.pass; break;
      case Verdict::FAIL: ++s.fail; break;
      case Verdict::ERROR: ++s.error; break;
      case Verdict::SKIP: ++s.skip; break;
    }
    if (r.verdict == Verdict::EXACT || r.verdict == Verdict::PASS || r.verdict == Verdict::FAIL) {
      ++s.ran;
      s.reload_identical += r.reload_identical;
    }
  }
  return s;
}

namespace {

std::string sci(double v) {
  if (v == 0) return "0";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

const char* verdict_color(Verdict v) {
  switch (v) {
    case Verdict::EXACT: case Verdict::PASS: return "\033[32m";
    case Verdict::FAIL: case Verdict::ERROR: return "\033[31m";
    case Verdict::SKIP: return "\033[33m";
  }
  return "";
}

std::string pad(const std::string& s, size_t w) { return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' '); }

std::string engine_label(const CaseResult& r) { return r.engine.empty() ? r.planet : r.planet + " (" + r.engine + ")"; }

// Whether the native outputs came from the planet's stock layers or from layers the capture
// composed from the planet's own ops (known only once a stream arrived).
std::string native_label(const CaseResult& r, bool ran) {
  if (!ran) return "-";
  return r.composed.empty() ? "stock" : "composed";
}

std::string indent_lines(const std::string& text, const std::string& prefix) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out += prefix + line + "\n";
  return out;
}

}  // namespace

ConsoleReport::ConsoleReport(std::ostream& out, size_t fixture_width, bool color)
    : out_(out), fixture_width_(std::max<size_t>(fixture_width, 7) + 2), color_(color) {}

void ConsoleReport::header() {
  out_ << pad("PLANET (ENGINE)", 30) << pad("FIXTURE", fixture_width_) << pad("LAYER", 10) << pad("NATIVE", 9)
       << pad("VERDICT", 9)
       << pad("MAX|DIFF|", 10) << pad("MAX REL", 10) << pad("RELOAD", 9) << "MS\n";
}

std::string factor_str() {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%g", kReferenceFactor);
  return buf;
}

// What qualifies a verdict: outputs too small for the tolerance to test anything, and elements
// that passed only by the float64 reference's bound.
std::string honesty_notes(const CaseResult& r) {
  std::string notes;
  for (const OutputCheck& o : r.outputs) {
    const Comparison& c = o.vs_native;
    if (c.degenerate)
      notes += o.name + " is degenerate: max|native| " + sci(c.max_native) + " < " + sci(kDegenerateFactor * r.tolerance.atol) +
               " (10 atol), so the tolerance tests nothing\n";
    if (c.has_reference && c.rescued)
      notes += o.name + ": " + std::to_string(c.rescued) + " elements outside the fixed tolerance are within " +
               factor_str() + "x the planet's own float32 error (vs float64: planet " + sci(c.planet_vs_reference) +
               ", bridged " + sci(c.bridged_vs_reference) + ")\n";
  }
  return notes;
}

void ConsoleReport::row(const CaseResult& r) {
  std::string verdict = pad(verdict_name(r.verdict), 9);
  if (color_) verdict = verdict_color(r.verdict) + verdict + "\033[0m";
  const bool ran = r.verdict != Verdict::ERROR && r.verdict != Verdict::SKIP;
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.1f", r.total_ms());
  out_ << pad(engine_label(r), 30) << pad(r.fixture, fixture_width_) << pad(r.layer, 10)
       << pad(native_label(r, ran), 9) << verdict
       << pad(ran ? sci(r.max_abs) : "-", 10) << pad(ran ? sci(r.max_rel) : "-", 10)
       << pad(ran ? (r.reload_identical ? "same" : "DIFFERS") : "-", 9) << (ran ? ms : "-") << "\n";
  if (!r.message.empty() && r.verdict != Verdict::EXACT && r.verdict != Verdict::PASS)
    out_ << indent_lines(r.message, "    ");
  if (ran) out_ << indent_lines(honesty_notes(r), "    ");
  if (r.verdict == Verdict::FAIL) {
    if (!r.worst.empty()) out_ << "    worst element: " << r.worst << "\n";
    if (!r.first_divergence.empty()) out_ << "    first diverging node: " << r.first_divergence << "\n";
  }
  out_.flush();
}

void ConsoleReport::summary(const Summary& s) {
  out_ << "\n" << s.total() << " cases: " << s.exact << " EXACT, " << s.pass << " PASS, " << s.fail << " FAIL, " << s.error
       << " ERROR, " << s.skip << " SKIP";
  if (s.ran) out_ << " · reload bit-identical " << s.reload_identical << "/" << s.ran;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", s.seconds);
  out_ << " · " << secs << " s\n";
}

void print_case_detail(std::ostream& out, const CaseResult& r, bool color) {
  std::string verdict = verdict_name(r.verdict);
  if (color) verdict = verdict_color(r.verdict) + verdict + "\033[0m";
  out << "model     " << r.fixture << "\n";
  out << "planet    " << engine_label(r) << "\n";
  if (!r.composed.empty()) {
    out << "native    composed from the planet's own ops:";
    for (const auto& c : r.composed) out << " " << c << ";";
    out << " every other layer stock\n";
  }
  out << "verdict   " << verdict << "\n";
  if (!r.message.empty()) out << indent_lines(r.message, "          ").substr(10);
  if (r.verdict == Verdict::ERROR || r.verdict == Verdict::SKIP) return;
  out << "tolerance |bridged - native| <= " << r.tolerance.atol << " + " << r.tolerance.rtol << " * |native|\n";
  for (const OutputCheck& o : r.outputs) {
    const Comparison& c = o.vs_native;
    out << "output    " << o.name << ": max|diff| " << sci(c.max_abs) << ", max rel " << sci(c.max_rel) << ", "
        << c.violations << " outside tolerance, " << (c.exact ? "bit-exact" : "not bit-exact") << ", reload "
        << (o.reload_identical ? "bit-identical" : "DIFFERS") << "\n";
    if (c.has_reference)
      out << "float64   " << o.name << ": planet " << sci(c.planet_vs_reference) << ", bridged " << sci(c.bridged_vs_reference)
          << " (bound " << sci(c.reference_bound) << " = " << factor_str() << " x planet + atol)\n";
  }
  if (const std::string notes = honesty_notes(r); !notes.empty()) out << indent_lines(notes, "note      ");
  if (!r.worst.empty()) out << "worst     " << r.worst << "\n";
  if (!r.first_divergence.empty()) out << "diverges  " << r.first_divergence << "\n";
  out << "entity    " << r.entity_path << " (" << r.entity_bytes << " bytes)\n";
  out << "timing   ";
  for (const auto& [stage, ms] : r.stage_ms) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " %s %.2f ms", stage.c_str(), ms);
    out << buf;
  }
  if (r.run_repeats > 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "; steady run median %.3f ms, min %.3f ms (%d repeats)", r.run_median_ms, r.run_min_ms, r.run_repeats);
    out << buf;
  }
  out << "\n";
}

nlohmann::json case_json(const CaseResult& r) {
  nlohmann::json j = {
      {"name", r.name()},       {"planet", r.planet},
      {"engine", r.engine},     {"fixture", r.fixture},
      {"native", r.composed.empty() ? "stock" : "composed"}, {"composed", r.composed},
      {"layer", r.layer},       {"verdict", verdict_name(r.verdict)},
      {"message", r.message},   {"tolerance", {{"atol", r.tolerance.atol}, {"rtol", r.tolerance.rtol}}},
      {"max_abs", r.max_abs},   {"max_rel", r.max_rel},
      {"worst", r.worst},       {"reload_identical", r.reload_identical},
      {"entity", r.entity_path}, {"entity_bytes", r.entity_bytes},
      {"first_divergence", r.first_divergence},
  };
  nlohmann::json ms = nlohmann::json::object();
  for (const auto& [stage, t] : r.stage_ms) ms[stage] = t;
  j["ms"] = ms;
  j["timing"] = {{"wall_ms", r.wall_ms}, {"run_median_ms", r.run_median_ms}, {"run_min_ms", r.run_min_ms}, {"repeats", r.run_repeats}};
  j["outputs"] = nlohmann::json::array();
  for (const OutputCheck& o : r.outputs) {
    const Comparison& c = o.vs_native;
    j["outputs"].push_back({{"name", o.name},
                            {"exact", c.exact},
                            {"within_tolerance", c.within},
                            {"max_abs", c.max_abs},
                            {"max_rel", c.max_rel},
                            {"violations", c.violations},
                            {"worst_index", c.worst_index},
                            {"worst_native", c.worst_native},
                            {"worst_bridged", c.worst_bridged},
                            {"reload_identical", o.reload_identical},
                            {"max_native", c.max_native},
                            {"degenerate", c.degenerate}});
    if (c.has_reference)
      j["outputs"].back()["float64"] = {{"planet", c.planet_vs_reference}, {"bridged", c.bridged_vs_reference},
                                        {"bound", c.reference_bound}, {"rescued", c.rescued}};
  }
  // Present only for streams with taps: each tapped node's own output vs the planet's.
  if (!r.taps.empty() || !r.tap_error.empty()) {
    j["taps"] = nlohmann::json::array();
    for (const TapCheck& t : r.taps) {
      const Comparison& c = t.vs_native;
      nlohmann::json tj = {{"node", t.node},       {"origin", t.origin},   {"value", t.value},
                           {"max_abs", c.max_abs}, {"max_rel", c.max_rel}, {"within", c.mismatch.empty() && c.within},
                           {"exact", c.exact},     {"violations", c.violations}};
      if (!c.mismatch.empty()) tj["mismatch"] = c.mismatch;
      j["taps"].push_back(tj);
    }
    if (!r.tap_error.empty()) j["tap_error"] = r.tap_error;
  }
  return j;
}

CaseResult case_from_json(const nlohmann::json& j, const std::string& where) {
  try {
    CaseResult r;
    r.planet = j.at("planet").get<std::string>();
    r.fixture = j.at("fixture").get<std::string>();
    r.engine = j.value("engine", "");
    r.layer = j.value("layer", "");
    r.composed = j.value("composed", std::vector<std::string>{});
    const std::string v = j.at("verdict").get<std::string>();
    bool known = false;
    for (Verdict candidate : {Verdict::EXACT, Verdict::PASS, Verdict::FAIL, Verdict::ERROR, Verdict::SKIP})
      if (v == verdict_name(candidate)) r.verdict = candidate, known = true;
    if (!known) throw Error(where + ".verdict", "unknown verdict \"" + v + "\"");
    r.message = j.value("message", "");
    if (j.contains("tolerance")) r.tolerance = {j["tolerance"].at("atol").get<double>(), j["tolerance"].at("rtol").get<double>()};
    r.max_abs = j.value("max_abs", 0.0);
    r.max_rel = j.value("max_rel", 0.0);
    r.worst = j.value("worst", "");
    r.reload_identical = j.value("reload_identical", false);
    r.entity_path = j.value("entity", "");
    r.entity_bytes = j.value("entity_bytes", uint64_t(0));
    r.first_divergence = j.value("first_divergence", "");
    r.tap_error = j.value("tap_error", "");
    r.run_id = j.value("run_id", "");
    r.plan_index = j.value("plan_index", size_t(0));
    // Stages in the ladder's order (a JSON object sorts its keys), then any others.
    const nlohmann::json ms = j.value("ms", nlohmann::json::object());
    for (const char* stage : {"parse", "decode", "compile", "run", "taps", "save", "reload"})
      if (ms.contains(stage)) r.stage_ms.emplace_back(stage, ms[stage].get<double>());
    for (const auto& [stage, t] : ms.items())
      if (std::none_of(r.stage_ms.begin(), r.stage_ms.end(), [&, name = stage](const auto& s) { return s.first == name; }))
        r.stage_ms.emplace_back(stage, t.get<double>());
    const nlohmann::json timing = j.value("timing", nlohmann::json::object());
    r.wall_ms = timing.value("wall_ms", 0.0);
    r.run_median_ms = timing.value("run_median_ms", 0.0);
    r.run_min_ms = timing.value("run_min_ms", 0.0);
    r.run_repeats = timing.value("repeats", 0);
    for (const auto& o : j.value("outputs", nlohmann::json::array())) {
      OutputCheck c;
      c.name = o.at("name").get<std::string>();
      c.vs_native.exact = o.value("exact", false);
      c.vs_native.within = o.value("within_tolerance", false);
      c.vs_native.max_abs = o.value("max_abs", 0.0);
      c.vs_native.max_rel = o.value("max_rel", 0.0);
      c.vs_native.violations = o.value("violations", int64_t(0));
      c.vs_native.worst_index = o.value("worst_index", "");
      c.vs_native.worst_native = o.value("worst_native", 0.0);
      c.vs_native.worst_bridged = o.value("worst_bridged", 0.0);
      c.reload_identical = o.value("reload_identical", false);
      c.vs_native.max_native = o.value("max_native", 0.0);
      c.vs_native.degenerate = o.value("degenerate", false);
      if (o.contains("float64")) {
        const nlohmann::json& f = o["float64"];
        c.vs_native.has_reference = true;
        c.vs_native.planet_vs_reference = f.value("planet", 0.0);
        c.vs_native.bridged_vs_reference = f.value("bridged", 0.0);
        c.vs_native.reference_bound = f.value("bound", 0.0);
        c.vs_native.rescued = f.value("rescued", int64_t(0));
      }
      r.outputs.push_back(std::move(c));
    }
    for (const auto& t : j.value("taps", nlohmann::json::array())) {
      TapCheck c;
      c.node = t.at("node").get<std::string>();
      c.origin = t.value("origin", "");
      c.value = t.value("value", "");
      c.vs_native.max_abs = t.value("max_abs", 0.0);
      c.vs_native.max_rel = t.value("max_rel", 0.0);
      c.vs_native.within = t.value("within", false);
      c.vs_native.exact = t.value("exact", false);
      c.vs_native.violations = t.value("violations", int64_t(0));
      c.vs_native.mismatch = t.value("mismatch", "");
      r.taps.push_back(std::move(c));
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, std::string("not a case of a run --json report: ") + e.what());
  }
}

nlohmann::json results_json(const std::string& suite, const std::vector<CaseResult>& results, const Summary& s) {
  nlohmann::json j = {{"suite", suite},
                      {"summary",
                       {{"total", s.total()}, {"exact", s.exact}, {"pass", s.pass}, {"fail", s.fail}, {"error", s.error},
                        {"skip", s.skip}, {"reload_identical", s.reload_identical}, {"seconds", s.seconds}, {"ok", s.ok()}}}};
  j["cases"] = nlohmann::json::array();
  for (const CaseResult& r : results) {
    j["cases"].push_back(case_json(r));
    if (!r.run_id.empty()) j["cases"].back()["run_id"] = r.run_id;
    j["cases"].back()["plan_index"] = r.plan_index;
  }
  return j;
}

namespace {
std::string xml_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') o += ' ';  // not allowed in XML 1.0
        else o += static_cast<char>(c);
    }
  }
  return o;
}
}  // namespace

std::string junit_xml(const std::string& suite, const std::vector<CaseResult>& results, const Summary& s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(3);
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"planetbridge\" tests=\"" << s.total() << "\" failures=\"" << s.fail << "\" errors=\"" << s.error
    << "\" skipped=\"" << s.skip << "\" time=\"" << s.seconds << "\">\n";
  o << "  <testsuite name=\"" << xml_escape(suite) << "\" tests=\"" << s.total() << "\" failures=\"" << s.fail
    << "\" errors=\"" << s.error << "\" skipped=\"" << s.skip << "\" time=\"" << s.seconds << "\">\n";
  for (const CaseResult& r : results) {
    o << "    <testcase classname=\"" << xml_escape(suite + "." + r.planet) << "\" name=\"" << xml_escape(r.name())
      << "\" time=\"" << r.total_ms() / 1000.0 << "\">\n";
    std::ostringstream detail;
    print_case_detail(detail, r, false);
    const std::string msg = xml_escape(r.message.empty() ? verdict_name(r.verdict) : r.message);
    switch (r.verdict) {
      case Verdict::FAIL: o << "      <failure message=\"" << msg << "\">" << xml_escape(detail.str()) << "</failure>\n"; break;
      case Verdict::ERROR: o << "      <error message=\"" << msg << "\">" << xml_escape(detail.str()) << "</error>\n"; break;
      case Verdict::SKIP: o << "      <skipped message=\"" << msg << "\"/>\n"; break;
      default: o << "      <system-out>" << xml_escape(detail.str()) << "</system-out>\n";
    }
    o << "    </testcase>\n";
  }
  o << "  </testsuite>\n</testsuites>\n";
  return o.str();
}

}  // namespace pb::host
