// The recording backend of kiln::jit (runtime/jit_function.hpp): while a thread traces a function
// on a device, every tensor the ops allocate there is a TraceBuffer (memory that exists only in the
// trace, at a fake address), host data uploaded there becomes a constant of the trace, and every
// kernel launch the ops reach (dispatch's run_plan, the contraction's library GEMM) is recorded as
// a TracedLaunch instead of running. The ops themselves run unchanged — their checks, typing,
// broadcasting, view handling and kernel choice are the same as eager — so a trace is exactly the
// launches an eager call would make, in plain values, ready to be fused (runtime/fuse.hpp) and
// replayed with real addresses.
// Thread-safety: recording is per thread (a TraceScope on the tracing thread); the hooks are
// called from any thread and do nothing on threads that are not tracing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codegen/family.hpp"
#include "codegen/spec.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

// A buffer of a trace: an input of the traced function, an intermediate some op allocated, or a
// constant the function uploaded (its bytes kept here). Its address is fake and never reaches a
// kernel: TraceBuffer::base(id) + offset.
class TraceBuffer final : public Buffer {
 public:
  enum class Kind : std::uint8_t { input, intermediate, constant };
  TraceBuffer(Device* device, std::size_t bytes, int id, Kind kind);

  int id() const { return id_; }
  Kind kind() const { return kind_; }
  const std::vector<std::byte>& constant() const { return constant_; }
  void set_constant(const void* data, std::size_t bytes);

  static std::uint64_t base(int id);
  // The buffer id and byte offset of a fake address; nullopt for a real address.
  static std::optional<std::pair<int, std::uint64_t>> locate(std::uint64_t address);

 private:
  int id_;
  Kind kind_;
  std::vector<std::byte> constant_;
};

// One launch as recorded: the spec and its request in plain values (addresses fake for trace
// buffers, real for buffers captured from outside the trace).
struct TracedLaunch {
  std::string op;
  KernelSpec spec;
  std::string name;       // spec.name()
  std::string canonical;  // spec.canonical(), made with the name (lookups compare it: names are 32-bit)
  Shape shape;
  std::vector<std::uint64_t> inputs;
  std::vector<Shape> strides;  // per input, over |shape|
  std::uint64_t out = 0;
  std::vector<int> axes;
  std::vector<std::pair<std::string, double>> options;
  std::vector<std::uint64_t> more_outputs;
  int block_size = 256;
  // A contraction that may go to the vendor library (tried first at replay; |spec| otherwise).
  std::optional<LibraryGemm> library;
  // The registry looked up first (a generated header's) and its entry, as run_plan had them.
  const Registry* registry = nullptr;
  const KernelEntry* entry = nullptr;
};

// What one trace recorded.
struct TraceProgram {
  Device* device = nullptr;
  std::vector<std::shared_ptr<TraceBuffer>> buffers;  // by id
  std::vector<TracedLaunch> launches;                 // in order
  std::vector<std::shared_ptr<Buffer>> captured;      // real buffers the launches read or write

  // A trace buffer of |bytes| on the program's device (kind input or intermediate).
  std::shared_ptr<TraceBuffer> add_buffer(std::size_t bytes, TraceBuffer::Kind kind);
};

// Makes the calling thread record into |program| (whose device is the trace's) until destroyed.
// Scopes do not nest: a kiln::jit function called inside another's trace is traced inline.
class TraceScope {
 public:
  explicit TraceScope(TraceProgram& program);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  TraceProgram* previous_;
};

// The program the calling thread records into, or nullptr.
TraceProgram* active_trace();

// Hooks for the tensor layer and dispatch.
// Tensor::empty: a trace buffer when the thread traces on |device| (else nullptr: allocate).
std::shared_ptr<Buffer> trace_allocate(Device& device, std::size_t bytes);
// Tensor::from_host: keeps the bytes when |buffer| is a trace buffer (returns true: nothing to
// upload).
bool trace_upload(Buffer& buffer, const void* data, std::size_t bytes);
// Reading a trace buffer's data (to_host, to(device)) is an error naming |call|: a traced function
// cannot depend on the values of its tensors.
void trace_check_read(const Buffer& buffer, std::string_view call);
// dispatch's result_tensor: an output the caller gave (|into|) that is a real buffer is kept by the
// trace the thread records on its device, as the operands are (the replay writes it).
void trace_keep_output(const Tensor& into);
// dispatch's run_plan (and the contraction's library path, with |library|): records the launch and
// returns true when the thread traces; throws when a trace tensor is used outside its trace or a
// traced function launches on another device; returns false to run normally.
bool trace_launch(std::string_view op, const KernelSpec& spec, const std::string* name,
                  const std::vector<Tensor>& operands, Device& device, const PlanRequest& request,
                  const Registry* first, const KernelEntry* entry, const LibraryGemm* library = nullptr);

}  // namespace kiln
