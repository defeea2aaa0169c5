#include "report/plot.h"

#include <fcntl.h>
#include <plplot/plplot.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "common/error.h"
#include "io/file_util.h"

namespace lth::report::plot {
namespace {

// ---- PLplot plumbing -----------------------------------------------------------------

// PLplot keeps global state (current stream, handlers): one chart at a time.
std::mutex& plplot_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Set by the handlers below while a chart is drawn (under plplot_mutex).
std::vector<std::string>* g_abort_messages = nullptr;
bool g_fatal = false;

void on_abort(const char* message) {
  if (g_abort_messages != nullptr) g_abort_messages->push_back(message ? message : "");
}

// PLplot calls exit() after this handler returns. Throwing is the only way to keep the
// process: libplplot is built with unwind tables (.eh_frame), so the exception crosses its
// C frames; the stream is then abandoned rather than ended (see Stream).
int on_fatal(const char* message) {
  g_fatal = true;
  throw PlotError(std::string("PLplot fatal error: ") + (message ? message : ""));
}

class HandlerScope {
 public:
  explicit HandlerScope(std::vector<std::string>* messages) {
    g_abort_messages = messages;
    g_fatal = false;
    plsabort(on_abort);
    plsexit(on_fatal);
  }
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;
  ~HandlerScope() {
    plsabort(nullptr);
    plsexit(nullptr);
    g_abort_messages = nullptr;
  }
};

// PLplot writes device menus and chatter to stdout and warnings to stderr. Both are
// diverted to a scratch file while it runs and returned as text, so the terminal stays
// clean and the messages can go into the report's notes. This redirects the process's
// descriptors: reports are made when nothing else is printing.
class OutputCapture {
 public:
  OutputCapture() {
    std::fflush(stdout);
    std::fflush(stderr);
    scratch_ = std::tmpfile();
    if (scratch_ == nullptr) return;
    saved_out_ = io::UniqueFd(::dup(STDOUT_FILENO));
    saved_err_ = io::UniqueFd(::dup(STDERR_FILENO));
    ::dup2(::fileno(scratch_), STDOUT_FILENO);
    ::dup2(::fileno(scratch_), STDERR_FILENO);
  }
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;
  ~OutputCapture() {
    restore();
    if (scratch_ != nullptr) std::fclose(scratch_);
  }

  // Restores stdout/stderr and returns what PLplot printed.
  std::string finish() {
    restore();
    if (scratch_ == nullptr) return "";
    std::string text;
    std::rewind(scratch_);
    char buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, scratch_)) > 0) text.append(buffer, n);
    return text;
  }

 private:
  void restore() {
    std::fflush(stdout);
    std::fflush(stderr);
    if (saved_out_.valid()) ::dup2(saved_out_.get(), STDOUT_FILENO);
    if (saved_err_.valid()) ::dup2(saved_err_.get(), STDERR_FILENO);
    saved_out_.close();
    saved_err_.close();
  }

  std::FILE* scratch_ = nullptr;
  io::UniqueFd saved_out_, saved_err_;
};

const char* device_name(Format format) { return format == Format::Png ? "pngcairo" : "svg"; }

// Palette: background, foreground, grid, reference grey, then ten series colours
// (matplotlib's "tab10", familiar from papers).
constexpr int kBackground = 0, kForeground = 1, kGrid = 2, kReference = 3, kFirstSeries = 4;
constexpr int kPalette[][3] = {
    {255, 255, 255}, {0, 0, 0},       {225, 225, 225}, {120, 120, 120}, {31, 119, 180},
    {255, 127, 14},  {44, 160, 44},   {214, 39, 40},   {148, 103, 189}, {140, 86, 75},
    {227, 119, 194}, {127, 127, 127}, {188, 189, 34},  {23, 190, 207},
};
constexpr int kPaletteEntries = sizeof kPalette / sizeof kPalette[0];
// One more colour-map entry, past the palette, recoloured (with alpha) for each band.
constexpr int kBand = kPaletteEntries;
const char* const kMarkers[] = {"●", "■", "▲", "◆", "▼", "★"};

