// eval/metrics.hpp (rank correlation, top-k overlap, trapezoid AUC, descending order, localisation) and the
// safetensors reader of io/ for Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/metrics.hpp"
#include "io/safetensors.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace attnlens::python {

namespace {

using Values = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::array_t<std::int64_t> int_array(const std::vector<int>& v) {
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
  auto* p = out.mutable_data();
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  return out;
}

py::tuple localize_map(const Values& map, int patch_h, int patch_w, const std::array<int, 4>& box) {
  Array a;
  a.shape.assign(map.shape(), map.shape() + map.ndim());
  a.data = to_vector(map);
  const Localization r = localize(a, patch_h, patch_w, box);
  return py::make_tuple(r.hit, r.mass_inside);
}

/// NumPy's spelling of a safetensors dtype whose bytes NumPy can hold as they are (little-endian), or "".
std::string numpy_dtype(const std::string& dtype) {
  static const std::map<std::string, std::string> kTypes = {
      {"BOOL", "?"},  {"U8", "u1"},   {"I8", "i1"},   {"U16", "<u2"}, {"I16", "<i2"}, {"F16", "<f2"}, {"U32", "<u4"},
      {"I32", "<i4"}, {"F32", "<f4"}, {"U64", "<u8"}, {"I64", "<i8"}, {"F64", "<f8"}, {"C64", "<c8"}};
  const auto it = kTypes.find(dtype);
  return it == kTypes.end() ? "" : it->second;
}

py::dict read_safetensors(const std::string& path) {
  std::optional<SafetensorsFile> file;
  {
    py::gil_scoped_release nogil;
    file.emplace(SafetensorsFile::open(path));
  }
  py::dict out;
  for (const TensorInfo& t : file->tensors()) {
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    const std::string_view bytes = file->bytes(t.name);
    py::array a;
    if (t.dtype == "BF16") {  // NumPy has no bfloat16; every bfloat16 value is exactly a float32
      const std::vector<float> values = file->to_float(t.name);
      a = py::array_t<float>(shape);
      std::memcpy(a.mutable_data(), values.data(), values.size() * sizeof(float));
    } else if (const std::string np = numpy_dtype(t.dtype); !np.empty()) {
      a = py::array(py::dtype(np), shape);
      std::memcpy(a.mutable_data(), bytes.data(), bytes.size());
    } else {
      // F8_*, F6_*, F4: no NumPy type. 8-bit floats keep their shape as raw uint8 codes; the packed sub-byte types
      // come as their raw bytes, 1-D.
      if (t.dtype.rfind("F8", 0) != 0) shape = {static_cast<py::ssize_t>(bytes.size())};
      a = py::array(py::dtype("u1"), shape);
      std::memcpy(a.mutable_data(), bytes.data(), bytes.size());
    }
    out[py::str(t.name)] = std::move(a);
  }
  return out;
}

}  // namespace

void bind_metrics(py::module_& m) {
  m.def(
      "spearman", [](const Values& a, const Values& b) { return spearman(to_vector(a), to_vector(b)); }, py::arg("a"),
      py::arg("b"), "eval/metrics spearman: Pearson correlation of average ranks; 0 if constant");
  m.def(
      "top_k_overlap",
      [](const Values& a, const Values& b, int k) { return top_k_overlap(to_vector(a), to_vector(b), k); },
      py::arg("a"), py::arg("b"), py::arg("k"), "eval/metrics top_k_overlap: |top_k(a) & top_k(b)| / k");
  m.def("top_k_count", &top_k_count, py::arg("n"), py::arg("share"), "eval/metrics top_k_count: floor(share*n), >= 1");
  m.def(
      "trapezoid_auc", [](const Values& x, const Values& y) { return trapezoid_auc(to_vector(x), to_vector(y)); },
      py::arg("x"), py::arg("y"), "eval/metrics trapezoid_auc");
  m.def(
      "descending_order", [](const Values& v) { return int_array(descending_order(to_vector(v))); }, py::arg("values"),
      "eval/metrics descending_order: indices by descending value, ties by ascending index");
  m.def(
      "average_ranks",
      [](const Values& v) {
        Array a({static_cast<std::int64_t>(v.size())});
        a.data = average_ranks(to_vector(v));
        return to_numpy(std::move(a));
      },
      py::arg("values"), "eval/metrics average_ranks: ranks 1..n, ties share their average");
  m.def("localize", &localize_map, py::arg("map"), py::arg("patch_h"), py::arg("patch_w"), py::arg("box"),
        "eval/metrics localize: (pointing-game hit, share of positive mass inside the box)");
}

void bind_io(py::module_& m) {
  m.def("read_safetensors", &read_safetensors, py::arg("path"),
        "io/safetensors SafetensorsFile::open: {name: array}, in byte-buffer order");
}

}  // namespace attnlens::python
