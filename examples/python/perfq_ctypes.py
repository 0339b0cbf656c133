#!/usr/bin/env python3
"""perfq from Python through its C API (include/perfq/perfq.h) with ctypes only.

Generates the synthetic phantom, pairs its control/label volumes into ΔM, quantifies CBF
from one delay (white-paper formula) and CBF + arterial transit time from all delays
(kinetic fit), and prints the mean CBF/ATT in grey and white matter beside the phantom's
truth. Then the border zones: from the territory atlas (Dice overlap with the phantom's
designed zones), split into internal (WM) and external (GM) parts, regional statistics of the
fit in the grey matter of each pair of meeting territories beside the rest of the grey
matter, and the enrichment of the phantom's white-matter lesions in the zones. Last, a
time-encoded (Hadamard-8) PCASL phantom: its encoded volumes decoded into seven sub-bolus ΔM
images, each with its own delay and duration, and fitted for CBF and ATT.

Exits 1 when a result contradicts the phantom: an estimate off by more than the tolerance
(5 % for CBF, 0.1 s for ATT, border-zone Dice 0.5; set for the default SNR of 10: at lower SNR
the white-matter fit is biased upwards), border-zone grey matter that does not arrive later
(ATT) with lower CBF than the rest of the grey matter, internal and external parts that do
not make up the zones, lesions not enriched in them (they are placed there), or a
time-encoded grey-matter CBF or ATT off the truth. So it doubles as a test.

Usage: perfq_ctypes.py [path/to/libperfq.so] [--snr X] [--threads N] [--backend NAME]
The library path may also come from the environment variable PERFQ_LIBRARY. Needs nothing
beyond the Python 3 standard library (no numpy).
"""

import argparse
import ctypes
import ctypes.util
import os
import sys
from array import array

# ---- binding ---------------------------------------------------------------------------

c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_float_p = ctypes.POINTER(ctypes.c_float)
c_double_p = ctypes.POINTER(ctypes.c_double)
c_uint8_p = ctypes.POINTER(ctypes.c_uint8)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
handle = ctypes.c_void_p
handle_p = ctypes.POINTER(ctypes.c_void_p)
Size3 = ctypes.c_size_t * 3
Double3 = ctypes.c_double * 3

# Enum values of perfq.h.
VOLUME_CONTROL, VOLUME_LABEL = 0, 1
KINETIC_CBF, KINETIC_ATT = 0, 1
STAT_LABEL, STAT_VOXELS, STAT_COUNT, STAT_VOLUME_ML, STAT_MEAN, STAT_SD = 0, 1, 2, 4, 5, 6
PHANTOM_M0, PHANTOM_CBF, PHANTOM_ATT = 0, 1, 2
PHANTOM_TISSUE, PHANTOM_BRAIN, PHANTOM_BORDER_ZONE, PHANTOM_LESIONS = 0, 1, 2, 4
GREY_MATTER, WHITE_MATTER = 2, 3
TERRITORY_NAMES = {1: "ACA", 2: "MCA", 3: "PCA"}  # the phantom's territory labels
PAIR_CODE_BASE = 1000  # border-zone pair codes are a × 1000 + b (a < b)
REST = 1  # region label of the grey matter outside the border zones (pair codes are larger)


class LesionEnrichment(ctypes.Structure):
    """perfq_lesion_enrichment."""
    _fields_ = [("lesion_voxels", ctypes.c_size_t), ("lesion_in_watershed", ctypes.c_size_t),
                ("wm_voxels", ctypes.c_size_t), ("watershed_in_wm", ctypes.c_size_t),
                ("lesion_volume_ml", ctypes.c_double), ("lesion_in_watershed_ml", ctypes.c_double),
                ("lesion_fraction", ctypes.c_double), ("watershed_fraction", ctypes.c_double),
                ("enrichment_defined", ctypes.c_int), ("enrichment", ctypes.c_double)]


