"""Build minidl's compiled kernels (Cython + OpenMP), never failing the install.

Three outcomes, decided here and reported by ``minidl.kernels_info()`` at run time:

1. a compiler that understands OpenMP: kernels built with ``-fopenmp`` (parallel);
2. a compiler without OpenMP (macOS clang, old MSVC): kernels built serially; the ``prange``
   loops compile to plain loops (Cython guards its pragmas with ``_OPENMP``) and
   ``_kernels/_openmp_helpers.h`` answers "one thread" instead of calling OpenMP;
3. no compiler or no Cython: no extension at all; minidl runs its NumPy im2col path and says so.

Debugging switches (environment variables read at build time):

* ``MINIDL_BOUNDSCHECK=1``: Cython's bounds and wraparound checks on every memoryview, plus the
  kernels' own index assertions (``MINIDL_DEBUG_CHECKS``, see ``_kernels/_checks.h``): the hot
  loops index raw pointers, which Cython's checks cannot see, so each loop range is asserted
  against its buffer and a violation aborts with the failing condition.
* ``MINIDL_SANITIZE=address``: compile and link the kernels with AddressSanitizer (``-O1 -g``,
  frame pointers, OpenMP kept: GCC's libgomp runs under ASan), with the index assertions on.
  Python itself is not instrumented, so run it with the runtime preloaded::

      LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
          PYTHONMALLOC=malloc python -m pytest tests/test_kernel_geometry.py

* ``MINIDL_NO_OPENMP=1`` forces the serial build, ``MINIDL_NO_EXTENSIONS=1`` skips it.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from glob import glob

from setuptools import setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler):
    """Compile and link a tiny OpenMP program; return (compile, link) flags or None."""
    if os.environ.get("MINIDL_NO_OPENMP"):
        return None
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    tmp = tempfile.mkdtemp(prefix="minidl-omp-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        for cflags, lflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=lflags)
                exe = os.path.join(tmp, "probe")
                if subprocess.run([exe], capture_output=True, timeout=30).returncode == 0:
                    return cflags, lflags
            except Exception:  # noqa: BLE001 - any failure means "no OpenMP with these flags"
                continue
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class OptionalBuildExt(build_ext):
    """build_ext that probes OpenMP and never fails the install."""

    def build_extensions(self):
        flags = _openmp_flags(self.compiler)
        if flags is None:
            print("minidl: OpenMP not available; building serial kernels", file=sys.stderr)
        sanitize = _sanitizer()
        for ext in self.extensions:
            if self.compiler.compiler_type != "msvc":
                ext.extra_compile_args += ["-O3"]
            if sanitize:
                if self.compiler.compiler_type == "msvc":
                    raise SystemExit("minidl: MINIDL_SANITIZE needs GCC or clang")
                # -O1 after -O3 wins; frame pointers and -g make the reports readable
                ext.extra_compile_args += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer",
                                           "-g", "-O1"]
                ext.extra_link_args += [f"-fsanitize={sanitize}"]
            if sanitize or _debug_checks():
                ext.define_macros.append(("MINIDL_DEBUG_CHECKS", "1"))
            if flags is not None:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
                ext.define_macros.append(("MINIDL_OPENMP", "1"))
        for ext in self.extensions:
            try:
                self.build_extension(ext)
            except Exception as exc:  # noqa: BLE001
                if sanitize or _debug_checks():
                    raise  # a debugging build asked for must not fall back silently
                print(
                    f"minidl: could not build {ext.name} ({exc}); "
                    "minidl will use its NumPy fallback for it",
                    file=sys.stderr,
                )

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - e.g. no compiler at all
            if _sanitizer() or _debug_checks():
                raise
            print(f"minidl: compiled kernels not built ({exc}); using the NumPy path",
                  file=sys.stderr)


def _sanitizer():
    """MINIDL_SANITIZE's value ('address'), or None; anything else is a build error."""
    value = os.environ.get("MINIDL_SANITIZE", "").strip()
    if not value:
        return None
    if value != "address":
        raise SystemExit(f"minidl: MINIDL_SANITIZE={value!r} is not supported; use 'address'")
    return value


def _debug_checks():
    return bool(os.environ.get("MINIDL_BOUNDSCHECK"))


def _extensions():
    if os.environ.get("MINIDL_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("minidl: Cython not found; using the NumPy path", file=sys.stderr)
        return []
    from setuptools import Extension

    debug = _debug_checks()
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "cdivision": True,
        "initializedcheck": debug,
        "nonecheck": False,
    }
    exts = [
        Extension(
            "minidl._kernels." + os.path.splitext(os.path.basename(p))[0],
            [p],
            include_dirs=["minidl/_kernels"],
            # the headers and .pxd files every kernel may include: an edit to one rebuilds
            # them all (setuptools compares timestamps; cythonize alone missed some headers)
            depends=sorted(glob("minidl/_kernels/*.h") + glob("minidl/_kernels/*.pxd")),
        )
        for p in sorted(glob("minidl/_kernels/*.pyx"))
    ]
    try:
        return cythonize(exts, compiler_directives=directives, quiet=True)
    except Exception as exc:  # noqa: BLE001
        print(f"minidl: cythonize failed ({exc}); using the NumPy path", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
