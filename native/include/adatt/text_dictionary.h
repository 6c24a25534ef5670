// Dictionary coding of text columns for the data layer: every distinct string gets a code, in order
// of first appearance, so that a column of millions of cells becomes one int32 per row plus its
// distinct values (lib/data/table.ts, TextColumn).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace adatt {

// Code of a null cell (lib/data/table.ts NULL_CODE).
constexpr int32_t kNullCode = -1;
// Code of a value a sealed dictionary does not hold (lib/data/engine.ts UNKNOWN_CODE).
constexpr int32_t kUnknownCode = -2;

// The 16-byte string of DuckDB's C API (`duckdb_string_t`, duckdb.h): the length, then either the
// string itself inlined (up to 12 bytes) or a 4-byte prefix and a pointer into the vector's heap.
constexpr size_t kDuckDBStringBytes = 16;
constexpr uint32_t kDuckDBInlinedBytes = 12;

class TextDictionary {
 public:
  TextDictionary();

  // The code of `text`, which gets the next free one when it is new (even when sealed).
  int32_t add(std::string_view text);
  // From now on, values the dictionary does not hold get kUnknownCode instead of a code of their
  // own: a fixed vocabulary looked up cell by cell, which never grows with the data.
  void seal() { sealed_ = true; }

  // Codes of `count` strings of a DuckDB VARCHAR vector (an array of duckdb_string_t, whose
  // pointers stay valid while the vector's chunk lives), from row `first`; `validity` is the
  // vector's bit mask, bit r of byte r / 8 for row r (nullptr: every row valid). Null rows get
  // kNullCode.
  void code_duckdb_strings(const uint8_t* strings, const uint8_t* validity, size_t first, size_t count, int32_t* codes);

  // The distinct values, by code.
  const std::vector<std::string_view>& values() const { return values_; }
  size_t bytes() const;

 private:
  // A slot of the open-addressing table (linear probing): the code, with what decides most
  // comparisons without touching the value (its first 8 bytes, its length up to 255, and 24 bits of
  // its hash), so that a lookup of a short id costs one cache line, whatever the dictionary's size.
  // std::unordered_map would allocate a node per distinct value, and columns have millions of them.
  struct Slot {
    uint64_t head;
    uint32_t tag;
    int32_t code;
  };
  struct Key {
    std::string_view text;
    uint64_t hash;
    uint64_t head;
    uint32_t tag;
  };
  static Key key_of(std::string_view text);
  // The code of the key's text: the one it got when first seen, else the next free one (or
  // kUnknownCode without `insert`).
  int32_t code_of(const Key& key, bool insert);
  std::string_view store(std::string_view text);
  void grow_slots();

  std::vector<Slot> slots_;
  std::vector<uint64_t> hashes_;
  std::vector<std::string_view> values_;
  // The values' bytes, in blocks that never move (the views above point into them).
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_used_ = 0;
  size_t block_size_ = 0;
  size_t stored_bytes_ = 0;
  bool sealed_ = false;
};

}  // namespace adatt