# name: (result type, argument types); functions returning perfq_status use ctypes.c_int.
SIGNATURES = {
    "perfq_last_error": (ctypes.c_char_p, []),
    "perfq_version": (ctypes.c_char_p, []),
    "perfq_c_api_version": (ctypes.c_int, []),
    "perfq_cuda_device_count": (ctypes.c_int, []),
    "perfq_cuda_device_name": (ctypes.c_char_p, [ctypes.c_int]),
    "perfq_cuda_unavailable_reason": (ctypes.c_char_p, []),
    "perfq_execution_create": (ctypes.c_int, [handle_p]),
    "perfq_execution_destroy": (None, [handle]),
    "perfq_execution_set_backend": (ctypes.c_int, [handle, ctypes.c_char_p]),
    "perfq_execution_set_threads": (ctypes.c_int, [handle, ctypes.c_int]),
    "perfq_protocol_destroy": (None, [handle]),
    "perfq_protocol_set_delays": (ctypes.c_int, [handle, c_double_p, ctypes.c_size_t]),
    "perfq_protocol_set_labeling_durations": (ctypes.c_int,
                                              [handle, c_double_p, ctypes.c_size_t]),
    "perfq_phantom_options_create": (ctypes.c_int, [handle_p]),
    "perfq_phantom_options_destroy": (None, [handle]),
    "perfq_phantom_options_set_delays": (
        ctypes.c_int, [handle, c_double_p, ctypes.c_size_t, ctypes.c_size_t]),
    "perfq_phantom_options_set_grid": (ctypes.c_int, [handle, Size3, ctypes.c_double]),
    "perfq_phantom_options_set_noise": (ctypes.c_int, [handle, ctypes.c_double, ctypes.c_uint64]),
    "perfq_phantom_options_set_lesions": (ctypes.c_int, [handle, ctypes.c_size_t]),
    "perfq_phantom_options_set_time_encoded": (
        ctypes.c_int, [handle, ctypes.c_size_t, ctypes.c_char_p, c_double_p, ctypes.c_size_t]),
    "perfq_phantom_create": (ctypes.c_int, [handle, handle_p]),
    "perfq_phantom_destroy": (None, [handle]),
    "perfq_phantom_geometry": (ctypes.c_int, [handle, Size3, Double3]),
    "perfq_phantom_series": (c_float_p, [handle, c_size_p]),
    "perfq_phantom_context": (c_int32_p, [handle]),
    "perfq_phantom_protocol": (ctypes.c_int, [handle, handle_p]),
    "perfq_phantom_map_data": (c_float_p, [handle, ctypes.c_int]),
    "perfq_phantom_mask_data": (c_uint8_p, [handle, ctypes.c_int]),
    "perfq_phantom_territories": (c_int32_p, [handle]),
    "perfq_phantom_time_encoding": (ctypes.c_int, [handle, handle_p]),
    "perfq_time_encoding_destroy": (None, [handle]),
    "perfq_time_encoding_cycles": (ctypes.c_size_t, [handle]),
    "perfq_time_encoding_sub_boli": (ctypes.c_size_t, [handle]),
    "perfq_time_encoding_sub_bolus_durations": (c_double_p, [handle]),
    "perfq_time_encoding_sub_bolus_delays": (c_double_p, [handle]),
    "perfq_time_encoding_source": (ctypes.c_char_p, [handle]),
    "perfq_prepare_time_encoded": (ctypes.c_int, [c_float_p, ctypes.c_size_t, Size3, Double3,
                                                  c_int32_p, handle, handle, ctypes.c_int,
                                                  c_uint8_p, handle_p]),
    "perfq_prepare_asl": (ctypes.c_int, [c_float_p, ctypes.c_size_t, Size3, Double3, c_int32_p,
                                         handle, ctypes.c_int, c_uint8_p, handle_p]),
    "perfq_prepared_destroy": (None, [handle]),
    "perfq_prepared_delta_m": (c_float_p, [handle, c_size_p]),
    "perfq_prepared_delays": (c_double_p, [handle]),
    "perfq_prepared_labeling_durations": (c_double_p, [handle]),
    "perfq_prepared_repeats": (c_size_p, [handle]),
    "perfq_quantify_cbf": (ctypes.c_int, [c_float_p, Size3, Double3, c_float_p, ctypes.c_double,
                                          c_uint8_p, handle, handle, handle, handle_p]),
    "perfq_cbf_maps_destroy": (None, [handle]),
    "perfq_cbf_maps_cbf": (c_float_p, [handle]),
    "perfq_cbf_maps_backend": (ctypes.c_char_p, [handle]),
    "perfq_kinetic_options_create": (ctypes.c_int, [handle_p]),
    "perfq_kinetic_options_destroy": (None, [handle]),
    "perfq_kinetic_options_set_model": (ctypes.c_int, [handle, ctypes.c_char_p]),
    "perfq_kinetic_options_set_solver": (ctypes.c_int, [handle, ctypes.c_int, ctypes.c_int,
                                                        ctypes.c_double]),
    "perfq_kinetic_options_set_weights": (ctypes.c_int, [handle, c_double_p, ctypes.c_size_t]),
    "perfq_fit_kinetic": (ctypes.c_int, [c_float_p, ctypes.c_size_t, Size3, Double3, c_float_p,
                                         ctypes.c_double, c_uint8_p, handle, handle, handle,
                                         handle, handle_p]),
    "perfq_kinetic_fit_destroy": (None, [handle]),
    "perfq_kinetic_fit_map": (c_float_p, [handle, ctypes.c_int]),
    "perfq_border_zones_from_territories": (
        ctypes.c_int, [c_int32_p, Size3, Double3, c_uint8_p, ctypes.c_double, handle, handle_p]),
    "perfq_border_zones_destroy": (None, [handle]),
    "perfq_border_zones_mask": (c_uint8_p, [handle]),
    "perfq_border_zones_pairs": (c_int32_p, [handle]),
    "perfq_mask_destroy": (None, [handle]),
    "perfq_mask_data": (c_uint8_p, [handle]),
    "perfq_split_internal_external": (ctypes.c_int, [c_uint8_p, c_uint8_p, c_uint8_p, Size3,
                                                     Double3, handle_p, handle_p]),
    "perfq_dice": (ctypes.c_int, [c_uint8_p, c_uint8_p, Size3, Double3, c_double_p]),
    "perfq_lesion_watershed_enrichment": (
        ctypes.c_int, [c_uint8_p, c_uint8_p, c_uint8_p, Size3, Double3,
                       ctypes.POINTER(LesionEnrichment)]),
    "perfq_region_stats": (ctypes.c_int, [c_float_p, c_int32_p, Size3, Double3, c_uint8_p,
                                          c_double_p, ctypes.c_size_t, handle, handle_p]),
    "perfq_region_stats_in_mask": (ctypes.c_int, [c_float_p, c_uint8_p, Size3, Double3,
                                                  c_float_p, c_float_p, handle, handle, handle_p]),
    "perfq_region_table_destroy": (None, [handle]),
    "perfq_region_table_size": (ctypes.c_size_t, [handle]),
    "perfq_region_table_find": (ctypes.c_int, [handle, ctypes.c_int32, c_size_p]),
    "perfq_region_table_stat": (ctypes.c_int, [handle, ctypes.c_size_t, ctypes.c_int, c_double_p]),
}


