#include "adatt/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <variant>

#include "adatt/errors.h"
#include "adatt/weights_io.h"
#include "adatt/zip_check.h"

namespace adatt {
namespace {

// Values on the unpickler's stack. Containers are shared so the memo and the stack see one object.
struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Global {
  std::string module;
  std::string name;
};

struct Value {
  enum class Kind { None, Bool, Int, Double, String, Tuple, List, Dict, Tensor, Global, Storage };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string text;
  std::vector<ValuePtr> items;                         // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order
  at::Tensor tensor;                                   // tensor, storage
  Global global;
  c10::ScalarType storage_type = c10::ScalarType::Float;  // a storage class (torch.FloatStorage)
};

ValuePtr make(Value::Kind kind) {
  auto value = std::make_shared<Value>();
  value->kind = kind;
  return value;
}

const std::map<std::string, c10::ScalarType>& storage_types() {
  static const std::map<std::string, c10::ScalarType> types = {
      {"FloatStorage", c10::ScalarType::Float}, {"DoubleStorage", c10::ScalarType::Double},
      {"HalfStorage", c10::ScalarType::Half},   {"BFloat16Storage", c10::ScalarType::BFloat16},
      {"LongStorage", c10::ScalarType::Long},   {"IntStorage", c10::ScalarType::Int},
      {"ShortStorage", c10::ScalarType::Short}, {"CharStorage", c10::ScalarType::Char},
      {"ByteStorage", c10::ScalarType::Byte},   {"BoolStorage", c10::ScalarType::Bool},
  };
  return types;
}

class Unpickler {
 public:
  Unpickler(std::string path, caffe2::serialize::PyTorchStreamReader& archive, const std::vector<char>& program)
      : path_(std::move(path)), archive_(archive), data_(program) {}

