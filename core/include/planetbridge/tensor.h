#pragma once
// Dense, row-major, 64-byte-aligned tensors: the unit of data in streams, the IR and .entity.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pb {

enum class DType : uint8_t { f32 = 0, f64 = 1, i32 = 2, i64 = 3 };

using Shape = std::vector<int64_t>;

const char* dtype_name(DType t);
size_t dtype_size(DType t);
// Parses "f32", "f64", "i32", "i64"; returns false for anything else.
bool parse_dtype(const std::string& s, DType* out);
bool is_float(DType t);

int64_t element_count(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3]"

constexpr size_t kAlignment = 64;
inline size_t align_up(size_t n, size_t a = kAlignment) { return (n + a - 1) / a * a; }

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };

// A tensor owns (shares) one aligned buffer. Copies are shallow; clone() is deep.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-filled

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return element_count(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return !data_; }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }
  template <typename T> T* data() { check_type(dtype_of<T>::value); return static_cast<T*>(raw()); }
  template <typename T> const T* data() const {
    check_type(dtype_of<T>::value);
    return static_cast<const T*>(raw());
  }

  // A tensor over memory it does not allocate: `owner` keeps the bytes alive (null: the caller
  // guarantees they outlive every copy, e.g. a plugin's view of the host's stream).
  static Tensor view(DType dtype, Shape shape, const void* data, std::shared_ptr<void> owner = nullptr);

  Tensor clone() const;
  // Same bytes, another shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // Element-wise conversion between any two dtypes (floats round to nearest).
  Tensor cast(DType to) const;
  // Bytewise equality of dtype, shape and data.
  bool bit_equal(const Tensor& other) const;

 private:
  void check_type(DType t) const;
  DType dtype_ = DType::f32;
  Shape shape_;
  std::shared_ptr<void> data_;
};

}  // namespace pb
