// Figures of `perfq report` (cmd_report.cpp): an RGB canvas with a built-in 5x7 bitmap font,
// fixed colour maps, the choice and layout of axial slices, montages with a colour bar and
// an optional outline, and PNG writing through libpng. Only the perfq tool links libpng; the
// core library and perfq::io stay free of it.
#pragma once

#include <perfq/image.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace perfq_cli {
namespace report {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

/// An 8-bit RGB image, rows top to bottom, pixels left to right.
class Canvas {
 public:
  Canvas(int width, int height, Rgb fill);
  int width() const { return width_; }
  int height() const { return height_; }
  Rgb pixel(int x, int y) const;
  /// Sets one pixel; pixels outside the canvas are ignored (clipping).
  void set(int x, int y, Rgb colour);
  void fill_rect(int x, int y, int w, int h, Rgb colour);
  /// Copies `tile` with its top-left corner at (x, y), clipped.
  void paste(int x, int y, const Canvas& tile);
  /// Interleaved RGB bytes, row by row (width * 3 bytes per row).
  const std::vector<std::uint8_t>& bytes() const { return rgb_; }

 private:
  int width_, height_;
  std::vector<std::uint8_t> rgb_;
};

// ---- text: a built-in 5x7 font (cell 6 x 9 pixels at scale 1: 7 rows above the baseline,
// 2 for descenders, one column of spacing) ----------------------------------------------------

constexpr int kGlyphWidth = 5;
constexpr int kGlyphAdvance = 6;
constexpr int kGlyphAscent = 7;
constexpr int kGlyphHeight = 9;

/// Whether the font has a glyph for `c` (others are drawn as '?').
bool has_glyph(char c);
/// Width in pixels of `text` drawn at `scale` (no trailing spacing column).
int text_width(const std::string& text, int scale);
/// Draws `text` with the top of its cell at (x, y), each font pixel a scale x scale square.
void draw_text(Canvas& canvas, int x, int y, const std::string& text, Rgb colour, int scale);

// ---- colour maps ------------------------------------------------------------------------

/// Perceptually uniform maps of matplotlib (van der Walt and Smith), as 10 stops interpolated
/// linearly in sRGB. Neither starts at black, so a low value stays distinct from the
/// background.
enum class ColourMap { Viridis, Plasma };

/// The colour of `t` in [0, 1] (clamped; NaN gives the low end).
Rgb colour_at(ColourMap map, double t);

/// How values become colours, and how the colour bar is labelled.
struct ColourScale {
  ColourMap map = ColourMap::Viridis;
  double low = 0, high = 1;   ///< values at the ends of the map; outside: the end colours
  std::string title;          ///< e.g. "CBF"
  std::string units;          ///< e.g. "ml/100 g/min"
  std::vector<double> ticks;  ///< labelled values, within [low, high]
};

/// Ticks at "nice" round steps (1, 2, 2.5 or 5 times a power of ten) over [low, high].
std::vector<double> nice_ticks(double low, double high, int at_most = 6);
/// A tick label: at most 3 decimals, trailing zeros dropped ("0.5", "100", "-1.25").
std::string tick_label(double value);

// ---- slices and layout ----------------------------------------------------------------------

/// The z index of up to `wanted` slices, evenly spaced over the slices whose count of brain
/// voxels reaches `min_fraction` of the largest count (so a slice grazing the top of the head
/// is not shown). All such slices when there are at most `wanted`; none when no slice has
/// a brain voxel. Sorted ascending, without repeats; with two or more wanted, the first and
/// last qualifying slices are always among them (one wanted: the middle one).
std::vector<std::size_t> choose_slices(const std::vector<std::size_t>& voxels_per_slice,
                                       std::size_t wanted, double min_fraction = 0.15);

/// How voxel axes map onto an axial picture: radiological convention (the patient's right on
/// the viewer's left), anterior at the top. From the grid's direction cosines (LPS); an
/// oblique grid uses its closest axes.
struct Plane {
  int column_axis = 0, row_axis = 1, slice_axis = 2;  ///< voxel axes (0 x, 1 y, 2 z)
  bool flip_columns = false, flip_rows = false;        ///< run the axis backwards on screen
};
Plane axial_plane(const perfq::Geometry& geometry);

/// Which slices a montage shows and how large: shared by every montage of one report, so the
/// pictures line up.
struct MontageLayout {
  perfq::Geometry geometry;
  Plane plane;
  std::vector<std::size_t> slices;  ///< indices along plane.slice_axis
  /// In-plane crop, voxel indices along the column and row axes: [first, last).
  std::size_t col_first = 0, col_last = 0, row_first = 0, row_last = 0;
  double mm_per_pixel = 1;  ///< square pixels; a voxel spans spacing / mm_per_pixel pixels
  int tile_width = 0, tile_height = 0;
  int columns = 1;  ///< tiles per row of the montage
};

/// Plans a montage of up to `slices` axial slices of the voxels where `brain` is nonzero
/// (cropped to them, with a margin of one voxel), each tile about `tile_pixels` wide or tall.
/// @throws perfq::InvalidArgument when `brain` has no voxel or does not match `geometry`.
MontageLayout plan_montage(const perfq::Geometry& geometry, const std::vector<std::uint8_t>& brain,
                           std::size_t slices, int tile_pixels = 180, int max_columns = 6);

/// What one montage shows.
struct MontageContent {
  const float* values = nullptr;            ///< the map, on the layout's grid
  const std::uint8_t* shown = nullptr;      ///< voxels drawn in colour; others are background
  const std::uint8_t* outline = nullptr;    ///< optional: the edge of this mask is drawn
  std::string outline_label;                ///< legend text for the outline
  ColourScale scale;
};

constexpr Rgb kBackground{0, 0, 0};         ///< around and between tiles
constexpr Rgb kNotShown{56, 56, 56};        ///< voxels inside the crop that are not shown
constexpr Rgb kText{230, 230, 230};
constexpr Rgb kOutline{255, 0, 200};        ///< border-zone outline (magenta: absent from both maps)

/// Renders the tiles (slice number in each corner, R/L marks on the first), then a colour
/// bar with its ticks, tick labels, title and units, and the outline's legend.
Canvas render_montage(const MontageLayout& layout, const MontageContent& content);

/// Where the colour bar lies in a canvas made by render_montage (for tests and checks).
struct ColourBarBox {
  int x = 0, y = 0, width = 0, height = 0;
};
ColourBarBox colour_bar_box(const MontageLayout& layout);

// ---- PNG -----------------------------------------------------------------------------------

/// Writes an 8-bit RGB PNG with libpng.
/// @throws perfq::Error naming the file when it cannot be written.
void write_png(const std::string& path, const Canvas& canvas);

}  // namespace report
}  // namespace perfq_cli
