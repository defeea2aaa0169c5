#pragma once
// gzip (RFC 1952) and zlib (RFC 1950) streams decompressed in memory with zlib, bounded: the
// output may not exceed `max_out` bytes (a "zip bomb" stops there with a UserError naming
// `label`), and damaged or truncated input is a UserError too. Concatenated gzip members
// (what `cat a.gz b.gz` gives) are read in turn, as gzip(1) does. Used for the ILSVRC2012
// devkit (.tar.gz) and MATLAB's miCOMPRESSED elements.
#include <cstddef>
#include <string>
#include <string_view>

namespace lth::data::ilsvrc {

bool is_gzip(std::string_view bytes);  // the magic bytes 1f 8b
std::string gunzip(std::string_view bytes, size_t max_out, const std::string& label);
// A zlib stream (header 78 xx); bytes after its end are ignored.
std::string inflate_zlib(std::string_view bytes, size_t max_out, const std::string& label);

}  // namespace lth::data::ilsvrc
