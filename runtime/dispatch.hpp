// One path from a kernel to a launch, shared by the tensor ops (runtime/ops.cpp) and the kernels of
// generated headers (runtime/aot_kernel.cpp), for every family: the caller's registry, then the
// built-in registry, then the JIT (memory cache); then the family's launch plan (codegen/family.hpp:
// grid and params from shapes, strides and addresses); then Stream::launch. The spec's name is computed once by the caller and passed in.
// Thread-safety: every function may be called from any thread (the JIT locks per spec; streams
// serialize their own calls).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/family.hpp"
#include "codegen/spec.hpp"
#include "core/error.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

// A kernel found in a registry (or in the JIT's one-kernel registry).
struct KernelRef {
  const Registry* registry = nullptr;
  const KernelEntry* entry = nullptr;
  explicit operator bool() const { return entry != nullptr; }
};

// Looks |name| (== spec.name()) up in |first| (may be null), then in the built-in registry; an
// entry not built for |device|'s backend (a manifest that left the target out), or one whose spec
// is not |spec| (another spec with the same 32-bit name), counts as absent. |canonical|, when
// given, is spec.canonical() already made.
// Otherwise compiles |spec| just in time, the entry points in |functions| only (those a plan
// uses: functions_of). Returns an empty ref with the reason in |why| when the spec can be neither
// found nor compiled for the device (compile errors throw compile_error).
KernelRef resolve_kernel(Device& device, const KernelSpec& spec, const std::string& name, const Registry* first,
                         std::string* why, FunctionSet functions = kAllFunctions,
                         const std::string* canonical = nullptr);

// As resolve_kernel, for a known registry entry (a generated header's kernel): the entry itself
// when it was built for the device's backend, else the JIT's compile of |spec| (its spec).
KernelRef resolve_entry(Device& device, const KernelSpec& spec, const Registry& registry, const KernelEntry& entry,
                        std::string* why, FunctionSet functions = kAllFunctions);

// The entry points |plan| launches (its first step and plan.then).
FunctionSet functions_of(const LaunchPlan& plan);

// Launches function plan.function of |kernel| with the plan's grid and params on |stream|; checks
// the params size against the one the registry entry records.
void launch(Stream& stream, const KernelRef& kernel, const LaunchStep& plan);
// The same launch in plain values, the kernel loaded on |stream|'s device (for Stream::record_graph
// or launching again later without planning).
GraphLaunch graph_launch(Stream& stream, const KernelRef& kernel, const LaunchStep& plan);

// Runs the map kernel of |spec| on the operands' device (|name|: spec.name() when the caller has it,
// else computed here, only for GPU devices): checks the operands against the spec's inputs, broadcasts them (Nx rules),
// makes the output or checks |into| (a contiguous tensor of the broadcast shape and the spec's
// output dtype on the same device), then runs the CPU reference or resolves the kernel (|entry| of
// |first| when given, else by name: |first|, the built-in registry, the JIT) and launches it.
Tensor run_map_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                      const std::vector<Tensor>& operands, const Tensor* into, const Registry* first,
                      const KernelEntry* entry = nullptr);

// Runs |spec| for |request| on |device|: the family's CPU reference on the CPU; elsewhere the kernel
// (|entry| of |first| when given, else by |name| or spec.name(): |first|, the built-in registry,
// the JIT) with the family's plan (request.block_size becomes the kernel's). Errors name |op| and
// describe |operands|.
// |canonical|, when given with |name|, is spec.canonical() (kept beside the name by kiln::jit).
void run_plan(std::string_view op, const KernelSpec& spec, const std::string* name, const std::vector<Tensor>& operands,
              Device& device, PlanRequest request, const Registry* first, const KernelEntry* entry = nullptr,
              const std::string* canonical = nullptr);

// What run_plan launches on a GPU device, resolved and planned but not launched: the kernel, its
// plan (the first step, then plan.then) and the scratch memory the plan uses (alive as long as
// this is). Errors as run_plan's. kiln::jit keeps these to launch a traced function again
// without resolving or planning (runtime/jit_function.cpp).
struct PreparedRun {
  KernelRef kernel;
  LaunchPlan plan;
  std::shared_ptr<Buffer> scratch;
};
PreparedRun prepare_run(std::string_view op, const KernelSpec& spec, const std::string* name,
                        const std::vector<Tensor>& operands, Device& device, PlanRequest request, const Registry* first,
                        const KernelEntry* entry = nullptr, const std::string* canonical = nullptr);

// The family's view of tensors: addresses and element strides.
std::vector<PlanOperand> plan_operands(const std::vector<Tensor>& operands);
// A tensor with its layout, for messages about outputs: "[2,3] f32 on cpu, strides [1,2] (not contiguous)".
std::string layout_text(const Tensor& t);

// Checks |operands| against the inputs of |spec| (count, dtypes, one device) and returns their
// broadcast shape; errors name |op|.
Shape check_spec_operands(std::string_view op, const KernelSpec& spec, const std::vector<Tensor>& operands);

// What an output given by the caller (|into|) may share with the operands: kernels whose every
// element is read and written by the same thread (maps, scans, row ops over the same shape) can
// run in place — an operand that is exactly |into| (the same bytes, shape, strides and dtype) —
// but no other overlap: a workgroup would read what another one already overwrote (a shifted
// view, a transposed one, a broadcast row). Reductions, contractions and convolutions take none.
enum class Overlap { in_place, none };

// The result of op |op|: |into| when given — checked to be a contiguous tensor of |shape| and
// |dtype| on |device|, overlapping the operands only as |overlap| allows; invalid_argument naming
// "the output" + |where| otherwise — else a new tensor.
Tensor result_tensor(std::string_view op, const std::vector<Tensor>& operands, const Tensor* into, const Shape& shape,
                     DType dtype, Device& device, Overlap overlap, std::string_view where = {});

// Whether |x| and |y| may share bytes (the same storage and intersecting byte ranges): an output
// that overlaps an operand would be read after other workgroups overwrote it.
bool may_overlap(const Tensor& x, const Tensor& y);

// Throws invalid_argument when an operand is undefined or the operands are on different devices.
void check_operands(std::string_view op, const std::vector<Tensor>& operands);

// Throws |code| with "kiln::<op>: <what> — shapes [..] and [..] (dtypes on device)".
[[noreturn]] void fail_op(ErrorCode code, std::string_view op, const std::vector<Tensor>& operands,
                          const std::string& what);

}  // namespace kiln
