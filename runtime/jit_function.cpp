// kiln::jit: trace (runtime/trace.cpp), fuse (runtime/fuse.cpp), compile ahead of the first replay,
// replay with the arguments' addresses.
#include "runtime/jit_function.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "codegen/emit.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/fuse.hpp"
#include "runtime/jit_replay.hpp"
#include "runtime/ops.hpp"
#include "runtime/trace.hpp"

namespace kiln {

namespace {

// One argument's part of a signature: what the trace depends on.
std::string argument_key(const Tensor& t) {
  std::string s = fmt::format("{}{}", dtype_name(t.dtype()), shape_text(t.shape()));
  Shape st = t.strides();
  for (std::size_t d = 0; d < st.size(); ++d)
    if (t.shape()[d] == 1) st[d] = 0;  // the stride of a size-1 axis never matters
  return s + shape_text(st);
}

std::int64_t lowest_offset(const Tensor& t) {
  std::int64_t lo = 0;
  if (t.numel() == 0) return 0;
  for (std::size_t d = 0; d < t.shape().size(); ++d)
    if (t.strides()[d] < 0) lo += t.strides()[d] * (t.shape()[d] - 1);
  return lo;
}

std::int64_t highest_offset(const Tensor& t) {
  std::int64_t hi = 0;
  if (t.numel() == 0) return -1;
  for (std::size_t d = 0; d < t.shape().size(); ++d)
    if (t.strides()[d] > 0) hi += t.strides()[d] * (t.shape()[d] - 1);
  return hi;
}

// Which trace buffers |program| and the outputs use, given the launches left.
void mark_used(Compiled& c) {
  const std::size_t n = c.program.buffers.size();
  std::vector<bool> used(n, false);
  auto use = [&](std::uint64_t a) {
    if (auto loc = TraceBuffer::locate(a)) used[std::size_t(loc->first)] = true;
  };
  for (const TracedLaunch& l : c.program.launches) {
    for (std::uint64_t a : l.inputs) use(a);
    use(l.out);
    for (std::uint64_t a : l.more_outputs) use(a);
    if (l.library) {
      use(l.library->a);
      use(l.library->b);
    }
  }
  c.results.assign(n, false);
  for (const OutputRef& o : c.outputs)
    if (o.kind == OutputRef::Kind::trace) used[std::size_t(o.buffer)] = c.results[std::size_t(o.buffer)] = true;
  c.constants.assign(n, nullptr);
  c.intermediates.assign(n, false);
  Device& dev = *c.program.device;
  for (std::size_t i = 0; i < n; ++i) {
    if (!used[i]) continue;
    const TraceBuffer& b = *c.program.buffers[i];
    if (b.kind() == TraceBuffer::Kind::intermediate) {
      c.intermediates[i] = true;
    } else if (b.kind() == TraceBuffer::Kind::constant) {
      c.constants[i] = dev.allocate(std::max<std::size_t>(b.size_bytes(), 1));
      dev.default_stream().upload(*c.constants[i], 0, b.constant().data(), b.constant().size());
    }
  }
}

// Resolves (compiling just in time) every launch's kernel; the reason when one cannot be had.
std::string compile_all(const TraceProgram& p) {
  Device& dev = *p.device;
  if (dev.backend() == Backend::cpu) return {};
  for (const TracedLaunch& l : p.launches) {
    std::string why;
    try {
      const FunctionSet functions = traced_functions(l, dev);
      KernelRef ref = l.entry ? resolve_entry(dev, l.spec, *l.registry, *l.entry, &why, functions)
                              : resolve_kernel(dev, l.spec, l.name, l.registry, &why, functions,
                                               l.canonical.empty() ? nullptr : &l.canonical);
      if (!ref) return fmt::format("{} ({}): {}", l.name, l.op, why);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::compile_error && e.code() != ErrorCode::unsupported) throw;
      return fmt::format("{} ({}): {}", l.name, l.op, e.what());
    }
  }
  return {};
}

void dump(const std::string& name, const std::string& key_hash, const Compiled& c, const std::string& unfused) {
  const char* dir = std::getenv("KILN_DUMP");
  if (!dir || !*dir) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string stem = (fs::path(dir) / fmt::format("{}-{}", name, key_hash)).string();
  std::ofstream(stem + ".plan.txt") << "# traced launches\n" << unfused << "\n# replayed launches\n" << c.plan;
  const Device& dev = *c.program.device;
  for (std::size_t i = 0; i < c.program.launches.size(); ++i) {
    const KernelSpec& spec = c.program.launches[i].spec;
    if (dev.backend() == Backend::cuda) {
      std::ofstream(fmt::format("{}-{}.cu", stem, i)) << emit_cuda(spec);
    } else if (dev.backend() == Backend::vulkan) {
      const int functions = int(family_of(spec).entry_points.size());
      for (int f = 0; f < functions; ++f) std::ofstream(fmt::format("{}-{}.{}.comp", stem, i, f)) << emit_glsl(spec, f);
    }
  }
}

bool fusion_disabled() {
  static const bool off = [] {
    const char* env = std::getenv("KILN_JIT_FUSE");
    return env && std::string_view(env) == "0";
  }();
  return off;
}

}  // namespace

