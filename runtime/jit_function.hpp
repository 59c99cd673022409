// kiln::jit — Nx's defn for Kiln. jit(fn) wraps a function of kiln::Tensors (returning a Tensor, a
// std::vector<Tensor>, or a std::tuple/std::pair of them); calling the wrapper traces fn once per
// argument signature (each argument's dtype, shape and strides, and the device) against the
// recording backend (runtime/trace.hpp), fuses the recorded launches into kernels of the existing
// families (runtime/fuse.hpp), compiles what the registries lack just in time, and replays the
// fused launches with the arguments' addresses. Later calls with the same signature skip tracing.
//
//   auto gelu = kiln::jit([](const kiln::Tensor& x) {
//     return x * 0.5 * (kiln::erf(x * M_SQRT1_2) + 1.0);   // one map kernel, not six
//   });
//   kiln::Tensor y = gelu(x);
//
// Inside a trace a tensor has no data: reading it (to_host, to_vector, to(device)) is an error
// naming the call, and every op runs on the arguments' device. Tensors the function captures from
// outside are read at each call; host data it uploads (kiln::scalar, x * 2.0) is a constant of the
// trace, and one-element constants become literals of the fused expressions.
// On a GPU, a call's launches are planned once per set of addresses and, when a call repeats the
// addresses of an earlier one (call_into with the same tensors), replayed as one recorded graph —
// a CUDA graph, a Vulkan command buffer (runtime/jit_replay.hpp); the intermediates no result uses
// stay allocated with the trace for that.
// Environment: KILN_DUMP=dir writes each trace's launches before and after fusion and the source
// of every fused kernel; KILN_JIT_FUSE=0 replays the launches unfused (for measuring);
// KILN_JIT_GRAPHS=0 launches one by one instead of replaying graphs.
// Thread-safety: a wrapper may be called from several threads; one signature is traced once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/tensor.hpp"

namespace kiln {

struct JitOptions {
  std::string name = "fn";     // names the function in dumps, plans and warnings
  bool fuse = true;            // false: replay the recorded launches as they are (op by op)
  int retrace_warning = 8;     // warn (stderr) when more signatures than this have been traced
  bool graphs = true;          // false: GPU calls launch one by one (still planned once per set of
                               // addresses) instead of replaying a recorded graph
};

struct JitStats {
  std::uint64_t calls = 0;
  std::uint64_t traces = 0;        // signatures traced
  std::uint64_t cache_hits = 0;    // calls that replayed a trace
  int launches_traced = 0;         // of the last trace: launches recorded
  int launches_per_call = 0;       // of the last trace: launches each call makes after fusion
  bool fused = false;              // of the last trace: whether the fused kernels are used
  std::uint64_t graphs_recorded = 0;  // graphs recorded (a CUDA graph, a Vulkan command buffer):
                                      // one per set of addresses repeated
  std::uint64_t graph_replays = 0;    // calls that replayed such a graph
};

// The type-erased core of a jit-wrapped function.
class JitFunction {
 public:
  using Body = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  explicit JitFunction(JitOptions options = {});

  // Runs the function on |args|, tracing it with |body| when their signature is new. |into|, when
  // given, has one tensor per result (undefined: none) that receives it: a contiguous tensor of the
  // result's shape and dtype on the device, sharing no memory with an argument.
  std::vector<Tensor> call(const std::vector<Tensor>& args, const Body& body,
                           const std::vector<Tensor>* into = nullptr) const;
  // The launches a call with |args| makes (tracing when new): before and after fusion, each
  // kernel's spec, and what fused.
  std::string plan(const std::vector<Tensor>& args, const Body& body) const;
  JitStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

namespace detail {

template <class T>
struct is_tensor_tuple : std::false_type {};
template <class... T>
struct is_tensor_tuple<std::tuple<T...>> : std::true_type {};
template <class A, class B>
struct is_tensor_tuple<std::pair<A, B>> : std::true_type {};

template <class R>
std::vector<Tensor> pack_results(R&& r) {
  using D = std::decay_t<R>;
  if constexpr (std::is_same_v<D, Tensor>) {
    return {std::forward<R>(r)};
  } else if constexpr (std::is_same_v<D, std::vector<Tensor>>) {
    return std::forward<R>(r);
  } else {
    static_assert(is_tensor_tuple<D>::value,
                  "kiln::jit: the function must return a Tensor, a std::vector<Tensor> or a tuple of Tensors");
    return std::apply([](auto&&... t) { return std::vector<Tensor>{Tensor(t)...}; }, std::forward<R>(r));
  }
}

template <class R, std::size_t... I>
R unpack_tuple(std::vector<Tensor>& v, std::index_sequence<I...>) {
  return R(std::move(v[I])...);
}

template <class R>
R unpack_results(std::vector<Tensor>&& v) {
  if constexpr (std::is_same_v<R, Tensor>) return std::move(v[0]);
  else if constexpr (std::is_same_v<R, std::vector<Tensor>>) return std::move(v);
  else return unpack_tuple<R>(v, std::make_index_sequence<std::tuple_size_v<R>>{});
}

}  // namespace detail

template <class F>
class Jit {
 public:
  Jit(F fn, JitOptions options) : fn_(std::move(fn)), core_(std::move(options)) {}

  // fn(args...) traced, fused and replayed. Arguments are Tensors (or one std::vector<Tensor>
  // when fn takes that).
  template <class... Args>
  auto operator()(const Args&... args) const {
    using R = std::decay_t<std::invoke_result_t<const F&, const Args&...>>;
    return detail::unpack_results<R>(core_.call(arguments(args...), body<Args...>()));
  }
  // As operator(), the results written into |outputs| (one per result; see JitFunction::call).
  template <class... Args>
  auto call_into(const std::vector<Tensor>& outputs, const Args&... args) const {
    using R = std::decay_t<std::invoke_result_t<const F&, const Args&...>>;
    return detail::unpack_results<R>(core_.call(arguments(args...), body<Args...>(), &outputs));
  }
  template <class... Args>
  std::string plan(const Args&... args) const {
    return core_.plan(arguments(args...), body<Args...>());
  }
  JitStats stats() const { return core_.stats(); }

 private:
  template <class... Args>
  static std::vector<Tensor> arguments(const Args&... args) {
    if constexpr (sizeof...(Args) == 1 && (std::is_same_v<Args, std::vector<Tensor>> && ...))
      return (args, ...);
    else
      return std::vector<Tensor>{Tensor(args)...};
  }
  template <class... Args>
  JitFunction::Body body() const {
    return [this](const std::vector<Tensor>& a) {
      if constexpr (sizeof...(Args) == 1 && (std::is_same_v<Args, std::vector<Tensor>> && ...))
        return detail::pack_results(fn_(a));
      else
        return call_unpacked<Args...>(a, std::index_sequence_for<Args...>{});
    };
  }
  template <class... Args, std::size_t... I>
  std::vector<Tensor> call_unpacked(const std::vector<Tensor>& a, std::index_sequence<I...>) const {
    return detail::pack_results(fn_(a[I]...));
  }

  F fn_;
  JitFunction core_;
};

// Wraps |fn| (see the top of this header).
template <class F>
Jit<F> jit(F fn, JitOptions options = {}) {
  return Jit<F>(std::move(fn), std::move(options));
}

}  // namespace kiln