  ValuePtr run() {
    while (true) {
      const uint8_t op = read_u8();
      switch (op) {
        case 0x80: read_u8(); break;      // PROTO
        case 0x95: read_bytes(8); break;  // FRAME (a length hint)
        case '.': return pop();           // STOP
        case '(': marks_.push_back(stack_.size()); break;
        case 'N': push(make(Value::Kind::None)); break;
        case 0x88: push_bool(true); break;
        case 0x89: push_bool(false); break;
        case 'K': push_int(read_u8()); break;
        case 'M': push_int(read_u16()); break;
        case 'J': push_int(static_cast<int32_t>(read_u32())); break;
        case 0x8a: push_int(read_long(read_u8())); break;
        case 'G': push_double(); break;
        case 'X': push_string(read_u32()); break;
        case 0x8c: push_string(read_u8()); break;
        case 0x8d: push_string(read_u64()); break;
        case ')': push(make(Value::Kind::Tuple)); break;
        case ']': push(make(Value::Kind::List)); break;
        case '}': push(make(Value::Kind::Dict)); break;
        case 't': push_tuple(pop_to_mark()); break;
        case 0x85: push_tuple(pop_n(1)); break;
        case 0x86: push_tuple(pop_n(2)); break;
        case 0x87: push_tuple(pop_n(3)); break;
        case 'l': push_list(pop_to_mark()); break;
        case 'a': append(pop_n(1)); break;
        case 'e': append(pop_to_mark()); break;
        case 's': set_items(pop_n(2)); break;
        case 'u': set_items(pop_to_mark()); break;
        case 'd': {
          auto dict = make(Value::Kind::Dict);
          push(dict);
          set_items_on(dict, pop_to_mark_below_top());
          break;
        }
        case 'q': memoize(read_u8()); break;
        case 'r': memoize(read_u32()); break;
        case 0x94: memoize(memo_.size()); break;
        case 'h': push(recall(read_u8())); break;
        case 'j': push(recall(read_u32())); break;
        case 'c': {  // GLOBAL: module and name lines, read in this order
          const auto module = read_line();
          push_global(module, read_line());
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const auto name = pop_string();
          const auto module = pop_string();
          push_global(module, name);
          break;
        }
        case 'Q': push(load_storage(pop())); break;  // BINPERSID
        case 'R': reduce(); break;
        case 0x81: reduce(); break;  // NEWOBJ: cls(*args) for the classes we accept
        case 'b': build(); break;
        default: fail("unsupported pickle opcode 0x" + hex(op));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const {
    throw FileError(path_ + " is not a tensor file this library can read: " + reason);
  }

  static std::string hex(uint8_t byte) {
    const char* digits = "0123456789abcdef";
    return {digits[byte >> 4], digits[byte & 15]};
  }

  const char* read_bytes(size_t count) {
    if (count > data_.size() - position_) fail("truncated pickle data");
    const char* start = data_.data() + position_;
    position_ += count;
    return start;
  }
  uint8_t read_u8() { return static_cast<uint8_t>(*read_bytes(1)); }
  uint64_t read_le(size_t bytes) {
    const char* raw = read_bytes(bytes);
    uint64_t value = 0;
    for (size_t i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(static_cast<uint8_t>(raw[i])) << (8 * i);
    return value;
  }
  uint16_t read_u16() { return static_cast<uint16_t>(read_le(2)); }
  uint32_t read_u32() { return static_cast<uint32_t>(read_le(4)); }
  uint64_t read_u64() { return read_le(8); }
  int64_t read_long(size_t bytes) {
    if (bytes > 8) fail("integer wider than 64 bits");
    if (bytes == 0) return 0;
    uint64_t value = read_le(bytes);
    if (bytes < 8 && (value >> (8 * bytes - 1)) & 1) value |= ~uint64_t{0} << (8 * bytes);  // sign-extend
    return static_cast<int64_t>(value);
  }
  std::string read_line() {
    const size_t start = position_;
    while (position_ < data_.size() && data_[position_] != '\n') ++position_;
    if (position_ >= data_.size()) fail("truncated pickle data");
    return std::string(data_.data() + start, data_.data() + position_++);
  }

  void push(ValuePtr value) {
    if (stack_.size() > 1000000) fail("pickle stack too deep");
    stack_.push_back(std::move(value));
  }
  void push_bool(bool value) {
    auto v = make(Value::Kind::Bool);
    v->boolean = value;
    push(v);
  }
  void push_int(int64_t value) {
    auto v = make(Value::Kind::Int);
    v->integer = value;
    push(v);
  }
  void push_double() {
    const char* raw = read_bytes(8);
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(raw[i]);  // big-endian
    auto v = make(Value::Kind::Double);
    std::memcpy(&v->number, &bits, sizeof(double));
    push(v);
  }
  void push_string(uint64_t length) {
    auto v = make(Value::Kind::String);
    v->text.assign(read_bytes(length), length);
    push(v);
  }
  void push_tuple(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::Tuple);
    v->items = std::move(items);
    push(v);
  }
  void push_list(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::List);
    v->items = std::move(items);
    push(v);
  }
  void push_global(const std::string& module, const std::string& name) {
    auto v = make(Value::Kind::Global);
    v->global = {module, name};
    if (module == "torch" && storage_types().count(name)) {
      v->kind = Value::Kind::Storage;
      v->storage_type = storage_types().at(name);
    }
    push(v);
  }

  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
    auto value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }
  std::vector<ValuePtr> pop_n(size_t count) {
    if (stack_.size() < count) fail("pickle stack underflow");
    std::vector<ValuePtr> items(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
    stack_.resize(stack_.size() - count);
    return items;
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("pickle mark missing");
    const size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail("pickle mark beyond the stack");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  // DICT: the items above the mark were pushed before the dict we just pushed on top.
  std::vector<ValuePtr> pop_to_mark_below_top() {
    auto dict = pop();
    auto items = pop_to_mark();
    push(dict);
    return items;
  }
  std::string pop_string() {
    auto value = pop();
    if (value->kind != Value::Kind::String) fail("expected a string");
    return value->text;
  }
  ValuePtr& top() {
    if (stack_.empty()) fail("pickle stack underflow");
    return stack_.back();
  }

  void append(std::vector<ValuePtr> items) {
    auto& list = top();
    if (list->kind != Value::Kind::List) fail("APPEND on a non-list");
    for (auto& item : items) list->items.push_back(std::move(item));
  }
  void set_items(std::vector<ValuePtr> items) { set_items_on(top(), std::move(items)); }
  void set_items_on(const ValuePtr& dict, std::vector<ValuePtr> items) {
    if (dict->kind != Value::Kind::Dict) fail("SETITEM on a non-dict");
    if (items.size() % 2 != 0) fail("odd number of dict items");
    for (size_t i = 0; i < items.size(); i += 2) dict->entries.emplace_back(items[i], items[i + 1]);
  }

  void memoize(uint64_t index) {
    if (index > 10000000) fail("memo index out of range");
    memo_[index] = top();
  }
  ValuePtr recall(uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end()) fail("memo entry " + std::to_string(index) + " missing");
    return found->second;
  }

  // Persistent id ('storage', storage_class, key, location, numel): one record of the archive.
  ValuePtr load_storage(const ValuePtr& pid) {
    if (pid->kind != Value::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->text != "storage" ||
        pid->items[1]->kind != Value::Kind::Storage || pid->items[2]->kind != Value::Kind::String ||
        pid->items[4]->kind != Value::Kind::Int) {
      fail("unsupported persistent id");
    }
    const std::string& key = pid->items[2]->text;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const auto dtype = pid->items[1]->storage_type;
    const int64_t numel = pid->items[4]->integer;
    const std::string record = "data/" + key;
    if (numel < 0 || !archive_.hasRecord(record)) fail("missing tensor data " + record);
    auto [data, bytes] = archive_.getRecord(record);
    const size_t expected = static_cast<size_t>(numel) * c10::elementSize(dtype);
    if (bytes != expected)
      fail("tensor data " + record + " has " + std::to_string(bytes) + " bytes, expected " + std::to_string(expected));
    auto storage = make(Value::Kind::Storage);
    storage->tensor = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (bytes > 0) std::memcpy(storage->tensor.data_ptr(), data.get(), bytes);
    storages_[key] = storage;
    return storage;
  }

  std::vector<int64_t> int_tuple(const ValuePtr& value, const char* what) {
    if (value->kind != Value::Kind::Tuple && value->kind != Value::Kind::List)
      fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> ints;
    for (const auto& item : value->items) {
      if (item->kind != Value::Kind::Int) fail(std::string(what) + " holds a non-integer");
      ints.push_back(item->integer);
    }
    return ints;
  }

  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
    if (args.size() < 4 || args[0]->kind != Value::Kind::Storage || !args[0]->tensor.defined() ||
        args[1]->kind != Value::Kind::Int) {
      fail("malformed tensor record");
    }
    const auto& storage = args[0]->tensor;
    const int64_t offset = args[1]->integer;
    const auto sizes = int_tuple(args[2], "tensor size");
    const auto strides = int_tuple(args[3], "tensor stride");
    if (sizes.size() != strides.size()) fail("tensor size and stride differ in length");
    // Every element the view can reach must lie inside the storage.
    int64_t last = offset;
    bool empty = false;
    for (size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] < 0 || strides[d] < 0) fail("negative tensor size or stride");
      if (sizes[d] == 0) empty = true;
      else last += (sizes[d] - 1) * strides[d];
    }
    if (offset < 0 || (!empty && last >= storage.numel())) fail("tensor view outside its storage");
    auto tensor = make(Value::Kind::Tensor);
    tensor->tensor =
        empty ? torch::empty(sizes, storage.options()) : storage.as_strided(sizes, strides, offset).clone();
    return tensor;
  }