int series_color(int color) { return kFirstSeries + color % (kPaletteEntries - kFirstSeries); }
const char* marker_glyph(int marker) { return kMarkers[marker % marker_count()]; }

void set_palette() {
  // One entry more than the palette: kBand, recoloured for each band.
  PLINT r[kPaletteEntries + 1], g[kPaletteEntries + 1], b[kPaletteEntries + 1];
  for (int i = 0; i < kPaletteEntries; ++i) {
    r[i] = kPalette[i][0];
    g[i] = kPalette[i][1];
    b[i] = kPalette[i][2];
  }
  r[kBand] = g[kBand] = b[kBand] = 0;
  plscmap0n(kPaletteEntries + 1);
  plscmap0(r, g, b, kPaletteEntries + 1);
}

// '#' starts a PLplot text escape; a literal one is written "##".
std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) out += (c == '#') ? std::string("##") : std::string(1, c);
  return out;
}

// Asked before use: PLplot answers an unknown device by printing a menu and prompting.
bool has_device(Format format) {
  constexpr int kMaxDevices = 256;
  const char* menus[kMaxDevices];
  const char* names[kMaxDevices];
  const char** menu_list = menus;
  const char** name_list = names;
  int count = kMaxDevices;
  plgDevs(&menu_list, &name_list, &count);
  for (int i = 0; i < count; ++i)
    if (names[i] != nullptr && std::string(names[i]) == device_name(format)) return true;
  return false;
}

// One PLplot stream writing one file; ended (which flushes the file) on destruction.
class Stream {
 public:
  Stream() {
    plgstrm(&previous_);
    plmkstrm(&id_);
    if (id_ < 0) throw PlotError("PLplot has no free output stream");
  }
  // Separate from the constructor so that the destructor also runs when this throws.
  void open(const Canvas& canvas, const std::filesystem::path& target) {
    plsdev(device_name(canvas.format));
    plsfnam(target.c_str());
    plspage(0, 0, canvas.width, canvas.height, 0, 0);
    set_palette();
    plinit();
    pladv(0);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (id_ >= 0) end();
    plsstrm(previous_);
  }

  void end() {
    // After a fatal error PLplot's stream is in an unknown state; ending it could re-enter
    // the fatal path, so it is abandoned instead.
    if (!g_fatal) {
      plsstrm(id_);
      try {
        plend1();
      } catch (const PlotError&) {
      }
    }
    id_ = -1;
  }

 private:
  PLINT previous_ = 0;
  PLINT id_ = -1;
};

// Checks we can create the file ourselves: PLplot's own reaction to an unwritable file
// is to prompt on stdin for another name and then exit().
void check_writable(const std::filesystem::path& file) {
  io::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) throw PlotError(file.string() + ": cannot write (" + io::errno_text(errno) + ")");
}

template <typename Body>
void render(const Canvas& canvas, const Body& body) {
  std::lock_guard<std::mutex> lock(plplot_mutex());
  if (!has_device(canvas.format))
    throw PlotError(std::string("PLplot has no '") + device_name(canvas.format) + "' device");
  // A fresh exclusive temporary: a planted "<file>.tmp" symlink is never written through.
  std::filesystem::path tmp;
  try {
    tmp = io::create_temporary_file(canvas.file);
  } catch (const UserError& e) {
    throw PlotError(e.what());
  }
  check_writable(tmp);
  std::vector<std::string> aborts;
  std::string printed;
  try {
    OutputCapture capture;
    HandlerScope handlers(&aborts);
    {
      Stream stream;
      stream.open(canvas, tmp);
      body();
      stream.end();
    }
    printed = capture.finish();
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  std::error_code error;
  if (!aborts.empty() || std::filesystem::file_size(tmp, error) == 0 || error) {
    std::filesystem::remove(tmp, error);
    std::string why = aborts.empty() ? "empty output" : aborts.front();
    if (!printed.empty()) why += "; PLplot said: " + printed;
    throw PlotError(canvas.file.string() + ": " + why);
  }
  std::filesystem::rename(tmp, canvas.file, error);
  if (error) {
    std::filesystem::remove(tmp, error);
    throw PlotError(canvas.file.string() + ": cannot rename the temporary file into place");
  }
}

// ---- chart bodies --------------------------------------------------------------------

struct Range {
  double low, high;
};

Range padded(double low, double high, double fraction, double minimum_pad) {
  const double pad = std::max((high - low) * fraction, minimum_pad);
  return {low - pad, high + pad};
}

std::string tick_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", value);
  return text;
}

