#include "data/imagenet/codec.h"

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#ifdef LTH_HAVE_LIBJPEG
#include <csetjmp>
#include <cstddef>
#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/error.h"

namespace lth::data::imagenet {
namespace {

// Owns a TurboJPEG handle; one per thread and direction, so decoding never locks.
class TjHandle {
 public:
  explicit TjHandle(tjhandle h) : h_(h) {
    if (h_ == nullptr) throw std::runtime_error("TurboJPEG: cannot create a handle");
  }
  ~TjHandle() { tjDestroy(h_); }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
  tjhandle get() const { return h_; }
  std::string error() const { return tjGetErrorStr2(h_); }

 private:
  tjhandle h_;
};

tjhandle decompressor() {
  thread_local TjHandle handle(tjInitDecompress());
  return handle.get();
}

tjhandle compressor() {
  thread_local TjHandle handle(tjInitCompress());
  return handle.get();
}

// Frees a buffer that TurboJPEG allocated.
struct TjFree {
  void operator()(unsigned char* p) const { tjFree(p); }
};

bool is_jpeg(const uint8_t* d, size_t n) {
  return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
}

bool is_png(const uint8_t* d, size_t n) {
  static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  return n >= 8 && std::memcmp(d, magic, 8) == 0;
}

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

ImageInfo probe_jpeg(const uint8_t* data, size_t size) {
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(decompressor(), data, static_cast<unsigned long>(size), &w, &h, &subsamp,
                          &colorspace) != 0) {
    throw DecodeError(std::string("bad JPEG header: ") + tjGetErrorStr2(decompressor()));
  }
  ImageInfo info;
  info.format = ImageFormat::Jpeg;
  info.width = w;
  info.height = h;
  info.cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  info.gray = colorspace == TJCS_GRAY;
  return info;
}

ImageInfo probe_png(const uint8_t* data, size_t size) {
  // Signature (8), IHDR length (4), "IHDR" (4), then width and height, big-endian.
  if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0) throw DecodeError("bad PNG header");
  ImageInfo info;
  info.format = ImageFormat::Png;
  info.width = static_cast<int>(big_endian32(data + 16));
  info.height = static_cast<int>(big_endian32(data + 20));
  return info;
}

// TurboJPEG reports recoverable libjpeg warnings as errors with code TJERR_WARNING. Most are
// harmless (ImageNet has files with "extraneous bytes before marker"), but a premature end
// means the bottom of the picture is missing: that sample is unreadable.
bool warning_is_fatal(const std::string& message) {
  std::string lower = message;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return lower.find("premature end") != std::string::npos;
}

// Adobe-inverted CMYK (what Photoshop writes) to RGB: each stored ink is 255 - ink, so
// R = (255 - C)(255 - K)/255 = c' k' / 255, the conversion PIL applies to such files.
void inverted_cmyk_to_rgb(const uint8_t* cmyk, size_t pixels, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const unsigned k = cmyk[3];
    rgb[0] = static_cast<uint8_t>((cmyk[0] * k + 127) / 255);
    rgb[1] = static_cast<uint8_t>((cmyk[1] * k + 127) / 255);
    rgb[2] = static_cast<uint8_t>((cmyk[2] * k + 127) / 255);
  }
}

// TJFLAG_LIMITSCANS: TurboJPEG refuses progressive files of more than 500 scans
// (kMaxJpegScans), the guard libjpeg-turbo added against scan-flooding files.
// TJFLAG_FASTDCT: the fast integer inverse DCT, which is what TensorFlow's decode_jpeg (and
// so the reference's TFDS input pipeline) uses by default (dct_method "" = INTEGER_FAST).
constexpr int kTjDecodeFlags = TJFLAG_LIMITSCANS | TJFLAG_FASTDCT;

void decode_jpeg(const uint8_t* data, size_t size, const ImageInfo& info, Scale scale,
                 RgbImage& out) {
  const int w = scale.apply(info.width);
  const int h = scale.apply(info.height);
  const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h);
  out.width = w;
  out.height = h;
  out.pixels.resize(n * 3);
  // CMYK cannot be converted to RGB by libjpeg: decode the inks, convert here.
  thread_local std::vector<uint8_t> cmyk;
  if (info.cmyk) cmyk.resize(n * 4);
  uint8_t* target = info.cmyk ? cmyk.data() : out.pixels.data();
  const int rc = tjDecompress2(decompressor(), data, static_cast<unsigned long>(size), target, w, 0,
                               h, info.cmyk ? TJPF_CMYK : TJPF_RGB, kTjDecodeFlags);
  if (rc != 0) {
    const std::string message = tjGetErrorStr2(decompressor());
    if (tjGetErrorCode(decompressor()) == TJERR_FATAL || warning_is_fatal(message)) {
      throw DecodeError("JPEG decode failed: " + message);
    }
  }
  if (info.cmyk) inverted_cmyk_to_rgb(cmyk.data(), n, out.pixels.data());
}

