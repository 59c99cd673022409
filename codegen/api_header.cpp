#include "codegen/api_header.hpp"

#include <map>
#include <set>

#include <fmt/format.h>

#include "core/error.hpp"

namespace kiln {
namespace {

// C++ keywords and names the generated header itself uses.
const std::set<std::string> kReserved = {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
    "constexpr", "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "export",
    "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable",
    "namespace", "new", "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public",
    "register", "return", "short", "signed", "sizeof", "static", "struct", "switch", "template", "this",
    "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void",
    "volatile", "while", "xor", "registry", "detail"};

std::string cpp_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string param_name(std::size_t i) { return i < 4 ? std::string(1, "xyzw"[i]) : fmt::format("in{}", i); }

[[noreturn]] void bad_canonical(std::string_view text, std::string_view why) {
  fail(ErrorCode::parse_error, fmt::format("not a canonical kernel spec ({}): {}", why, text));
}

}  // namespace

KernelSpec spec_from_canonical(std::string_view text) {
  // family|in=a,b|out=t|block=n|%0=t:in0;%1=t:const(0x..);%2=t:op(%0,%1);...
  std::vector<std::string_view> fields;
  for (std::size_t at = 0, bar; fields.size() < 4; at = bar + 1) {
    if ((bar = text.find('|', at)) == std::string_view::npos) bad_canonical(text, "missing '|'");
    fields.push_back(text.substr(at, bar - at));
  }
  std::string_view body = text.substr(fields[0].size() + fields[1].size() + fields[2].size() + fields[3].size() + 4);
  KernelSpec spec;
  spec.family = std::string(fields[0]);
  auto dtype_of = [&](std::string_view n) {
    auto t = parse_dtype(n);
    if (!t) bad_canonical(text, fmt::format("unknown dtype '{}'", n));
    return *t;
  };
  if (!fields[1].starts_with("in=") || !fields[2].starts_with("out=") || !fields[3].starts_with("block="))
    bad_canonical(text, "bad header fields");
  for (std::string_view in = fields[1].substr(3); !in.empty();) {
    const std::size_t comma = in.find(',');
    spec.inputs.push_back(dtype_of(in.substr(0, comma)));
    in = comma == std::string_view::npos ? std::string_view() : in.substr(comma + 1);
  }
  spec.output = dtype_of(fields[2].substr(4));
  spec.block_size = std::stoi(std::string(fields[3].substr(6)));
  Expr& e = spec.expr;
  std::vector<NodeId> ids;
  while (!body.empty()) {
    const std::size_t semi = body.find(';'), eq = body.find('='), colon = body.find(':');
    if (semi == std::string_view::npos || eq > colon || colon > semi) bad_canonical(text, "bad node");
    const DType t = dtype_of(body.substr(eq + 1, colon - eq - 1));
    std::string_view node = body.substr(colon + 1, semi - colon - 1);
    body = body.substr(semi + 1);
    const std::size_t paren = node.find('(');
    const std::string_view head = node.substr(0, paren);
    std::vector<NodeId> args;
    std::uint64_t bits = 0;
    if (paren != std::string_view::npos) {
      std::string_view inner = node.substr(paren + 1, node.size() - paren - 2);
      if (head == "const") {
        bits = std::stoull(std::string(inner), nullptr, 16);
      } else {
        for (std::size_t p; (p = inner.find('%')) != std::string_view::npos;) {
          inner = inner.substr(p + 1);
          const std::size_t i = std::stoul(std::string(inner.substr(0, inner.find(','))));
          if (i >= ids.size()) bad_canonical(text, "forward reference");
          args.push_back(ids[i]);
        }
      }
    }
    NodeId id = 0;
    if (head.starts_with("in") && paren == std::string_view::npos) {
      id = e.input(std::stoi(std::string(head.substr(2))), t);
    } else if (head == "const") {
      Scalar v = Scalar::from_u(bits);
      id = is_float(t) ? e.constant(v.f, t) : e.constant_int(v.i, t);
    } else if (head == "as_type" && args.size() == 1) {
      id = e.cast(args[0], t);
    } else {
      const auto op = find_op(head);
      if (!op) bad_canonical(text, fmt::format("unknown op '{}'", head));
      id = args.size() == 1 ? e.apply(*op, {args[0]})
         : args.size() == 2 ? e.apply(*op, {args[0], args[1]})
         : args.size() == 3 ? e.apply(*op, {args[0], args[1], args[2]})
                            : (bad_canonical(text, "bad arity"), 0);
    }
    ids.push_back(id);
  }
  if (ids.empty()) bad_canonical(text, "no nodes");
  e.set_root(ids.back());
  if (spec.canonical() != text) bad_canonical(text, "it rebuilds as " + spec.canonical());
  return spec;
}

std::string emit_api_header(const Manifest& manifest, const ApiHeaderOptions& o) {
  const std::size_t colons = o.registry.rfind("::");
  const std::string reg_ns = colons == std::string::npos ? "" : o.registry.substr(0, colons);
  const std::string reg_fn = colons == std::string::npos ? o.registry : o.registry.substr(colons + 2);

  std::string h = fmt::format(
      "// Generated by kilnc build from {}. Do not edit: edit the manifest and rebuild.\n"
      "// One function per manifest kernel, each with a tensor overload (broadcasting, Nx semantics,\n"
      "// the device's default stream) and a raw-buffer overload (n contiguous elements on a stream).\n"
      "// See docs/getting-started.md of Kiln.\n"
      "#pragma once\n\n#include <cstdint>\n\n#include \"runtime/aot_kernel.hpp\"\n\n",
      o.manifest);
  if (!reg_ns.empty()) h += fmt::format("namespace {} {{\n", reg_ns);
  h += fmt::format("// The registry embedding this manifest's compiled kernels.\nconst kiln::Registry& {}();\n", reg_fn);
  if (!reg_ns.empty()) h += fmt::format("}}  // namespace {}\n", reg_ns);
  h += fmt::format("\nnamespace {} {{\n", o.ns);

  std::map<std::string, std::string> used;  // function name -> kernel
  for (const ManifestKernel& k : manifest.kernels) {
    const KernelSpec& spec = k.spec;
    const std::string readable = spec.expr.to_string();
    // The runtime rebuilds the spec from its canonical text; check here that it does.
    if (spec_from_canonical(spec.canonical()).name() != k.name)
      fail(ErrorCode::internal, fmt::format("{}: kernel {} does not rebuild from its canonical text", k.origin, k.name));
    std::vector<std::string> names = k.aliases;
    if (names.empty()) names.push_back(k.name);
    const std::string handle = "kernel_" + k.name;
    // Errors name the user's function and its manifest line: "app::swiglu (kernels.toml:12:1)".
    const std::size_t cut = k.origin.find_last_of('/');
    const std::string label = fmt::format("{}::{} ({})", o.ns, names.front(),
                                          cut == std::string::npos ? k.origin : k.origin.substr(cut + 1));
    h += fmt::format("\nnamespace detail {{\ninline const kiln::AotKernel& {}() {{\n"
                     "  static const kiln::AotKernel kernel({}(), {},\n      {},\n      {});\n"
                     "  return kernel;\n}}\n}}  // namespace detail\n",
                     handle, o.registry, cpp_string(k.name), cpp_string(spec.canonical()), cpp_string(label));
    std::string tensor_params, tensor_args, buffer_params, buffer_args, sig;
    for (std::size_t i = 0; i < spec.inputs.size(); ++i) {
      const std::string p = param_name(i);
      tensor_params += fmt::format("const kiln::Tensor& {}, ", p);
      tensor_args.append(i ? ", " : "").append(p);
      buffer_params += fmt::format("const kiln::Buffer& {}, ", p);
      buffer_args.append(i ? ", &" : "&").append(p);  // append, not "..." + string: GCC 12 -Wrestrict
      sig.append(i ? ", " : "").append(dtype_name(spec.inputs[i]));
    }
    for (const std::string& name : names) {
      if (kReserved.count(name))
        fail(ErrorCode::invalid_argument,
             fmt::format("{}: kernel name '{}' is reserved in C++ or by the generated header; rename it", k.origin, name));
      if (auto [it, fresh] = used.emplace(name, k.name); !fresh)
        fail(ErrorCode::invalid_argument, fmt::format("{}: function name '{}' names kernels {} and {}", k.origin, name,
                                                      it->second, k.name));
      h += fmt::format(
          "\n// {}: ({}) -> {} = {}\n// ({}, {})\n"
          "inline kiln::Tensor {}({}const kiln::Tensor* into = nullptr) {{\n"
          "  return detail::{}().run({{{}}}, into);\n}}\n"
          "inline void {}(kiln::Stream& stream, {}kiln::Buffer& out, std::uint64_t n) {{\n"
          "  detail::{}().launch(stream, {{{}}}, out, n);\n}}\n",
          name, sig, dtype_name(spec.output), readable, k.name, k.origin, name, tensor_params, handle,
          tensor_args, name, buffer_params, handle, buffer_args);
    }
  }
  h += fmt::format("\n}}  // namespace {}\n", o.ns);
  return h;
}

}  // namespace kiln
