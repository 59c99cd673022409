#include "runtime/trace.hpp"

#include <cstring>

#include <fmt/format.h>

#include "core/error.hpp"

namespace kiln {

namespace {

// Fake addresses: 1 TiB per buffer from 2^62 up, far from any real device or host address.
constexpr std::uint64_t kFakeBase = std::uint64_t(1) << 62;
constexpr int kSpanBits = 40;
constexpr int kMaxBuffers = 1 << 20;

thread_local TraceProgram* t_active = nullptr;

const TraceBuffer* as_trace(const Buffer& b) { return dynamic_cast<const TraceBuffer*>(&b); }

}  // namespace

TraceBuffer::TraceBuffer(Device* device, std::size_t bytes, int id, Kind kind)
    : Buffer(device, bytes, base(id)), id_(id), kind_(kind) {}

void TraceBuffer::set_constant(const void* data, std::size_t bytes) {
  kind_ = Kind::constant;
  constant_.resize(bytes);
  if (bytes) std::memcpy(constant_.data(), data, bytes);
}

std::uint64_t TraceBuffer::base(int id) { return kFakeBase + (std::uint64_t(id) << kSpanBits); }

std::optional<std::pair<int, std::uint64_t>> TraceBuffer::locate(std::uint64_t address) {
  if (address < kFakeBase) return std::nullopt;
  const std::uint64_t rel = address - kFakeBase;
  const std::uint64_t id = rel >> kSpanBits;
  if (id >= std::uint64_t(kMaxBuffers)) return std::nullopt;
  return std::make_pair(int(id), rel & ((std::uint64_t(1) << kSpanBits) - 1));
}

std::shared_ptr<TraceBuffer> TraceProgram::add_buffer(std::size_t bytes, TraceBuffer::Kind kind) {
  if (buffers.size() >= std::size_t(kMaxBuffers))
    fail(ErrorCode::invalid_argument, fmt::format("kiln::jit: a trace allocated more than {} tensors", kMaxBuffers));
  if (bytes >= (std::size_t(1) << kSpanBits))
    fail(ErrorCode::out_of_memory, fmt::format("kiln::jit: a traced tensor of {} bytes (at most 1 TiB each)", bytes));
  buffers.push_back(std::make_shared<TraceBuffer>(device, bytes, int(buffers.size()), kind));
  return buffers.back();
}

TraceScope::TraceScope(TraceProgram& program) : previous_(t_active) { t_active = &program; }
TraceScope::~TraceScope() { t_active = previous_; }

TraceProgram* active_trace() { return t_active; }

std::shared_ptr<Buffer> trace_allocate(Device& device, std::size_t bytes) {
  if (!t_active || t_active->device != &device) return nullptr;
  return t_active->add_buffer(bytes, TraceBuffer::Kind::intermediate);
}

bool trace_upload(Buffer& buffer, const void* data, std::size_t bytes) {
  auto* t = dynamic_cast<TraceBuffer*>(&buffer);
  if (!t) return false;
  t->set_constant(data, bytes);
  return true;
}

void trace_check_read(const Buffer& buffer, std::string_view call) {
  if (!as_trace(buffer)) return;
  fail(ErrorCode::invalid_argument,
       fmt::format("{}: the tensor is a traced value of a kiln::jit function: its data does not exist while tracing "
                   "(a traced function cannot read its tensors to the host or move them between devices)",
                   call));
}

void trace_keep_output(const Tensor& into) {
  TraceProgram* p = t_active;
  if (p && into.defined() && p->device == &into.device() && !as_trace(*into.storage()))
    p->captured.push_back(into.storage());
}

bool trace_launch(std::string_view op, const KernelSpec& spec, const std::string* name,
                  const std::vector<Tensor>& operands, Device& device, const PlanRequest& request,
                  const Registry* first, const KernelEntry* entry, const LibraryGemm* library) {
  TraceProgram* p = t_active;
  if (!p || p->device != &device) {
    for (const Tensor& t : operands)
      if (t.defined() && as_trace(*t.storage()))
        fail(ErrorCode::invalid_argument,
             fmt::format("kiln::{}: operand {} is a traced value of a kiln::jit function, used outside its trace "
                         "(return it from the function instead)",
                         op, t.describe()));
    if (p)
      fail(ErrorCode::invalid_argument,
           fmt::format("kiln::{}: runs on {} inside the trace of a kiln::jit function on {} (a traced function "
                       "runs on one device; move its inputs there first)",
                       op, device.id(), p->device->id()));
    return false;
  }
  for (const Tensor& t : operands)
    if (t.defined() && !as_trace(*t.storage())) p->captured.push_back(t.storage());
  TracedLaunch l;
  l.op = std::string(op);
  l.spec = spec;
  l.canonical = spec.canonical();
  l.name = name ? *name : spec.name(l.canonical);
  l.shape.assign(request.shape.begin(), request.shape.end());
  for (const PlanOperand& o : request.inputs) {
    l.inputs.push_back(o.address);
    l.strides.emplace_back(o.strides.begin(), o.strides.end());
  }
  l.out = request.out;
  l.axes.assign(request.axes.begin(), request.axes.end());
  for (const LaunchOption& o : request.options) l.options.emplace_back(std::string(o.name), o.value);
  l.more_outputs.assign(request.more_outputs.begin(), request.more_outputs.end());
  l.block_size = request.block_size;
  if (library) l.library = *library;
  l.registry = first;
  l.entry = entry;
  p->launches.push_back(std::move(l));
  return true;
}

}  // namespace kiln
