// A reader for files written by Python's `torch.save` (zip format) and LibTorch's pickle_save.
//
// LibTorch's own unpickler turns a top-level `collections.OrderedDict` (what `state_dict()` is)
// into None, so it cannot read the most common PyTorch weight file. This reader understands the
// pickle subset those files use and rejects anything else with a FileError: it never executes or
// imports anything, and malformed input ends in an error, not a crash.
#pragma once

#include <ATen/core/ivalue.h>

#include <string>
#include <vector>

namespace adatt {

// Returns the file's top-level object as an IValue: dicts (string keys kept in file order), lists,
// tuples, strings, ints, doubles, bools, None and CPU tensors.
c10::IValue load_torch_file(const std::string& path);
// The same for a file's bytes already in memory; `path` names them in errors.
c10::IValue load_torch_bytes(const std::vector<char>& bytes, const std::string& path);

}  // namespace adatt
