#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ (committed; rerun only to change them).

Seeds are small realistic inputs: sidecars as scanners export them, aslcontext tables of
the common layouts, and NIfTI-1 files of each stored type perfq reads (plus a few that it
must refuse). Inputs that once made a fuzz target fail are added by hand beside them, named
regression-*, and are not written here.
"""
import gzip
import json
import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---- sidecars ------------------------------------------------------------------------------
SIDECARS = {
    "pcasl_3d_separate.json": {
        "Manufacturer": "Siemens", "MagneticFieldStrength": 3, "MRAcquisitionType": "3D",
        "PulseSequenceType": "3D_GRASE", "RepetitionTimePreparation": 4.6, "EchoTime": 0.0158,
        "ArterialSpinLabelingType": "PCASL", "PCASLType": "balanced", "LabelingDuration": 1.8,
        "PostLabelingDelay": 1.8, "BackgroundSuppression": True,
        "BackgroundSuppressionNumberPulses": 4, "M0Type": "Separate",
        "LabelingEfficiency": 0.85, "TotalAcquiredPairs": 8},
    "pasl_q2tips_2d.json": {
        "Manufacturer": "Siemens", "MagneticFieldStrength": 3, "MRAcquisitionType": "2D",
        "ArterialSpinLabelingType": "PASL", "PASLType": "PICORE", "PostLabelingDelay": 1.8,
        "BolusCutOffFlag": True, "BolusCutOffDelayTime": [0.7, 1.6],
        "BolusCutOffTechnique": "Q2TIPS", "BackgroundSuppression": False, "M0Type": "Included",
        "RepetitionTimePreparation": 2.5, "SliceTiming": [0, 0.04, 0.08, 0.12]},
    "pasl_quipss2.json": {
        "ArterialSpinLabelingType": "pasl", "PostLabelingDelay": 2.5, "BolusCutOffDelayTime": 0.8,
        "M0Type": "Separate", "MagneticFieldStrength": 1.5},
    "pasl_no_cutoff.json": {
        "ArterialSpinLabelingType": "PASL", "PostLabelingDelay": [1.2, 1.2, 2.0, 2.0],
        "BolusCutOffFlag": False, "M0Type": "Absent"},
    "pcasl_2d_slicetiming.json": {
        "Manufacturer": "Philips", "MagneticFieldStrength": 3, "MRAcquisitionType": "2D",
        "ArterialSpinLabelingType": "PCASL", "LabelingDuration": 1.65, "PostLabelingDelay": 1.525,
        "BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": 2,
        "M0Type": "Separate", "RepetitionTimePreparation": 4.4,
        "SliceTiming": [0, 0.0367, 0.0733, 0.11, 0.1467, 0.1833]},
    "pcasl_estimate.json": {
        "Manufacturer": "GE", "MagneticFieldStrength": 1.5, "MRAcquisitionType": "3D",
        "ArterialSpinLabelingType": "PCASL", "LabelingDuration": 1.45, "PostLabelingDelay": 2.025,
        "BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": 5,
        "M0Type": "Estimate", "M0Estimate": 3500.5, "RepetitionTimePreparation": 4.8},
    "pcasl_multidelay_included.json": {
        "ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D", "M0Type": "Included",
        "PostLabelingDelay": [0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5],
        "LabelingDuration": [0, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8],
        "RepetitionTimePreparation": [6, 4.1, 4.1, 4.1, 4.1, 4.1, 4.1],
        "BackgroundSuppression": False},
    "pcasl_time_encoded_h8.json": {
        "ArterialSpinLabelingType": "PCASL", "MRAcquisitionType": "3D", "M0Type": "Separate",
        "TimeEncodedMatrixType": "Hadamard", "TimeEncodedMatrixSize": 8,
        "LabelingDuration": [0.5, 0.45, 0.4, 0.35, 0.3, 0.3, 0.3], "PostLabelingDelay": 0.2},
    "pcasl_time_encoded_walsh4_per_volume.json": {
        "ArterialSpinLabelingType": "PCASL", "M0Type": "Included",
        "TimeEncodedMatrixType": "Walsh", "TimeEncodedMatrixSize": 4,
        "TimeEncodedMatrix": [[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, -1, 1], [1, -1, 1, -1]],
        "PostLabelingDelay": [0, 0.2, 1.1, 0.7, 0.2], "LabelingDuration": [0, 1.2, 0.4, 0.5, 0.3]},
    "casl.json": {
        "ArterialSpinLabelingType": "CASL", "LabelingDuration": 2.0, "PostLabelingDelay": 1.5,
        "M0Type": "separate", "MRAcquisitionType": "3d", "LabelingEfficiency": 0.68},
    "refused_negative_pld.json": {
        "ArterialSpinLabelingType": "PCASL", "LabelingDuration": 1.8, "PostLabelingDelay": -1,
        "M0Type": "Separate"},
    "refused_wrong_types.json": {
        "ArterialSpinLabelingType": "PCASL", "LabelingDuration": [1.8, "x"],
        "PostLabelingDelay": "1.8", "M0Type": 1, "MagneticFieldStrength": {"value": 3}},
}


def sidecars():
    for name, value in SIDECARS.items():
        write("sidecar", name, json.dumps(value, indent=2) + "\n")
    write("sidecar", "refused_not_object.json", "[1.8, 1.8]\n")
    write("sidecar", "refused_truncated.json", '{"ArterialSpinLabelingType": "PCASL", "Post')


# ---- aslcontext ----------------------------------------------------------------------------
def aslcontext():
    write("aslcontext", "control_label.tsv", "volume_type\n" + "control\nlabel\n" * 4)
    write("aslcontext", "label_control_m0.tsv", "volume_type\nm0scan\n" + "label\ncontrol\n" * 3)
    write("aslcontext", "deltam.tsv", "volume_type\nm0scan\ndeltam\ndeltam\ndeltam\n")
    write("aslcontext", "scanner_cbf.tsv", "volume_type\ndeltam\ncbf\n")
    write("aslcontext", "norf_crlf.tsv", "volume_type\r\nnoRF\r\ncontrol\r\nlabel\r\n")
    write("aslcontext", "bom_extra_columns.tsv",
          "\ufeffindex\tvolume_type\tnote\n0\tcontrol\tfirst\n1\tlabel\t\n2\tm0scan\tlast\n")
    write("aslcontext", "refused_unknown.tsv", "volume_type\ncontrol\ntag\n")
    write("aslcontext", "refused_unpaired.tsv", "volume_type\ncontrol\ncontrol\nlabel\n")


# ---- NIfTI-1 -------------------------------------------------------------------------------
TYPES = {"uint8": (2, "B"), "int16": (4, "h"), "int32": (8, "i"), "float32": (16, "f"),
         "float64": (64, "d"), "complex64": (32, "ff")}


def nifti(dims, dtype, values, spacing=(2.0, 2.0, 3.0), slope=0.0, inter=0.0, big=False,
          extension=b"", sform=None, qform=True, magic=b"n+1\0"):
    e = ">" if big else "<"
    code, fmt = TYPES[dtype]
    bitpix = struct.calcsize("<" + fmt) * 8
    dim = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    pixdim = [1.0] + list(spacing) + [1.0] * 4
    vox_offset = 352 + len(extension)
    h = bytearray(348)
    struct.pack_into(e + "i", h, 0, 348)
    struct.pack_into(e + "8h", h, 40, *dim)
    struct.pack_into(e + "hh", h, 70, code, bitpix)
    struct.pack_into(e + "8f", h, 76, *pixdim[:8])
    struct.pack_into(e + "f", h, 108, float(vox_offset))
    struct.pack_into(e + "ff", h, 112, slope, inter)
    h[123] = 2 | 8  # mm, s
    h[148:148 + 12] = b"perfq seeds\0"
    struct.pack_into(e + "hh", h, 252, 1 if qform else 0, 0 if sform is None else 2)
    struct.pack_into(e + "ffffff", h, 256, 0.0, 0.0, 0.0, -10.0, 12.0, -8.0)
    if sform is not None:
        for r in range(3):
            struct.pack_into(e + "4f", h, 280 + 16 * r, *sform[r])
    h[344:348] = magic
    ext = bytes([1 if extension else 0, 0, 0, 0]) + extension
    data = b"".join(struct.pack(e + fmt, *(v if isinstance(v, tuple) else (v,)))
                    for v in values)
    return bytes(h) + ext + data


def nifti2(dims, dtype, values, pixdim=(1.0, 2.0, 2.0, 3.0), big=False, sform=None,
           quatern=None):
    e = ">" if big else "<"
    code, fmt = TYPES[dtype]
    bitpix = struct.calcsize("<" + fmt) * 8
    dim = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    h = bytearray(540)
    struct.pack_into(e + "i", h, 0, 540)
    h[4:12] = b"n+2\0\r\n\032\n"
    struct.pack_into(e + "hh", h, 12, code, bitpix)
    struct.pack_into(e + "8q", h, 16, *dim)
    struct.pack_into(e + "8d", h, 104, *(list(pixdim) + [1.0] * (8 - len(pixdim))))
    struct.pack_into(e + "q", h, 168, 544)
    struct.pack_into(e + "dd", h, 176, 0.0, 0.0)
    h[240:240 + 12] = b"perfq seeds\0"
    struct.pack_into(e + "ii", h, 344, 0 if quatern is None else 1, 0 if sform is None else 2)
    if quatern is not None:
        struct.pack_into(e + "6d", h, 352, *quatern)
    if sform is not None:
        struct.pack_into(e + "12d", h, 400, *[v for row in sform for v in row])
    struct.pack_into(e + "i", h, 500, 2 | 8)
    data = b"".join(struct.pack(e + fmt, v) for v in values)
    return bytes(h) + b"\0\0\0\0" + data


def niftis():
    n = 3 * 2 * 2
    f32 = nifti((3, 2, 2), "float32", [0.5 * i for i in range(n)])
    write("nifti", "float32_3d.nii", f32)
    write("nifti", "float32_3d.nii.gz", gzip.compress(f32, mtime=0))
    write("nifti", "int16_scaled.nii",
          nifti((2, 2, 2), "int16", [-3, -1, 0, 1, 2, 100, 1000, 32767], slope=0.5, inter=10))
    write("nifti", "uint8_4d.nii", nifti((2, 2, 1, 4), "uint8", list(range(16))))
    write("nifti", "float64_bigendian.nii",
          nifti((2, 1, 1), "float64", [1.25, -2.5], big=True))
    write("nifti", "float32_nan_inf.nii",
          nifti((2, 2, 1), "float32", [1.0, math.nan, math.inf, -math.inf]))
    write("nifti", "int32_labels.nii", nifti((2, 2, 2), "int32", [0, 1, 2, 3, 0, 1, 2, 999]))
    write("nifti", "extension_sform_oblique.nii",
          nifti((2, 2, 2), "float32", [1.0] * 8, qform=False,
                sform=[[1.6, -1.2, 0.0, -20.0], [1.2, 1.6, 0.0, 15.0], [0.0, 0.0, 3.0, 4.0]],
                extension=struct.pack("<ii", 16, 6) + b"perfq\0\0\0"))
    write("nifti", "uint8_2d.nii", nifti((4, 3), "uint8", [1] * 12))
    # NIfTI-2 (read by perfq itself): sform, qform with qfac -1, big-endian.
    write("nifti", "nifti2_float32_sform.nii",
          nifti2((2, 2, 2), "float32", [0.25 * i for i in range(8)],
                 sform=[[-2.0, 0.0, 0.0, 30.0], [0.0, 2.0, 0.0, -40.0], [0.0, 0.0, 3.0, -10.0]]))
    write("nifti", "nifti2_int16_4d_qform.nii",
          nifti2((2, 1, 1, 3), "int16", [1, 2, 3, 4, 5, 6], pixdim=(-1.0, 1.5, 1.5, 4.0),
                 quatern=(0.0, 0.0, 0.7071068, 5.0, 6.0, 7.0)))
    write("nifti", "nifti2_float64_bigendian.nii",
          nifti2((3, 1, 1), "float64", [1.0, -1.0, 0.5], big=True))
    write("nifti", "nifti2_uint8.nii.gz",
          gzip.compress(nifti2((2, 2, 1), "uint8", [0, 1, 2, 3]), mtime=0))
    # Refused: header larger than the file, a type perfq does not read, two-file magic.
    write("nifti", "refused_truncated.nii", nifti((4, 4, 4), "float32", [1.0] * 5))
    write("nifti", "refused_complex64.nii", nifti((2, 1, 1), "complex64", [(1.0, 0.0)] * 2))
    write("nifti", "refused_two_file_magic.nii",
          nifti((2, 1, 1), "uint8", [1, 2], magic=b"ni1\0"))


if __name__ == "__main__":
    sidecars()
    aslcontext()
    niftis()
