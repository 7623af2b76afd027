#pragma once
// Path-tracking, strict access to a JSON document. Every accessor that finds the wrong thing
// throws pb::Error whose where() is the JSON path: `model.graph[3].attrs.activation`.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planetbridge/error.h"

namespace pb {

class JsonRef {
 public:
  JsonRef(const nlohmann::json& j, std::string path) : j_(&j), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  const nlohmann::json& raw() const { return *j_; }

  // Object members.
  JsonRef operator[](const std::string& key) const;            // required
  std::optional<JsonRef> find(const std::string& key) const;   // optional; null counts as absent
  bool has(const std::string& key) const { return find(key).has_value(); }
  std::vector<std::string> keys() const;                       // requires an object

  // Array elements.
  size_t size() const;                                         // requires an array
  JsonRef operator[](size_t i) const;
  std::vector<JsonRef> items() const;                          // requires an array

  bool is_null() const { return j_->is_null(); }
  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_string() const { return j_->is_string(); }
  bool is_number() const { return j_->is_number(); }

  std::string str() const;
  int64_t i64() const;
  double f64() const;
  bool boolean() const;
  std::vector<int64_t> ints() const;  // array of integers

  // Optional members with defaults.
  std::string str(const std::string& key, const std::string& fallback) const;
  int64_t i64(const std::string& key, int64_t fallback) const;
  double f64(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;

  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string type_name() const;
  const nlohmann::json* j_;
  std::string path_;
};

// Path segment helpers: `a.b`, `a["odd key"]`, `a[3]`.
std::string json_path_member(const std::string& base, const std::string& key);
std::string json_path_index(const std::string& base, size_t i);

}  // namespace pb
