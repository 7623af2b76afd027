#pragma once
// Errors that name where they happened. Every malformed input (stream field, suite key,
// plugin file, checkpoint byte range) is reported as "<where>: <what was expected>".
#include <stdexcept>
#include <string>

namespace pb {

class Error : public std::runtime_error {
 public:
  Error(std::string where, std::string message)
      : std::runtime_error(where.empty() ? message : where + ": " + message),
        where_(std::move(where)),
        message_(std::move(message)) {}
  // The JSON path, file name or node the error is about ("" when global).
  const std::string& where() const { return where_; }
  // The message without the location prefix.
  const std::string& message() const { return message_; }

 private:
  std::string where_;
  std::string message_;
};

}  // namespace pb