class PerfqError(RuntimeError):
    """A perfq call that returned a status other than PERFQ_OK."""


def load(path):
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


class Perfq:
    """Thin helpers over the raw functions: status checks and handle creation."""

    def __init__(self, lib):
        self.lib = lib

    def check(self, status):
        if status != 0:
            raise PerfqError(self.lib.perfq_last_error().decode("utf-8", "replace"))

    def create(self, function, *args):
        """Calls a function whose last argument is an output handle; returns the handle."""
        out = ctypes.c_void_p()
        self.check(function(*args, ctypes.byref(out)))
        return out

    def region_means(self, values, labels, dims, spacing, wanted):
        """{label: mean} of `values` in the regions `wanted` of `labels`."""
        table = self.create(self.lib.perfq_region_stats, values, labels, dims, spacing, None,
                            None, 0, None)
        try:
            means = {}
            for label in wanted:
                row, mean = ctypes.c_size_t(), ctypes.c_double()
                self.check(self.lib.perfq_region_table_find(table, label, ctypes.byref(row)))
                self.check(self.lib.perfq_region_table_stat(table, row, STAT_MEAN,
                                                             ctypes.byref(mean)))
                means[label] = mean.value
            return means
        finally:
            self.lib.perfq_region_table_destroy(table)

    def region_rows(self, values, labels, dims, spacing, mask, statistics):
        """{label: {statistic: value}} for every region of `labels` inside `mask`."""
        table = self.create(self.lib.perfq_region_stats, values, labels, dims, spacing, mask,
                            None, 0, None)
        try:
            rows = {}
            for row in range(self.lib.perfq_region_table_size(table)):
                found = {}
                for which in (STAT_LABEL,) + tuple(statistics):
                    value = ctypes.c_double()
                    self.check(self.lib.perfq_region_table_stat(table, row, which,
                                                                 ctypes.byref(value)))
                    found[which] = value.value
                rows[int(found[STAT_LABEL])] = found
            return rows
        finally:
            self.lib.perfq_region_table_destroy(table)

    def mask_mean(self, values, mask, dims, spacing):
        """Mean of `values` inside a uint8 mask (perfq_region_stats_in_mask: one row)."""
        table = self.create(self.lib.perfq_region_stats_in_mask, values, mask, dims, spacing,
                            None, None, None, None)
        try:
            mean = ctypes.c_double()
            self.check(self.lib.perfq_region_table_stat(table, 0, STAT_MEAN, ctypes.byref(mean)))
            return mean.value
        finally:
            self.lib.perfq_region_table_destroy(table)

    def grey_matter_means(self, phantom, maps, dims, spacing):
        """Mean over the phantom's grey matter of each float map in `maps` (name: pointer)."""
        n = dims[0] * dims[1] * dims[2]
        tissue = self.lib.perfq_phantom_mask_data(phantom, PHANTOM_TISSUE)
        grey = array("B", (t == GREY_MATTER for t in tissue[:n]))
        mask = as_pointer(grey, ctypes.c_uint8, c_uint8_p)
        return {name: self.mask_mean(values, mask, dims, spacing) for name, values in maps.items()}

    def dice(self, a, b, dims, spacing):
        """Dice overlap of two masks (perfq_dice)."""
        value = ctypes.c_double()
        self.check(self.lib.perfq_dice(a, b, dims, spacing, ctypes.byref(value)))
        return value.value


