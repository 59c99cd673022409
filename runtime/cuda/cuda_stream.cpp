#include "runtime/cuda/cuda_stream.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "runtime/cuda/cuda_device.hpp"
#include "runtime/device_state.hpp"
#include "core/error.hpp"

// The graph calls' parameter structs (CUDA_KERNEL_NODE_PARAMS is _v2) are those of the CUDA 12.0
// entry points cuda_driver.cpp asks cuGetProcAddress for.
static_assert(CUDA_VERSION >= 12000, "Kiln's driver symbols are requested for CUDA 12.0");

namespace kiln::cuda {
namespace {

// Transfers go through a pinned staging buffer of this size, chunk by chunk.
constexpr std::size_t kStagingBytes = std::size_t(8) << 20;
// The largest params block a kernel may take by value (CUDA 12.1+ on Volta and later).
constexpr std::size_t kMaxParamsBytes = 32764;

}  // namespace

// ---- events ---------------------------------------------------------------------------------

CudaEvent::~CudaEvent() {
  if (device_.try_bind() || device_.bind_injected_loss()) driver().cuEventDestroy(event_);
}

void CudaEvent::synchronize() {
  device_.bind();
  KILN_CU(device_.health(), cuEventSynchronize, event_);
}

double CudaEvent::elapsed_ms_since(const Event& start) const {
  const auto* s = dynamic_cast<const CudaEvent*>(&start);
  if (!s || &s->device_ != &device_)
    fail(ErrorCode::invalid_argument, device_.id() +
                                          ": elapsed_ms_since needs a start event recorded on a "
                                          "stream of the same CUDA device");
  device_.bind();
  KILN_CU(device_.health(), cuEventSynchronize, event_);
  KILN_CU(device_.health(), cuEventSynchronize, s->event_);
  float ms = 0.0f;
  KILN_CU(device_.health(), cuEventElapsedTime, &ms, s->event_, event_);
  return double(ms);
}

// ---- streams --------------------------------------------------------------------------------

CudaStream::CudaStream(CudaDevice& device) : device_(device) {
  device_.bind();
  KILN_CU(device_.health(), cuStreamCreate, &stream_, CU_STREAM_NON_BLOCKING);
  device_.register_stream(stream_);
}

CudaStream::CudaStream(CudaDevice& device, CUstream foreign) : device_(device), stream_(foreign), owned_(false) {
  device_.bind();
  device_.register_stream(stream_);
}

CudaStream::~CudaStream() {
  // An injected loss (kiln::inject_fault) leaves the real context working: clean up as usual.
  const bool bound = device_.try_bind() || device_.bind_injected_loss();
  // The work still queued finishes first: the allocator fences freed memory on the registered
  // streams only, so a buffer freed after this stream's last launch would otherwise be handed out
  // again while that launch runs (and cuBLASLt's workspace released under it).
  if (bound) driver().cuStreamSynchronize(stream_);
  device_.unregister_stream(stream_);
  if (!bound) {  // the context is gone with its memory: give the workspace's bytes back to the cap
    if (lt_.workspace) detail::device_state(device_).unreserve(lt_.workspace_bytes);
    return;
  }
  release_lt(lt_, device_);
  if (owned_) driver().cuStreamDestroy(stream_);
  if (staging_) driver().cuMemFreeHost(staging_);
}

Device& CudaStream::device() const { return device_; }

void* CudaStream::staging() {
  if (!staging_) KILN_CU(device_.health(), cuMemHostAlloc, &staging_, kStagingBytes, 0);
  return staging_;
}

CUdeviceptr CudaStream::range(const Buffer& b, std::size_t offset, std::size_t bytes,
                              const char* what) const {
  if (&b.device() != &device_)
    fail(ErrorCode::invalid_argument, device_.id() + " stream " + what + ": the buffer belongs to " +
                                          b.device().id() + ", not to " + device_.id());
  if (offset > b.size_bytes() || bytes > b.size_bytes() - offset)
    fail(ErrorCode::invalid_argument,
         device_.id() + " stream " + what + ": range [" + std::to_string(offset) + ", +" +
             std::to_string(bytes) + ") is outside a buffer of " + std::to_string(b.size_bytes()) +
             " bytes");
  return CUdeviceptr(b.device_address() + offset);
}

void CudaStream::upload(Buffer& dst, std::size_t offset, const void* src, std::size_t bytes) {
  const CUdeviceptr d = range(dst, offset, bytes, "upload");
  if (bytes == 0) return;
  if (!src) fail(ErrorCode::invalid_argument, device_.id() + " stream upload: source is null");
  std::lock_guard lock(mu_);
  device_.bind();
  auto* stage = static_cast<unsigned char*>(staging());
  const auto* from = static_cast<const unsigned char*>(src);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(kStagingBytes, bytes - done);
    std::memcpy(stage, from + done, n);
    KILN_CU(device_.health(), cuMemcpyHtoDAsync, d + done, stage, n, stream_);
    // The staging buffer is reused by the next chunk or call: wait for the copy.
    KILN_CU(device_.health(), cuStreamSynchronize, stream_);
    done += n;
  }
}