#ifdef LTH_HAVE_LIBJPEG
// libjpeg reports fatal errors through error_exit, which must not return: jump back to the
// decoder, which owns nothing that needs destroying (only POD locals live across setjmp).
struct JpegErrors {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  bool fatal_warning;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  longjmp(errors->jump, 1);
}

// Warnings (level -1): a premature end makes the sample unreadable, as in decode_jpeg.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level != -1) return;
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  if (!errors->fatal_warning && warning_is_fatal(text)) {
    errors->fatal_warning = true;
    std::snprintf(errors->message, sizeof errors->message, "%s", text);
  }
}

// Counts scans as libjpeg consumes them and stops a file that has too many, as djpeg's
// -maxscans and TurboJPEG's TJFLAG_LIMITSCANS do. Called by libjpeg between iMCU rows, so
// jumping out from here is as safe as error_exit.
struct ScanLimit {
  jpeg_progress_mgr mgr;
  JpegErrors* errors;
};

void on_jpeg_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  const int scan = reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number;
  if (scan <= kMaxJpegScans) return;
  auto* limit = reinterpret_cast<ScanLimit*>(cinfo->progress);
  std::snprintf(limit->errors->message, sizeof limit->errors->message,
                "progressive JPEG has more than %d scans", kMaxJpegScans);
  longjmp(limit->errors->jump, 1);
}

// libjpeg's own working memory (the whole-image coefficient buffer of a progressive file
// is the big item: 2 bytes per coefficient) for a picture of `pixels` pixels: generous for
// any real file within the pixel cap, and with no backing store configured, libjpeg fails
// cleanly (JERR_NO_BACKING_STORE) rather than allocating past it.
long jpeg_memory_budget(const ImageInfo& info) {
  const auto pixels = static_cast<long>(info.width) * static_cast<long>(info.height);
  return 16 * pixels + (64L << 20);
}

