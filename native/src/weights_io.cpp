#include "adatt/weights_io.h"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "adatt/errors.h"
#include "adatt/torch_pickle.h"

namespace adatt {
namespace {

std::string errno_text() { return std::strerror(errno); }

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<char>& bytes) {
  std::random_device entropy;
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(entropy());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError("cannot write " + path + ": " + errno_text());
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = errno_text();
      ::close(fd);
      ::unlink(temporary.c_str());
      throw FileError("cannot write " + path + ": " + reason);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string reason = errno_text();
    ::unlink(temporary.c_str());
    throw FileError("cannot write " + path + ": " + reason);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    ::unlink(temporary.c_str());
    throw FileError("cannot write " + path + ": " + reason);
  }
  // The rename itself must reach the disk for the new file to survive a crash.
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError("cannot read " + path + ": " + errno_text());
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// torch.save's file: a zip of data.pkl and one record per storage. Unlike torch::pickle_save, the
// dict is pickled untagged: PyTorch 2.6 and later load with weights_only=True by default, which
// refuses the torch.jit._pickle.restore_type_tag call that LibTorch puts on typed containers.
std::vector<char> encode_tensor_file(const TensorMap& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& item : tensors) dict.insert(item.first, item.second.contiguous());
  std::vector<char> pickled;
  torch::jit::Pickler pickler(
      [&](const char* bytes, size_t size) { pickled.insert(pickled.end(), bytes, bytes + size); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::vector<char> file;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t size) {
    file.insert(file.end(), static_cast<const char*>(bytes), static_cast<const char*>(bytes) + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  return file;
}

void save_tensor_file(const std::string& path, const TensorMap& tensors) {
  write_file_atomic(path, encode_tensor_file(tensors));
}

namespace {

// The error for a dict that is not a state_dict: a training checkpoint ({'epoch': 3, 'state_dict':
// {...}, 'optimizer': {...}}) is the usual case, so its likeliest inner state_dict is named.
[[noreturn]] void throw_not_a_state_dict(const c10::impl::GenericDict& dict, const std::string& path) {
  std::string inner;
  for (const auto& item : dict) {
    if (!item.key().isString() || !item.value().isGenericDict()) continue;
    const std::string& name = item.key().toStringRef();
    const bool likely = name == "state_dict" || name == "model_state_dict" || name == "model";
    if (inner.empty() || likely) inner = name;
    if (likely) break;
  }
  if (!inner.empty()) {
    throw FileError(path + " looks like a training checkpoint, not a state_dict: its entry '" + inner +
                    "' is a dict; save the model's state_dict alone, e.g. torch.save(checkpoint['" + inner +
                    "'], path)");
  }
  for (const auto& item : dict) {
    if (!item.key().isString())
      throw FileError(path + " holds a dict key that is not a string (" + item.key().tagKind() + ")");
    if (!item.value().isTensor()) {
      throw FileError(path + ": entry '" + item.key().toStringRef() + "' is a " + item.value().tagKind() +
                      ", not a tensor; a weights file is a dict of named tensors (a state_dict)");
    }
  }
  throw FileError(path + " does not hold a dict of tensors");
}

}  // namespace

TensorMap decode_tensor_file(const std::vector<char>& bytes, const std::string& path) {
  const c10::IValue value = load_torch_bytes(bytes, path);
  if (!value.isGenericDict()) throw FileError(path + " does not hold a dict of tensors");
  const auto dict = value.toGenericDict();
  TensorMap tensors;
  for (const auto& item : dict) {
    if (!item.key().isString() || !item.value().isTensor()) throw_not_a_state_dict(dict, path);
    tensors[item.key().toStringRef()] = item.value().toTensor();
  }
  return tensors;
}

TensorMap load_tensor_file(const std::string& path) { return decode_tensor_file(read_file(path), path); }

}  // namespace adatt
