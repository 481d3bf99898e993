"""Build step of basketry: the numba kernels compiled ahead of time (everything else is in
pyproject.toml).

``pip install -e .`` (or ``pip install .``) compiles the kernels of ``basketry.data``,
``basketry.mining`` and ``basketry.model`` (scoring) with numba's ``pycc`` into three extension
modules, ``basketry/{data,mining,model}/_kernels_aot.*.so`` (about a minute). A process that finds
them current never imports numba, which is then needed only to build and for training (the
``train`` extra; see ``src/basketry/_kernels/__init__.py``). If they cannot be built (no C
compiler, a numba without ``pycc``, a kernel numba cannot compile ahead of time) the build says so
and goes on: basketry then uses numba's JIT kernels, with the same results.

Environment: ``BASKETRY_AOT=0`` skips the step; ``BASKETRY_AOT_CPU`` is the target CPU
(default ``host``, the machine that builds, as numba's JIT does; ``generic`` for a module that
runs on any x86-64, e.g. in a wheel for other machines).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import sys
import types
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SRC = Path(__file__).resolve().parent / "src"
PACKAGES = ("basketry.data", "basketry.mining", "basketry.model")
EXTENSION = "_kernels_aot"


def _kernel_table(package: str):
    """The package's ``Kernels`` (spec, sources, digest), imported without running the
    packages' ``__init__`` (the build environment has numpy and numba only; ``basketry._kernels``
    imports numpy alone)."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    for name in ("basketry", *PACKAGES):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(SRC.joinpath(*name.split(".")))]
            sys.modules[name] = stub
    return importlib.import_module(f"{package}._compiled").kernels


def _numba_type(code: str):
    from numba import types as nt

    from basketry._kernels import parse_code

    dtype, ndim, written = parse_code(code)
    scalar = {"i8": nt.int64, "i4": nt.int32, "u1": nt.uint8, "u4": nt.uint32,
              "u8": nt.uint64, "f8": nt.float64, "b1": nt.boolean}[dtype]
    if ndim == 0:
        return scalar
    return nt.Array(scalar, ndim, "C", readonly=not written)


def _release_gil_in_wrappers() -> None:
    """pycc compiles every exported function with default flags, whose Python wrapper holds
    the GIL for the whole call; ``nogil=True`` of the JIT kernels has no pycc equivalent.
    The kernels touch no Python object, so their wrappers release it (as the JIT's do for
    ``nogil`` kernels): threads can run them side by side (FP-Growth's ``n_jobs``)."""
    import numba.pycc.compiler as pycc_compiler
    from numba.core.compiler import Flags

    if getattr(pycc_compiler.Flags, "_basketry_nogil", False):
        return

    class NoGilFlags(Flags):
        _basketry_nogil = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = NoGilFlags


def _make_cc(package: str, build_dir: str):
    warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
    from numba.pycc import CC

    _release_gil_in_wrappers()
    table = _kernel_table(package)
    cc = CC(EXTENSION, source_module=sys.modules[f"{package}._compiled"])
    cpu = os.environ.get("BASKETRY_AOT_CPU", "host")
    cc.target_cpu = "" if cpu == "generic" else cpu
    cc.output_dir = build_dir
    for module, kernels in table.spec.items():
        mod = importlib.import_module(f"{package}.{module}")
        for name, codes in kernels.items():
            cc.export(name, tuple(_numba_type(c) for c in codes))(getattr(mod, name).py_func)
    digest = table.digest()

    def _digest():
        return digest

    cc.export("_digest", ())(_digest)
    return cc


class BuildKernels(build_ext):
    """build_ext for the pycc modules: the compilation by numba comes first (its object file
    is linked with numba's C helpers); any failure leaves the package without them."""

    def build_extension(self, ext: Extension) -> None:
        package = ext.name.rsplit(".", 1)[0]
        try:
            cc = _make_cc(package, self.build_temp)
            pycc_ext = cc.distutils_extension()
            for attr in ("sources", "define_macros", "include_dirs", "libraries",
                         "library_dirs", "extra_compile_args", "extra_link_args"):
                setattr(ext, attr, getattr(pycc_ext, attr))
            os.makedirs(self.build_temp, exist_ok=True)
            objects, _ = cc._compile_object_files(self.build_temp)
            ext.extra_objects = objects
            super().build_extension(ext)
        except Exception as e:  # any failure: the JIT kernels remain
            self.warn(f"{ext.name}: not compiled ahead of time ({type(e).__name__}: {e}); "
                      "basketry will use numba's JIT kernels")

    def copy_file(self, infile, outfile, *args, **kwargs):
        """An editable install copies the module into the source tree: replace the file (a new
        inode) rather than overwrite it, which would break processes that have it loaded."""
        if not str(outfile).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return super().copy_file(infile, outfile, *args, **kwargs)
        tmp = f"{outfile}.{os.getpid()}.tmp"
        shutil.copyfile(infile, tmp)
        shutil.copymode(infile, tmp)
        os.replace(tmp, outfile)
        return outfile, True


def _extensions() -> list[Extension]:
    if os.environ.get("BASKETRY_AOT", "1") == "0":
        return []
    # sources are filled in by BuildKernels (numba's C helpers); a placeholder keeps
    # setuptools from dropping an extension without sources. optional: an editable install
    # copies only the modules that were built.
    return [Extension(f"{p}.{EXTENSION}", sources=[str(Path("src", *p.split("."),
                                                             "_compiled.py"))], optional=True)
            for p in PACKAGES]


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildKernels})
