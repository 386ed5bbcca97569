// _attnlens: the compiled part of the attnlens Python package, over the LibTorch-free layers (core/, the metrics of
// eval/, the safetensors reader of io/). The public, documented API is the pure-Python package around it
// (python/attnlens/__init__.py); these bindings take already normalised arguments.
#include <pybind11/pybind11.h>

#include "core/array.hpp"
#include "core/attention_flow.hpp"
#include "python/src/bindings.hpp"

#ifndef ATTNLENS_VERSION
#define ATTNLENS_VERSION "unknown"
#endif

PYBIND11_MODULE(_attnlens, m) {
  namespace py = pybind11;
  m.doc() = "attnlens C++ core (see the attnlens package for the documented API)";
  m.attr("__version__") = ATTNLENS_VERSION;
  // Bad input (shapes, values, options, files): ValueError subclass carrying the CLI's message.
  py::register_exception<attnlens::InputError>(m, "InputError", PyExc_ValueError);
  // Only reachable if a cancelled computation escaped run_interruptible.
  py::register_exception<attnlens::Cancelled>(m, "Cancelled", PyExc_KeyboardInterrupt);
  attnlens::python::bind_stack_methods(m);
  attnlens::python::bind_metrics(m);
  attnlens::python::bind_io(m);
}
