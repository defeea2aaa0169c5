#pragma once
// Image decoding (TurboJPEG, PNG fallback) and JPEG encoding for the ImageNet pipeline.
//
// decode() always yields packed 8-bit RGB, whatever the file holds: grayscale JPEGs are
// expanded, CMYK/YCCK JPEGs (Adobe-inverted, as Photoshop writes them and as ImageNet's
// ~20 CMYK files are) are converted, and a PNG hiding behind a .JPEG name is read with
// libpng. JPEGs can be decoded at a DCT scaling factor (1/2, 1/4, 1/8), which skips most
// of the inverse-DCT work when the picture will be shrunk anyway.
//
// Any unreadable input (empty, truncated, corrupt, unknown format) throws DecodeError with
// a one-line reason; callers turn that into a logged skip or a UserError (strict mode).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace lth::data::imagenet {

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ImageFormat { Jpeg, Png, Unknown };

// What the header says, read without decoding pixels.
struct ImageInfo {
  ImageFormat format = ImageFormat::Unknown;
  int width = 0;
  int height = 0;
  bool cmyk = false;  // JPEG stored as CMYK or YCCK
  bool gray = false;  // single-channel JPEG
};

// A packed RGB picture, row-major, 3 bytes a pixel.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// A DCT scaling factor num/denom (1/1, 1/2, 1/4, 1/8).
struct Scale {
  int num = 1;
  int denom = 1;
  // Size of a side of `full` pixels at this scale, rounded up as libjpeg does.
  int apply(int full) const { return (full * num + denom - 1) / denom; }
};

// What one picture may cost, so that a hostile file (a 65-byte PNG claiming 32000 x 32000
// pixels, a progressive JPEG whose coefficient buffer needs gigabytes, a file of thousands
// of scans) is one skipped sample rather than an exhausted machine. The default pixel cap
// is about three times the largest picture in ImageNet (digital-camera originals of at most
// ~21 megapixels); set LTH_MAX_IMAGE_PIXELS to change it (docs/ROBUSTNESS.md).
struct DecodeLimits {
  int64_t max_pixels = int64_t{64} << 20;  // width * height, checked from the header
  uint64_t max_file_bytes = uint64_t{256} << 20;  // larger files are not read at all
};
// The defaults, with max_pixels from the environment variable LTH_MAX_IMAGE_PIXELS when it
// is set (a positive integer; anything else is a UserError naming the variable).
DecodeLimits default_decode_limits();
// Progressive JPEGs with more scans than this are refused (TurboJPEG's own limit): a file
// of thousands of tiny scans costs a full pass over the coefficients per scan.
inline constexpr int kMaxJpegScans = 500;

// Sniffs the format from the magic bytes and reads the header. Throws DecodeError, also
// when the picture exceeds `limits.max_pixels` or 65,536 pixels a side.
ImageInfo probe(const uint8_t* data, size_t size, const DecodeLimits& limits = DecodeLimits{});

// Decodes to RGB. `scale` applies to JPEGs only (other formats decode at full size).
// `out` is reused: its buffer grows as needed, so a worker that keeps one RgbImage
// allocates only for its largest picture.
void decode(const uint8_t* data, size_t size, const ImageInfo& info, Scale scale, RgbImage& out);

// A rectangle of a decoded picture, in its (possibly scaled) pixels.
struct PixelBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
};

// Decodes at least `box` of the picture at `scale` into `out`, whose pixel (0, 0) is pixel
// (origin_top, origin_left) of the scaled picture. For JPEGs that end in an EOI marker, and
// when built with libjpeg's API (LTH_HAVE_LIBJPEG), only the rows down to the box's bottom
// are decoded and, within them, only the iMCU columns that cover the box: the same pixels as
// a full decode, at a fraction of the cost for small crops. Anything else is decoded whole.
// Throws DecodeError like decode(); a JPEG missing its EOI marker is decoded whole so that
// truncation is always detected, whatever the box.
void decode_region(const uint8_t* data, size_t size, const ImageInfo& info, Scale scale,
                   PixelBox box, RgbImage& out, int* origin_top, int* origin_left);

// The largest reduction among 1/8, 1/4, 1/2 that keeps a region of crop_w x crop_h source
// pixels at least `min_side` pixels on both sides; 1/1 when none does.
Scale choose_scale(int crop_w, int crop_h, int min_side);

// Encodes RGB (or, with cmyk = true, Adobe-inverted CMYK 4 bytes a pixel; or gray, 1 byte
// a pixel) as a baseline JPEG. Deterministic for the same input.
enum class JpegPixels { Rgb, Gray, InvertedCmyk };
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int width, int height, JpegPixels kind,
                                 int quality, bool subsample_420 = true);

// Encodes RGB as an 8-bit PNG.
std::vector<uint8_t> encode_png(const uint8_t* rgb, int width, int height);

// Whole file into `out` (reused buffer). Throws DecodeError if it cannot be read, is not a
// regular file (a FIFO or device under an image's name is refused without blocking), or is
// larger than `max_bytes`.
void read_file(const std::filesystem::path& path, std::vector<uint8_t>& out,
               uint64_t max_bytes = DecodeLimits{}.max_file_bytes);
// Writes bytes to a file; throws UserError naming the file on failure.
void write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);

}  // namespace lth::data::imagenet