void CudaStream::download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) {
  const CUdeviceptr s = range(src, offset, bytes, "download");
  if (bytes == 0) return;
  if (!dst) fail(ErrorCode::invalid_argument, device_.id() + " stream download: destination is null");
  std::lock_guard lock(mu_);
  device_.bind();
  auto* stage = static_cast<unsigned char*>(staging());
  auto* to = static_cast<unsigned char*>(dst);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(kStagingBytes, bytes - done);
    KILN_CU(device_.health(), cuMemcpyDtoHAsync, stage, s + done, n, stream_);
    KILN_CU(device_.health(), cuStreamSynchronize, stream_);
    std::memcpy(to + done, stage, n);
    done += n;
  }
}

void CudaStream::copy(const Buffer& src, std::size_t src_offset, Buffer& dst, std::size_t dst_offset,
                      std::size_t bytes) {
  const CUdeviceptr s = range(src, src_offset, bytes, "copy (source)");
  const CUdeviceptr d = range(dst, dst_offset, bytes, "copy (destination)");
  if (bytes == 0 || s == d) return;
  if (s < d + bytes && d < s + bytes) {
    // Overlapping ranges (cuMemcpyDtoD does not allow them): go through a temporary buffer.
    auto tmp = device_.allocate(bytes);
    const auto t = CUdeviceptr(tmp->device_address());
    std::lock_guard lock(mu_);
    device_.bind();
    KILN_CU(device_.health(), cuMemcpyDtoDAsync, t, s, bytes, stream_);
    KILN_CU(device_.health(), cuMemcpyDtoDAsync, d, t, bytes, stream_);
    return;  // freeing |tmp| fences it on this stream
  }
  std::lock_guard lock(mu_);
  device_.bind();
  KILN_CU(device_.health(), cuMemcpyDtoDAsync, d, s, bytes, stream_);
}

void CudaStream::fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) {
  const CUdeviceptr d = range(dst, offset, bytes, "fill");
  if (bytes == 0) return;
  std::lock_guard lock(mu_);
  device_.bind();
  KILN_CU(device_.health(), cuMemsetD8Async, d, static_cast<unsigned char>(value), bytes, stream_);
}

namespace {

// The launch checks shared by launch() and record_graph(); the kernel as loaded on |device|.
const CudaKernel& checked_kernel(const CudaDevice& device, const Kernel& kernel, Dim3 groups, const void* params,
                                 std::size_t params_size) {
  const auto* k = dynamic_cast<const CudaKernel*>(&kernel);
  if (!k || k->device() != &device)
    fail(ErrorCode::invalid_argument, device.id() + ": cannot launch '" + kernel.name() +
                                          "': it was not loaded on this device");
  const Dim3& max = device.max_grid();
  if (groups.x > max.x || groups.y > max.y || groups.z > max.z)
    fail(ErrorCode::invalid_argument,
         device.id() + ": launching '" + kernel.name() + "' over " + std::to_string(groups.x) +
             "x" + std::to_string(groups.y) + "x" + std::to_string(groups.z) +
             " blocks exceeds the device's maximum grid " + std::to_string(max.x) + "x" +
             std::to_string(max.y) + "x" + std::to_string(max.z));
  if (params_size > kMaxParamsBytes)
    fail(ErrorCode::invalid_argument, device.id() + ": the params block of '" + kernel.name() +
                                          "' is " + std::to_string(params_size) +
                                          " bytes, more than the " +
                                          std::to_string(kMaxParamsBytes) + " CUDA allows");
  if (params_size > 0 && !params)
    fail(ErrorCode::invalid_argument,
         device.id() + ": launching '" + kernel.name() + "' with a null params block");
  return *k;
}

class CudaGraph final : public StreamGraph {
 public:
  CudaGraph(CudaDevice& device, CUgraphExec exec) : device_(device), exec_(exec) {}
  ~CudaGraph() override {
    if (device_.try_bind() || device_.bind_injected_loss())
      driver().cuGraphExecDestroy(exec_);  // safe while a launch of it runs
  }
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  std::string_view kind() const override { return "CUDA graph"; }
  CudaDevice& device() const { return device_; }
  CUgraphExec exec() const { return exec_; }
  std::mutex& launch_mutex() const { return launch_mu_; }  // one launch of an exec at a time

 private:
  CudaDevice& device_;
  CUgraphExec exec_;
  mutable std::mutex launch_mu_;
};

}  // namespace

