#pragma once
// The pytorch tests' access to a recorded stream document's fx graph: a node by name, for
// editing, and its JSON path, for the errors that name it.
#include <stdexcept>
#include <string>

#include "test_util.h"

namespace pytorch_test {

// "model.graph[i]" of the fx node called `name`.
inline std::string graph_path(const nlohmann::json& doc, const std::string& name) {
  const nlohmann::json& graph = doc["model"]["graph"];
  for (size_t i = 0; i < graph.size(); ++i)
    if (graph[i]["name"] == name) return "model.graph[" + std::to_string(i) + "]";
  FAIL("no fx node \"" << name << "\"");
  return "";
}

// The fx node called `name`, for editing.
inline nlohmann::json& fx_node(nlohmann::json& doc, const std::string& name) {
  for (nlohmann::json& n : doc["model"]["graph"])
    if (n["name"] == name) return n;
  FAIL("no fx node \"" << name << "\"");
  throw std::logic_error("unreachable");
}

}  // namespace pytorch_test
