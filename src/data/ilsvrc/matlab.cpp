#include "data/ilsvrc/matlab.h"

#include <zlib.h>

#include <cstring>

#include "common/error.h"
#include "data/ilsvrc/gzip.h"

namespace lth::data::ilsvrc {
namespace {

// Data types (MAT-File Format, Table 1-1) and array classes (Table 1-3).
enum : uint32_t {
  miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5, miUINT32 = 6, miSINGLE = 7,
  miDOUBLE = 9, miINT64 = 12, miUINT64 = 13, miMATRIX = 14, miCOMPRESSED = 15, miUTF8 = 16,
};
enum : uint32_t { mxCELL = 1, mxSTRUCT = 2, mxOBJECT = 3, mxCHAR = 4, mxSPARSE = 5, mxDOUBLE = 6,
                  mxUINT64 = 15 };

uint32_t le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // the build targets little-endian machines (as LibTorch does)
  return v;
}

size_t type_size(uint32_t t) {
  switch (t) {
    case miINT8: case miUINT8: case miUTF8: return 1;
    case miINT16: case miUINT16: return 2;
    case miINT32: case miUINT32: case miSINGLE: return 4;
    case miDOUBLE: case miINT64: case miUINT64: return 8;
    default: return 0;
  }
}

double number_at(uint32_t t, const char* p) {
  switch (t) {
    case miINT8: return static_cast<int8_t>(*p);
    case miUINT8: return static_cast<uint8_t>(*p);
    case miINT16: { int16_t v; std::memcpy(&v, p, 2); return v; }
    case miUINT16: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case miINT32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case miUINT32: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    case miSINGLE: { float v; std::memcpy(&v, p, 4); return v; }
    case miDOUBLE: { double v; std::memcpy(&v, p, 8); return v; }
    case miINT64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case miUINT64: { uint64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    default: return 0;
  }
}

struct Element {
  uint32_t type = 0;
  std::string_view data;
};

class Reader {
 public:
  Reader(std::string label, const MatLimits& limits) : label_(std::move(label)), limits_(limits) {}

  [[noreturn]] void fail(const std::string& why) const { throw UserError(label_ + ": " + why); }

  // The element at `pos` of `b`; advances `pos` past it and its padding to 8 bytes.
  Element next(std::string_view b, size_t& pos) const {
    if (b.size() - pos < 8) fail("truncated data element (MAT-file cut short or damaged)");
    const uint32_t first = le32(b.data() + pos);
    Element e;
    if (first >> 16) {  // small data element: type and size in 4 bytes, data in the next 4
      e.type = first & 0xffff;
      const uint32_t n = first >> 16;
      if (n > 4) fail("malformed small data element");
      e.data = b.substr(pos + 4, n);
      pos += 8;
      return e;
    }
    e.type = first;
    const uint64_t n = le32(b.data() + pos + 4);
    if (n > b.size() - pos - 8) fail("data element of " + std::to_string(n) + " bytes runs past the end");
    e.data = b.substr(pos + 8, n);
    pos += 8 + n;
    if (e.type != miCOMPRESSED) pos = std::min(b.size(), (pos + 7) / 8 * 8);
    return e;
  }

  void count(uint64_t n) {
    if (n > limits_.max_elements || elements_ + n > limits_.max_elements)
      fail("more than " + std::to_string(limits_.max_elements) + " array elements; refused");
    elements_ += n;
  }

  std::string inflate(std::string_view data) {
    const size_t left = limits_.max_decompressed_bytes - inflated_;
    auto out = inflate_zlib(data, left, label_ + " (compressed variable)");
    inflated_ += out.size();
    return out;
  }

  MatArray matrix(std::string_view d, int depth) {
    if (depth > limits_.max_depth) fail("arrays nested more than " + std::to_string(limits_.max_depth) + " deep");
    MatArray a;
    if (d.empty()) {  // an empty array written as a bare miMATRIX tag
      a.dims = {0, 0};
      return a;
    }
    size_t pos = 0;
    const auto flags = next(d, pos);
    if (flags.type != miUINT32 || flags.data.size() != 8) fail("malformed array flags");
    const uint32_t cls = le32(flags.data.data()) & 0xff;
    const auto dims = next(d, pos);
    if (dims.type != miINT32 || dims.data.size() < 8 || dims.data.size() % 4 != 0 || dims.data.size() > 4 * 32)
      fail("malformed array dimensions");
    uint64_t numel = 1;
    for (size_t i = 0; i < dims.data.size(); i += 4) {
      int32_t v;
      std::memcpy(&v, dims.data.data() + i, 4);
      if (v < 0) fail("negative array dimension");
      a.dims.push_back(v);
      if (v != 0 && numel > limits_.max_elements / static_cast<uint64_t>(v))
        fail("array of more than " + std::to_string(limits_.max_elements) + " elements; refused");
      numel *= static_cast<uint64_t>(v);
    }
    const auto name = next(d, pos);
    if (name.type != miINT8 && name.type != miUINT8) fail("malformed array name");
    a.name = std::string(name.data.substr(0, name.data.find('\0')));
    if (cls == mxCELL || cls == mxSTRUCT) {
      a.kind = cls == mxCELL ? MatArray::Kind::Cell : MatArray::Kind::Struct;
      uint64_t slots = numel;
      if (cls == mxSTRUCT) {
        const auto len = next(d, pos);
        if (len.type != miINT32 || len.data.size() != 4) fail("malformed struct field-name length");
        const uint32_t width = le32(len.data.data());
        const auto names = next(d, pos);
        if (width == 0 || width > 4096 || names.type != miINT8 || names.data.size() % width != 0)
          fail("malformed struct field names");
        for (size_t i = 0; i < names.data.size(); i += width) {
          const auto f = names.data.substr(i, width);
          a.fields.emplace_back(f.substr(0, f.find('\0')));
        }
        slots = numel * a.fields.size();
      }
      // Every slot is an element of at least 8 bytes: more slots than that cannot be there.
      if (slots > (d.size() - pos) / 8) fail("struct/cell array larger than its data");
      count(slots);
      a.items.reserve(slots);
      for (uint64_t i = 0; i < slots; ++i) {
        const auto e = next(d, pos);
        if (e.type != miMATRIX) fail("struct/cell element is not an array");
        a.items.push_back(matrix(e.data, depth + 1));
      }
      return a;
    }
    if (cls == mxCHAR) {
      a.kind = MatArray::Kind::Char;
      if (numel == 0 && pos >= d.size()) return a;
      const auto e = next(d, pos);
      const size_t w = e.type == miUINT16 || e.type == miINT16 ? 2 : (e.type == miUTF8 || e.type == miUINT8 || e.type == miINT8) ? 1 : 0;
      if (w == 0 || e.data.size() % w != 0) fail("character data of an unsupported type");
      if (w == 2 && e.data.size() / 2 != numel) fail("character data does not match the array's size");
      count(e.data.size() / w);
      for (size_t i = 0; i < e.data.size(); i += w) {
        const uint32_t c = w == 2 ? static_cast<uint32_t>(number_at(miUINT16, e.data.data() + i))
                                  : static_cast<uint8_t>(e.data[i]);
        a.text.push_back(c < 256 ? static_cast<char>(c) : '?');
      }
      return a;
    }
    if (cls >= mxDOUBLE && cls <= mxUINT64) {
      a.kind = MatArray::Kind::Numeric;
      if (numel == 0 && pos >= d.size()) return a;
      const auto e = next(d, pos);
      const size_t w = type_size(e.type);
      if (w == 0 || e.type == miUTF8 || e.data.size() % w != 0 || e.data.size() / w != numel)
        fail("numeric data does not match the array's size");
      count(numel);
      a.numbers.reserve(numel);
      for (size_t i = 0; i < e.data.size(); i += w) a.numbers.push_back(number_at(e.type, e.data.data() + i));
      return a;  // an imaginary part, if any, is ignored
    }
    fail(std::string("array class ") + std::to_string(cls) +
         (cls == mxSPARSE ? " (sparse)" : cls == mxOBJECT ? " (object)" : "") + " is not supported");
  }

 private:
  std::string label_;
  MatLimits limits_;
  uint64_t elements_ = 0;
  size_t inflated_ = 0;
};

// --- writing ---

void put32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

void element(std::string& out, uint32_t type, std::string_view data) {
  put32(out, type);
  put32(out, static_cast<uint32_t>(data.size()));
  out.append(data);
  out.resize((out.size() + 7) / 8 * 8, '\0');
}

std::string matrix_bytes(const MatArray& a) {
  std::string body;
  uint32_t cls = mxDOUBLE;
  if (a.kind == MatArray::Kind::Char) cls = mxCHAR;
  if (a.kind == MatArray::Kind::Struct) cls = mxSTRUCT;
  if (a.kind == MatArray::Kind::Cell) cls = mxCELL;
  std::string flags;
  put32(flags, cls);
  put32(flags, 0);
  element(body, miUINT32, flags);
  std::string dims;
  for (const auto d : a.dims) put32(dims, static_cast<uint32_t>(d));
  element(body, miINT32, dims);
  element(body, miINT8, a.name);
  switch (a.kind) {
    case MatArray::Kind::Numeric: {
      std::string data(a.numbers.size() * 8, '\0');
      if (!a.numbers.empty()) std::memcpy(data.data(), a.numbers.data(), data.size());
      element(body, miDOUBLE, data);
      break;
    }
    case MatArray::Kind::Char: {
      std::string data;
      for (const char c : a.text) {
        const uint16_t u = static_cast<uint8_t>(c);
        data.append(reinterpret_cast<const char*>(&u), 2);
      }
      element(body, miUINT16, data);
      break;
    }
    case MatArray::Kind::Struct: {
      constexpr uint32_t width = 32;
      put32(body, (4u << 16) | miINT32);  // a small data element, as MATLAB writes it
      put32(body, width);
      std::string names;
      for (const auto& f : a.fields) {
        std::string n = f.substr(0, width - 1);
        n.resize(width, '\0');
        names += n;
      }
      element(body, miINT8, names);
      [[fallthrough]];
    }
    case MatArray::Kind::Cell:
      for (const auto& item : a.items) body += matrix_bytes(item);
      break;
  }
  std::string out;
  element(out, miMATRIX, body);
  return out;
}

}  // namespace

int64_t MatArray::numel() const {
  int64_t n = 1;
  for (const auto d : dims) n *= d;
  return n;
}

const MatArray* MatArray::field(int64_t element, const std::string& name) const {
  for (size_t f = 0; f < fields.size(); ++f) {
    const size_t at = static_cast<size_t>(element) * fields.size() + f;
    if (fields[f] == name && at < items.size()) return &items[at];
  }
  return nullptr;
}

std::vector<MatArray> read_mat(std::string_view b, const std::string& label, const MatLimits& limits) {
  Reader r(label, limits);
  if (b.size() > limits.max_file_bytes)
    r.fail("over " + std::to_string(limits.max_file_bytes) + " bytes; refused");
  if (b.size() >= 10 && b.substr(0, 10) == "MATLAB 7.3")
    r.fail("a MATLAB v7.3 (HDF5) file; only level-5 MAT-files are read");
  if (b.size() < 128) r.fail("not a MATLAB level-5 MAT-file (shorter than its 128-byte header)");
  if (b.substr(126, 2) == "MI") r.fail("a big-endian MAT-file; only little-endian ones are read");
  if (b.substr(126, 2) != "IM" || b.substr(0, 6) != "MATLAB")
    r.fail("not a MATLAB level-5 MAT-file (no MATLAB header)");
  std::vector<MatArray> vars;
  size_t pos = 128;
  while (pos < b.size()) {
    const auto e = r.next(b, pos);
    if (e.type == miCOMPRESSED) {
      const std::string inner = r.inflate(e.data);
      size_t ipos = 0;
      const auto m = r.next(inner, ipos);
      if (m.type == miMATRIX) vars.push_back(r.matrix(m.data, 0));
    } else if (e.type == miMATRIX) {
      vars.push_back(r.matrix(e.data, 0));
    }  // other top-level elements (subsystem data) carry no variable
  }
  return vars;
}

std::string write_mat(const std::vector<MatArray>& vars, bool compress) {
  std::string out = "MATLAB 5.0 MAT-file, written by lth";
  out.resize(116, ' ');
  out.append(8, '\0');             // no subsystem data
  out += std::string("\x00\x01", 2);  // version 0x0100, little-endian
  out += "IM";
  for (const auto& v : vars) {
    const std::string m = matrix_bytes(v);
    if (!compress) {
      out += m;
      continue;
    }
    uLongf n = compressBound(static_cast<uLong>(m.size()));
    std::string z(n, '\0');
    require(compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(m.data()),
                      static_cast<uLong>(m.size()), 6) == Z_OK,
            "cannot compress a MAT-file variable");
    z.resize(n);
    put32(out, miCOMPRESSED);
    put32(out, static_cast<uint32_t>(z.size()));
    out += z;
  }
  return out;
}

}  // namespace lth::data::ilsvrc
