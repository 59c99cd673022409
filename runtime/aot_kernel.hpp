// A kernel of a registry generated at build time by kiln_add_kernels() (cmake/KilnKernels.cmake),
// as the typed header that kilnc writes next to the registry describes it: the header defines one
// function per manifest kernel that calls AotKernel::run or AotKernel::launch.
// Thread-safety: an AotKernel is immutable after construction; run and launch may be called from
// any thread (streams serialize their own calls).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codegen/spec.hpp"
#include "runtime/registry.hpp"
#include "runtime/rows.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

class AotKernel {
 public:
  // |name| is the kernel's registry name (map_f32f32_f32_1a2b3c4d), |canonical| its spec's canonical
  // text (KernelSpec::canonical), |label| what errors call it (generated headers pass the user's
  // function and manifest line, "app::swiglu (kernels.toml:12:1)"; default: |name|). Throws
  // internal when name and text disagree (a header that does not match its registry).
  AotKernel(const Registry& registry, const char* name, const char* canonical, const char* label = nullptr);

  const std::string& name() const { return name_; }
  const std::string& label() const { return label_; }
  const KernelSpec& spec() const { return spec_; }
  const Registry& registry() const { return registry_; }

  // Tensor form: operands broadcast (Nx rules) and must have exactly the kernel's input dtypes and
  // one device; the result is a new contiguous tensor, or is written into |into| (a contiguous
  // tensor of the broadcast shape and the output dtype on the same device). Runs on the device's
  // default stream; the CPU device runs the reference evaluator.
  Tensor run(const std::vector<Tensor>& operands, const Tensor* into = nullptr) const;

  // Reduce kernels: the prologue over |operands| (broadcast together) reduced over |axes| (empty:
  // all; negative from the back), as kiln::reduce does (runtime/reduce.hpp).
  Tensor reduce(const std::vector<Tensor>& operands, const std::vector<int>& axes, bool keep_axes,
                const Tensor* into = nullptr) const;

  // Rows kernels: the op along call.axis of operands[0] (x, then gamma and beta, or the bias), as
  // kiln::softmax ... kiln::rms_norm do (runtime/rows.hpp), with call's eps or scale.
  Tensor rows(const std::vector<Tensor>& operands, const RowsCall& call, const Tensor* into = nullptr) const;

  // Raw-buffer form: out[i] = f(in0[i], in1[i], ...) for i < n over contiguous elements starting
  // |offsets| bytes into each buffer (inputs first, then the output; empty means all zero), enqueued
  // on |stream| (every buffer must belong to its device). No dtype or shape checks beyond the
  // buffer sizes: the buffers hold the kernel's dtypes by contract.
  void launch(Stream& stream, const std::vector<const Buffer*>& inputs, Buffer& out, std::uint64_t n,
              const std::vector<std::size_t>& offsets = {}) const;

 private:
  const Registry& registry_;
  std::string name_, label_;
  KernelSpec spec_;
  const KernelEntry* entry_;  // in |registry_|; null when the registry lacks it (launch then fails)
};

}  // namespace kiln