  void reduce() {
    auto args = pop();
    auto callable = pop();
    if (callable->kind != Value::Kind::Global || args->kind != Value::Kind::Tuple) fail("unsupported call");
    const auto& [module, name] = callable->global;
    if (module == "collections" && name == "OrderedDict") {
      push(make(Value::Kind::Dict));  // always called with no items; they follow as SETITEMS
    } else if (module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor")) {
      push(rebuild_tensor(args->items));
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != Value::Kind::Tensor) fail("malformed parameter record");
      push(args->items[0]);
    } else if (module == "torch.jit._pickle" && !args->items.empty() &&
               (name == "build_intlist" || name == "build_doublelist" || name == "build_boollist" ||
                name == "build_tensorlist" || name == "build_genericlist" || name == "restore_type_tag")) {
      push(args->items[0]);  // typed-container markers from LibTorch's pickler; the value is the first argument
    } else {
      fail("unsupported object " + module + "." + name);
    }
  }

  // BUILD sets an object's state; the only one we meet is state_dict()'s `_metadata`, which we drop.
  void build() {
    pop();
    if (top()->kind != Value::Kind::Dict) fail("unsupported BUILD");
  }

  c10::IValue to_ivalue(const ValuePtr& value, int depth = 0) {
    if (depth > 100) fail("nesting too deep");
    switch (value->kind) {
      case Value::Kind::None: return c10::IValue();
      case Value::Kind::Bool: return c10::IValue(value->boolean);
      case Value::Kind::Int: return c10::IValue(value->integer);
      case Value::Kind::Double: return c10::IValue(value->number);
      case Value::Kind::String: return c10::IValue(value->text);
      case Value::Kind::Tensor: return c10::IValue(value->tensor);
      case Value::Kind::Tuple: {
        std::vector<c10::IValue> items;
        for (const auto& item : value->items) items.push_back(to_ivalue(item, depth + 1));
        return c10::ivalue::Tuple::create(std::move(items));
      }
      case Value::Kind::List: {
        c10::impl::GenericList list(c10::AnyType::get());
        for (const auto& item : value->items) list.push_back(to_ivalue(item, depth + 1));
        return list;
      }
      case Value::Kind::Dict: {
        c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
        for (const auto& [key, item] : value->entries) {
          if (key->kind != Value::Kind::String) fail("dict key that is not a string");
          dict.insert_or_assign(key->text, to_ivalue(item, depth + 1));
        }
        return dict;
      }
      default: fail("unsupported value in the file");
    }
  }

