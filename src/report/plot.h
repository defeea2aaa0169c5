#pragma once
// Charts for reports, drawn with PLplot (internal to the io module). Each chart is drawn
// on its own PLplot stream into "<file>.tmp" and renamed into place, so a failed plot
// leaves no half-written image. Failures throw PlotError, which reports turn into notes.
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lth::report::plot {

class PlotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Format { Png, Svg };

struct Canvas {
  std::filesystem::path file;
  Format format = Format::Png;
  int width = 900;
  int height = 600;
};

// One line with markers. Colours are indices into palette_size() distinct colours.
struct Series {
  std::string label;
  std::vector<double> x, y;
  int color = 0;
  int line_style = 1;  // PLplot styles: 1 solid, 2.. dashed patterns
  int marker = 0;      // index into a fixed set of marker glyphs
  // A shaded band from y_low to y_high at each x (e.g. the spread over replicates), drawn
  // translucent in the series' colour beneath the lines; empty = none.
  std::vector<double> y_low, y_high;
};

struct HorizontalLine {
  double y = 0;
  int color = 0;
};

// Line chart with a logarithmic x axis running from large values (left) to small (right),
// as accuracy-vs-density plots in the lottery-ticket literature. x ticks are labelled at
// `x_ticks` (thinned where they would collide).
struct DensityChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::vector<HorizontalLine> references;  // drawn dashed; one legend entry for all
  std::string reference_label;
  std::vector<double> x_ticks;
  // A plain linear x axis, increasing to the right, with automatic ticks (an interpolation
  // coefficient, an iteration) instead of the density axis; x_ticks are then unused.
  bool linear_x = false;
};

struct BarChart {
  std::string title, x_label, y_label;
  std::vector<std::string> labels;  // one per bar, written vertically under the axis
  std::vector<double> values;       // >= 0; the y axis starts at 0
  std::optional<double> reference;  // a dashed horizontal line, e.g. the overall density
  std::string reference_label;
};

int palette_size();
int marker_count();
// Whether this PLplot build has the output device for `format`.
bool device_available(Format format);

void draw(const DensityChart& chart, const Canvas& canvas);
void draw(const BarChart& chart, const Canvas& canvas);

// Draws `chart` as <stem>.png and <stem>.svg: each file drawn is appended to `files`, each
// failure (as "plot not drawn: ...") to `notes`.
template <typename Chart>
void draw_png_and_svg(const Chart& chart, const std::filesystem::path& stem, int width, int height,
                      std::vector<std::filesystem::path>& files, std::vector<std::string>& notes) {
  for (const auto& [format, extension] :
       {std::pair{Format::Png, ".png"}, std::pair{Format::Svg, ".svg"}}) {
    const std::filesystem::path file = stem.string() + extension;
    try {
      draw(chart, Canvas{file, format, width, height});
      files.push_back(file);
    } catch (const PlotError& e) {
      notes.push_back(std::string("plot not drawn: ") + e.what());
    }
  }
}

}  // namespace lth::report::plot