void titles(const std::string& title, const std::string& x_label, const std::string& y_label,
            double x_label_disp) {
  plcol0(kForeground);
  plschr(0, 1.0);
  plmtex("t", 1.5, 0.5, 0.5, escape(title).c_str());
  plmtex("b", x_label_disp, 0.5, 0.5, escape(x_label).c_str());
  plmtex("l", 4.0, 0.5, 0.5, escape(y_label).c_str());
}

void horizontal_line(double x0, double x1, double y, int color, int style) {
  const PLFLT xs[2] = {x0, x1}, ys[2] = {y, y};
  plcol0(color);
  pllsty(style);
  plline(2, xs, ys);
  pllsty(1);
}

// Data ranges in world coordinates (log10 x) of everything a density chart shows.
struct DensityFrame {
  Range x;  // x.low is the left edge (largest density), x.high the right
  Range y;
};

// World x of a data x: log10 on the density axis, the value itself on a linear one.
PLFLT world_x(const DensityChart& chart, double x) { return chart.linear_x ? x : std::log10(x); }

DensityFrame density_frame(const DensityChart& chart) {
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const auto& s : chart.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      x_min = std::min(x_min, world_x(chart, s.x[i]));
      x_max = std::max(x_max, world_x(chart, s.x[i]));
      y_min = std::min(y_min, s.y[i]);
      y_max = std::max(y_max, s.y[i]);
      if (i < s.y_low.size() && i < s.y_high.size()) {
        y_min = std::min(y_min, s.y_low[i]);
        y_max = std::max(y_max, s.y_high[i]);
      }
    }
  for (const auto& r : chart.references) {
    y_min = std::min(y_min, r.y);
    y_max = std::max(y_max, r.y);
  }
  const Range x = padded(x_min, x_max, 0.04, chart.linear_x ? 1e-3 : 0.1);
  const Range y = padded(y_min, y_max, 0.06, chart.linear_x ? 0.5 : 1.0);
  if (chart.linear_x) return {x, {std::max(0.0, y.low), y.high}};
  return {{x.high, x.low}, {std::max(0.0, y.low), y.high}};
}

void density_ticks(const DensityChart& chart, const DensityFrame& frame) {
  std::vector<double> ticks = chart.x_ticks;
  std::sort(ticks.rbegin(), ticks.rend());
  double last_position = -1;
  for (const double tick : ticks) {
    const double position = (std::log10(tick) - frame.x.low) / (frame.x.high - frame.x.low);
    if (position < 0 || position > 1 || position - last_position < 0.09) continue;  // labels must not overlap
    last_position = position;
    const PLFLT xs[2] = {std::log10(tick), std::log10(tick)}, ys[2] = {frame.y.low, frame.y.high};
    plcol0(kGrid);
    plline(2, xs, ys);
    plcol0(kForeground);
    plmtex("b", 1.6, position, 0.5, tick_text(tick).c_str());
  }
}