 public:
  c10::IValue result() { return to_ivalue(run()); }

 private:
  std::string path_;
  caffe2::serialize::PyTorchStreamReader& archive_;
  const std::vector<char>& data_;
  size_t position_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, ValuePtr> storages_;
};

}  // namespace

c10::IValue load_torch_file(const std::string& path) { return load_torch_bytes(read_file(path), path); }

c10::IValue load_torch_bytes(const std::vector<char>& bytes, const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> archive;
  std::vector<char> program;
  try {
    archive = open_verified_archive(bytes, path);
    if (!archive->hasRecord("data.pkl")) {
      throw FileError(path + " is a zip archive without data.pkl (a TorchScript module? use loadTorchScript)");
    }
    auto [data, size] = archive->getRecord("data.pkl");
    const char* record = static_cast<const char*>(data.get());
    program.assign(record, record + size);
  } catch (const c10::Error& e) {
    throw FileError(path + " is not a file written by torch.save in its zip format (" +
                    std::string(e.what_without_backtrace()) +
                    "); files saved with _use_new_zipfile_serialization=False are not supported");
  }
  try {
    return Unpickler(path, *archive, program).result();
  } catch (const c10::Error& e) {
    throw FileError(path + ": " + e.what_without_backtrace());
  }
}

}  // namespace adatt
