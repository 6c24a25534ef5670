// Exception types of the native core. The binding maps each to a JS error code.
#pragma once

#include <stdexcept>
#include <string>

namespace adatt {

// A caller passed something the core cannot work with (the TS layer should have caught it).
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Reading or writing a file failed.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace adatt