// The band of a series as one translucent polygon: along y_high, back along y_low.
void density_band(const DensityChart& chart, const Series& s) {
  if (s.y_low.size() != s.x.size() || s.y_high.size() != s.x.size() || s.x.size() < 2) return;
  std::vector<PLFLT> xs, ys;
  for (size_t i = 0; i < s.x.size(); ++i) {
    xs.push_back(world_x(chart, s.x[i]));
    ys.push_back(s.y_high[i]);
  }
  for (size_t i = s.x.size(); i-- > 0;) {
    xs.push_back(world_x(chart, s.x[i]));
    ys.push_back(s.y_low[i]);
  }
  const auto& rgb = kPalette[series_color(s.color)];
  plscol0a(kBand, rgb[0], rgb[1], rgb[2], 0.18);
  plcol0(kBand);
  plfill(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
}

// The band's extent at each point as an error bar, so a series of one point shows it too.
void density_error_bars(const DensityChart& chart, const Series& s) {
  if (s.y_low.size() != s.x.size() || s.y_high.size() != s.x.size()) return;
  std::vector<PLFLT> xs, lows(s.y_low.begin(), s.y_low.end()), highs(s.y_high.begin(), s.y_high.end());
  for (const double x : s.x) xs.push_back(world_x(chart, x));
  plcol0(series_color(s.color));
  plerry(static_cast<PLINT>(xs.size()), xs.data(), lows.data(), highs.data());
}

void density_series(const DensityChart& chart, const Series& s) {
  std::vector<PLFLT> xs, ys;
  for (size_t i = 0; i < s.x.size(); ++i) {
    xs.push_back(world_x(chart, s.x[i]));
    ys.push_back(s.y[i]);
  }
  plcol0(series_color(s.color));
  pllsty(s.line_style);
  plwidth(2.0);
  if (xs.size() > 1) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
  pllsty(1);
  plschr(0, 0.8);
  plstring(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), marker_glyph(s.marker));
  plschr(0, 1.0);
  plwidth(1.0);
}

void density_legend(const DensityChart& chart) {
  std::vector<std::string> texts;
  std::vector<PLINT> opts, colors, styles, numbers;
  std::vector<PLFLT> widths, scales;
  std::vector<const char*> symbols;
  for (const auto& s : chart.series) {
    texts.push_back(escape(s.label));
    opts.push_back(PL_LEGEND_LINE | PL_LEGEND_SYMBOL);
    colors.push_back(series_color(s.color));
    styles.push_back(s.line_style);
    symbols.push_back(marker_glyph(s.marker));
  }
  if (!chart.references.empty()) {
    texts.push_back(escape(chart.reference_label));
    opts.push_back(PL_LEGEND_LINE);
    colors.push_back(kReference);
    styles.push_back(2);
    symbols.push_back("");
  }
  const size_t n = texts.size();
  if (n == 0) return;
  widths.assign(n, 2.0);
  scales.assign(n, 0.8);
  numbers.assign(n, 1);
  std::vector<const char*> text_ptrs;
  for (const auto& t : texts) text_ptrs.push_back(t.c_str());
  std::vector<PLINT> text_colors(n, kForeground), box_colors(n, 0), box_patterns(n, 0);
  std::vector<PLFLT> box_scales(n, 1.0), box_widths(n, 1.0);
  PLFLT width = 0, height = 0;
  pllegend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_RIGHT | PL_POSITION_TOP | PL_POSITION_INSIDE | PL_POSITION_SUBPAGE, 0.02,
           0.1, 0.06, kBackground, kForeground, 1, 0, 0, static_cast<PLINT>(n), opts.data(), 1.0,
           0.7, 2.0, 0.0, text_colors.data(), text_ptrs.data(), box_colors.data(),
           box_patterns.data(), box_scales.data(), box_widths.data(), colors.data(), styles.data(),
           widths.data(), colors.data(), scales.data(), numbers.data(), symbols.data());
}

