#include "adatt/zip_check.h"

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>

#include <array>
#include <cstdint>

#include "adatt/errors.h"

namespace adatt {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const auto table = [] {
    std::array<uint32_t, 256> entries{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[n] = c;
    }
    return entries;
  }();
  return table;
}

uint32_t crc32(const char* data, uint64_t size) {
  const auto& table = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < size; ++i) c = table[(c ^ static_cast<uint8_t>(data[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

class Reader {
 public:
  Reader(const std::vector<char>& bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  uint64_t le(uint64_t offset, int width) const {
    if (offset + static_cast<uint64_t>(width) > bytes_.size()) fail("it is truncated");
    uint64_t value = 0;
    for (int i = 0; i < width; ++i) value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes_[offset + i])) << (8 * i);
    return value;
  }
  [[noreturn]] void fail(const std::string& reason) const {
    throw FileError(path_ + " is damaged or not a PyTorch zip archive: " + reason);
  }
  uint64_t size() const { return bytes_.size(); }
  const char* at(uint64_t offset) const { return bytes_.data() + offset; }

 private:
  const std::vector<char>& bytes_;
  const std::string& path_;
};

struct CompressedRecord {
  std::string name;  // without the archive's top folder, as PyTorchStreamReader names records
  uint64_t crc;
};

// Checks the stored records and returns the compressed ones, to be checked once inflated.
std::vector<CompressedRecord> verify_stored_records(const std::vector<char>& bytes, const std::string& path) {
  const Reader zip(bytes, path);
  std::vector<CompressedRecord> compressed;
  if (zip.size() < 22) zip.fail("it is too short to be a zip archive");
  // End of central directory: the last record with its signature (a comment may follow it).
  uint64_t end = zip.size() - 22;
  const uint64_t lowest = zip.size() > 22 + 65535 ? zip.size() - 22 - 65535 : 0;
  while (zip.le(end, 4) != 0x06054b50) {
    if (end == lowest) zip.fail("no end-of-directory record (truncated?)");
    --end;
  }
  uint64_t entries = zip.le(end + 10, 2);
  uint64_t directory = zip.le(end + 16, 4);
  if ((entries == 0xFFFF || directory == 0xFFFFFFFF) && end >= 20 && zip.le(end - 20, 4) == 0x07064b50) {
    const uint64_t zip64_end = zip.le(end - 20 + 8, 8);
    if (zip.le(zip64_end, 4) != 0x06064b50) zip.fail("a broken zip64 end-of-directory record");
    entries = zip.le(zip64_end + 32, 8);
    directory = zip.le(zip64_end + 48, 8);
  }
  uint64_t cursor = directory;
  for (uint64_t entry = 0; entry < entries; ++entry) {
    if (zip.le(cursor, 4) != 0x02014b50) zip.fail("a broken central directory");
    const uint64_t method = zip.le(cursor + 10, 2);
    const uint64_t expected_crc = zip.le(cursor + 16, 4);
    uint64_t stored = zip.le(cursor + 20, 4);
    const uint64_t name_length = zip.le(cursor + 28, 2);
    const uint64_t extra_length = zip.le(cursor + 30, 2);
    const uint64_t comment_length = zip.le(cursor + 32, 2);
    uint64_t local = zip.le(cursor + 42, 4);
    if (cursor + 46 + name_length + extra_length > zip.size()) zip.fail("a broken central directory");
    const std::string name(zip.at(cursor + 46), name_length);
    // Zip64 extra field: 64-bit sizes and offset, in this order, for each 32-bit field that is all ones.
    for (uint64_t extra = cursor + 46 + name_length; extra + 4 <= cursor + 46 + name_length + extra_length;) {
      const uint64_t id = zip.le(extra, 2);
      const uint64_t length = zip.le(extra + 2, 2);
      if (id == 0x0001) {
        uint64_t field = extra + 4;
        if (zip.le(cursor + 24, 4) == 0xFFFFFFFF) field += 8;  // uncompressed size
        if (stored == 0xFFFFFFFF) stored = zip.le(field, 8), field += 8;
        if (local == 0xFFFFFFFF) local = zip.le(field, 8);
      }
      extra += 4 + length;
    }
    // miniz skips a record marked as a directory (or encrypted) and hands back a buffer it never
    // wrote, so every header field it acts on is checked here against the central directory.
    const uint64_t flags = zip.le(cursor + 8, 2);
    const uint64_t attributes = zip.le(cursor + 38, 4);
    const bool is_directory =
        (attributes & 0x10) != 0 || ((attributes >> 16) & 0xF000) == 0x4000 || (!name.empty() && name.back() == '/');
    if (is_directory) zip.fail("record " + name + " is marked as a directory");
    if (flags & 0x1) zip.fail("record " + name + " is encrypted");
    if (method != 0 && method != 8) zip.fail("record " + name + " uses an unknown compression method");
    if (method == 0 && zip.le(cursor + 24, 4) != zip.le(cursor + 20, 4)) {
      zip.fail("record " + name + " is stored with two different sizes");
    }
    if (zip.le(local, 4) != 0x04034b50) zip.fail("record " + name + " has no local header");
    if (zip.le(local + 8, 2) != method || zip.le(local + 26, 2) != name_length ||
        local + 30 + name_length > zip.size() || std::string(zip.at(local + 30), name_length) != name) {
      zip.fail("record " + name + " has a local header that disagrees with the central directory");
    }
    const uint64_t data = local + 30 + zip.le(local + 26, 2) + zip.le(local + 28, 2);
    if (data > zip.size() || stored > zip.size() - data) zip.fail("record " + name + " runs past the end (truncated?)");
    if (method == 0 && crc32(zip.at(data), stored) != expected_crc) {
      zip.fail("record " + name + " fails its CRC-32 check");
    }
    if (method != 0) {
      const auto slash = name.find('/');
      compressed.push_back({slash == std::string::npos ? name : name.substr(slash + 1), expected_crc});
    }
    cursor += 46 + name_length + extra_length + comment_length;
  }
  return compressed;
}

}  // namespace

std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_verified_archive(const std::vector<char>& bytes,
                                                                              const std::string& path) {
  const auto compressed = verify_stored_records(bytes, path);
  auto adapter = std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), bytes.size());
  auto reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(adapter);
  for (const auto& record : compressed) {
    if (!reader->hasRecord(record.name)) {
      throw FileError(path + " is damaged or not a PyTorch zip archive: record " + record.name + " cannot be read");
    }
    auto [data, size] = reader->getRecord(record.name);
    if (crc32(static_cast<const char*>(data.get()), size) != record.crc) {
      throw FileError(path + " is damaged: record " + record.name + " fails its CRC-32 check");
    }
  }
  return reader;
}

}  // namespace adatt
