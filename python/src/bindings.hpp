// The parts of the _attnlens extension module, one function per source file.
#pragma once

#include <pybind11/pybind11.h>

namespace attnlens::python {

void bind_stack_methods(pybind11::module_& m);  // stack_bindings.cpp: core/stack_methods.hpp
void bind_metrics(pybind11::module_& m);        // metrics_io_bindings.cpp: eval/metrics.hpp
void bind_io(pybind11::module_& m);             // metrics_io_bindings.cpp: io/safetensors.hpp

}  // namespace attnlens::python
