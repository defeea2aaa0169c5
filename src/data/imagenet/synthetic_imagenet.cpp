#include "data/imagenet/synthetic_imagenet.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/rng.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/subset_classes.h"

namespace lth::data::imagenet {

namespace fs = std::filesystem;

namespace {

enum class Style { Photo, Rendition, Adversarial, Sketch };

using Rgb = std::array<float, 3>;

Rgb hsv(double h, double s, double v) {
  h = (h - std::floor(h)) * 6.0;
  const int i = static_cast<int>(h) % 6;
  const double f = h - std::floor(h);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const double table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  return {float(255 * table[i][0]), float(255 * table[i][1]), float(255 * table[i][2])};
}

// What makes a class recognisable: colour, shape, stripe frequency and direction.
struct ClassLook {
  Rgb colour;
  Rgb background;
  int shape;  // 0 disk, 1 square, 2 triangle, 3 ring
  double stripes;
  double angle;
};

ClassLook look_of(int c) {
  const double hue = std::fmod(c * 0.61803398875, 1.0);
  return ClassLook{hsv(hue, 0.85, 0.95), hsv(hue + 0.5, 0.25, 0.55), c % 4, 2.0 + (c / 4) % 5,
                   (c * 37 % 180) * M_PI / 180.0};
}

// ImageNet's common sizes (width, height, share); the rest uniform in [300, 500] per side.
std::pair<int, int> draw_size(Rng& rng, int long_side) {
  static const std::array<std::array<double, 3>, 6> common = {{{500, 375, 0.40},
                                                               {375, 500, 0.15},
                                                               {500, 333, 0.12},
                                                               {333, 500, 0.05},
                                                               {500, 500, 0.05},
                                                               {500, 400, 0.03}}};
  double u = rng.uniform(), acc = 0;
  double w = 300 + rng.below(201), h = 300 + rng.below(201);
  for (const auto& s : common) {
    acc += s[2];
    if (u < acc) {
      w = s[0];
      h = s[1];
      break;
    }
  }
  const double f = long_side / 500.0;
  return {std::max(8, int(std::lround(w * f))), std::max(8, int(std::lround(h * f)))};
}

// Inside test for the class shape, in coordinates relative to the centre, scaled by radius.
bool inside(int shape, double u, double v) {
  switch (shape) {
    case 0:
      return u * u + v * v <= 1.0;
    case 1:
      return std::abs(u) <= 0.8 && std::abs(v) <= 0.8;
    case 2:
      return v <= 0.8 && v >= -1.0 + 2.0 * std::abs(u) * 0.9;
    default: {
      const double r = u * u + v * v;
      return r <= 1.0 && r >= 0.35;
    }
  }
}

// Cheap, deterministic noise around 0 with std about `sigma` (sum of two uniform bytes).
float noise(uint64_t& bits, int& left, Rng& rng, float sigma) {
  if (left == 0) {
    bits = rng.next_u64();
    left = 4;
  }
  const int a = int(bits & 0xFF), b = int((bits >> 8) & 0xFF);
  bits >>= 16;
  --left;
  return float(a + b - 255) * sigma / 104.2f;  // std of a + b is ~104.2
}

std::vector<uint8_t> render(int c, Style style, Rng& rng, int w, int h) {
  const ClassLook look = look_of(c);
  const double side = std::min(w, h);
  const double radius =
      side * (style == Style::Adversarial ? rng.uniform(0.12, 0.22) : rng.uniform(0.22, 0.4));
  const double cx = w * rng.uniform(0.3, 0.7), cy = h * rng.uniform(0.3, 0.7);
  const float tint[3] = {float(rng.uniform(-30, 30)), float(rng.uniform(-30, 30)),
                         float(rng.uniform(-30, 30))};  // background tint per image
  const double grad = rng.uniform(-40, 40);
  const float sigma = style == Style::Adversarial ? 22.f : style == Style::Photo ? 9.f : 4.f;
  // Distractor blobs for the adversarial style: other classes' colours.
  std::vector<std::array<double, 4>> blobs;
  if (style == Style::Adversarial) {
    for (int i = 0; i < 6; ++i) {
      blobs.push_back({w * rng.uniform(), h * rng.uniform(), side * rng.uniform(0.05, 0.15),
                       double(rng.below(97))});
    }
  }
  std::vector<uint8_t> out(size_t(w) * h * 3);
  uint64_t bits = 0;
  int left = 0;
  const double ca = std::cos(look.angle), sa = std::sin(look.angle);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double u = (x - cx) / radius, v = (y - cy) / radius;
      const bool in = inside(look.shape, u, v);
      const bool edge = !in && (inside(look.shape, u * 0.93, v * 0.93));
      const double stripe = 0.5 + 0.5 * std::sin(look.stripes * M_PI * (u * ca + v * sa));
      Rgb px;
      for (int k = 0; k < 3; ++k)
        px[k] = look.background[k] + tint[k] + float(grad * (y - h / 2.0) / h);
      for (const auto& b : blobs) {
        const double dx = x - b[0], dy = y - b[1];
        if (dx * dx + dy * dy <= b[2] * b[2]) px = look_of(int(b[3])).colour;
      }
      if (in) {
        for (int k = 0; k < 3; ++k) px[k] = look.colour[k] * float(0.6 + 0.4 * stripe);
      }
      if (style == Style::Rendition) {
        if (edge) px = {10, 10, 10};
        for (float& p : px) p = std::round(std::clamp(p, 0.f, 255.f) / 85.f) * 85.f;  // posterise
      } else if (style == Style::Sketch) {
        const bool line = edge || (in && stripe > 0.9);
        const float g = line ? 40.f : 235.f;
        px = {g, g, g};
      }
      uint8_t* o = &out[(size_t(y) * w + x) * 3];
      for (int k = 0; k < 3; ++k) {
        o[k] = uint8_t(std::clamp(std::lround(px[k] + noise(bits, left, rng, sigma)), 0L, 255L));
      }
    }
  }
  return out;
}

