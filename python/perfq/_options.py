"""perfq cbf's options with Python names: ``att_prior=True`` is ``--att-prior``,
``t1b=1.6`` is ``--t1b 1.6``, ``mask=path`` (or a nibabel image) is ``--mask path``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Dict, Iterator, List

from . import _perfq
from ._errors import InvalidArgumentError
from ._geometry import fspath, is_nibabel_image

_KNOWN = dict(_perfq.series_options())  # "--lambda" -> takes a value


def python_name(option: str) -> str:
    """The keyword of a perfq cbf option ("--att-prior" -> "att_prior", "--lambda" -> "lambda_")."""
    name = option[2:].replace("-", "_")
    return name + "_" if name in ("lambda",) else name


OPTION_NAMES = {python_name(o): o for o in _KNOWN}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if hasattr(value, "__fspath__"):
        return os.fsdecode(os.fspath(value))
    if hasattr(value, "item"):  # a NumPy scalar
        return _text(value.item())
    raise TypeError


@contextlib.contextmanager
def arguments(options: Dict[str, Any]) -> Iterator[List[str]]:
    """perfq cbf's arguments for ``options``; nibabel images given for files are written to a
    temporary folder that lives while the context does."""
    with contextlib.ExitStack() as stack:
        args: List[str] = []
        folder = None
        for key, value in options.items():
            option = OPTION_NAMES.get(key) or OPTION_NAMES.get(key.rstrip("_"))
            if option is None:
                known = ", ".join(sorted(OPTION_NAMES))
                raise InvalidArgumentError(f"{key}: unknown option (known: {known})")
            if value is None or value is False:
                continue
            if not _KNOWN[option]:  # a flag
                if value is not True:
                    raise InvalidArgumentError(
                        f"{key}: a flag; expected True or False, got {value!r}")
                args.append(option)
                continue
            if value is True:
                raise InvalidArgumentError(f"{key}: expected a value, got True")
            if is_nibabel_image(value):
                if folder is None:
                    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="perfq-"))
                path = os.path.join(folder, f"{key}.nii.gz")
                value.to_filename(path)
                value = path
            try:
                args += [option, _text(value)]
            except TypeError:
                raise InvalidArgumentError(
                    f"{key}: expected a number, text, a path or a list of them, got "
                    f"{type(value).__name__}") from None
        yield args


def path_of(value: Any, what: str) -> str:
    """A path from a path-like value (nibabel images are not taken where a BIDS series is)."""
    if is_nibabel_image(value):
        filename = value.get_filename()
        if filename:
            return filename
        raise InvalidArgumentError(
            f"{what}: a BIDS series is read with its sidecars: give the path of its _asl.nii[.gz]")
    return fspath(value, what)
