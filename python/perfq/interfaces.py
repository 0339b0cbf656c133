"""Nipype interfaces: perfq as a node of a Nipype workflow (needs nipype: pip install
".[nipype]").

``QuantifyCBF`` runs ``perfq.quantify_series`` on one ASL-BIDS series and writes the files
``perfq cbf`` writes into the node's working directory (or ``out_dir``).
"""

from __future__ import annotations

import os

from nipype.interfaces.base import (BaseInterface, BaseInterfaceInputSpec, Directory, File,
                                    TraitedSpec, isdefined, traits)

from ._series import quantify_series


class QuantifyCBFInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True,
                   desc="the ASL series (_asl.nii[.gz]) of an ASL-BIDS dataset, its sidecar, "
                        "aslcontext and M0 beside it")
    out_dir = Directory(desc="where the files go (default: the node's working directory)")
    options = traits.Dict(traits.Str, traits.Any,
                          desc="perfq cbf's options with Python names, e.g. "
                               "{'att_prior': True, 't1b': 1.6}")
    backend = traits.Enum("auto", "cpu", "cuda", usedefault=True, desc="where to compute")
    threads = traits.Int(0, usedefault=True, desc="CPU threads (0: every processor)")


class QuantifyCBFOutputSpec(TraitedSpec):
    cbf = File(exists=True, desc="CBF, ml/100 g/min")
    status = File(exists=True, desc="voxel status codes (0: fitted)")
    provenance = File(exists=True, desc="the _cbf.json record")
    att = File(desc="arterial transit time, s (multi-delay series)")
    cbf_se = File(desc="standard error of CBF (multi-delay series)")
    att_se = File(desc="standard error of ATT (multi-delay series)")
    out_files = traits.List(File(exists=True), desc="every file written")
    median_cbf = traits.Float(desc="median CBF over the fitted voxels")
    warnings = traits.List(traits.Str, desc="what perfq cbf prints as warnings")


class QuantifyCBF(BaseInterface):
    """CBF (and ATT for multi-delay series) of one ASL-BIDS series, as ``perfq cbf``."""

    input_spec = QuantifyCBFInputSpec
    output_spec = QuantifyCBFOutputSpec

    def _run_interface(self, runtime):
        options = self.inputs.options if isdefined(self.inputs.options) else {}
        result = quantify_series(self.inputs.in_file, backend=self.inputs.backend,
                                 threads=self.inputs.threads, **options)
        out_dir = self.inputs.out_dir if isdefined(self.inputs.out_dir) else runtime.cwd
        self._files = [os.path.abspath(p) for p in result.to_nifti(out_dir, overwrite=True)]
        self._prefix = result.prefix
        self._median = result.median_cbf
        self._warnings = list(result.warnings)
        return runtime

    def _list_outputs(self):
        outputs = self._outputs().get()
        by_name = {os.path.basename(p): p for p in self._files}
        for output, suffix in (("cbf", "_cbf.nii.gz"), ("status", "_fitstatus.nii.gz"),
                               ("provenance", "_cbf.json"), ("att", "_att.nii.gz"),
                               ("cbf_se", "_cbf_se.nii.gz"), ("att_se", "_att_se.nii.gz")):
            path = by_name.get(self._prefix + suffix)
            if path is not None:
                outputs[output] = path
        outputs["out_files"] = self._files
        outputs["median_cbf"] = self._median
        outputs["warnings"] = self._warnings
        return outputs
