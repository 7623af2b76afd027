#pragma once
// Small helpers shared by the test files: temporary directories, file I/O, error matchers.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "planetbridge/error.h"
#include "planetbridge/tensor.h"

namespace pbtest {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pb_tests_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f.flush()) throw std::runtime_error("cannot write " + path);
}

inline void write_text(const std::string& path, const std::string& text) { write_bytes(path, text.data(), text.size()); }

// Matches a pb::Error whose where() equals `where` and whose message() contains `part`.
class ErrorAt : public Catch::MatcherBase<pb::Error> {
 public:
  ErrorAt(std::string where, std::string part) : where_(std::move(where)), part_(std::move(part)) {}
  bool match(const pb::Error& e) const override {
    return e.where() == where_ && e.message().find(part_) != std::string::npos;
  }
  std::string describe() const override {
    return "is a pb::Error at \"" + where_ + "\" whose message contains \"" + part_ + "\"";
  }

 private:
  std::string where_, part_;
};

// f32 tensor from values.
inline pb::Tensor f32(pb::Shape shape, const std::vector<float>& values) {
  pb::Tensor t(pb::DType::f32, std::move(shape));
  REQUIRE(static_cast<size_t>(t.numel()) == values.size());
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

}  // namespace pbtest

// Catch prints a pb::Error that fails a matcher through what().
namespace Catch {
template <>
struct StringMaker<pb::Error> {
  static std::string convert(const pb::Error& e) { return "pb::Error{where: \"" + e.where() + "\", what: \"" + e.what() + "\"}"; }
};
}  // namespace Catch