// Rows [0, box bottom) of the scaled picture are read (rows above the box are skipped, which
// avoids their IDCT and colour conversion), columns cropped to the iMCUs covering the box.
// Returns false with errors->message set on failure.
bool libjpeg_region(const uint8_t* data, size_t size, const ImageInfo& info, Scale scale,
                    const PixelBox& box, std::vector<uint8_t>& rows, int* out_w, int* out_h,
                    int* origin_left, JpegErrors* errors) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&errors->mgr);
  errors->mgr.error_exit = on_jpeg_error;
  errors->mgr.emit_message = on_jpeg_message;
  errors->fatal_warning = false;
  errors->message[0] = '\0';
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = jpeg_memory_budget(info);
  ScanLimit scan_limit{};
  scan_limit.mgr.progress_monitor = on_jpeg_progress;
  scan_limit.errors = errors;
  cinfo.progress = &scan_limit.mgr;
  if (setjmp(errors->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  // The header probe() checked is the one decoded (a second SOF would be an error anyway).
  if (static_cast<int>(cinfo.image_width) != info.width ||
      static_cast<int>(cinfo.image_height) != info.height) {
    std::snprintf(errors->message, sizeof errors->message, "JPEG size changed between reads");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = info.cmyk ? JCS_CMYK : JCS_RGB;
  cinfo.scale_num = static_cast<unsigned>(scale.num);
  cinfo.scale_denom = static_cast<unsigned>(scale.denom);
  cinfo.dct_method = JDCT_IFAST;  // as TurboJPEG's TJFLAG_FASTDCT above: the same pixels
  jpeg_start_decompress(&cinfo);
  // Fancy upsampling treats the edges of a cropped scanline as picture edges, so the outer
  // columns of a crop can differ from a full decode: ask for two more columns on each side.
  const int left = std::max(0, box.left - 2);
  const int right = std::min(static_cast<int>(cinfo.output_width), box.left + box.width + 2);
  JDIMENSION x = static_cast<JDIMENSION>(left);
  JDIMENSION w = static_cast<JDIMENSION>(right - left);
  jpeg_crop_scanline(&cinfo, &x, &w);  // moves x down to an iMCU boundary
  const JDIMENSION bottom = static_cast<JDIMENSION>(box.top + box.height);
  if (box.top > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(box.top));
  const size_t channels = static_cast<size_t>(cinfo.output_components);
  const size_t stride = static_cast<size_t>(cinfo.output_width) * channels;
  rows.resize(stride * static_cast<size_t>(box.height));
  // Several rows a call: libjpeg hands out as many as its output buffer holds.
  thread_local std::vector<JSAMPROW> pointers;
  pointers.resize(static_cast<size_t>(box.height));
  for (size_t r = 0; r < pointers.size(); ++r) pointers[r] = rows.data() + r * stride;
  while (cinfo.output_scanline < bottom) {
    const JDIMENSION done = cinfo.output_scanline - static_cast<JDIMENSION>(box.top);
    jpeg_read_scanlines(&cinfo, pointers.data() + done, bottom - cinfo.output_scanline);
  }
  *out_w = static_cast<int>(cinfo.output_width);
  *out_h = box.height;
  *origin_left = static_cast<int>(x);
  jpeg_abort_decompress(&cinfo);  // the rows below the box are never decoded
  jpeg_destroy_decompress(&cinfo);
  return !errors->fatal_warning;
}

bool ends_with_eoi(const uint8_t* d, size_t n) {
  return n >= 4 && d[n - 2] == 0xFF && d[n - 1] == 0xD9;
}
#endif

void decode_png(const uint8_t* data, size_t size, const ImageInfo& info, RgbImage& out) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, data, size)) {
    throw DecodeError(std::string("PNG decode failed: ") + image.message);
  }
  // libpng's own reading of IHDR must agree with probe()'s, which checked the pixel cap.
  if (image.width != static_cast<png_uint_32>(info.width) ||
      image.height != static_cast<png_uint_32>(info.height)) {
    png_image_free(&image);
    throw DecodeError("PNG header disagrees with itself");
  }
  // Alpha, if any, is dropped (as PIL's convert("RGB") does), not composited.
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  thread_local std::vector<uint8_t> buffer;
  buffer.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, buffer.data(), 0, nullptr)) {
    const std::string message = image.message;
    png_image_free(&image);
    throw DecodeError("PNG decode failed: " + message);
  }
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  const size_t n = static_cast<size_t>(out.width) * static_cast<size_t>(out.height);
  out.pixels.resize(n * 3);
  if (!alpha) {
    std::memcpy(out.pixels.data(), buffer.data(), n * 3);
    return;
  }
  for (size_t i = 0; i < n; ++i) std::memcpy(&out.pixels[3 * i], &buffer[4 * i], 3);
}

}  // namespace

ImageInfo probe(const uint8_t* data, size_t size, const DecodeLimits& limits) {
  if (size == 0) throw DecodeError("empty file");
  ImageInfo info;
  if (is_jpeg(data, size)) {
    info = probe_jpeg(data, size);
  } else if (is_png(data, size)) {
    info = probe_png(data, size);
  } else {
    throw DecodeError("unknown image format (neither JPEG nor PNG)");
  }
  if (info.width <= 0 || info.height <= 0 || info.width > (1 << 16) || info.height > (1 << 16)) {
    throw DecodeError("implausible image size " + std::to_string(info.width) + "x" +
                      std::to_string(info.height));
  }
  const int64_t pixels = int64_t{info.width} * int64_t{info.height};
  if (pixels > limits.max_pixels) {
    throw DecodeError("image of " + std::to_string(info.width) + "x" +
                      std::to_string(info.height) + " pixels exceeds the limit of " +
                      std::to_string(limits.max_pixels) + " (LTH_MAX_IMAGE_PIXELS)");
  }
  return info;
}

void decode(const uint8_t* data, size_t size, const ImageInfo& info, Scale scale, RgbImage& out) {
  switch (info.format) {
    case ImageFormat::Jpeg:
      decode_jpeg(data, size, info, scale, out);
      return;
    case ImageFormat::Png:
      decode_png(data, size, info, out);
      return;
    case ImageFormat::Unknown:
      break;
  }
  throw DecodeError("unknown image format");
}

