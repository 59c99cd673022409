#include "runtime/jit_replay.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "core/error.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/ops.hpp"

namespace kiln {

namespace {

constexpr std::size_t kMaxRecordings = 4;  // sets of addresses kept per compiled trace

bool graphs_disabled() {
  static const bool off = [] {
    const char* env = std::getenv("KILN_JIT_GRAPHS");
    return env && std::string_view(env) == "0";
  }();
  return off;
}

}  // namespace

// One call's launches, resolved and planned for one set of addresses (|key|: every trace buffer's
// base address), and their graph once recorded.
struct Recording {
  struct Step {
    int launch = 0;                      // the traced launch
    std::optional<LibraryGemm> library;  // went to the vendor library (no kernel launches then)
    std::vector<GraphLaunch> launches;   // the kernel's plan, step by step
    std::shared_ptr<Buffer> scratch;     // the plan's scratch memory
  };
  std::vector<std::uint64_t> key;
  std::vector<Step> steps;
  std::unique_ptr<StreamGraph> graph;
  bool graph_tried = false;
  std::uint64_t used = 0;  // ReplayState::clock at the last use
};

ReplayState::ReplayState() = default;
ReplayState::~ReplayState() = default;

std::string graph_obstacle(const TraceProgram& program, bool graphs_wanted) {
  if (program.device->backend() == Backend::cpu) return "the CPU backend runs each kernel as it comes";
  if (!graphs_wanted) return "JitOptions::graphs is false";
  if (graphs_disabled()) return "KILN_JIT_GRAPHS=0";
  return {};
}

namespace {

// The trace's buffers bound to one call's memory.
struct Binding {
  std::vector<std::uint64_t> base;
  std::vector<std::shared_ptr<Buffer>> storage;
  std::vector<int> bound;  // the |into| tensor standing in for a buffer, or -1
  std::uint64_t remap(std::uint64_t a) const {
    if (auto loc = TraceBuffer::locate(a)) return base[std::size_t(loc->first)] + loc->second;
    return a;
  }
};

// Whether output |o| is a whole intermediate buffer that |into| can stand in for.
bool rebindable(const Compiled& c, const OutputRef& o) {
  if (o.kind != OutputRef::Kind::trace) return false;
  const TraceBuffer& tb = *c.program.buffers[std::size_t(o.buffer)];
  return tb.kind() == TraceBuffer::Kind::intermediate && o.tensor.offset() == 0 && o.tensor.is_contiguous() &&
         o.tensor.size_bytes() == tb.size_bytes();
}

// |workspace| (GPU): where the intermediates no result uses live, allocated at the first call.
Binding bind(const Compiled& c, const std::vector<Tensor>& args, const std::vector<Tensor>* into,
             std::vector<std::shared_ptr<Buffer>>* workspace) {
  Device& dev = *c.program.device;
  const std::size_t n = c.program.buffers.size();
  Binding b{std::vector<std::uint64_t>(n, 0), std::vector<std::shared_ptr<Buffer>>(n), std::vector<int>(n, -1)};
  if (into)
    for (std::size_t k = 0; k < into->size(); ++k)
      if ((*into)[k].defined() && rebindable(c, c.outputs[k]) && b.bound[std::size_t(c.outputs[k].buffer)] < 0) {
        const std::size_t id = std::size_t(c.outputs[k].buffer);
        b.base[id] = (*into)[k].address();
        b.storage[id] = (*into)[k].storage();
        b.bound[id] = int(k);
      }
  for (std::size_t k = 0; k < args.size(); ++k) {
    const InputRef& in = c.inputs[k];
    const std::int64_t es = std::int64_t(dtype_size(args[k].dtype()));
    b.base[std::size_t(in.buffer)] =
        args[k].storage()->device_address() + std::uint64_t((args[k].offset() - in.shift) * es);
    b.storage[std::size_t(in.buffer)] = args[k].storage();
  }
  if (workspace) workspace->resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t bytes = std::max<std::size_t>(c.program.buffers[i]->size_bytes(), 1);
    if (c.constants[i]) {
      b.storage[i] = c.constants[i];
    } else if (!c.intermediates[i] || b.bound[i] >= 0) {
      continue;
    } else if (workspace && !c.results[i]) {
      if (!(*workspace)[i]) (*workspace)[i] = dev.allocate(bytes);
      b.storage[i] = (*workspace)[i];
    } else {
      b.storage[i] = dev.allocate(bytes);
    }
    b.base[i] = b.storage[i]->device_address();
  }
  return b;
}

// A traced launch's request over the addresses |remap| gives (its spans point into the vectors given).
template <class Remap>
PlanRequest request_over(const TracedLaunch& l, const Remap& remap, std::vector<PlanOperand>& ops,
                         std::vector<LaunchOption>& options, std::vector<std::uint64_t>& more) {
  ops.clear();
  for (std::size_t k = 0; k < l.inputs.size(); ++k) ops.push_back({remap(l.inputs[k]), l.strides[k]});
  options.clear();
  for (const auto& [name, value] : l.options) options.push_back({name, value});
  more.clear();
  for (std::uint64_t a : l.more_outputs) more.push_back(remap(a));
  PlanRequest request{l.shape, ops, remap(l.out), l.axes, l.block_size};
  request.options = options;
  request.more_outputs = more;
  return request;
}

// ... over the binding's addresses.
PlanRequest request_for(const TracedLaunch& l, const Binding& b, std::vector<PlanOperand>& ops,
                        std::vector<LaunchOption>& options, std::vector<std::uint64_t>& more) {
  return request_over(l, [&b](std::uint64_t a) { return b.remap(a); }, ops, options, more);
}

LibraryGemm remapped(LibraryGemm g, const Binding& b) {
  // A bias epilogue never reaches a trace (runtime/contract.cpp keeps it out: its operand may be a
  // copy made inside the call, which no binding holds).
  if (g.bias) fail(ErrorCode::internal, "a traced library GEMM with a bias epilogue");
  g.a = b.remap(g.a);
  g.b = b.remap(g.b);
  g.out = b.remap(g.out);
  return g;
}

// Runs traced launch |l| as the eager path would (the vendor library first when it may).
void run_launch(Device& dev, const TracedLaunch& l, const Binding& b) {
  if (l.library) {
    std::string why;
    if (dev.library_gemm(dev.default_stream(), remapped(*l.library, b), &why)) return;
  }
  std::vector<PlanOperand> ops;
  std::vector<LaunchOption> options;
  std::vector<std::uint64_t> more;
  run_plan(l.op, l.spec, &l.name, {}, dev, request_for(l, b, ops, options, more), l.registry, l.entry, &l.canonical);
}

// Plans and launches |c|'s launches one by one, keeping what each launched.
std::unique_ptr<Recording> launch_and_keep(const Compiled& c, const Binding& b) {
  Device& dev = *c.program.device;
  Stream& stream = dev.default_stream();
  auto r = std::make_unique<Recording>();
  r->key = b.base;
  std::vector<PlanOperand> ops;
  std::vector<LaunchOption> options;
  std::vector<std::uint64_t> more;
  for (std::size_t i = 0; i < c.program.launches.size(); ++i) {
    const TracedLaunch& l = c.program.launches[i];
    Recording::Step step;
    step.launch = int(i);
    if (l.library) {
      const LibraryGemm g = remapped(*l.library, b);
      std::string why;
      if (dev.library_gemm(stream, g, &why)) {
        step.library = g;
        r->steps.push_back(std::move(step));
        continue;
      }
    }
    const PreparedRun run =
        prepare_run(l.op, l.spec, &l.name, {}, dev, request_for(l, b, ops, options, more), l.registry, l.entry,
                    &l.canonical);
    step.launches.push_back(graph_launch(stream, run.kernel, run.plan));
    for (const LaunchStep& s : run.plan.then) step.launches.push_back(graph_launch(stream, run.kernel, s));
    step.scratch = run.scratch;
    for (const GraphLaunch& g : step.launches) stream.launch(*g.kernel, g.groups, g.params.data(), g.params.size());
    r->steps.push_back(std::move(step));
  }
  return r;
}

void launch_kept(const Compiled& c, const Recording& r, const Binding& b) {
  Device& dev = *c.program.device;
  Stream& stream = dev.default_stream();
  for (const Recording::Step& step : r.steps) {
    if (step.library) {
      std::string why;
      if (!dev.library_gemm(stream, *step.library, &why))  // the library declined this time: as eager
        run_launch(dev, c.program.launches[std::size_t(step.launch)], b);
      continue;
    }
    for (const GraphLaunch& g : step.launches) stream.launch(*g.kernel, g.groups, g.params.data(), g.params.size());
  }
}

std::vector<Tensor> results(const Compiled& c, const Binding& b, const std::vector<Tensor>& args,
                            const std::vector<Tensor>* into) {
  Device& dev = *c.program.device;
  std::vector<Tensor> out;
  for (const OutputRef& o : c.outputs) {
    if (o.kind != OutputRef::Kind::trace) {
      out.push_back(o.tensor);
      continue;
    }
    const TraceBuffer& tb = *c.program.buffers[std::size_t(o.buffer)];
    const Tensor& t = o.tensor;
    if (tb.kind() == TraceBuffer::Kind::constant) {  // a fresh copy each call: callers may write it
      const std::int64_t es = std::int64_t(dtype_size(t.dtype()));
      Tensor whole = Tensor::from_host(tb.constant().data(), tb.constant().size(),
                                       {std::int64_t(tb.constant().size()) / es}, t.dtype(), dev);
      out.push_back(Tensor::view(whole.storage(), t.shape(), t.strides(), t.offset(), t.dtype()));
      continue;
    }
    std::int64_t offset = t.offset();
    if (tb.kind() == TraceBuffer::Kind::input) {  // a view of an argument: over its storage
      for (std::size_t k = 0; k < c.inputs.size(); ++k)
        if (c.inputs[k].buffer == o.buffer) {
          const std::int64_t bytes = std::int64_t(b.base[std::size_t(o.buffer)] - args[k].storage()->device_address()) +
                                     offset * std::int64_t(dtype_size(t.dtype()));
          offset = bytes / std::int64_t(dtype_size(t.dtype()));
          break;
        }
    }
    if (const int k = b.bound[std::size_t(o.buffer)]; k >= 0) {
      const Tensor& whole = (*into)[std::size_t(k)];  // stands in for the buffer from its own offset
      if (o.tensor.shape() == whole.shape() && o.tensor.dtype() == whole.dtype() && offset == 0 && o.tensor.is_contiguous()) {
        out.push_back(whole);
        continue;
      }
      offset += whole.offset() * std::int64_t(dtype_size(whole.dtype())) / std::int64_t(dtype_size(t.dtype()));
    }
    out.push_back(Tensor::view(b.storage[std::size_t(o.buffer)], t.shape(), t.strides(), offset, t.dtype()));
  }
  if (into)  // results that are not a whole buffer of their own (an argument's view, a constant): copied
    for (std::size_t k = 0; k < into->size(); ++k)
      if ((*into)[k].defined() && out[k].storage() != (*into)[k].storage())
        out[k] = as_type(out[k], out[k].dtype(), &(*into)[k]);
  return out;
}

}  // namespace

