#include "text_dictionary_wrap.h"

#include <algorithm>
#include <string>

#include "adatt/errors.h"
#include "errors.h"

namespace adatt::binding {
namespace {

// Values per handle scope when converting whole vocabularies: millions of live handles in one
// scope make every minor GC of the loop scan them all (quadratic in the vocabulary's size).
constexpr uint32_t kHandleBatch = 4096;

template <typename Array>
Array typed_array(const Napi::Value& value, napi_typedarray_type type, const char* what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_invalid(std::string("TextDictionary.codeStrings: ") + what);
  }
  return value.As<Array>();
}

size_t to_index(const Napi::Value& value, const char* field) {
  if (!value.IsNumber()) throw_invalid(std::string("TextDictionary.codeStrings: ") + field + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (number < 0 || number != static_cast<double>(static_cast<size_t>(number))) {
    throw_invalid(std::string("TextDictionary.codeStrings: ") + field + " must be a non-negative integer");
  }
  return static_cast<size_t>(number);
}

}  // namespace

Napi::Function AddonTextDictionary::Define(Napi::Env env) {
  return DefineClass(env, "TextDictionary",
                     {
                         InstanceMethod<&AddonTextDictionary::CodeStrings>("codeStrings"),
                         InstanceMethod<&AddonTextDictionary::Add>("add"),
                         InstanceMethod<&AddonTextDictionary::Seal>("seal"),
                         InstanceMethod<&AddonTextDictionary::Values>("values"),
                         InstanceMethod<&AddonTextDictionary::Dispose>("dispose"),
                     });
}

AddonTextDictionary::AddonTextDictionary(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<AddonTextDictionary>(info), dictionary_(std::make_unique<TextDictionary>()) {}

TextDictionary& AddonTextDictionary::live() {
  if (!dictionary_) throw DisposedError("the text dictionary");
  return *dictionary_;
}

// codeStrings(strings, validity, first, count, codes, offset): synchronous, a chunk at a time (a
// DuckDB chunk is 2,048 rows), because the strings' pointers are valid only while the caller holds
// the chunk.
Napi::Value AddonTextDictionary::CodeStrings(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto& dictionary = live();
    const auto strings = typed_array<Napi::Uint8Array>(info[0], napi_uint8_array, "strings must be a Uint8Array");
    const bool all_valid = info[1].IsNull() || info[1].IsUndefined();
    const auto validity =
        all_valid ? Napi::Uint8Array()
                  : typed_array<Napi::Uint8Array>(info[1], napi_uint8_array, "validity must be a Uint8Array or null");
    const size_t first = to_index(info[2], "first");
    const size_t count = to_index(info[3], "count");
    auto codes = typed_array<Napi::Int32Array>(info[4], napi_int32_array, "codes must be an Int32Array");
    const size_t offset = to_index(info[5], "offset");
    const size_t end = first + count;
    if (strings.ByteLength() < end * kDuckDBStringBytes)
      throw_invalid("TextDictionary.codeStrings: strings is shorter than first + count strings");
    if (!all_valid && validity.ByteLength() < (end + 7) / 8) {
      throw_invalid("TextDictionary.codeStrings: validity must hold first + count bits");
    }
    if (codes.ElementLength() < offset + count)
      throw_invalid("TextDictionary.codeStrings: codes has no room for count codes at offset");
    dictionary.code_duckdb_strings(strings.Data(), all_valid ? nullptr : validity.Data(), first, count,
                                   codes.Data() + offset);
    memory_.track(info.Env(), static_cast<int64_t>(dictionary.bytes()));
    return info.Env().Undefined();
  });
}

// add(values): the code of each string of the array (new ones are added, sealed or not).
Napi::Value AddonTextDictionary::Add(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto& dictionary = live();
    if (!info[0].IsArray()) throw_invalid("TextDictionary.add: values must be an array of strings");
    const auto values = info[0].As<Napi::Array>();
    auto codes = Napi::Int32Array::New(info.Env(), values.Length());
    std::string text;
    for (uint32_t from = 0; from < values.Length(); from += kHandleBatch) {
      Napi::HandleScope scope(info.Env());  // as in values(): no million handles in one scope
      const uint32_t end = std::min(values.Length(), from + kHandleBatch);
      for (uint32_t k = from; k < end; ++k) {
        const Napi::Value value = values.Get(k);
        if (!value.IsString()) throw_invalid("TextDictionary.add: values[" + std::to_string(k) + "] is not a string");
        text = value.As<Napi::String>().Utf8Value();
        codes[k] = dictionary.add(text);
      }
    }
    memory_.track(info.Env(), static_cast<int64_t>(dictionary.bytes()));
    return codes;
  });
}

Napi::Value AddonTextDictionary::Seal(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    live().seal();
    return info.Env().Undefined();
  });
}

Napi::Value AddonTextDictionary::Values(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const auto& values = live().values();
    auto result = Napi::Array::New(info.Env(), values.size());
    for (size_t from = 0; from < values.size(); from += kHandleBatch) {
      Napi::HandleScope scope(info.Env());
      const size_t end = std::min(values.size(), from + size_t{kHandleBatch});
      for (size_t code = from; code < end; ++code) {
        result.Set(static_cast<uint32_t>(code),
                   Napi::String::New(info.Env(), values[code].data(), values[code].size()));
      }
    }
    return result;
  });
}

Napi::Value AddonTextDictionary::Dispose(const Napi::CallbackInfo& info) {
  dictionary_.reset();
  memory_.release();
  return info.Env().Undefined();
}

}  // namespace adatt::binding
