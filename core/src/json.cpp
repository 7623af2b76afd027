#include "planetbridge/json.h"

#include <cctype>
#include <cmath>

namespace pb {

std::string json_path_member(const std::string& base, const std::string& key) {
  bool plain = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0]));
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) plain = false;
  if (plain) return base.empty() ? key : base + "." + key;
  return base + "[" + nlohmann::json(key).dump() + "]";
}

std::string json_path_index(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

std::string JsonRef::type_name() const {
  switch (j_->type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string " + j_->dump();
    case nlohmann::json::value_t::boolean: return std::string("boolean ") + (j_->get<bool>() ? "true" : "false");
    case nlohmann::json::value_t::number_float: return "the number " + j_->dump();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "the integer " + j_->dump();
    default: return "an unsupported value";
  }
}

void JsonRef::fail(const std::string& message) const { throw Error(path_.empty() ? "(document)" : path_, message); }

JsonRef JsonRef::operator[](const std::string& key) const {
  auto f = find(key);
  if (!f) {
    std::string where = json_path_member(path_, key);
    throw Error(where, "missing required field");
  }
  return *f;
}

std::optional<JsonRef> JsonRef::find(const std::string& key) const {
  if (!j_->is_object()) fail("expected an object, got " + type_name());
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return std::nullopt;
  return JsonRef(*it, json_path_member(path_, key));
}

std::vector<std::string> JsonRef::keys() const {
  if (!j_->is_object()) fail("expected an object, got " + type_name());
  std::vector<std::string> out;
  for (auto it = j_->begin(); it != j_->end(); ++it) out.push_back(it.key());
  return out;
}

size_t JsonRef::size() const {
  if (!j_->is_array()) fail("expected an array, got " + type_name());
  return j_->size();
}

JsonRef JsonRef::operator[](size_t i) const {
  if (i >= size()) fail("expected at least " + std::to_string(i + 1) + " elements, got " + std::to_string(size()));
  return JsonRef((*j_)[i], json_path_index(path_, i));
}

std::vector<JsonRef> JsonRef::items() const {
  std::vector<JsonRef> out;
  for (size_t i = 0, n = size(); i < n; ++i) out.emplace_back((*j_)[i], json_path_index(path_, i));
  return out;
}

std::string JsonRef::str() const {
  if (!j_->is_string()) fail("expected a string, got " + type_name());
  return j_->get<std::string>();
}

int64_t JsonRef::i64() const {
  if (j_->is_number_integer() || j_->is_number_unsigned()) {
    if (j_->is_number_unsigned() && j_->get<uint64_t>() > uint64_t(INT64_MAX)) fail("integer out of range");
    return j_->get<int64_t>();
  }
  // Accept integral floats (JavaScript writes 3 as 3, but some encoders write 3.0).
  if (j_->is_number_float()) {
    double d = j_->get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  fail("expected an integer, got " + type_name());
}

double JsonRef::f64() const {
  if (!j_->is_number()) fail("expected a number, got " + type_name());
  return j_->get<double>();
}

bool JsonRef::boolean() const {
  if (!j_->is_boolean()) fail("expected true or false, got " + type_name());
  return j_->get<bool>();
}

std::vector<int64_t> JsonRef::ints() const {
  std::vector<int64_t> out;
  for (const JsonRef& e : items()) out.push_back(e.i64());
  return out;
}

std::string JsonRef::str(const std::string& key, const std::string& fallback) const {
  auto f = find(key);
  return f ? f->str() : fallback;
}
int64_t JsonRef::i64(const std::string& key, int64_t fallback) const {
  auto f = find(key);
  return f ? f->i64() : fallback;
}
double JsonRef::f64(const std::string& key, double fallback) const {
  auto f = find(key);
  return f ? f->f64() : fallback;
}
bool JsonRef::boolean(const std::string& key, bool fallback) const {
  auto f = find(key);
  return f ? f->boolean() : fallback;
}

}  // namespace pb
