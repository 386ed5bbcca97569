// NumPy <-> attnlens arrays for the Python extension: attention stacks in (viewed without a copy when they are
// C-contiguous float64, converted once when float32), results out (the result's vector handed to NumPy, no copy),
// and a runner that lets a long computation be interrupted with Ctrl-C.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <string>
#include <utility>
#include <vector>

#include "core/array.hpp"
#include "core/attention_flow.hpp"

namespace attnlens::python {

namespace py = pybind11;

/// An attention (or gradient) stack passed from Python. `view` points into the NumPy buffer (float64) or into
/// `converted` (float32), so the object must outlive every use of the view; `array` keeps the buffer alive.
struct StackInput {
  py::array array;
  std::vector<double> converted;
  std::vector<std::int64_t> shape;
  AttentionView view;

  StackInput() = default;
  StackInput(const StackInput&) = delete;
  StackInput& operator=(const StackInput&) = delete;
};

/// The dtype check every input goes through. The Python layer converts array-likes and copies non-contiguous or
/// byte-swapped arrays first; this is the guard for direct calls into the extension. TypeError otherwise.
inline void check_float_array(const py::array& a, const std::string& name) {
  const py::dtype dt = a.dtype();
  const bool is_float = dt.kind() == 'f' && (dt.itemsize() == 8 || dt.itemsize() == 4);
  if (!is_float) {
    throw py::type_error(name + ": unsupported dtype " + std::string(py::str(static_cast<py::handle>(dt))) +
                         "; attnlens reads float32 or float64");
  }
  if (dt.byteorder() == '>' || !(a.flags() & py::array::c_style)) {
    throw py::type_error(name +
                         ": expected a C-contiguous array in native byte order (the attnlens functions "
                         "copy other arrays before calling the extension)");
  }
}

/// Views (float64) or converts (float32) `a` and checks its shape as AttentionView::of does (InputError otherwise).
inline void read_stack(py::array a, const std::string& name, StackInput& out) {
  check_float_array(a, name);
  out.shape.assign(a.shape(), a.shape() + a.ndim());
  if (a.dtype().itemsize() == 8) {
    out.view = AttentionView::of(static_cast<const double*>(a.data()), out.shape);
  } else {
    out.view = AttentionView::of(nullptr, out.shape);  // the shape check first, before any allocation
    const auto* f = static_cast<const float*>(a.data());
    const auto n = static_cast<std::size_t>(a.size());
    {
      py::gil_scoped_release nogil;
      out.converted.assign(f, f + n);
    }
    out.view.data = out.converted.data();
  }
  out.array = std::move(a);
}

/// A plain vector of the values of a 1-D (or flattened) float64 array.
inline std::vector<double> to_vector(const py::array_t<double, py::array::c_style | py::array::forcecast>& a) {
  const double* p = a.data();
  return std::vector<double>(p, p + a.size());
}

/// Hands `a`'s values to a NumPy float64 array of the same shape, without copying them.
inline py::array to_numpy(Array&& a) {
  auto* values = new std::vector<double>(std::move(a.data));
  py::capsule owner(values, [](void* p) { delete static_cast<std::vector<double>*>(p); });
  std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
  return py::array_t<double>(shape, values->data(), owner);
}

/// Runs `work(cancel)` on a worker thread while the calling thread, without the GIL, checks every 50 ms for a
/// pending signal (PyErr_CheckSignals with the GIL held). On Ctrl-C the cancel flag is set, the worker stops at its
/// next check (Cancelled), and the KeyboardInterrupt is raised; other exceptions of the worker propagate.
template <typename Work>
auto run_interruptible(Work&& work) -> decltype(work(static_cast<const CancelFlag*>(nullptr))) {
  CancelFlag cancel{false};
  auto future = std::async(std::launch::async, [&work, &cancel] { return work(&cancel); });
  bool interrupted = false;
  {
    py::gil_scoped_release nogil;
    while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        interrupted = true;
        cancel.store(true);
        break;
      }
    }
    future.wait();
  }
  if (interrupted) {
    try {
      future.get();
    } catch (const Cancelled&) {
    } catch (...) {  // the signal's exception wins over whatever the worker ended with
    }
    throw py::error_already_set();  // the KeyboardInterrupt (or the signal handler's exception) set above
  }
  return future.get();
}

}  // namespace attnlens::python
