#include "data/ilsvrc/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>

#include "common/error.h"

namespace lth::data::ilsvrc {
namespace {

// window_bits: 15 + 16 = gzip only, 15 = zlib only. Returns the output; `used` the input consumed.
std::string inflate_one(std::string_view in, int window_bits, size_t max_out, const std::string& label,
                        size_t& used) {
  z_stream z{};
  require(inflateInit2(&z, window_bits) == Z_OK, label + ": cannot start zlib");
  std::string out;
  char buf[1 << 16];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT_MAX));
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string why = rc == Z_BUF_ERROR ? "truncated compressed data"
                                                : std::string("corrupt compressed data (") +
                                                      (z.msg ? z.msg : "zlib error") + ")";
      inflateEnd(&z);
      throw UserError(label + ": " + why);
    }
    const size_t got = sizeof buf - z.avail_out;
    if (out.size() + got > max_out) {
      inflateEnd(&z);
      throw UserError(label + ": decompresses to more than " + std::to_string(max_out) +
                      " bytes; refused");
    }
    out.append(buf, got);
    if (rc == Z_OK && got == 0 && z.avail_in == 0) {
      inflateEnd(&z);
      throw UserError(label + ": truncated compressed data");
    }
  }
  used = in.size() - z.avail_in;
  inflateEnd(&z);
  return out;
}

}  // namespace

bool is_gzip(std::string_view b) {
  return b.size() >= 2 && static_cast<unsigned char>(b[0]) == 0x1f && static_cast<unsigned char>(b[1]) == 0x8b;
}

std::string gunzip(std::string_view bytes, size_t max_out, const std::string& label) {
  require(is_gzip(bytes), label + ": not a gzip file");
  std::string out;
  while (!bytes.empty()) {
    if (!is_gzip(bytes)) break;  // trailing zeros (some writers pad): ignored, as gzip(1) does
    size_t used = 0;
    out += inflate_one(bytes, 15 + 16, max_out - out.size(), label, used);
    bytes.remove_prefix(used);
  }
  return out;
}

std::string inflate_zlib(std::string_view bytes, size_t max_out, const std::string& label) {
  size_t used = 0;  // bytes after the stream's end are ignored (MAT writers may pad)
  return inflate_one(bytes, 15, max_out, label, used);
}

}  // namespace lth::data::ilsvrc
