// Figures of `perfq report`: canvas, font, colour maps, montage layout and PNG output.
#include "report_figures.hpp"

#include <perfq/errors.hpp>

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

namespace perfq_cli {
namespace report {

// ---- canvas --------------------------------------------------------------------------------

Canvas::Canvas(int width, int height, Rgb fill)
    : width_(std::max(width, 1)), height_(std::max(height, 1)) {
  rgb_.resize(static_cast<std::size_t>(width_) * height_ * 3);
  for (std::size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = fill.r;
    rgb_[i + 1] = fill.g;
    rgb_[i + 2] = fill.b;
  }
}

Rgb Canvas::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return {};
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  rgb_[i] = c.r;
  rgb_[i + 1] = c.g;
  rgb_[i + 2] = c.b;
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) {
  for (int yy = std::max(y, 0); yy < std::min(y + h, height_); ++yy) {
    for (int xx = std::max(x, 0); xx < std::min(x + w, width_); ++xx) set(xx, yy, c);
  }
}

void Canvas::paste(int x, int y, const Canvas& tile) {
  for (int yy = 0; yy < tile.height(); ++yy) {
    for (int xx = 0; xx < tile.width(); ++xx) set(x + xx, y + yy, tile.pixel(xx, yy));
  }
}

// ---- font ------------------------------------------------------------------------------------

namespace {

/// A glyph: 9 rows of 5 columns, '#' set; rows 0-6 above the baseline, 7-8 descenders. Rows
/// not given are empty.
struct Glyph {
  char c;
  const char* rows[kGlyphHeight];
};

// clang-format off
const Glyph kGlyphs[] = {
  {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
  {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
  {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
  {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
  {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
  {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
  {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
  {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
  {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
  {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
  {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
  {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
  {'D', {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}},
  {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
  {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
  {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
  {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
  {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
  {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
  {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
  {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
  {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
  {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
  {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
  {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
  {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
  {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
  {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
  {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
  {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
  {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
  {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
  {'b', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."}},
  {'c', {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}},
  {'d', {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"}},
  {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
  {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
  {'g', {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", ".###."}},
  {'h', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
  {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
  {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
  {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
  {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"}},
  {'n', {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
  {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
  {'p', {".....", ".....", "####.", "#...#", "#...#", "#...#", "####.", "#....", "#...."}},
  {'q', {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", "....#"}},
  {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
  {'s', {".....", ".....", ".###.", "#....", ".###.", "....#", "####."}},
  {'t', {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}},
  {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
  {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
  {'w', {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}},
  {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
  {'y', {".....", ".....", "#...#", "#...#", "#...#", "#...#", ".####", "....#", ".###."}},
  {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
  {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
  {',', {".....", ".....", ".....", ".....", ".....", ".##..", ".##..", ".#..."}},
  {'-', {".....", ".....", ".....", ".###.", ".....", ".....", "....."}},
  {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
  {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
  {'/', {"....#", "...#.", "...#.", "..#..", ".#...", ".#...", "#...."}},
  {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
  {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
  {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
  {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
  {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
  {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
  {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
  {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
};
// clang-format on

const Glyph* find_glyph(char c) {
  for (const Glyph& g : kGlyphs) {
    if (g.c == c) return &g;
  }
  return nullptr;
}

}  // namespace

bool has_glyph(char c) { return find_glyph(c) != nullptr; }

int text_width(const std::string& text, int scale) {
  if (text.empty()) return 0;
  return (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

void draw_text(Canvas& canvas, int x, int y, const std::string& text, Rgb colour, int scale) {
  const Glyph* unknown = find_glyph('?');
  for (std::size_t k = 0; k < text.size(); ++k) {
    const Glyph* g = find_glyph(text[k]);
    if (g == nullptr) g = unknown;
    const int left = x + static_cast<int>(k) * kGlyphAdvance * scale;
    for (int row = 0; row < kGlyphHeight; ++row) {
      const char* bits = g->rows[row];
      if (bits == nullptr) continue;
      for (int col = 0; col < kGlyphWidth; ++col) {
        if (bits[col] == '#') {
          canvas.fill_rect(left + col * scale, y + row * scale, scale, scale, colour);
        }
      }
    }
  }
}

// ---- colour maps -----------------------------------------------------------------------------

namespace {

// Ten evenly spaced stops of matplotlib's maps (CC0), as published in its colour tables.
constexpr std::array<std::uint32_t, 10> kViridis = {0x440154, 0x482878, 0x3E4A89, 0x31688E,
                                                    0x26828E, 0x1F9E89, 0x35B779, 0x6DCD59,
                                                    0xB4DE2C, 0xFDE725};
constexpr std::array<std::uint32_t, 10> kPlasma = {0x0D0887, 0x47039F, 0x7301A8, 0x9C179E,
                                                   0xBD3786, 0xD8576B, 0xED7953, 0xFA9E3B,
                                                   0xFDC926, 0xF0F921};

double channel(std::uint32_t hex, int shift) { return (hex >> shift) & 0xFF; }

}  // namespace

Rgb colour_at(ColourMap map, double t) {
  const auto& stops = map == ColourMap::Viridis ? kViridis : kPlasma;
  if (!(t > 0)) t = 0;  // NaN too
  if (t > 1) t = 1;
  const double position = t * (stops.size() - 1);
  const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(position), stops.size() - 2);
  const double w = position - k;
  auto mix = [&](int shift) {
    const double v = (1 - w) * channel(stops[k], shift) + w * channel(stops[k + 1], shift);
    return static_cast<std::uint8_t>(std::lround(v));
  };
  return {mix(16), mix(8), mix(0)};
}

std::vector<double> nice_ticks(double low, double high, int at_most) {
  std::vector<double> ticks;
  if (!(high > low) || at_most < 2) return {low};
  const double span = high - low;
  const double raw = span / (at_most - 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * power;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * power >= raw * (1 - 1e-9)) {
      step = m * power;
      break;
    }
  }
  const double first = std::ceil(low / step - 1e-9) * step;
  for (double v = first; v <= high + step * 1e-9; v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string tick_label(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3f", value);
  std::string s = text;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

// ---- slices and layout -----------------------------------------------------------------------

std::vector<std::size_t> choose_slices(const std::vector<std::size_t>& voxels_per_slice,
                                       std::size_t wanted, double min_fraction) {
  const std::size_t most =
      voxels_per_slice.empty() ? 0
                               : *std::max_element(voxels_per_slice.begin(), voxels_per_slice.end());
  std::vector<std::size_t> candidates;
  if (most == 0 || wanted == 0) return candidates;
  for (std::size_t z = 0; z < voxels_per_slice.size(); ++z) {
    const std::size_t n = voxels_per_slice[z];
    if (n > 0 && static_cast<double>(n) >= min_fraction * static_cast<double>(most)) {
      candidates.push_back(z);
    }
  }
  if (candidates.size() <= wanted) return candidates;
  std::vector<std::size_t> chosen;
  if (wanted == 1) return {candidates[candidates.size() / 2]};
  // Evenly spaced over the candidates' positions: the ends included, the rest rounded.
  const double step = static_cast<double>(candidates.size() - 1) / static_cast<double>(wanted - 1);
  for (std::size_t k = 0; k < wanted; ++k) {
    const std::size_t at = static_cast<std::size_t>(std::lround(k * step));
    if (chosen.empty() || candidates[at] != chosen.back()) chosen.push_back(candidates[at]);
  }
  return chosen;
}

Plane axial_plane(const perfq::Geometry& g) {
  // Column a of the row-major direction matrix is voxel axis a in LPS space; its largest
  // component says whether it runs left-right (0), anterior-posterior (1) or up-down (2).
  std::array<int, 3> physical_of{};
  for (int a = 0; a < 3; ++a) {
    int best = 0;
    for (int p = 1; p < 3; ++p) {
      if (std::abs(g.direction[3 * p + a]) > std::abs(g.direction[3 * best + a])) best = p;
    }
    physical_of[a] = best;
  }
  Plane plane;
  if (physical_of[0] == physical_of[1] || physical_of[0] == physical_of[2] ||
      physical_of[1] == physical_of[2]) {
    return plane;  // degenerate cosines: voxel axes as they are
  }
  for (int a = 0; a < 3; ++a) {
    if (physical_of[a] == 0) plane.column_axis = a;
    if (physical_of[a] == 1) plane.row_axis = a;
    if (physical_of[a] == 2) plane.slice_axis = a;
  }
  // Radiological: the viewer's right is the patient's left (+x in LPS); down is posterior
  // (+y in LPS).
  plane.flip_columns = g.direction[0 + plane.column_axis] < 0;
  plane.flip_rows = g.direction[3 + plane.row_axis] < 0;
  return plane;
}

namespace {

/// Voxel index of (column, row, slice) in the plane's axes.
std::size_t voxel_index(const perfq::Geometry& g, const Plane& p, std::size_t col, std::size_t row,
                        std::size_t slice) {
  std::array<std::size_t, 3> i{};
  i[p.column_axis] = col;
  i[p.row_axis] = row;
  i[p.slice_axis] = slice;
  return g.index(i[0], i[1], i[2]);
}

constexpr int kMargin = 10;
constexpr int kGap = 4;
constexpr int kTextScale = 2;
constexpr int kBarHeight = 18;
constexpr int kBarWidth = 360;
constexpr int kLegendHeight = 14 + kGlyphHeight * kTextScale + 8 + kBarHeight + 6 +
                              kGlyphAscent * kTextScale + 8;
constexpr int kMinWidth = 640;

int canvas_width(const MontageLayout& l) {
  return std::max(kMinWidth, 2 * kMargin + l.columns * l.tile_width + (l.columns - 1) * kGap);
}

int tiles_height(const MontageLayout& l) {
  const int rows = static_cast<int>((l.slices.size() + l.columns - 1) / l.columns);
  return rows * l.tile_height + (rows - 1) * kGap;
}

}  // namespace

MontageLayout plan_montage(const perfq::Geometry& geometry, const std::vector<std::uint8_t>& brain,
                           std::size_t slices, int tile_pixels, int max_columns) {
  if (brain.size() != geometry.voxel_count()) {
    throw perfq::InvalidArgument("plan_montage: the brain mask does not match the grid");
  }
  MontageLayout l;
  l.geometry = geometry;
  l.plane = axial_plane(geometry);
  const Plane& p = l.plane;
  const std::size_t nc = geometry.dims[p.column_axis], nr = geometry.dims[p.row_axis],
                    ns = geometry.dims[p.slice_axis];
  std::vector<std::size_t> per_slice(ns, 0);
  std::size_t c0 = nc, c1 = 0, r0 = nr, r1 = 0;
  for (std::size_t s = 0; s < ns; ++s) {
    for (std::size_t r = 0; r < nr; ++r) {
      for (std::size_t c = 0; c < nc; ++c) {
        if (brain[voxel_index(geometry, p, c, r, s)]) ++per_slice[s];
      }
    }
  }
  l.slices = choose_slices(per_slice, slices);
  if (l.slices.empty()) {
    throw perfq::InvalidArgument("plan_montage: no brain voxel to show");
  }
  for (std::size_t s : l.slices) {
    for (std::size_t r = 0; r < nr; ++r) {
      for (std::size_t c = 0; c < nc; ++c) {
        if (!brain[voxel_index(geometry, p, c, r, s)]) continue;
        c0 = std::min(c0, c);
        c1 = std::max(c1, c + 1);
        r0 = std::min(r0, r);
        r1 = std::max(r1, r + 1);
      }
    }
  }
  l.col_first = c0 > 0 ? c0 - 1 : 0;
  l.col_last = std::min(nc, c1 + 1);
  l.row_first = r0 > 0 ? r0 - 1 : 0;
  l.row_last = std::min(nr, r1 + 1);
  const double sc = geometry.spacing[p.column_axis], sr = geometry.spacing[p.row_axis];
  const double width_mm = (l.col_last - l.col_first) * sc;
  const double height_mm = (l.row_last - l.row_first) * sr;
  // A whole number of pixels per voxel along the finer axis keeps voxels the same size.
  const double finer = std::min(sc, sr);
  const int per_voxel =
      std::max(1, static_cast<int>(std::floor(tile_pixels * finer / std::max(width_mm, height_mm))));
  l.mm_per_pixel = finer / per_voxel;
  l.tile_width = std::max(1, static_cast<int>(std::lround(width_mm / l.mm_per_pixel)));
  l.tile_height = std::max(1, static_cast<int>(std::lround(height_mm / l.mm_per_pixel)));
  l.columns = static_cast<int>(std::min<std::size_t>(std::max(1, max_columns), l.slices.size()));
  return l;
}

ColourBarBox colour_bar_box(const MontageLayout& l) {
  ColourBarBox box;
  box.x = kMargin + 12;  // room for half of the first tick label
  box.y = kMargin + tiles_height(l) + 14 + kGlyphHeight * kTextScale + 8;
  box.width = std::min(kBarWidth, canvas_width(l) - 2 * kMargin - 24);
  box.height = kBarHeight;
  return box;
}

Canvas render_montage(const MontageLayout& l, const MontageContent& content) {
  const Plane& p = l.plane;
  const perfq::Geometry& g = l.geometry;
  const int width = canvas_width(l);
  const int height = kMargin + tiles_height(l) + kLegendHeight + kMargin;
  Canvas canvas(width, height, kBackground);
  const ColourScale& scale = content.scale;
  const double span = scale.high - scale.low;
  const std::size_t cols = l.col_last - l.col_first, rows = l.row_last - l.row_first;
  const double sc = g.spacing[p.column_axis], sr = g.spacing[p.row_axis];

  // The voxel (column, row) under each pixel of a tile, nearest neighbour.
  std::vector<std::size_t> col_of(l.tile_width), row_of(l.tile_height);
  for (int x = 0; x < l.tile_width; ++x) {
    std::size_t c = std::min(cols - 1, static_cast<std::size_t>((x + 0.5) * l.mm_per_pixel / sc));
    if (p.flip_columns) c = cols - 1 - c;
    col_of[x] = l.col_first + c;
  }
  for (int y = 0; y < l.tile_height; ++y) {
    std::size_t r = std::min(rows - 1, static_cast<std::size_t>((y + 0.5) * l.mm_per_pixel / sr));
    if (p.flip_rows) r = rows - 1 - r;
    row_of[y] = l.row_first + r;
  }

  for (std::size_t k = 0; k < l.slices.size(); ++k) {
    const std::size_t s = l.slices[k];
    const int left = kMargin + static_cast<int>(k % l.columns) * (l.tile_width + kGap);
    const int top = kMargin + static_cast<int>(k / l.columns) * (l.tile_height + kGap);
    std::vector<std::uint8_t> inside(static_cast<std::size_t>(l.tile_width) * l.tile_height, 0);
    for (int y = 0; y < l.tile_height; ++y) {
      for (int x = 0; x < l.tile_width; ++x) {
        const std::size_t i = voxel_index(g, p, col_of[x], row_of[y], s);
        Rgb c = kNotShown;
        if (content.shown[i] && std::isfinite(content.values[i])) {
          c = colour_at(scale.map, span > 0 ? (content.values[i] - scale.low) / span : 0.0);
        }
        canvas.set(left + x, top + y, c);
        if (content.outline != nullptr && content.outline[i]) {
          inside[static_cast<std::size_t>(y) * l.tile_width + x] = 1;
        }
      }
    }
    if (content.outline != nullptr) {
      // Edge pixels of the mask: inside, with a 4-neighbour outside (or the tile's edge).
      auto in = [&](int x, int y) {
        return x >= 0 && y >= 0 && x < l.tile_width && y < l.tile_height &&
               inside[static_cast<std::size_t>(y) * l.tile_width + x];
      };
      for (int y = 0; y < l.tile_height; ++y) {
        for (int x = 0; x < l.tile_width; ++x) {
          if (in(x, y) && !(in(x - 1, y) && in(x + 1, y) && in(x, y - 1) && in(x, y + 1))) {
            canvas.set(left + x, top + y, kOutline);
          }
        }
      }
    }
    // Slice number, and the sides on the first tile.
    const std::string label = std::to_string(s);
    draw_text(canvas, left + 3, top + 3, label, kText, 1);
    if (k == 0) {
      const int mid = top + l.tile_height / 2 - kGlyphAscent / 2;
      draw_text(canvas, left + 3, mid, "R", kText, 1);
      draw_text(canvas, left + l.tile_width - 3 - kGlyphWidth, mid, "L", kText, 1);
    }
  }

  // Title with units, then the colour bar, its ticks and their labels.
  const ColourBarBox bar = colour_bar_box(l);
  const int title_y = kMargin + tiles_height(l) + 14;
  std::string title = scale.title;
  if (!scale.units.empty()) title += " (" + scale.units + ")";
  draw_text(canvas, bar.x, title_y, title, kText, kTextScale);
  for (int x = 0; x < bar.width; ++x) {
    const Rgb c = colour_at(scale.map, bar.width > 1 ? double(x) / (bar.width - 1) : 0.0);
    canvas.fill_rect(bar.x + x, bar.y, 1, bar.height, c);
  }
  for (double t : scale.ticks) {
    if (!(span > 0) || t < scale.low - 1e-9 * span || t > scale.high + 1e-9 * span) continue;
    const int x = bar.x + static_cast<int>(std::lround((t - scale.low) / span * (bar.width - 1)));
    canvas.fill_rect(x, bar.y + bar.height, 1, 5, kText);
    const std::string text = tick_label(t);
    const int w = text_width(text, kTextScale);
    const int tx = std::clamp(x - w / 2, 0, width - w);
    draw_text(canvas, tx, bar.y + bar.height + 7, text, kText, kTextScale);
  }
  if (content.outline != nullptr && !content.outline_label.empty()) {
    const int lx = bar.x + bar.width + 40;
    const int ly = bar.y + bar.height / 2;
    canvas.fill_rect(lx, ly - 1, 24, 3, kOutline);
    draw_text(canvas, lx + 32, ly - kGlyphAscent * kTextScale / 2, content.outline_label, kText,
              kTextScale);
  }
  return canvas;
}

// ---- PNG -------------------------------------------------------------------------------------

void write_png(const std::string& path, const Canvas& canvas) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(canvas.width());
  image.height = static_cast<png_uint_32>(canvas.height());
  image.format = PNG_FORMAT_RGB;
  const int ok = png_image_write_to_file(&image, path.c_str(), 0, canvas.bytes().data(),
                                         canvas.width() * 3, nullptr);
  const std::string message = image.message;
  png_image_free(&image);
  if (!ok) {
    std::remove(path.c_str());
    throw perfq::Error(path + ": cannot write the PNG (libpng: " + message + ")");
  }
}

}  // namespace report
}  // namespace perfq_cli
