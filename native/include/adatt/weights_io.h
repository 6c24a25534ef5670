// Tensor dictionaries on disk in PyTorch's own `torch.save` format (a zip archive with data.pkl).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace adatt {

using TensorMap = std::map<std::string, torch::Tensor>;

// Writes `tensors` so that Python's torch.load returns a dict of tensors. Atomic: the data goes to
// a temporary file in the same directory, is fsync'ed, then renamed over `path`.
void save_tensor_file(const std::string& path, const TensorMap& tensors);
// Reads a file written by torch.save (a dict of tensors or a state_dict) or by save_tensor_file.
TensorMap load_tensor_file(const std::string& path);
// The same two in memory: the file's bytes, and a dict of tensors read back from them (with our
// own bounded reader, never LibTorch's TorchScript unpickler); `path` names the bytes in errors.
std::vector<char> encode_tensor_file(const TensorMap& tensors);
TensorMap decode_tensor_file(const std::vector<char>& bytes, const std::string& path);

// Atomic write of raw bytes (temporary file + fsync + rename + directory fsync).
void write_file_atomic(const std::string& path, const std::vector<char>& bytes);
std::vector<char> read_file(const std::string& path);

}  // namespace adatt