void decode_region(const uint8_t* data, size_t size, const ImageInfo& info, Scale scale,
                   PixelBox box, RgbImage& out, int* origin_top, int* origin_left) {
#ifdef LTH_HAVE_LIBJPEG
  if (info.format == ImageFormat::Jpeg) {
    // A JPEG missing its EOI marker is decoded whole, so that truncation is always seen
    // (libjpeg warns "premature end" only when it reaches the missing rows); through
    // libjpeg either way, for its scan and memory limits.
    if (!ends_with_eoi(data, size))
      box = PixelBox{0, 0, scale.apply(info.height), scale.apply(info.width)};
    // RGB rows are decoded straight into `out` (no copy); CMYK goes through a buffer of inks.
    thread_local std::vector<uint8_t> inks;
    thread_local JpegErrors errors;
    int w = 0, h = 0, left = 0;
    if (!libjpeg_region(data, size, info, scale, box, info.cmyk ? inks : out.pixels, &w, &h,
                        &left, &errors)) {
      throw DecodeError(std::string("JPEG decode failed: ") + errors.message);
    }
    const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h);
    out.width = w;
    out.height = h;
    if (info.cmyk) {
      out.pixels.resize(n * 3);
      inverted_cmyk_to_rgb(inks.data(), n, out.pixels.data());
    }
    *origin_top = box.top;
    *origin_left = left;
    return;
  }
#else
  (void)box;
#endif
  decode(data, size, info, scale, out);
  *origin_top = 0;
  *origin_left = 0;
}

Scale choose_scale(int crop_w, int crop_h, int min_side) {
  for (int denom : {8, 4, 2}) {
    const Scale s{1, denom};
    // The crop's extent at that scale, as a real number: the resize samples it fractionally.
    if (static_cast<double>(crop_w) / denom >= min_side &&
        static_cast<double>(crop_h) / denom >= min_side) {
      return s;
    }
  }
  return Scale{};
}

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int width, int height, JpegPixels kind,
                                 int quality, bool subsample_420) {
  int format = TJPF_RGB;
  int subsamp = subsample_420 ? TJSAMP_420 : TJSAMP_444;
  if (kind == JpegPixels::Gray) {
    format = TJPF_GRAY;
    subsamp = TJSAMP_GRAY;
  } else if (kind == JpegPixels::InvertedCmyk) {
    format = TJPF_CMYK;  // stored as YCCK with an Adobe marker, like Photoshop's files
  }
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (tjCompress2(compressor(), pixels, width, 0, height, format, &buffer, &size, subsamp, quality,
                  TJFLAG_ACCURATEDCT) != 0) {
    tjFree(buffer);
    throw std::runtime_error(std::string("TurboJPEG encode failed: ") +
                             tjGetErrorStr2(compressor()));
  }
  std::unique_ptr<unsigned char, TjFree> owned(buffer);
  return std::vector<uint8_t>(buffer, buffer + size);
}

std::vector<uint8_t> encode_png(const uint8_t* rgb, int width, int height) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(image, size, 0, rgb, 0, nullptr)) {
    throw std::runtime_error(std::string("PNG encode failed: ") + image.message);
  }
  std::vector<uint8_t> out(size);
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, rgb, 0, nullptr)) {
    throw std::runtime_error(std::string("PNG encode failed: ") + image.message);
  }
  out.resize(size);
  return out;
}

DecodeLimits default_decode_limits() {
  DecodeLimits limits;
  if (const char* text = std::getenv("LTH_MAX_IMAGE_PIXELS"); text != nullptr) {
    const char* end = text + std::strlen(text);
    int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text, end, value);
    require(ec == std::errc() && ptr == end && value > 0,
            std::string("environment variable LTH_MAX_IMAGE_PIXELS=") + text +
                ": expected a positive integer");
    limits.max_pixels = value;
  }
  return limits;
}

void read_file(const std::filesystem::path& path, std::vector<uint8_t>& out, uint64_t max_bytes) {
  // O_NONBLOCK: a FIFO named like an image must not block the worker waiting for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw DecodeError(std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw DecodeError(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw DecodeError("not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    throw DecodeError("file of " + std::to_string(size) + " bytes exceeds the limit of " +
                      std::to_string(max_bytes));
  }
  out.resize(static_cast<size_t>(size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DecodeError(std::string("read failed: ") + std::strerror(errno));
    if (n == 0) throw DecodeError("short read (file shrank)");
    done += static_cast<size_t>(n);
  }
}

void write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  require(file != nullptr, "cannot write " + path.string() + ": " + std::strerror(errno));
  require(bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), file.get()) == bytes.size(),
          "cannot write " + path.string() + ": " + std::strerror(errno));
  // fclose flushes the stdio buffer: a full disk is reported here, not by fwrite.
  require(std::fclose(file.release()) == 0,
          "cannot write " + path.string() + ": " + std::strerror(errno));
}

}  // namespace lth::data::imagenet
