#include "codegen/family.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace kiln {

std::span<const Family* const> all_families() {
  // One line per family.
  static const Family* const kFamilies[] = {
      &kMapFamily,
      &kReduceFamily,
      &kRowsFamily,
      &kScanFamily,
      &kContractFamily,
      &kConvFamily,
  };
  return kFamilies;
}

const Family* find_family(std::string_view name) {
  for (const Family* f : all_families())
    if (f->name == name) return f;
  return nullptr;
}

std::string family_names() {
  std::string s;
  for (const Family* f : all_families()) s.append(s.empty() ? "" : ", ").append(f->name);
  return s;
}

const Family& family_of(const KernelSpec& spec) {
  if (const Family* f = find_family(spec.family)) return *f;
  fail(ErrorCode::invalid_argument,
       fmt::format("{}: unknown kernel family '{}' (families: {})", spec.name(), spec.family, family_names()));
}

AxisGeometry axis_geometry(const PlanRequest& r, std::span<const std::int64_t> out_strides) {
  AxisGeometry g;
  const int axis = r.axes.empty() ? int(r.shape.size()) - 1 : r.axes[0];
  const std::size_t k = r.inputs.size() + 1;
  auto stride = [&](std::size_t op, std::size_t d) { return op + 1 < k ? r.inputs[op].strides[d] : out_strides[d]; };
  g.strides.resize(k);
  for (std::size_t op = 0; op < k; ++op) g.axis_stride.push_back(r.shape.empty() ? 0 : stride(op, std::size_t(axis)));
  g.n = r.shape.empty() ? 1 : r.shape[std::size_t(axis)];
  for (std::size_t d = 0; d < r.shape.size(); ++d) {
    if (int(d) == axis) continue;
    const std::int64_t n = r.shape[d];
    g.n_rows *= n;
    if (n == 1) continue;
    bool merge = !g.shape.empty();
    for (std::size_t op = 0; op < k && merge; ++op) merge = g.strides[op].back() == stride(op, d) * n;
    if (merge) {
      g.shape.back() *= n;
      for (std::size_t op = 0; op < k; ++op) g.strides[op].back() = stride(op, d);
    } else {
      g.shape.push_back(n);
      for (std::size_t op = 0; op < k; ++op) g.strides[op].push_back(stride(op, d));
    }
  }
  return g;
}

}  // namespace kiln
