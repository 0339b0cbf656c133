// Partial-volume correction by local linear regression (see include/perfq/pvc.hpp).
#include <perfq/errors.hpp>
#include <perfq/pvc.hpp>

#include <perfq/detail/single_delay.hpp>

#include "parallel.hpp"
#include "grid_checks.hpp"

#include <cmath>

PERFQ_NAMESPACE_BEGIN

namespace {

void check_fractions(View<const float> p, const char* name) {
  for (std::size_t i = 0; i < p.voxel_count(); ++i) {
    const float v = p.data[i];
    if (!(std::isfinite(v) && v >= -1e-3f && v <= 1.0f + 1e-3f)) {
      throw InvalidArgument(std::string(name) + " fraction at voxel " + std::to_string(i) + " is " +
                            std::to_string(v) + "; expected a value in [0, 1]");
    }
  }
}

}  // namespace

PvcMaps partial_volume_correct(View<const float> cbf, View<const float> gm, View<const float> wm,
                               std::optional<View<const std::uint8_t>> usable,
                               const PvcOptions& o, const Execution& execution) {
  if (cbf.empty() || cbf.volumes != 1) throw InvalidArgument("PVC takes one CBF volume");
  const Geometry& g = cbf.geometry;
  checks::one_volume_on_grid(gm, g, "the grey-matter fraction", "the CBF map");
  checks::one_volume_on_grid(wm, g, "the white-matter fraction", "the CBF map");
  if (usable) checks::one_volume_on_grid(*usable, g, "the PVC voxel selection", "the CBF map");
  if (o.kernel_xy < 1 || o.kernel_xy % 2 == 0 || o.kernel_z < 1 || o.kernel_z % 2 == 0) {
    throw InvalidArgument("PVC kernel sizes must be odd and positive");
  }
  if (!(o.min_fraction > 0.0 && o.min_fraction <= 1.0)) {
    throw InvalidArgument("PVC min_fraction must be in (0, 1]");
  }
  check_fractions(gm, "grey-matter");
  check_fractions(wm, "white-matter");
  // The regression is cheap next to the fits: it runs on the CPU whatever the backend, but a
  // request for an absent CUDA device is still refused.
  resolve_backend(execution);

  PvcMaps out{Volume<float>(g), Volume<float>(g), Volume<std::uint8_t>(g)};
  const long nx = static_cast<long>(g.dims[0]), ny = static_cast<long>(g.dims[1]),
             nz = static_cast<long>(g.dims[2]);
  const long rx = o.kernel_xy / 2, rz = o.kernel_z / 2;
  const float min_fraction = static_cast<float>(o.min_fraction);
  cpu::parallel_for(g.voxel_count(), execution.threads, [&](std::size_t i) {
    const float own_gm = gm.data[i], own_wm = wm.data[i];
    if (own_gm < min_fraction && own_wm < min_fraction) return;
    const long x = static_cast<long>(i % g.dims[0]);
    const long y = static_cast<long>((i / g.dims[0]) % g.dims[1]);
    const long z = static_cast<long>(i / (g.dims[0] * g.dims[1]));
    // Normal equations of c = p_gm·a + p_wm·b over the neighbourhood, in double.
    double sgg = 0, sgw = 0, sww = 0, sgc = 0, swc = 0;
    for (long dz = -rz; dz <= rz; ++dz) {
      for (long dy = -rx; dy <= rx; ++dy) {
        for (long dx = -rx; dx <= rx; ++dx) {
          const long xx = x + dx, yy = y + dy, zz = z + dz;
          if (xx < 0 || yy < 0 || zz < 0 || xx >= nx || yy >= ny || zz >= nz) continue;
          const std::size_t j = static_cast<std::size_t>(xx + nx * (yy + ny * zz));
          const float c = cbf.data[j];
          if (!detail::is_finite(c) || (usable && usable->data[j] == 0)) continue;
          const double pg = gm.data[j], pw = wm.data[j];
          sgg += pg * pg, sgw += pg * pw, sww += pw * pw, sgc += pg * c, swc += pw * c;
        }
      }
    }
    const double det = sgg * sww - sgw * sgw;
    double a = 0, b = 0;
    bool has_gm = false, has_wm = false;
    if (det > 1e-6 * (sgg * sww + 1e-30)) {  // both tissues separable
      a = (sww * sgc - sgw * swc) / det;
      b = (sgg * swc - sgw * sgc) / det;
      has_gm = own_gm >= min_fraction;
      has_wm = own_wm >= min_fraction;
    } else if (sgg > sww && sgg > 0) {  // essentially one tissue: grey matter
      a = sgc / sgg;
      has_gm = own_gm >= min_fraction;
    } else if (sww > 0) {
      b = swc / sww;
      has_wm = own_wm >= min_fraction;
    }
    if (has_gm) out.cbf_gm[i] = static_cast<float>(a);
    if (has_wm) out.cbf_wm[i] = static_cast<float>(b);
    out.valid[i] = static_cast<std::uint8_t>((has_gm ? 1 : 0) | (has_wm ? 2 : 0));
  });
  return out;
}

PERFQ_NAMESPACE_END
