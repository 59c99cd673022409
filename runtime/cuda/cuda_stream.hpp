// CUDA streams (a non-blocking CUstream each) and events.
#pragma once

#include <cuda.h>

#include <mutex>
#include <string>

#include "runtime/stream.hpp"

namespace kiln::cuda {

class CudaDevice;

class CudaEvent final : public Event {
 public:
  CudaEvent(CudaDevice& device, CUevent event) : device_(device), event_(event) {}
  ~CudaEvent() override;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  void synchronize() override;
  double elapsed_ms_since(const Event& start) const override;
  CUevent native() const { return event_; }

 private:
  CudaDevice& device_;
  CUevent event_;
};

class CudaStream final : public Stream {
 public:
  explicit CudaStream(CudaDevice& device);
  // Wraps the caller's |foreign| stream of |device|'s primary context without owning it: the
  // destructor leaves it alive (runtime/cuda/cuda_interop.hpp).
  CudaStream(CudaDevice& device, CUstream foreign);
  ~CudaStream() override;

  Device& device() const override;
  void upload(Buffer& dst, std::size_t offset, const void* src, std::size_t bytes) override;
  void download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) override;
  void copy(const Buffer& src, std::size_t src_offset, Buffer& dst, std::size_t dst_offset,
            std::size_t bytes) override;
  void fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) override;
  void launch(const Kernel& kernel, Dim3 groups, const void* params,
              std::size_t params_size) override;
  std::unique_ptr<StreamGraph> record_graph(std::span<const GraphLaunch> launches, std::string* why) override;
  void replay(const StreamGraph& graph) override;
  std::unique_ptr<Event> record() override;
  void synchronize() override;

  CUstream native() const { return stream_; }
  // This stream's cuBLASLt handle and workspace (runtime/cuda/cublaslt.cpp), created on first use
  // and released with the stream. Requires a bound context.
  struct LtState {
    void* handle = nullptr;
    std::string create_failed;  // why cublasLtCreate failed on this stream (then never tried again)
    CUdeviceptr workspace = 0;
    std::size_t workspace_bytes = 0;
  };
  LtState& lt_state() { return lt_; }
  // Held while a contraction creates or uses lt_state() (threads sharing this stream).
  std::mutex& lt_mutex() { return lt_mu_; }
  // Destroys the handle and frees the workspace, giving its bytes back under |device|'s memory cap.
  static void release_lt(LtState& s, Device& device);  // cublaslt.cpp

 private:
  // Pinned host memory for transfers, allocated on first use. Requires mu_ and a bound context.
  void* staging();
  CUdeviceptr range(const Buffer& b, std::size_t offset, std::size_t bytes, const char* what) const;

  CudaDevice& device_;
  CUstream stream_ = nullptr;
  bool owned_ = true;
  std::mutex mu_;
  void* staging_ = nullptr;
  std::mutex lt_mu_;
  LtState lt_;
};

}  // namespace kiln::cuda
