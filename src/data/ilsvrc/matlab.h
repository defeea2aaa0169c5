#pragma once
// A minimal, bounded reader of MATLAB level-5 MAT-files (the format of the ILSVRC2012
// devkit's data/meta.mat): the 128-byte header, little-endian only, top-level variables
// possibly zlib-compressed (miCOMPRESSED), and the array classes meta.mat uses --
// numeric (every integer and float class, real part; stored in any numeric type), char
// (UTF-16 / UTF-8 / 8-bit data; code points above 255 become '?'), struct and cell arrays.
// Refused with a UserError naming the file and the problem: big-endian files, sparse,
// object and function arrays, version-4 and v7.3 (HDF5) files, and anything damaged.
// Bounds: MatLimits (input, total decompressed bytes, nesting depth, elements), checked
// before anything is allocated, so a hostile file costs at most those.
// write_mat writes the same subset (uncompressed or compressed) for tests and generators.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lth::data::ilsvrc {

struct MatLimits {
  size_t max_file_bytes = 64u << 20;        // the real meta.mat is ~300 KB
  size_t max_decompressed_bytes = 256u << 20;
  int max_depth = 16;                       // struct/cell nesting
  size_t max_elements = 16u << 20;          // numbers, characters and struct/cell slots, in all
};

struct MatArray {
  enum class Kind { Numeric, Char, Struct, Cell };
  Kind kind = Kind::Numeric;
  std::string name;                 // the variable's name (empty inside structs and cells)
  std::vector<int64_t> dims;
  std::vector<double> numbers;      // Numeric, column-major
  std::string text;                 // Char, column-major (a 1xN row: the string)
  std::vector<std::string> fields;  // Struct: field names
  std::vector<MatArray> items;      // Struct: element e's field f at e * fields.size() + f; Cell: elements

  int64_t numel() const;
  // Struct: element e's field `name`, or nullptr when there is no such field.
  const MatArray* field(int64_t element, const std::string& name) const;
};

// Top-level variables in file order. `label` (the file name) starts every error message.
std::vector<MatArray> read_mat(std::string_view bytes, const std::string& label,
                               const MatLimits& limits = {});

// A level-5 file of `vars`; `compress` wraps each variable in miCOMPRESSED.
std::string write_mat(const std::vector<MatArray>& vars, bool compress);

}  // namespace lth::data::ilsvrc