struct JitFunction::Impl {
  JitOptions options;
  mutable std::mutex mutex;
  std::map<std::string, std::shared_ptr<const Compiled>> cache;
  std::string last_key;
  std::vector<std::string> last_args;
  JitStats stats;
  ReplayCounters counters;
  bool warned_fallback = false;

  std::shared_ptr<const Compiled> lookup(const std::vector<Tensor>& args, const Body& body);
  std::shared_ptr<const Compiled> trace(const std::vector<Tensor>& args, const Body& body, const std::string& key);
  void warn_retrace(const std::vector<std::string>& arg_keys, Device& device);
};

JitFunction::JitFunction(JitOptions options) : impl_(std::make_shared<Impl>()) { impl_->options = std::move(options); }

std::shared_ptr<const Compiled> JitFunction::Impl::lookup(const std::vector<Tensor>& args, const Body& body) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (!args[i].defined())
      fail(ErrorCode::invalid_argument, fmt::format("kiln::jit({}): argument {} is an undefined tensor", options.name, i));
    if (&args[i].device() != &args[0].device())
      fail(ErrorCode::invalid_argument,
           fmt::format("kiln::jit({}): arguments are on different devices ({} and {}); move them with to()",
                       options.name, args[0].device().id(), args[i].device().id()));
  }
  Device& device = args.empty() ? default_device() : args[0].device();
  std::vector<std::string> arg_keys;
  std::string key = device.id();
  for (const Tensor& t : args) {
    arg_keys.push_back(argument_key(t));
    key += ";" + arg_keys.back();
  }
  std::lock_guard lock(mutex);
  ++stats.calls;
  if (auto it = cache.find(key); it != cache.end()) {
    ++stats.cache_hits;
    return it->second;
  }
  if (!cache.empty() && int(cache.size()) >= options.retrace_warning) warn_retrace(arg_keys, device);
  auto compiled = trace(args, body, key);
  cache.emplace(key, compiled);
  last_key = key;
  last_args = std::move(arg_keys);
  return compiled;
}

void JitFunction::Impl::warn_retrace(const std::vector<std::string>& arg_keys, Device& device) {
  std::string what;
  for (std::size_t i = 0; i < arg_keys.size(); ++i)
    if (i >= last_args.size() || last_args[i] != arg_keys[i])
      what += fmt::format("{}argument {}: {} -> {}", what.empty() ? "" : ", ", i,
                          i < last_args.size() ? last_args[i] : "(none)", arg_keys[i]);
  if (what.empty()) what = fmt::format("device or argument count ({} arguments on {})", arg_keys.size(), device.id());
  std::fprintf(stderr, "kiln::jit(%s): traced %zu signatures; this call differs from the last in %s\n",
               options.name.c_str(), cache.size() + 1, what.c_str());
}

