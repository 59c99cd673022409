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

}  // namespace kiln
