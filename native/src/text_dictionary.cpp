#include "adatt/text_dictionary.h"

#include <algorithm>
#include <cstring>

namespace adatt {
namespace {

constexpr size_t kFirstSlots = 1024;
constexpr size_t kBlockBytes = size_t{1} << 20;
constexpr int32_t kEmptySlot = -1;

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

// 8 bytes at a time: ids are short, so this is a few multiplications per cell.
uint64_t hash_text(std::string_view text) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ text.size();
  size_t at = 0;
  for (; at + 8 <= text.size(); at += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + at, 8);
    h = mix(h ^ word);
  }
  if (at < text.size()) {
    uint64_t word = 0;
    std::memcpy(&word, text.data() + at, text.size() - at);
    h = mix(h ^ word);
  }
  return h;
}

}  // namespace

TextDictionary::TextDictionary() : slots_(kFirstSlots, Slot{0, 0, kEmptySlot}) {}

TextDictionary::Key TextDictionary::key_of(std::string_view text) {
  Key key{text, hash_text(text), 0, 0};
  if (!text.empty()) std::memcpy(&key.head, text.data(), std::min<size_t>(text.size(), sizeof key.head));
  key.tag = static_cast<uint32_t>(key.hash >> 40) << 8 | static_cast<uint32_t>(std::min<size_t>(text.size(), 255));
  return key;
}

std::string_view TextDictionary::store(std::string_view text) {
  if (text.empty()) return {};
  if (block_used_ + text.size() > block_size_) {
    block_size_ = std::max(kBlockBytes, text.size());
    blocks_.push_back(std::make_unique<char[]>(block_size_));
    block_used_ = 0;
  }
  char* at = blocks_.back().get() + block_used_;
  std::memcpy(at, text.data(), text.size());
  block_used_ += text.size();
  stored_bytes_ += text.size();
  return {at, text.size()};
}

void TextDictionary::grow_slots() {
  std::vector<Slot> grown(slots_.size() * 2, Slot{0, 0, kEmptySlot});
  const size_t mask = grown.size() - 1;
  for (const Slot& slot : slots_) {
    if (slot.code == kEmptySlot) continue;
    size_t at = hashes_[slot.code] & mask;
    while (grown[at].code != kEmptySlot) at = (at + 1) & mask;
    grown[at] = slot;
  }
  slots_ = std::move(grown);
}

int32_t TextDictionary::add(std::string_view text) { return code_of(key_of(text), true); }

int32_t TextDictionary::code_of(const Key& key, bool insert) {
  const size_t mask = slots_.size() - 1;
  size_t at = key.hash & mask;
  for (; slots_[at].code != kEmptySlot; at = (at + 1) & mask) {
    const Slot& slot = slots_[at];
    // Up to 8 bytes, the head and the exact length in the tag decide; longer values are compared.
    if (slot.tag == key.tag && slot.head == key.head &&
        (key.text.size() <= sizeof key.head || values_[slot.code] == key.text)) {
      return slot.code;
    }
  }
  if (!insert) return kUnknownCode;
  const auto code = static_cast<int32_t>(values_.size());
  slots_[at] = Slot{key.head, key.tag, code};
  hashes_.push_back(key.hash);
  values_.push_back(store(key.text));
  if (values_.size() * 2 > slots_.size()) grow_slots();  // load factor at most 1/2
  return code;
}

void TextDictionary::code_duckdb_strings(const uint8_t* strings, const uint8_t* validity, size_t first, size_t count,
                                         int32_t* codes) {
  // In batches: every key of a batch is hashed and its slot prefetched before the first lookup, so
  // that the cache misses of a large dictionary overlap instead of following one another.
  constexpr size_t kBatch = 64;
  Key keys[kBatch];
  bool valid[kBatch];
  for (size_t from = 0; from < count; from += kBatch) {
    const size_t batch = std::min(kBatch, count - from);
    const size_t mask = slots_.size() - 1;
    for (size_t i = 0; i < batch; ++i) {
      const size_t row = first + from + i;
      valid[i] = validity == nullptr || ((validity[row / 8] >> (row % 8)) & 1) != 0;
      if (!valid[i]) continue;
      const uint8_t* cell = strings + row * kDuckDBStringBytes;
      uint32_t length;
      std::memcpy(&length, cell, sizeof length);
      const char* text;
      if (length <= kDuckDBInlinedBytes) {
        text = reinterpret_cast<const char*>(cell + 4);
      } else {
        std::memcpy(&text, cell + 8, sizeof text);
      }
      keys[i] = key_of({text, length});
      __builtin_prefetch(&slots_[keys[i].hash & mask]);
    }
    for (size_t i = 0; i < batch; ++i) codes[from + i] = valid[i] ? code_of(keys[i], !sealed_) : kNullCode;
  }
}

size_t TextDictionary::bytes() const {
  return stored_bytes_ + slots_.capacity() * sizeof(Slot) + hashes_.capacity() * sizeof(uint64_t) +
         values_.capacity() * sizeof(std::string_view);
}

}  // namespace adatt