void check_into(const std::string& name, const Compiled& c, const std::vector<Tensor>& args,
                const std::vector<Tensor>& into) {
  if (into.size() != c.outputs.size())
    fail(ErrorCode::invalid_argument,
         fmt::format("kiln::jit({}): {} output tensors given for {} results", name, into.size(), c.outputs.size()));
  Device& dev = *c.program.device;
  for (std::size_t k = 0; k < into.size(); ++k) {
    if (!into[k].defined()) continue;
    const Tensor& t = c.outputs[k].tensor;
    if (!t.defined() || into[k].shape() != t.shape() || into[k].dtype() != t.dtype() || !into[k].is_contiguous() ||
        &into[k].device() != &dev)
      fail(ErrorCode::invalid_argument,
           fmt::format("kiln::jit({}): output {} must be a contiguous {} {} on {}, got {}", name, k,
                       t.defined() ? shape_text(t.shape()) : "(undefined result)", dtype_name(t.dtype()), dev.id(),
                       layout_text(into[k])));
    for (std::size_t a = 0; a < args.size(); ++a)
      if (may_overlap(into[k], args[a]))
        fail(ErrorCode::invalid_argument,
             fmt::format("kiln::jit({}): output {} shares memory with argument {} (results are written while "
                         "arguments are still read)", name, k, a));
    for (std::size_t j = 0; j < k; ++j)
      if (into[j].defined() && may_overlap(into[k], into[j]))
        fail(ErrorCode::invalid_argument,
             fmt::format("kiln::jit({}): outputs {} and {} share memory", name, j, k));
  }
}