def as_pointer(values, ctype, pointer_type):
    """A ctypes pointer to the items of an array.array (no copy)."""
    return ctypes.cast((ctype * len(values)).from_buffer(values), pointer_type)


def pair_name(code):
    """'ACA-MCA' for the pair code 1002."""
    return "-".join(TERRITORY_NAMES.get(t, str(t))
                    for t in (code // PAIR_CODE_BASE, code % PAIR_CODE_BASE))


def library_path(argument):
    if argument:
        return argument
    if os.environ.get("PERFQ_LIBRARY"):
        return os.environ["PERFQ_LIBRARY"]
    found = ctypes.util.find_library("perfq")
    if not found:
        sys.exit("perfq_ctypes.py: libperfq not found: pass its path or set PERFQ_LIBRARY")
    return found


def cuda_summary(lib):
    """'2 CUDA device(s): NAME, NAME' or 'no CUDA: REASON'."""
    count = lib.perfq_cuda_device_count()
    if count == 0:
        return f"no CUDA: {lib.perfq_cuda_unavailable_reason().decode()}"
    names = [lib.perfq_cuda_device_name(d).decode() for d in range(count)]
    return f"{count} CUDA device(s): {', '.join(names)}"


def time_encoded_phantom(pq, execution, snr, handles):
    """A Hadamard-8 time-encoded phantom decoded and fitted; its timing and GM means."""
    lib = pq.lib
    # 4 blocks of 8 encoded volumes: 7 sub-boli of 0.4 s, 0.2 s after the last one.
    final_pld = 0.2
    options = pq.create(lib.perfq_phantom_options_create)
    handles.append((lib.perfq_phantom_options_destroy, options))
    pq.check(lib.perfq_phantom_options_set_delays(options, ctypes.byref(ctypes.c_double(
        final_pld)), 1, 4))
    pq.check(lib.perfq_phantom_options_set_grid(options, Size3(40, 48, 36), 4.5))
    pq.check(lib.perfq_phantom_options_set_noise(options, snr, 2))
    pq.check(lib.perfq_phantom_options_set_time_encoded(options, 8, b"Hadamard", None, 0))
    phantom = pq.create(lib.perfq_phantom_create, options)
    handles.append((lib.perfq_phantom_destroy, phantom))
    dims, spacing = Size3(), Double3()
    pq.check(lib.perfq_phantom_geometry(phantom, dims, spacing))
    volumes = ctypes.c_size_t()
    series = lib.perfq_phantom_series(phantom, ctypes.byref(volumes))

    # The encoding (matrix and sub-bolus timing), then the decoded, block-averaged sub-boli.
    encoding = pq.create(lib.perfq_phantom_time_encoding, phantom)
    handles.append((lib.perfq_time_encoding_destroy, encoding))
    sub_boli = lib.perfq_time_encoding_sub_boli(encoding)
    protocol = pq.create(lib.perfq_phantom_protocol, phantom)
    handles.append((lib.perfq_protocol_destroy, protocol))
    prepared = pq.create(lib.perfq_prepare_time_encoded, series, volumes, dims, spacing,
                         lib.perfq_phantom_context(phantom), protocol, encoding, 0, None)
    handles.append((lib.perfq_prepared_destroy, prepared))
    delta_volumes = ctypes.c_size_t()
    delta_m = lib.perfq_prepared_delta_m(prepared, ctypes.byref(delta_volumes))
    k = delta_volumes.value

    # Each sub-bolus's delay and duration on the protocol; the blocks averaged as weights.
    pq.check(lib.perfq_protocol_set_delays(protocol, lib.perfq_prepared_delays(prepared), k))
    pq.check(lib.perfq_protocol_set_labeling_durations(
        protocol, lib.perfq_prepared_labeling_durations(prepared), k))
    repeats = lib.perfq_prepared_repeats(prepared)
    weights = (ctypes.c_double * k)(*(float(repeats[i]) for i in range(k)))
    kinetic = pq.create(lib.perfq_kinetic_options_create)
    handles.append((lib.perfq_kinetic_options_destroy, kinetic))
    pq.check(lib.perfq_kinetic_options_set_model(kinetic, b"whitepaper"))
    pq.check(lib.perfq_kinetic_options_set_weights(kinetic, weights, k))
    # Short sub-boli put sample times inside the ATT range: start from a finer ATT grid.
    pq.check(lib.perfq_kinetic_options_set_solver(kinetic, 48, 20, 1e-6))
    fit = pq.create(lib.perfq_fit_kinetic, delta_m, k, dims, spacing,
                    lib.perfq_phantom_map_data(phantom, PHANTOM_M0), 0.0,
                    lib.perfq_phantom_mask_data(phantom, PHANTOM_BRAIN), protocol, None, kinetic,
                    execution)
    handles.append((lib.perfq_kinetic_fit_destroy, fit))
    means = pq.grey_matter_means(phantom, {
        "truth CBF": lib.perfq_phantom_map_data(phantom, PHANTOM_CBF),
        "fit CBF": lib.perfq_kinetic_fit_map(fit, KINETIC_CBF),
        "truth ATT": lib.perfq_phantom_map_data(phantom, PHANTOM_ATT),
        "fit ATT": lib.perfq_kinetic_fit_map(fit, KINETIC_ATT)}, dims, spacing)
    return {
        "source": lib.perfq_time_encoding_source(encoding).decode(),
        "cycles": lib.perfq_time_encoding_cycles(encoding),
        "volumes": volumes.value,
        "durations": lib.perfq_time_encoding_sub_bolus_durations(encoding)[:sub_boli],
        "delays": lib.perfq_time_encoding_sub_bolus_delays(encoding)[:sub_boli],
        "blocks": repeats[0],
        "means": means,
    }


# ---- the example -----------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", nargs="?", help="path to libperfq.so (or PERFQ_LIBRARY)")
    parser.add_argument("--snr", type=float, default=10.0, help="SNR per pair (default 10)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    parser.add_argument("--backend", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()

    path = library_path(args.library)
    try:
        lib = load(path)
    except OSError as error:
        sys.exit(f"perfq_ctypes.py: cannot load {path}: {error}")
    except AttributeError as error:  # an older libperfq without some C API function
        sys.exit(f"perfq_ctypes.py: {path} lacks the C API: {error}")
    pq = Perfq(lib)
    print(f"perfq {lib.perfq_version().decode()} (C API {lib.perfq_c_api_version()}); "
          f"{cuda_summary(lib)}")

    handles = []  # (destroy function, handle), released at the end
    try:
        execution = pq.create(lib.perfq_execution_create)
        handles.append((lib.perfq_execution_destroy, execution))
        pq.check(lib.perfq_execution_set_backend(execution, args.backend.encode()))
        pq.check(lib.perfq_execution_set_threads(execution, args.threads))

        # Phantom: PCASL (τ 1.8 s), five PLDs, 4 pairs each, 40 × 48 × 36 voxels of 4.5 mm,
        # 8 white-matter lesions (they mark voxels only: the signals do not depend on them).
        delays = [0.5, 1.0, 1.5, 2.0, 2.5]
        options = pq.create(lib.perfq_phantom_options_create)
        handles.append((lib.perfq_phantom_options_destroy, options))
        pq.check(lib.perfq_phantom_options_set_delays(
            options, (ctypes.c_double * len(delays))(*delays), len(delays), 4))
        pq.check(lib.perfq_phantom_options_set_grid(options, Size3(40, 48, 36), 4.5))
        pq.check(lib.perfq_phantom_options_set_noise(options, args.snr, 1))
        pq.check(lib.perfq_phantom_options_set_lesions(options, 8))
        phantom = pq.create(lib.perfq_phantom_create, options)
        handles.append((lib.perfq_phantom_destroy, phantom))
        dims, spacing = Size3(), Double3()
        pq.check(lib.perfq_phantom_geometry(phantom, dims, spacing))
        n = dims[0] * dims[1] * dims[2]
        volumes = ctypes.c_size_t()
        series = lib.perfq_phantom_series(phantom, ctypes.byref(volumes))
        print(f"phantom: {dims[0]} x {dims[1]} x {dims[2]} voxels of {spacing[0]} mm, "
              f"{volumes.value} volumes, SNR {args.snr} per pair")

        # Control/label pairs → one mean ΔM volume per PLD.
        protocol = pq.create(lib.perfq_phantom_protocol, phantom)
        handles.append((lib.perfq_protocol_destroy, protocol))
        prepared = pq.create(lib.perfq_prepare_asl, series, volumes, dims, spacing,
                             lib.perfq_phantom_context(phantom), protocol, 0, None)
        handles.append((lib.perfq_prepared_destroy, prepared))
        delta_volumes = ctypes.c_size_t()
        delta_m = lib.perfq_prepared_delta_m(prepared, ctypes.byref(delta_volumes))
        prepared_delays = lib.perfq_prepared_delays(prepared)
        m0 = lib.perfq_phantom_map_data(phantom, PHANTOM_M0)
        brain = lib.perfq_phantom_mask_data(phantom, PHANTOM_BRAIN)

        # Single delay: the last PLD (2.5 s, after the bolus has arrived everywhere).
        last = delta_volumes.value - 1
        single = pq.create(lib.perfq_phantom_protocol, phantom)
        handles.append((lib.perfq_protocol_destroy, single))
        pq.check(lib.perfq_protocol_set_delays(single, ctypes.byref(ctypes.c_double(
            prepared_delays[last])), 1))
        last_delta_m = ctypes.cast(ctypes.cast(delta_m, ctypes.c_void_p).value
                                   + ctypes.sizeof(ctypes.c_float) * n * last, c_float_p)
        maps = pq.create(lib.perfq_quantify_cbf, last_delta_m, dims, spacing, m0, 0.0, brain,
                         single, None, execution)
        handles.append((lib.perfq_cbf_maps_destroy, maps))
        single_cbf = lib.perfq_cbf_maps_cbf(maps)
        backend = lib.perfq_cbf_maps_backend(maps).decode()

        # Multi delay: CBF and ATT from all five PLDs (the phantom's white-paper model).
        pq.check(lib.perfq_protocol_set_delays(protocol, prepared_delays, delta_volumes))
        kinetic = pq.create(lib.perfq_kinetic_options_create)
        handles.append((lib.perfq_kinetic_options_destroy, kinetic))
        pq.check(lib.perfq_kinetic_options_set_model(kinetic, b"whitepaper"))
        fit = pq.create(lib.perfq_fit_kinetic, delta_m, delta_volumes, dims, spacing, m0, 0.0,
                        brain, protocol, None, kinetic, execution)
        handles.append((lib.perfq_kinetic_fit_destroy, fit))
        fit_cbf = lib.perfq_kinetic_fit_map(fit, KINETIC_CBF)
        fit_att = lib.perfq_kinetic_fit_map(fit, KINETIC_ATT)

        # Regional means per tissue class, through perfq's own statistics.
        tissue_u8 = lib.perfq_phantom_mask_data(phantom, PHANTOM_TISSUE)
        tissue = array("i", tissue_u8[:n])  # uint8 → int32 labels
        labels = as_pointer(tissue, ctypes.c_int32, c_int32_p)
        wanted = (GREY_MATTER, WHITE_MATTER)
        truth_cbf = pq.region_means(lib.perfq_phantom_map_data(phantom, PHANTOM_CBF), labels,
                                    dims, spacing, wanted)
        truth_att = pq.region_means(lib.perfq_phantom_map_data(phantom, PHANTOM_ATT), labels,
                                    dims, spacing, wanted)
        single_means = pq.region_means(single_cbf, labels, dims, spacing, wanted)
        fit_cbf_means = pq.region_means(fit_cbf, labels, dims, spacing, wanted)
        fit_att_means = pq.region_means(fit_att, labels, dims, spacing, wanted)

        # Border zones from the territory atlas (16 mm wide), against the designed ones.
        zones = pq.create(lib.perfq_border_zones_from_territories,
                          lib.perfq_phantom_territories(phantom), dims, spacing, brain, 16.0,
                          execution)
        handles.append((lib.perfq_border_zones_destroy, zones))
        zone = lib.perfq_border_zones_mask(zones)
        dice = pq.dice(zone, lib.perfq_phantom_mask_data(phantom, PHANTOM_BORDER_ZONE), dims,
                       spacing)

        # Their internal (white matter) and external (grey matter) parts.
        grey = array("B", (t == GREY_MATTER for t in tissue))
        white = array("B", (t == WHITE_MATTER for t in tissue))
        grey_mask = as_pointer(grey, ctypes.c_uint8, c_uint8_p)
        white_mask = as_pointer(white, ctypes.c_uint8, c_uint8_p)
        internal, external = ctypes.c_void_p(), ctypes.c_void_p()
        pq.check(lib.perfq_split_internal_external(zone, white_mask, grey_mask, dims, spacing,
                                                   ctypes.byref(internal),
                                                   ctypes.byref(external)))
        handles += [(lib.perfq_mask_destroy, internal), (lib.perfq_mask_destroy, external)]
        zone_voxels = sum(zone[:n])
        internal_voxels = sum(lib.perfq_mask_data(internal)[:n])
        external_voxels = sum(lib.perfq_mask_data(external)[:n])

        # Regional statistics in the grey matter: one region per pair of territories that meet
        # (the zones' pair codes, used as labels as they are), and the rest of the grey matter.
        regions = array("i", (code or REST for code in lib.perfq_border_zones_pairs(zones)[:n]))
        region_labels = as_pointer(regions, ctypes.c_int32, c_int32_p)
        zone_rows = pq.region_rows(fit_cbf, region_labels, dims, spacing, grey_mask,
                                   (STAT_VOXELS, STAT_VOLUME_ML))
        zone_means = {}  # what: {region: mean}
        for what, values in (("truth CBF", lib.perfq_phantom_map_data(phantom, PHANTOM_CBF)),
                             ("fit CBF", fit_cbf),
                             ("truth ATT", lib.perfq_phantom_map_data(phantom, PHANTOM_ATT)),
                             ("fit ATT", fit_att)):
            rows = pq.region_rows(values, region_labels, dims, spacing, grey_mask, (STAT_MEAN,))
            zone_means[what] = {label: row[STAT_MEAN] for label, row in rows.items()}

        # The phantom's lesions against the zones: the share of the lesion volume inside them
        # over the zones' share of the white matter.
        enrichment = LesionEnrichment()
        pq.check(lib.perfq_lesion_watershed_enrichment(
            lib.perfq_phantom_mask_data(phantom, PHANTOM_LESIONS), zone, white_mask, dims,
            spacing, ctypes.byref(enrichment)))

        # Time-encoded PCASL: a Hadamard-8 phantom, decoded and fitted.
        time_encoded = time_encoded_phantom(pq, execution, args.snr, handles)
    except PerfqError as error:
        print(f"perfq error: {error}", file=sys.stderr)
        return 1
    finally:
        for destroy, h in reversed(handles):
            destroy(h)

    print(f"backend: {backend}")
    print(f"{'':>6} {'truth CBF':>10} {'single-PLD':>11} {'multi-PLD':>10} "
          f"{'truth ATT':>10} {'fit ATT':>8}")
    failures = []
    for label, name in ((GREY_MATTER, "GM"), (WHITE_MATTER, "WM")):
        print(f"{name:>6} {truth_cbf[label]:10.2f} {single_means[label]:11.2f} "
              f"{fit_cbf_means[label]:10.2f} {truth_att[label]:10.3f} "
              f"{fit_att_means[label]:8.3f}")
        # Means over thousands of voxels: within 5 % (CBF) and 0.1 s (ATT) of the truth.
        for what, estimate in (("single-PLD CBF", single_means[label]),
                               ("multi-PLD CBF", fit_cbf_means[label])):
            if abs(estimate - truth_cbf[label]) > 0.05 * truth_cbf[label]:
                failures.append(f"{name} {what} {estimate:.2f} vs truth {truth_cbf[label]:.2f}")
        if abs(fit_att_means[label] - truth_att[label]) > 0.1:
            failures.append(f"{name} ATT {fit_att_means[label]:.3f} vs truth "
                            f"{truth_att[label]:.3f}")
    print("(CBF in ml/100 g/min, ATT in s; means over each tissue class)")

    print(f"\nborder zones from the territory atlas: Dice {dice:.2f} with the designed zones")
    print(f"{zone_voxels} voxels: {internal_voxels} internal (WM), {external_voxels} external (GM)")
    if dice < 0.5:
        failures.append(f"border-zone Dice {dice:.2f} < 0.5")
    if internal_voxels + external_voxels != zone_voxels or internal_voxels * external_voxels == 0:
        failures.append(f"internal {internal_voxels} + external {external_voxels} voxels do not "
                        f"make up the {zone_voxels} of the zones")
    columns = ("truth CBF", "fit CBF", "truth ATT", "fit ATT")
    print(f"{'grey matter':>14} {'voxels':>7} {'ml':>6} " + " ".join(f"{c:>9}" for c in columns))
    pairs = sorted(label for label in zone_rows if label != REST)
    for label in sorted(zone_rows, key=lambda label: (label == REST, label)):
        row = zone_rows[label]
        name = "rest" if label == REST else pair_name(label)
        print(f"{name:>14} {int(row[STAT_VOXELS]):7d} {row[STAT_VOLUME_ML]:6.1f} "
              + " ".join(f"{zone_means[c][label]:9.3f}" for c in columns))
    print("(grey matter of each pair of territories' border zone, and the rest of it)")
    # The phantom's zones arrive late and are less perfused: so must every pair's grey matter
    # be, in the truth and in the fit, against the rest of the grey matter.
    if not pairs or REST not in zone_rows:
        failures.append(f"grey-matter regions {sorted(zone_rows)}: expected border-zone pairs "
                        f"and the rest")
    for label in pairs if REST in zone_rows else []:
        for what in columns:
            zone_value, rest_value = zone_means[what][label], zone_means[what][REST]
            if (zone_value > rest_value) != what.endswith("ATT"):
                failures.append(f"{pair_name(label)} {what} {zone_value:.3f} vs "
                                f"{rest_value:.3f} in the rest of the grey matter")

    e = enrichment
    print(f"lesions: {e.lesion_voxels} voxels ({e.lesion_volume_ml:.1f} ml), "
          f"{100 * e.lesion_fraction:.0f} % in the zones, which hold "
          f"{100 * e.watershed_fraction:.0f} % of the white matter: enrichment "
          f"{e.enrichment:.2f}")
    # Lesions are placed mostly inside the border zones.
    if not (e.enrichment_defined and e.enrichment > 1.0):
        failures.append(f"lesion enrichment {e.enrichment:.2f} <= 1 (defined: "
                        f"{e.enrichment_defined})")

    te = time_encoded
    print(f"\ntime-encoded PCASL: {te['source']}, {te['volumes']} volumes "
          f"({te['blocks']} blocks of {te['cycles']}) decoded into {len(te['delays'])} sub-boli")
    print("  sub-bolus PLD (s): " + " ".join(f"{d:.1f}" for d in te["delays"])
          + "  (τ " + " ".join(f"{d:.1f}" for d in te["durations"]) + " s, labeling order)")
    gm = te["means"]
    print(f"  GM: CBF {gm['fit CBF']:.2f} (truth {gm['truth CBF']:.2f}), "
          f"ATT {gm['fit ATT']:.3f} s (truth {gm['truth ATT']:.3f})")
    if abs(gm["fit CBF"] - gm["truth CBF"]) > 0.05 * gm["truth CBF"]:
        failures.append(f"time-encoded GM CBF {gm['fit CBF']:.2f} vs truth {gm['truth CBF']:.2f}")
    if abs(gm["fit ATT"] - gm["truth ATT"]) > 0.1:
        failures.append(f"time-encoded GM ATT {gm['fit ATT']:.3f} vs truth "
                        f"{gm['truth ATT']:.3f}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
