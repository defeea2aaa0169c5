#include "data/imagenet/npy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "common/error.h"
#include "data/imagenet/transform.h"

namespace lth::data::imagenet {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr int64_t kMaxImageSide = 1 << 16;  // as the image decoders' per-side limit

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A read-only mapping of a whole file, shared by the tensors that view it.
class Mapping {
 public:
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~Mapping() { ::munmap(addr_, size_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_;
  size_t size_;
};

std::shared_ptr<Mapping> map_file(const fs::path& path) {
  // O_NONBLOCK: opening a FIFO planted under an array's name must not wait for a writer.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  require(fd.get() >= 0, "cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  require(::fstat(fd.get(), &st) == 0, "cannot stat " + path.string());
  require(S_ISREG(st.st_mode), path.string() + " is not a regular file");
  const size_t size = static_cast<size_t>(st.st_size);
  require(size > 0, path.string() + " is empty");
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  require(addr != MAP_FAILED, "cannot map " + path.string() + ": " + std::strerror(errno));
  return std::make_shared<Mapping>(addr, size);
}

struct DtypeInfo {
  torch::ScalarType type;
  size_t itemsize;
  bool widen_unsigned;  // u2/u4: no torch dtype; copied into the next signed size
};

DtypeInfo dtype_of(const std::string& descr, const std::string& what) {
  require(descr.size() >= 3, what + ": bad dtype '" + descr + "'");
  const char order = descr[0];
  const std::string kind = descr.substr(1);
  const bool single_byte = kind == "u1" || kind == "i1" || kind == "b1";
  require(order == '<' || order == '|' || (order == '=' && single_byte),
          what + ": big-endian dtype '" + descr + "' is not supported");
  if (kind == "u1") return {torch::kUInt8, 1, false};
  if (kind == "i1") return {torch::kInt8, 1, false};
  if (kind == "b1") return {torch::kBool, 1, false};
  if (kind == "i2") return {torch::kInt16, 2, false};
  if (kind == "i4") return {torch::kInt32, 4, false};
  if (kind == "i8") return {torch::kInt64, 8, false};
  if (kind == "u2") return {torch::kInt32, 2, true};
  if (kind == "u4") return {torch::kInt64, 4, true};
  if (kind == "f4") return {torch::kFloat32, 4, false};
  if (kind == "f8") return {torch::kFloat64, 8, false};
  throw UserError(what + ": unsupported dtype '" + descr + "'");
}

// NumPy's own reader refuses headers over 10,000 bytes (max_header_size, NumPy >= 1.24)
// unless told otherwise; a real header (descr, order, shape) is under 200 bytes.
constexpr size_t kMaxHeaderBytes = 10000;
// int64 has 19 digits; anything longer is an overflow, rejected before it is converted.
constexpr size_t kMaxDigits = 19;

// A strict, bounded scanner for the header: the Python dict literal that NumPy writes,
//   {'descr': '<u1', 'fortran_order': False, 'shape': (2, 3), }
// followed by padding spaces and a newline. Exactly the three keys, each once; string
// values without escapes; a shape tuple of non-negative decimal integers (Python's
// one-element "(5,)" form included). One pass, no recursion, no backtracking: the cost is
// linear in the (bounded) header whatever it holds.
class HeaderScanner {
 public:
  HeaderScanner(const char* text, size_t size, const std::string& what)
      : p_(text), end_(text + size), what_(what) {}

  NpyHeader scan() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal("a key");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        once(have_descr, key);
        h.descr = string_literal("the descr value");
      } else if (key == "fortran_order") {
        once(have_order, key);
        h.fortran_order = boolean();
      } else if (key == "shape") {
        once(have_shape, key);
        h.shape = shape_tuple();
      } else {
        fail("unexpected key '" + printable(key) + "' (only descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++p_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}' after '" + key + "'");
    }
    ++p_;  // '}'
    skip_space();
    if (p_ != end_) fail("unexpected text after the header dictionary");
    if (!have_descr) fail("no 'descr'");
    if (!have_order) fail("no 'fortran_order'");
    if (!have_shape) fail("no 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw UserError(what_ + ": bad .npy header: " + problem);
  }
  char peek() const { return p_ < end_ ? *p_ : '\0'; }
  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }
  void once(bool& seen, const std::string& key) {
    if (seen) fail("'" + key + "' appears twice");
    seen = true;
  }
  // Keeps error messages one printable line whatever bytes the file holds.
  static std::string printable(const std::string& text) {
    std::string out;
    for (const char c : text.substr(0, 40))
      out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return text.size() > 40 ? out + "..." : out;
  }
  std::string string_literal(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(std::string("expected a quoted string as ") + what);
    const char* start = ++p_;
    while (p_ < end_ && *p_ != quote) {
      if (*p_ == '\\' || *p_ == '\n') fail(std::string("unsupported character in ") + what);
      ++p_;
    }
    if (p_ == end_) fail(std::string("unterminated string in ") + what);
    std::string out(start, p_);
    ++p_;
    return out;
  }
  bool boolean() {
    const auto word = [&](const char* w, size_t n) {
      if (static_cast<size_t>(end_ - p_) >= n && std::memcmp(p_, w, n) == 0) {
        p_ += n;
        return true;
      }
      return false;
    };
    if (word("True", 4)) return true;
    if (word("False", 5)) return false;
    fail("fortran_order must be True or False");
  }
  int64_t dimension() {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    const size_t digits = static_cast<size_t>(p_ - start);
    if (digits == 0) fail("shape entries must be non-negative integers");
    if (digits > 1 && *start == '0') fail("shape entry with a leading zero");
    if (digits > kMaxDigits) fail("shape entry too large");
    int64_t value = 0;
    for (const char* d = start; d < p_; ++d)
      if (__builtin_mul_overflow(value, int64_t{10}, &value) ||
          __builtin_add_overflow(value, int64_t{*d - '0'}, &value))
        fail("shape entry too large");
    if (peek() == 'L') ++p_;  // Python 2 wrote long integers as "3L"
    return value;
  }
  std::vector<int64_t> shape_tuple() {
    expect('(');
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (shape.size() >= kMaxRank) fail("shape has more than 32 dimensions");
      shape.push_back(dimension());
      skip_space();
      trailing_comma = peek() == ',';
      if (trailing_comma) {
        ++p_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++p_;
    // "(5)" is the integer 5 in Python, not a tuple.
    if (shape.size() == 1 && !trailing_comma) fail("shape is not a tuple");
    return shape;
  }

  static constexpr size_t kMaxRank = 32;  // NumPy's NPY_MAXDIMS before 2.0
  const char* p_;
  const char* end_;
  const std::string& what_;
};

}  // namespace

NpyHeader parse_npy_header(const uint8_t* bytes, size_t size, const std::string& what) {
  require(size >= 10 && std::memcmp(bytes, kMagic, 6) == 0, what + ": not a .npy file (bad magic)");
  const int major = bytes[6];
  require(major >= 1 && major <= 3,
          what + ": unsupported .npy format version " + std::to_string(major));
  size_t length = 0, start = 0;
  if (major == 1) {
    length = bytes[8] | (size_t(bytes[9]) << 8);
    start = 10;
  } else {
    require(size >= 12, what + ": truncated .npy header");
    length =
        bytes[8] | (size_t(bytes[9]) << 8) | (size_t(bytes[10]) << 16) | (size_t(bytes[11]) << 24);
    start = 12;
  }
  require(length <= kMaxHeaderBytes, what + ": .npy header of " + std::to_string(length) +
                                         " bytes exceeds the " + std::to_string(kMaxHeaderBytes) +
                                         "-byte limit (NumPy's own)");
  require(length <= size - start, what + ": truncated .npy header");
  NpyHeader h =
      HeaderScanner(reinterpret_cast<const char*>(bytes + start), length, what).scan();
  h.data_offset = start + length;
  return h;
}

torch::Tensor read_npy(const fs::path& path) {
  const std::string what = path.string();
  auto mapping = map_file(path);
  const NpyHeader h = parse_npy_header(mapping->data(), mapping->size(), what);
  require(!h.fortran_order, what + ": Fortran-order arrays are not supported");
  const DtypeInfo dt = dtype_of(h.descr, what);
  // Overflow-checked: a shape whose product wraps must not pass the size check below.
  size_t count = 1, bytes = 0;
  for (int64_t d : h.shape)
    require(!__builtin_mul_overflow(count, static_cast<size_t>(d), &count),
            what + ": shape too large to address");
  require(!__builtin_mul_overflow(count, dt.itemsize, &bytes),
          what + ": shape too large to address");
  require(mapping->size() - h.data_offset >= bytes,
          what + ": truncated: " + std::to_string(mapping->size() - h.data_offset) +
              " data bytes for shape needing " + std::to_string(bytes));
  const void* data = mapping->data() + h.data_offset;
  if (dt.widen_unsigned) {
    auto out = torch::empty(h.shape, dt.type);
    for (size_t i = 0; i < count; ++i) {
      uint64_t v = 0;
      std::memcpy(&v, static_cast<const uint8_t*>(data) + i * dt.itemsize, dt.itemsize);
      if (dt.type == torch::kInt32)
        out.data_ptr<int32_t>()[i] = static_cast<int32_t>(v);
      else
        out.data_ptr<int64_t>()[i] = static_cast<int64_t>(v);
    }
    return out;
  }
  // Unaligned data (possible in odd files) cannot be viewed safely as wider types: copy.
  if (reinterpret_cast<uintptr_t>(data) % dt.itemsize != 0) {
    auto out = torch::empty(h.shape, dt.type);
    if (bytes > 0) std::memcpy(out.data_ptr(), data, bytes);  // an empty tensor has no buffer
    return out;
  }
  // View the mapping; the tensor's deleter keeps it alive.
  auto keep = new std::shared_ptr<Mapping>(mapping);
  return torch::from_blob(
      const_cast<void*>(data), h.shape, [keep](void*) { delete keep; },
      torch::TensorOptions().dtype(dt.type));
}

void write_npy(const fs::path& path, const torch::Tensor& tensor) {
  const auto t = tensor.contiguous().cpu();
  std::string descr;
  switch (t.scalar_type()) {
    case torch::kUInt8:
      descr = "|u1";
      break;
    case torch::kInt8:
      descr = "|i1";
      break;
    case torch::kBool:
      descr = "|b1";
      break;
    case torch::kInt16:
      descr = "<i2";
      break;
    case torch::kInt32:
      descr = "<i4";
      break;
    case torch::kInt64:
      descr = "<i8";
      break;
    case torch::kFloat32:
      descr = "<f4";
      break;
    case torch::kFloat64:
      descr = "<f8";
      break;
    default:
      throw UserError("write_npy: unsupported dtype");
  }
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += (i > 0 ? ", " : "") + std::to_string(t.size(i));
  shape += t.dim() == 1 ? ",)" : ")";  // Python's one-element tuple is "(5,)"
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that the data starts at a multiple of 64, then a newline.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  require(out.good(), "cannot write " + path.string());
  out.write(kMagic, 6);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char len_bytes[2] = {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
  out.write(len_bytes, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  // close() flushes: a full disk shows up there, not in the buffered writes above.
  out.close();
  require(!out.fail(), "cannot write " + path.string() + " (disk full?)");
}

NpyDataset::NpyDataset(std::string name, torch::Tensor images, torch::Tensor labels,
                       int64_t num_classes, int64_t image_size, std::vector<int64_t> class_subset)
    : name_(std::move(name)),
      images_(std::move(images)),
      labels_(labels.to(torch::kInt64)),
      num_classes_(num_classes),
      image_size_(image_size),
      class_subset_(std::move(class_subset)) {
  require(images_.scalar_type() == torch::kUInt8 && images_.dim() == 4 && images_.size(3) == 3,
          name_ + ": images must be uint8 [N, H, W, 3]");
  // The resize reads a whole picture: an empty or absurd side would make it read outside.
  require(images_.size(1) >= 1 && images_.size(2) >= 1 && images_.size(1) <= kMaxImageSide &&
              images_.size(2) <= kMaxImageSide,
          name_ + ": images have side " + std::to_string(images_.size(1)) + "x" +
              std::to_string(images_.size(2)) + ", expected 1.." + std::to_string(kMaxImageSide));
  require(image_size_ >= 1 && image_size_ <= kMaxImageSide,
          name_ + ": output image size " + std::to_string(image_size_) + " out of range");
  require(labels_.dim() == 1 && labels_.size(0) == images_.size(0),
          name_ + ": labels must be [N] with N = " + std::to_string(images_.size(0)));
  if (labels_.numel() > 0) {
    require(labels_.min().item<int64_t>() >= 0 && labels_.max().item<int64_t>() < num_classes_,
            name_ + ": labels outside 0.." + std::to_string(num_classes_ - 1));
  }
}

std::shared_ptr<NpyDataset> NpyDataset::open(const std::string& name, const fs::path& dir,
                                             int64_t num_classes, int64_t image_size,
                                             const std::vector<int64_t>* positions) {
  auto images = read_npy(dir / "test_images.npy");
  auto labels = read_npy(dir / "test_labels.npy");
  require(labels.scalar_type() != torch::kFloat32 && labels.scalar_type() != torch::kFloat64,
          (dir / "test_labels.npy").string() + ": labels must be integers");
  std::vector<int64_t> subset;
  if (positions != nullptr) {
    subset = *positions;
    const auto count = static_cast<int64_t>(subset.size());
    labels = labels.to(torch::kInt64).contiguous();
    if (labels.numel() > 0) {
      const int64_t low = labels.min().item<int64_t>(), high = labels.max().item<int64_t>();
      require(low >= 0 && high < count,
              (dir / "test_labels.npy").string() + ": label " + std::to_string(low < 0 ? low : high) +
                  " is not a position in the " + std::to_string(count) +
                  "-class list of this set (labels must be 0.." + std::to_string(count - 1) +
                  ", as the reference stores them)");
    }
    labels = torch::tensor(subset, torch::kInt64).index_select(0, labels);
  }
  return std::make_shared<NpyDataset>(name, images, labels, num_classes, image_size, subset);
}

std::optional<Example> NpyDataset::get(int64_t index,
                                       Rng& /*rng: no randomness at test time*/) const {
  const auto src = images_[index];
  const int h = static_cast<int>(src.size(0));
  const int w = static_cast<int>(src.size(1));
  const int64_t label = labels_[index].item<int64_t>();
  if (h == image_size_ && w == image_size_) return Example{src.clone(), label};
  // Stored at another size: the eval transform's resize of the whole array image.
  auto out = torch::empty({image_size_, image_size_, 3}, torch::kUInt8);
  const auto contiguous = src.contiguous();
  resize_bicubic(contiguous.data_ptr<uint8_t>(), h, w, Region{0, 0, double(h), double(w)},
                 static_cast<int>(image_size_), static_cast<int>(image_size_),
                 out.data_ptr<uint8_t>());
  return Example{out, label};
}

std::string NpyDataset::describe() const {
  return name_ + " (" + std::to_string(size()) + " images from arrays, " +
         std::to_string(images_.size(1)) + "px stored, " + std::to_string(image_size_) + "px out)";
}

}  // namespace lth::data::imagenet