std::vector<Tensor> replay(const std::string& name, const Compiled& c, const std::vector<Tensor>& args,
                           const std::vector<Tensor>* into, ReplayCounters& counters) {
  Device& dev = *c.program.device;
  if (dev.backend() == Backend::cpu) {
    const Binding b = bind(c, args, into, nullptr);
    for (const TracedLaunch& l : c.program.launches) run_launch(dev, l, b);
    return results(c, b, args, into);
  }
  ReplayState& st = c.replay;
  std::lock_guard lock(st.mutex);
  const Binding b = bind(c, args, into, &st.workspace);
  auto it = std::find_if(st.recordings.begin(), st.recordings.end(),
                         [&](const std::unique_ptr<Recording>& r) { return r->key == b.base; });
  Recording* r = it == st.recordings.end() ? nullptr : it->get();
  if (!r) {  // new addresses: plan, launch and keep
    auto fresh = launch_and_keep(c, b);
    if (st.recordings.size() >= kMaxRecordings)
      st.recordings.erase(std::min_element(st.recordings.begin(), st.recordings.end(),
                                           [](const auto& x, const auto& y) { return x->used < y->used; }));
    st.recordings.push_back(std::move(fresh));
    r = st.recordings.back().get();
  } else {
    // Seen twice: record the graph, unless a GEMM went to the vendor library (a graph of kernels
    // cannot hold that call: those addresses replay launch by launch).
    const bool library = std::any_of(r->steps.begin(), r->steps.end(), [](const auto& s) { return s.library.has_value(); });
    if (!r->graph && !r->graph_tried && c.no_graph.empty() && !library) {
      r->graph_tried = true;
      std::vector<GraphLaunch> launches;
      for (const Recording::Step& s : r->steps) launches.insert(launches.end(), s.launches.begin(), s.launches.end());
      std::string why;
      try {
        r->graph = dev.default_stream().record_graph(launches, &why);
      } catch (const Error& e) {  // a failed recording costs the graph, not the call
        if (e.code() == ErrorCode::device_lost) throw;
        why = e.what();
      }
      if (r->graph) {
        ++counters.graphs_recorded;
      } else if (!st.warned) {
        st.warned = true;
        std::fprintf(stderr, "kiln::jit(%s): replays launch by launch, no graph: %s\n", name.c_str(), why.c_str());
      }
    }
    if (r->graph) {
      dev.default_stream().replay(*r->graph);
      ++counters.graph_replays;
    } else {
      launch_kept(c, *r, b);
    }
  }
  r->used = ++st.clock;
  return results(c, b, args, into);
}

FunctionSet traced_functions(const TracedLaunch& l, const Device& device) {
  std::vector<PlanOperand> ops;
  std::vector<LaunchOption> options;
  std::vector<std::uint64_t> more;
  PlanRequest request = request_over(l, [](std::uint64_t a) { return a; }, ops, options, more);
  request.block_size = l.spec.block_size;
  request.subgroup_size = device.info().subgroup_arithmetic ? device.info().subgroup_size : 0;
  std::string why;
  const LaunchPlan plan = family_of(l.spec).plan(l.spec, request, &why);
  return plan.function < 0 ? kAllFunctions : functions_of(plan);
}

}  // namespace kiln