class Writer {
 public:
  Writer(const MakeImagenetOptions& o, MakeImagenetReport& r) : opt_(o), report_(r) {}

  // Renders image i of class c for `layout` and writes it as a JPEG at out/relative.
  std::vector<uint8_t> image(const std::string& layout, Style style, int c, int i, int* w, int* h) {
    Rng rng = Rng::keyed(opt_.seed, "make-imagenet/" + layout, uint64_t(c), uint64_t(i));
    const auto [ww, hh] = draw_size(rng, opt_.size);
    *w = ww;
    *h = hh;
    return render(c, style, rng, ww, hh);
  }

  void write(const std::string& layout, const fs::path& relative,
             const std::vector<uint8_t>& bytes) {
    const fs::path path = opt_.out / relative;
    fs::create_directories(path.parent_path());
    write_file(path, bytes);
    report_.images[layout] += 1;
    report_.bytes += int64_t(bytes.size());
  }

  void jpeg(const std::string& layout, Style style, int c, int i, const fs::path& relative) {
    int w = 0, h = 0;
    const auto rgb = image(layout, style, c, i, &w, &h);
    write(layout, relative, encode_jpeg(rgb.data(), w, h, JpegPixels::Rgb, opt_.quality));
  }

 private:
  const MakeImagenetOptions& opt_;
  MakeImagenetReport& report_;
};

std::string hex_name(uint64_t seed, int c, int i) {
  Rng rng = Rng::keyed(seed, "make-imagenet/v2-name", uint64_t(c), uint64_t(i));
  char buf[41];
  for (int k = 0; k < 40; k += 16) {
    std::snprintf(buf + k, sizeof(buf) - k, "%016llx",
                  static_cast<unsigned long long>(rng.next_u64()));
  }
  buf[40] = '\0';
  return buf;
}

void write_odd_files(Writer& writer, const std::string& wnid, MakeImagenetReport& report) {
  const std::string layout = "imagenet/train";
  const fs::path dir = fs::path("imagenet/train") / wnid;
  int w = 0, h = 0;
  const auto rgb = writer.image("odd", Style::Photo, 0, 0, &w, &h);
  std::vector<uint8_t> gray(size_t(w) * h), cmyk(size_t(w) * h * 4);
  for (size_t p = 0; p < gray.size(); ++p) {
    const uint8_t* s = &rgb[p * 3];
    gray[p] = uint8_t((299 * s[0] + 587 * s[1] + 114 * s[2] + 500) / 1000);
    // Adobe-inverted CMYK with no black ink: stored inks equal R, G, B, and K' = 255.
    cmyk[p * 4 + 0] = s[0];
    cmyk[p * 4 + 1] = s[1];
    cmyk[p * 4 + 2] = s[2];
    cmyk[p * 4 + 3] = 255;
  }
  auto add = [&](const std::string& kind, const std::string& file,
                 const std::vector<uint8_t>& bytes) {
    writer.write(layout, dir / file, bytes);
    report.odd_files[kind] = (dir / file).string();
  };
  add("gray", wnid + "_gray.JPEG", encode_jpeg(gray.data(), w, h, JpegPixels::Gray, 90));
  add("cmyk", wnid + "_cmyk.JPEG", encode_jpeg(cmyk.data(), w, h, JpegPixels::InvertedCmyk, 90));
  add("png", wnid + "_png.JPEG", encode_png(rgb.data(), w, h));
  auto truncated = encode_jpeg(rgb.data(), w, h, JpegPixels::Rgb, 90);
  truncated.resize(truncated.size() * 6 / 10);
  add("truncated", wnid + "_truncated.JPEG", truncated);
  add("empty", wnid + "_empty.JPEG", {});
}