void CudaStream::launch(const Kernel& kernel, Dim3 groups, const void* params,
                        std::size_t params_size) {
  const CudaKernel& k = checked_kernel(device_, kernel, groups, params, params_size);
  if (groups.x == 0 || groups.y == 0 || groups.z == 0) return;  // empty launch: nothing to do

  std::size_t size = params_size;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, const_cast<void*>(params),
                   CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
  const auto block = static_cast<unsigned>(kernel.block_size());
  std::lock_guard lock(mu_);
  device_.bind();
  if (params_size > 0)
    KILN_CU(device_.health(), cuLaunchKernel, k.function(), groups.x, groups.y, groups.z, block, 1,
            1, k.shared_bytes(), stream_, nullptr, extra);
  else
    KILN_CU(device_.health(), cuLaunchKernel, k.function(), groups.x, groups.y, groups.z, block, 1,
            1, k.shared_bytes(), stream_, nullptr, nullptr);
}

// An explicit graph (no stream capture: nothing else enqueued on any stream can slip in): one
// kernel node per launch, each depending on the one before, as a stream orders them; each node's
// params block passed as launch() passes it (a sized buffer through |extra|), copied by the driver
// when the node is added. Driver errors give nullptr and the reason (a lost device throws).
std::unique_ptr<StreamGraph> CudaStream::record_graph(std::span<const GraphLaunch> launches, std::string* why) {
  for (const GraphLaunch& l : launches) {
    if (!l.kernel) fail(ErrorCode::invalid_argument, device_.id() + ": record_graph: a launch without a kernel");
    checked_kernel(device_, *l.kernel, l.groups, l.params.data(), l.params.size());
  }
  std::lock_guard lock(mu_);
  device_.bind();
  auto failed = [&](const char* call, CUresult r) -> std::unique_ptr<StreamGraph> {
    const char* name = nullptr;
    if (driver().cuGetErrorName(r, &name) != CUDA_SUCCESS || !name) name = "unknown CUresult";
    if (is_sticky(r)) raise(r, call, __FILE__, __LINE__, device_.health());  // the context is gone
    if (why) *why = std::string(call) + " failed: " + name;
    return nullptr;
  };
  CUgraph graph = nullptr;
  if (CUresult r = driver().cuGraphCreate(&graph, 0); r != CUDA_SUCCESS) return failed("cuGraphCreate", r);
  struct Destroy {
    CUgraph g;
    ~Destroy() { driver().cuGraphDestroy(g); }  // the exec keeps what it needs
  } destroy{graph};
  CUgraphNode previous = nullptr;
  std::vector<std::size_t> sizes(launches.size());
  for (std::size_t i = 0; i < launches.size(); ++i) {
    const GraphLaunch& l = launches[i];
    if (l.groups.x == 0 || l.groups.y == 0 || l.groups.z == 0) continue;
    const auto& k = static_cast<const CudaKernel&>(*l.kernel);
    CUDA_KERNEL_NODE_PARAMS p{};
    p.func = k.function();
    p.gridDimX = l.groups.x;
    p.gridDimY = l.groups.y;
    p.gridDimZ = l.groups.z;
    p.blockDimX = static_cast<unsigned>(k.block_size());
    p.blockDimY = 1;
    p.blockDimZ = 1;
    p.sharedMemBytes = k.shared_bytes();
    sizes[i] = l.params.size();
    void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, const_cast<std::byte*>(l.params.data()),
                     CU_LAUNCH_PARAM_BUFFER_SIZE, &sizes[i], CU_LAUNCH_PARAM_END};
    if (!l.params.empty()) p.extra = extra;
    CUgraphNode node = nullptr;
    if (CUresult r = driver().cuGraphAddKernelNode(&node, graph, previous ? &previous : nullptr, previous ? 1 : 0, &p);
        r != CUDA_SUCCESS)
      return failed("cuGraphAddKernelNode", r);
    previous = node;
  }
  CUgraphExec exec = nullptr;
  if (CUresult r = driver().cuGraphInstantiateWithFlags(&exec, graph, 0); r != CUDA_SUCCESS)
    return failed("cuGraphInstantiateWithFlags", r);
  try {
    return std::make_unique<CudaGraph>(device_, exec);
  } catch (...) {
    driver().cuGraphExecDestroy(exec);
    throw;
  }
}

void CudaStream::replay(const StreamGraph& graph) {
  const auto* g = dynamic_cast<const CudaGraph*>(&graph);
  if (!g || &g->device() != &device_) {
    Stream::replay(graph);  // throws: not a graph of this device
    return;
  }
  std::scoped_lock lock(mu_, g->launch_mutex());
  device_.bind();
  KILN_CU(device_.health(), cuGraphLaunch, g->exec(), stream_);
}

std::unique_ptr<Event> CudaStream::record() {
  std::lock_guard lock(mu_);
  device_.bind();
  CUevent e = nullptr;
  KILN_CU(device_.health(), cuEventCreate, &e, CU_EVENT_DEFAULT);
  auto event = std::make_unique<CudaEvent>(device_, e);
  KILN_CU(device_.health(), cuEventRecord, e, stream_);
  return event;
}

void CudaStream::synchronize() {
  std::lock_guard lock(mu_);
  device_.bind();
  KILN_CU(device_.health(), cuStreamSynchronize, stream_);
}

}  // namespace kiln::cuda
