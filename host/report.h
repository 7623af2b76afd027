#pragma once
// Reports of case results: the console table, JUnit XML and JSON.
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ladder.h"

namespace pb::host {

struct Summary {
  int exact = 0, pass = 0, fail = 0, error = 0, skip = 0, reload_identical = 0, ran = 0;
  double seconds = 0;
  int total() const { return exact + pass + fail + error + skip; }
  bool ok() const { return fail == 0 && error == 0; }
};
Summary summarize(const std::vector<CaseResult>& results, double seconds);

// Prints one row per case as it completes; `color` adds ANSI colors to verdicts.
class ConsoleReport {
 public:
  ConsoleReport(std::ostream& out, size_t fixture_width, bool color);
  void header();
  void row(const CaseResult& r);
  void summary(const Summary& s);

 private:
  std::ostream& out_;
  size_t fixture_width_;
  bool color_;
};

// Detailed report of a single case (for `planetbridge check`).
void print_case_detail(std::ostream& out, const CaseResult& r, bool color);

nlohmann::json case_json(const CaseResult& r);
// The inverse of case_json (a report's case read back, for `merge`); errors name `where`.
CaseResult case_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json results_json(const std::string& suite, const std::vector<CaseResult>& results, const Summary& s);
std::string junit_xml(const std::string& suite, const std::vector<CaseResult>& results, const Summary& s);

}  // namespace pb::host
