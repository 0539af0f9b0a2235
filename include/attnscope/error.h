// The one error type of attnscope: a user-facing, one-line message that names the file or
// argument, what was expected and what was found. The CLI prints it as
// `attnscope: error: <message>` and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace attnscope {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace attnscope