void draw_density_body(const DensityChart& chart) {
  const DensityFrame frame = density_frame(chart);
  plvpor(0.08, 0.62, 0.12, 0.90);  // the right third holds the legend
  plwind(frame.x.low, frame.x.high, frame.y.low, frame.y.high);
  plcol0(kGrid);
  plbox(chart.linear_x ? "g" : "", 0, 0, "g", 0, 0);
  if (!chart.linear_x) density_ticks(chart, frame);
  for (const auto& r : chart.references)
    horizontal_line(frame.x.low, frame.x.high, r.y, series_color(r.color), 2);
  for (const auto& s : chart.series) density_band(chart, s);
  for (const auto& s : chart.series) density_error_bars(chart, s);
  for (const auto& s : chart.series) density_series(chart, s);
  plcol0(kForeground);
  plbox(chart.linear_x ? "bcnst" : "bcstl", 0, 0, "bcfnstv", 0, 0);
  titles(chart.title, chart.x_label, chart.y_label, 3.2);
  density_legend(chart);
}

void draw_bar_body(const BarChart& chart) {
  const size_t n = chart.values.size();
  size_t longest = 1;
  for (const auto& label : chart.labels) longest = std::max(longest, label.size());
  // Vertical labels need room below the axis; shrink them when there are many bars.
  const double label_scale =
      std::clamp(40.0 / static_cast<double>(std::max<size_t>(n, 1)), 0.35, 0.7);
  const double bottom = std::min(0.5, 0.04 + 0.0195 * label_scale * static_cast<double>(longest));
  // Late cycles keep a few percent per layer: scale y to the data, not to 1.
  double top = chart.reference.value_or(0.0);
  for (const double v : chart.values) top = std::max(top, v);
  top = std::max(top * 1.15, 1e-3);
  plvpor(0.08, 0.97, bottom, 0.90);
  plwind(-0.5, static_cast<double>(n) - 0.5, 0.0, top);
  plcol0(kGrid);
  plbox("", 0, 0, "g", 0, 0);
  for (size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i);
    const PLFLT xs[4] = {x - 0.38, x + 0.38, x + 0.38, x - 0.38};
    const PLFLT ys[4] = {0, 0, chart.values[i], chart.values[i]};
    plcol0(series_color(0));
    plfill(4, xs, ys);
  }
  plcol0(kForeground);
  plschr(0, label_scale);
  for (size_t i = 0; i < n && i < chart.labels.size(); ++i)
    plmtex("bv", 0.5, (static_cast<double>(i) + 0.5) / static_cast<double>(n), 1.0,
           escape(chart.labels[i]).c_str());
  plschr(0, 1.0);
  std::string title = chart.title;
  if (chart.reference) {
    horizontal_line(-0.5, static_cast<double>(n) - 0.5, *chart.reference, series_color(3), 2);
    // Named in the title: a label on the line would sit on top of the bars.
    title += " (dashed: " + chart.reference_label + ")";
  }
  plcol0(kForeground);
  plbox("bc", 0, 0, "bcfnstv", 0, 0);
  plmtex("t", 1.5, 0.5, 0.5, escape(title).c_str());
  plmtex("l", 4.0, 0.5, 0.5, escape(chart.y_label).c_str());
}

}  // namespace

int palette_size() { return kPaletteEntries - kFirstSeries; }
int marker_count() { return static_cast<int>(sizeof kMarkers / sizeof kMarkers[0]); }

bool device_available(Format format) {
  std::lock_guard<std::mutex> lock(plplot_mutex());
  return has_device(format);
}

void draw(const DensityChart& chart, const Canvas& canvas) {
  size_t points = 0;
  for (const auto& s : chart.series) points += s.x.size();
  if (points == 0) throw PlotError(canvas.file.string() + ": nothing to plot");
  render(canvas, [&] { draw_density_body(chart); });
}

void draw(const BarChart& chart, const Canvas& canvas) {
  if (chart.values.empty()) throw PlotError(canvas.file.string() + ": nothing to plot");
  render(canvas, [&] { draw_bar_body(chart); });
}

}  // namespace lth::report::plot
