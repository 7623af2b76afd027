#include "planetbridge/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "planetbridge/error.h"

namespace pb {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
  }
  return 0;
}

bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> names[] = {
      {"f32", DType::f32}, {"f64", DType::f64}, {"i32", DType::i32}, {"i64", DType::i64}};
  for (const auto& [name, t] : names)
    if (s == name) { *out = t; return true; }
  return false;
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f64; }

int64_t element_count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("", "negative dimension in shape " + shape_str(shape));
    // Bytes must fit too: 8-byte elements, so keep counts below 2^60.
    if (__builtin_mul_overflow(n, d, &n) || n > (int64_t(1) << 60))
      throw Error("", "shape " + shape_str(shape) + " has too many elements");
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < shape.size(); ++i) o << (i ? ", " : "") << shape[i];
  o << ']';
  return o.str();
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) throw Error("", "tensor dimension must be >= 0, got shape " + shape_str(shape_));
  size_t bytes = align_up(std::max<size_t>(nbytes(), 1));
  void* p = std::aligned_alloc(kAlignment, bytes);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  data_ = std::shared_ptr<void>(p, std::free);
}

Tensor Tensor::view(DType dtype, Shape shape, const void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  element_count(t.shape_);  // rejects negative or overflowing shapes
  t.data_ = std::shared_ptr<void>(std::move(owner), const_cast<void*>(data));
  return t;
}

void Tensor::check_type(DType t) const {
  if (t != dtype_)
    throw Error("", std::string("tensor holds ") + dtype_name(dtype_) + ", accessed as " + dtype_name(t));
}

Tensor Tensor::clone() const {
  Tensor out(dtype_, shape_);
  if (nbytes()) std::memcpy(out.raw(), raw(), nbytes());
  return out;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (element_count(shape) != numel())
    throw Error("", "cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor out = *this;
  out.shape_ = std::move(shape);
  return out;
}

namespace {
template <typename From, typename To>
void convert(const void* src, void* dst, int64_t n) {
  const From* s = static_cast<const From*>(src);
  To* d = static_cast<To*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<To>(s[i]);
}

template <typename From>
void convert_from(const void* src, void* dst, DType to, int64_t n) {
  switch (to) {
    case DType::f32: convert<From, float>(src, dst, n); break;
    case DType::f64: convert<From, double>(src, dst, n); break;
    case DType::i32: convert<From, int32_t>(src, dst, n); break;
    case DType::i64: convert<From, int64_t>(src, dst, n); break;
  }
}
}  // namespace

Tensor Tensor::cast(DType to) const {
  if (to == dtype_) return clone();
  Tensor out(to, shape_);
  switch (dtype_) {
    case DType::f32: convert_from<float>(raw(), out.raw(), to, numel()); break;
    case DType::f64: convert_from<double>(raw(), out.raw(), to, numel()); break;
    case DType::i32: convert_from<int32_t>(raw(), out.raw(), to, numel()); break;
    case DType::i64: convert_from<int64_t>(raw(), out.raw(), to, numel()); break;
  }
  return out;
}

bool Tensor::bit_equal(const Tensor& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ &&
         (nbytes() == 0 || std::memcmp(raw(), other.raw(), nbytes()) == 0);
}

}  // namespace pb