std::shared_ptr<const Compiled> JitFunction::Impl::trace(const std::vector<Tensor>& args, const Body& body,
                                                         const std::string& key) {
  auto c = std::make_shared<Compiled>();
  Device& device = args.empty() ? default_device() : args[0].device();
  c->program.device = &device;
  std::vector<Tensor> symbolic;
  for (const Tensor& t : args) {
    const std::int64_t lo = lowest_offset(t), hi = highest_offset(t);
    const std::size_t bytes = std::size_t(hi - lo + 1) * dtype_size(t.dtype());
    auto buffer = c->program.add_buffer(std::max<std::size_t>(bytes, 1), TraceBuffer::Kind::input);
    c->inputs.push_back({buffer->id(), -lo});
    symbolic.push_back(Tensor::view(buffer, t.shape(), t.strides(), -lo, t.dtype()));
  }
  std::vector<Tensor> results;
  {
    TraceScope scope(c->program);
    results = body(symbolic);
  }
  std::vector<int> output_buffers;
  for (const Tensor& r : results) {
    OutputRef o;
    if (r.defined()) {
      auto* tb = dynamic_cast<const TraceBuffer*>(r.storage().get());
      const bool ours = tb && tb->id() < int(c->program.buffers.size()) && c->program.buffers[std::size_t(tb->id())].get() == tb;
      if (tb && !ours)
        fail(ErrorCode::invalid_argument,
             fmt::format("kiln::jit({}): returns a traced value of another trace", options.name));
      o.kind = ours ? OutputRef::Kind::trace : OutputRef::Kind::real;
      o.buffer = ours ? tb->id() : -1;
      o.tensor = r;
      if (ours) output_buffers.push_back(tb->id());
    }
    c->outputs.push_back(std::move(o));
  }
  const std::string unfused = describe_program(c->program);
  c->launches_traced = int(c->program.launches.size());
  TraceProgram recorded = c->program;
  std::string note;
  if (options.fuse && !fusion_disabled()) {
    const FusionReport r = fuse(c->program, output_buffers);
    note = fmt::format("fused: {} launches -> {} ({} repeated launches merged, {} producers inlined, {} scalars made "
                       "literals, {} epilogues, {} rows, {} joined as more results)",
                       r.launches_before, r.launches_after, r.merged, r.inlined, r.constants_folded, r.epilogues,
                       r.rows, r.siblings);
    for (const std::string& n : r.notes) note += "\n  " + n;
    c->fused = true;
    if (std::string why = compile_all(c->program); !why.empty()) {
      if (!warned_fallback)
        std::fprintf(stderr, "kiln::jit(%s): runs op by op, a fused kernel cannot be compiled: %s\n",
                     options.name.c_str(), why.c_str());
      warned_fallback = true;
      note = "op by op (a fused kernel cannot be compiled: " + why + ")";
      c->program = std::move(recorded);
      c->fused = false;
    }
  } else {
    note = "not fused (JitOptions::fuse false or KILN_JIT_FUSE=0)";
  }
  mark_used(*c);
  c->no_graph = graph_obstacle(c->program, options.graphs);
  const std::string replay_note =
      c->no_graph.empty() ? "replay: planned once per set of addresses; from the second call with the same "
                            "addresses, one recorded graph (CUDA graph, Vulkan command buffer; not when a GEMM "
                            "went to cuBLASLt)"
                          : "replay: launch by launch (" + c->no_graph + ")";
  c->plan = fmt::format("kiln::jit({}) on {}: {} launches traced; {}\n{}\n{}", options.name, device.id(),
                        c->launches_traced, note, replay_note, describe_program(c->program));
  dump(options.name, fmt::format("{:016x}", std::hash<std::string>{}(key)), *c, unfused);
  ++stats.traces;
  stats.launches_traced = c->launches_traced;
  stats.launches_per_call = int(c->program.launches.size());
  stats.fused = c->fused;
  return c;
}

std::vector<Tensor> JitFunction::call(const std::vector<Tensor>& args, const Body& body,
                                      const std::vector<Tensor>* into) const {
  if (active_trace()) {  // inside another function's trace: traced inline
    std::vector<Tensor> results = body(args);
    if (into)
      for (std::size_t k = 0; k < into->size() && k < results.size(); ++k)
        if ((*into)[k].defined()) results[k] = as_type(results[k], results[k].dtype(), &(*into)[k]);
    return results;
  }
  auto compiled = impl_->lookup(args, body);
  if (into) check_into(impl_->options.name, *compiled, args, *into);
  return replay(impl_->options.name, *compiled, args, into, impl_->counters);
}

std::string JitFunction::plan(const std::vector<Tensor>& args, const Body& body) const {
  return impl_->lookup(args, body)->plan;
}

JitStats JitFunction::stats() const {
  std::lock_guard lock(impl_->mutex);
  JitStats s = impl_->stats;
  s.graphs_recorded = impl_->counters.graphs_recorded.load();
  s.graph_replays = impl_->counters.graph_replays.load();
  return s;
}

}  // namespace kiln