bool in_list(SubsetList list, int canonical_class) {
  const auto& classes = subset_canonical_classes(list);
  return std::binary_search(classes.begin(), classes.end(), static_cast<int64_t>(canonical_class));
}

void check_options(const MakeImagenetOptions& o) {
  require(!o.out.empty(), "make-imagenet: --out is required");
  require(o.classes >= 1 && o.classes <= 1000, "make-imagenet: --classes must be in 1..1000");
  require(o.per_class >= 1, "make-imagenet: --per_class must be >= 1");
  require(o.test_per_class >= 0, "make-imagenet: --test_per_class must be >= 0");
  require(o.size >= 8 && o.size <= 4096, "make-imagenet: --size must be in 8..4096");
  require(o.quality >= 1 && o.quality <= 100, "make-imagenet: --quality must be in 1..100");
  std::error_code ec;
  require(!fs::exists(o.out, ec) || fs::is_empty(o.out, ec),
          "make-imagenet: " + o.out.string() + " exists and is not empty");
}

}  // namespace

MakeImagenetReport make_synthetic_imagenet(const MakeImagenetOptions& options) {
  check_options(options);
  MakeImagenetReport report;
  Writer writer(options, report);
  const auto& wnids = canonical_wnids();
  const int tests =
      options.test_per_class > 0 ? options.test_per_class : std::max(2, options.per_class / 4);
  std::vector<int> r_classes, a_classes;
  int val_number = 1;
  for (int c = 0; c < options.classes; ++c) {
    const std::string& wnid = wnids[size_t(c)];
    for (int i = 0; i < options.per_class; ++i) {
      writer.jpeg("imagenet/train", Style::Photo, c, i,
                  fs::path("imagenet/train") / wnid / (wnid + "_" + std::to_string(i) + ".JPEG"));
    }
    // ImageNet-R/-A images only of classes in their fixed lists, as the real sets.
    const bool in_r = in_list(SubsetList::ImageNetR, c), in_a = in_list(SubsetList::ImageNetA, c);
    if (in_r) r_classes.push_back(c);
    if (in_a) a_classes.push_back(c);
    for (int i = 0; i < tests; ++i) {
      char val_name[48];
      std::snprintf(val_name, sizeof val_name, "ILSVRC2012_val_%08d.JPEG", val_number++);
      writer.jpeg("imagenet/val", Style::Photo, c, i, fs::path("imagenet/val") / wnid / val_name);
      writer.jpeg(
          "imagenet-v2", Style::Photo, c, i,
          fs::path("imagenet-v2") / std::to_string(c) / (hex_name(options.seed, c, i) + ".jpeg"));
      writer.jpeg("imagenet-sketch", Style::Sketch, c, i,
                  fs::path("imagenet-sketch") / wnid / ("sketch_" + std::to_string(i) + ".JPEG"));
      if (in_r) {
        writer.jpeg("imagenet-r", Style::Rendition, c, i,
                    fs::path("imagenet-r") / wnid / ("art_" + std::to_string(i) + ".jpg"));
      }
      if (in_a) {
        writer.jpeg("imagenet-a", Style::Adversarial, c, i,
                    fs::path("imagenet-a") / wnid / ("adv_" + std::to_string(i) + ".jpg"));
      }
    }
  }
  if (options.odd_files) write_odd_files(writer, wnids[0], report);

  nlohmann::json manifest = {
      {"generator", "lth make-imagenet"},
      {"seed", options.seed},
      {"classes", options.classes},
      {"per_class", options.per_class},
      {"test_per_class", tests},
      {"size", options.size},
      {"quality", options.quality},
      {"wnids", std::vector<std::string>(wnids.begin(), wnids.begin() + options.classes)},
      {"imagenet_r_labels", r_classes},
      {"imagenet_a_labels", a_classes},
      {"images", report.images},
      {"odd_files", report.odd_files},
      {"unreadable_odd_files", {"truncated", "empty"}}};
  const std::string manifest_text = manifest.dump(2) + "\n";
  write_file(options.out / "manifest.json",  // checked: a full disk is reported
             std::vector<uint8_t>(manifest_text.begin(), manifest_text.end()));
  return report;
}

}  // namespace lth::data::imagenet
