"""Build script of the attnlens Python package (metadata in pyproject.toml).

The pure-Python sources are python/attnlens; the extension module attnlens._attnlens is built by CMake from this
source tree (core/, io/, python/src/) with only what Python needs: no LibTorch, OpenCV, CLI11 or GoogleTest. CMake
works in build-python/cmake (ATTNLENS_PYTHON_BUILD_DIR overrides build-python/) and setuptools in
build-python/setuptools, never in build/, which belongs to the full C++ build.
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("ATTNLENS_PYTHON_BUILD_DIR", os.path.join(ROOT, "build-python")))


class CMakeExtension(Extension):
    """An extension whose sources CMake knows (python/CMakeLists.txt)."""

    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures and builds the _attnlens target, writing the module straight into the package being built."""

    def build_extension(self, ext):
        cmake_dir = os.path.join(BUILD, "cmake")
        module_dir = os.path.join(cmake_dir, "module")
        configure = ["cmake", "-S", ROOT, "-B", cmake_dir, "-DCMAKE_BUILD_TYPE=Release", "-DATTNLENS_PYTHON=ON",
                     "-DATTNLENS_MODELS=OFF", "-DATTNLENS_CLI=OFF", "-DATTNLENS_BUILD_TESTS=OFF",
                     "-DATTNLENS_BUILD_BENCH=OFF", f"-DPython_EXECUTABLE={sys.executable}",
                     f"-DATTNLENS_PYTHON_OUTPUT_DIR={module_dir}"]
        if not os.path.exists(os.path.join(cmake_dir, "CMakeCache.txt")) and shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.check_call(configure)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
        subprocess.check_call(["cmake", "--build", cmake_dir, "--target", "_attnlens", "-j", jobs])
        target = os.path.abspath(self.get_ext_fullpath(ext.name))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(module_dir, os.path.basename(target)), target)


# setuptools never removes what an earlier build copied, so a file deleted from python/attnlens would live on in the
# wheel: every build starts from empty lib and bdist folders (the extension itself stays built in build-python/cmake).
SETUPTOOLS_DIR = os.path.join(BUILD, "setuptools")
os.makedirs(SETUPTOOLS_DIR, exist_ok=True)
for entry in os.listdir(SETUPTOOLS_DIR):
    if entry.startswith(("lib.", "bdist.")):
        shutil.rmtree(os.path.join(SETUPTOOLS_DIR, entry), ignore_errors=True)

setup(
    ext_modules=[CMakeExtension("attnlens._attnlens")],
    cmdclass={"build_ext": CMakeBuild},
    options={
        "build": {"build_base": SETUPTOOLS_DIR},
        "egg_info": {"egg_base": os.path.relpath(SETUPTOOLS_DIR, ROOT)},
    },
    zip_safe=False,
)
