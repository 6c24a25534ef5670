// Integrity check of the zip archives PyTorch writes (torch.save, torch.jit.save). LibTorch reads
// them without verifying the stored CRC-32s, so a damaged record is silently accepted (weights) or
// handed to the TorchScript compiler, which can crash on it. Verifying first turns both into errors.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace caffe2::serialize {
class PyTorchStreamReader;
}  // namespace caffe2::serialize

namespace adatt {

// Opens a PyTorch zip archive held in memory after checking every record against its CRC-32
// (stored records directly, compressed ones once inflated); throws FileError naming `path` otherwise.
std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_verified_archive(const std::vector<char>& bytes,
                                                                              const std::string& path);

}  // namespace adatt
