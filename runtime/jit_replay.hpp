// Internal to kiln::jit (runtime/jit_function.cpp): a traced function compiled for one signature,
// and how a call replays it.
//
// On the CPU backend a call binds the trace's buffers to the arguments and fresh intermediates and
// runs each launch through run_plan. On a GPU the intermediates no result uses live in a workspace
// kept with the compiled trace (the stream orders the calls, so they can share it), and a call's
// launches are resolved and planned once per set of addresses (the arguments', the results', the
// workspace's): the first call with a set plans and launches one by one and keeps the plans; the
// second records them into one graph (Stream::record_graph: a CUDA graph, a Vulkan secondary
// command buffer) and replays it, as do the calls after. Calls that write into the same tensors
// (Jit::call_into) with the same arguments therefore replay one graph; calls that get fresh
// results replay when the allocator hands the same memory back. A few sets are kept per trace,
// the least recently used replaced.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/trace.hpp"

namespace kiln {

// How a returned tensor is rebuilt at each call.
struct OutputRef {
  enum class Kind : std::uint8_t { trace, real, undefined } kind = Kind::undefined;
  int buffer = -1;  // Kind::trace
  Tensor tensor;    // Kind::trace: its layout (over the trace buffer); Kind::real: the tensor
};

struct InputRef {
  int buffer;
  std::int64_t shift;  // the element offset of the argument's element 0 in its trace buffer
};

struct Recording;

// The recorded replay's state of one compiled trace (guarded by |mutex| for a whole call).
struct ReplayState {
  std::mutex mutex;
  std::vector<std::shared_ptr<Buffer>> workspace;  // by buffer id
  std::vector<std::unique_ptr<Recording>> recordings;
  std::uint64_t clock = 0;
  bool warned = false;
  ReplayState();
  ~ReplayState();
};

struct Compiled {
  TraceProgram program;
  std::vector<InputRef> inputs;
  std::vector<OutputRef> outputs;
  std::vector<std::shared_ptr<Buffer>> constants;  // by buffer id: the constants the launches or outputs use
  std::vector<bool> intermediates;                 // by buffer id: intermediates the launches or outputs use
  std::vector<bool> results;                       // by buffer id: intermediates a result uses (fresh each call)
  std::string plan;
  std::string no_graph;  // why calls never replay a graph; empty when they may
  int launches_traced = 0;
  bool fused = false;
  mutable ReplayState replay;
};

struct ReplayCounters {
  std::atomic<std::uint64_t> graphs_recorded{0};
  std::atomic<std::uint64_t> graph_replays{0};
};

// Why calls of |program| never replay a graph (the CPU backend, a vendor-library launch,
// JitOptions::graphs false, KILN_JIT_GRAPHS=0), or "" when they may.
std::string graph_obstacle(const TraceProgram& program, bool graphs_wanted);

// The entry points traced launch |l| uses, planned over the trace's own addresses on |device|:
// what to compile before the first call (the calls' addresses keep the layout, so they plan the
// same; a function one of them picks besides is compiled when first launched).
FunctionSet traced_functions(const TracedLaunch& l, const Device& device);

// Checks the tensors given to Jit::call_into against |c|'s results and the arguments.
void check_into(const std::string& name, const Compiled& c, const std::vector<Tensor>& args,
                const std::vector<Tensor>& into);

// Runs |c| on |args| (results into |into| where given) and returns its results.
std::vector<Tensor> replay(const std::string& name, const Compiled& c, const std::vector<Tensor>& args,
                           const std::vector<Tensor>* into, ReplayCounters& counters);

}  // namespace kiln
