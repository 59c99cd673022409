#include "codegen/manifest.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "codegen/emit.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"
#include "core/suggest.hpp"

namespace kiln {

namespace {

const std::set<std::string> kReserved = {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
    "constexpr", "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "export",
    "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable",
    "namespace", "new", "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public",
    "register", "return", "short", "signed", "sizeof", "static", "struct", "switch", "template", "this",
    "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void",
    "volatile", "while", "xor", "and_eq", "bitand", "bitor", "compl", "not_eq", "or_eq", "xor_eq", "char8_t",
    "char16_t", "char32_t", "wchar_t", "concept", "requires", "consteval", "constinit", "co_await", "co_return",
    "co_yield", "decltype", "static_assert", "thread_local", "static_cast", "dynamic_cast", "reinterpret_cast",
    "const_cast", "assert", "errno", "NULL", "registry", "detail"};

// Names C++ reserves to the implementation: a leading underscore and a capital, or a double one.
bool reserved_spelling(std::string_view n) {
  return (n.size() > 1 && n[0] == '_' && std::isupper(static_cast<unsigned char>(n[1]))) ||
         n.find("__") != std::string_view::npos;
}

}  // namespace

bool reserved_cpp_name(std::string_view name) { return kReserved.count(std::string(name)) || reserved_spelling(name); }

bool reserved_cpp_parameter(std::string_view name) {
  // The generated functions' own parameters; their locals are kiln_*.
  static const std::set<std::string> kParams = {"into", "stream", "out", "n", "axes", "keep_axes", "kiln", "std",
                                                "options", "call"};
  return reserved_cpp_name(name) || kParams.count(std::string(name)) || name.starts_with("kiln_");
}

const ManifestKernel* Manifest::find(std::string_view name) const {
  auto it = std::lower_bound(kernels.begin(), kernels.end(), name,
                             [](const ManifestKernel& k, std::string_view n) { return k.name < n; });
  return it != kernels.end() && it->name == name ? &*it : nullptr;
}

namespace {

constexpr int kMinBlock = 32, kMaxBlock = 1024;

class Reader {
 public:
  Reader(std::string_view text, std::string_view origin, TargetSet requested)
      : text_(text), origin_(origin), requested_(requested) {
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t nl = text.find('\n', start);
      lines_.push_back(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }

  Manifest read() {
    toml::table root;
    try {
      root = toml::parse(text_, origin_);
    } catch (const toml::parse_error& e) {
      fail(ErrorCode::parse_error, fmt::format("{}:{}:{}: TOML syntax error: {}", origin_, e.source().begin.line,
                                               e.source().begin.column, e.description()));
    }
    for (auto&& [key, node] : root) {
      if (key.str() == "kernel" || key.str() == "ops") {
        const toml::array* arr = node.as_array();
        if (!arr || !arr->is_array_of_tables())
          error(node, fmt::format("'{}' must be an array of tables: write [[{}]]", key.str(), key.str()));
        for (const toml::node& t : *arr) {
          if (key.str() == "kernel") read_kernel(*t.as_table());
          else read_ops(*t.as_table());
        }
      } else {
        error(key.source(), fmt::format("unknown top-level key '{}' (expected [[kernel]] or [[ops]] tables)", key.str()));
      }
    }
    Manifest m;
    for (auto& [name, k] : kernels_) {
      std::sort(k.aliases.begin(), k.aliases.end());
      k.aliases.erase(std::unique(k.aliases.begin(), k.aliases.end()), k.aliases.end());
      m.kernels.push_back(std::move(k));
    }
    return m;  // std::map iterates in name order
  }

 private:
  // ---- positions and errors ----
  std::string where(const toml::source_position& p) const {
    return fmt::format("{}:{}:{}", origin_, p.line, p.column);
  }
  [[noreturn]] void error(const toml::source_region& r, const std::string& msg) const {
    fail(ErrorCode::parse_error, fmt::format("{}: {}", where(r.begin), msg));
  }
  [[noreturn]] void error(const toml::node& n, const std::string& msg) const { error(n.source(), msg); }

  void check_keys(const toml::table& t, std::string_view kind, std::span<const std::string_view> allowed) const {
    for (auto&& [key, node] : t) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      std::string list;
      for (auto a : allowed) list.append(list.empty() ? "" : ", ").append(a);
      error(key.source(), fmt::format("unknown key '{}' in [[{}]]{} (expected one of: {})", key.str(), kind,
                                      did_you_mean(key.str(), allowed), list));
    }
  }

  const toml::node* get(const toml::table& t, std::string_view key) const { return t.get(key); }

  const toml::node& require(const toml::table& t, std::string_view kind, std::string_view key) const {
    const toml::node* n = t.get(key);
    const bool vowel = !key.empty() && std::string_view("aeiou").find(key.front()) != std::string_view::npos;
    if (!n) error(t, fmt::format("[[{}]] needs {} '{}' key", kind, vowel ? "an" : "a", key));
    return *n;
  }

  std::string string_of(const toml::node& n, std::string_view key) const {
    const auto* s = n.as_string();
    if (!s) error(n, fmt::format("'{}' must be a string, not {}", key, type_name(n)));
    return s->get();
  }

  static std::string_view type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::table: return "a table";
      case toml::node_type::array: return "an array";
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      default: return "a date/time";
    }
  }

  DType dtype_of(const toml::node& n, std::string_view key) const {
    const std::string s = string_of(n, key);
    auto t = parse_dtype(s);
    if (!t) {
      std::string list;
      for (DType d : kAllDTypes) list.append(list.empty() ? "" : " ").append(dtype_name(d));
      error(n, fmt::format("unknown dtype '{}'{} (expected one of: {})", s, did_you_mean(s, dtype_names()), list));
    }
    return *t;
  }

  std::vector<DType> dtype_list(const toml::node& n, std::string_view key, bool allow_star) const {
    if (allow_star && n.is_string() && n.as_string()->get() == "*")
      return std::vector<DType>(kAllDTypes.begin(), kAllDTypes.end());
    const auto* arr = n.as_array();
    if (!arr) error(n, fmt::format("'{}' must be {}a list of dtype names", key, allow_star ? "\"*\" or " : ""));
    std::vector<DType> out;
    for (const toml::node& e : *arr) {
      DType t = dtype_of(e, key);
      if (allow_star && std::find(out.begin(), out.end(), t) != out.end()) continue;
      out.push_back(t);
    }
    return out;
  }

  // 'inputs': a list of dtypes ("f32") or named inputs ("gate: f32"); names are identifiers that
  // are not x, y, z, w, in<k>, constants, dtypes or ops, and distinct. |names| gets one entry per
  // input ("" when unnamed).
  std::vector<DType> input_list(const toml::node& n, std::vector<std::string>* names) const {
    const auto* arr = n.as_array();
    if (!arr) error(n, "'inputs' must be a list of dtypes, each optionally named: [\"f32\"] or [\"gate: f32\"]");
    std::vector<DType> out;
    for (const toml::node& e : *arr) {
      const std::string s = string_of(e, "inputs");
      const std::size_t colon = s.find(':');
      if (colon == std::string::npos) {
        out.push_back(dtype_of(e, "inputs"));
        names->emplace_back();
        continue;
      }
      auto trim = [](std::string_view v) {
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
        return std::string(v);
      };
      const std::string name = trim(std::string_view(s).substr(0, colon)), type = trim(std::string_view(s).substr(colon + 1));
      const bool ident = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                         std::all_of(name.begin(), name.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                         });
      if (!ident) error(e, fmt::format("input name '{}' must be an identifier (letters, digits, _)", name));
      if (reserved_cpp_parameter(name))
        error(e, fmt::format("input name '{}' is reserved in C++ or by the generated function; rename it", name));
      const bool positional = name == "x" || name == "y" || name == "z" || name == "w" ||
                              (name.size() > 2 && name.rfind("in", 0) == 0 &&
                               name.find_first_not_of("0123456789", 2) == std::string::npos);
      if (positional || name == "pi" || name == "e" || name == "inf" || name == "nan" || parse_dtype(name) || find_op(name))
        error(e, fmt::format("input name '{}' is taken (inputs x y z w in<k>, constants, dtypes and ops have it)", name));
      if (std::find(names->begin(), names->end(), name) != names->end())
        error(e, fmt::format("input name '{}' is used twice", name));
      auto t = parse_dtype(type);
      if (!t) error(e, fmt::format("unknown dtype '{}'{} in input '{}'", type, did_you_mean(type, dtype_names()), name));
      out.push_back(*t);
      names->push_back(name);
    }
    return out;
  }

  struct Targets {
    TargetSet set;
    bool explicit_ = false;
    const toml::node* node = nullptr;
  };

  Targets targets_of(const toml::table& t) const {
    Targets r;
    const toml::node* n = get(t, "targets");
    if (!n) return r;
    r.explicit_ = true;
    r.node = n;
    r.set = {false, false};
    const auto* arr = n->as_array();
    if (!arr || arr->empty()) error(*n, "'targets' must be a non-empty list of \"cuda\" and/or \"vulkan\"");
    for (const toml::node& e : *arr) {
      const std::string s = string_of(e, "targets");
      if (s == "cuda") r.set.cuda = true;
      else if (s == "vulkan") r.set.vulkan = true;
      else error(e, fmt::format("unknown target '{}' (expected \"cuda\" or \"vulkan\")", s));
    }
    return r;
  }

  int block_size_of(const toml::table& t) const {
    const toml::node* n = get(t, "block_size");
    if (!n) return KernelSpec{}.block_size;
    const auto* i = n->as_integer();
    if (!i) error(*n, fmt::format("'block_size' must be an integer, not {}", type_name(*n)));
    const std::int64_t v = i->get();
    if (v < kMinBlock || v > kMaxBlock || (v & (v - 1)))
      error(*n, fmt::format("'block_size' must be a power of two in [{}, {}], not {}", kMinBlock, kMaxBlock, v));
    return int(v);
  }

  // Line and column of the first character of a string value's content (after the opening
  // quote, or after the newline that follows an opening """ / '''). Exact for strings without
  // escape sequences; use literal strings ('...') for expressions to keep positions exact.
  std::pair<int, int> content_start(const toml::node& n) const {
    int line = int(n.source().begin.line), col = int(n.source().begin.column);
    if (line < 1 || std::size_t(line) > lines_.size()) return {line, col + 1};
    const std::string_view l = lines_[line - 1];
    const std::size_t at = std::size_t(col - 1);
    if (at < l.size() && (l.substr(at, 3) == "\"\"\"" || l.substr(at, 3) == "'''")) {
      std::string_view rest = l.substr(at + 3);
      if (rest.empty() || rest == "\r") return {line + 1, 1};
      return {line, col + 3};
    }
    return {line, col + 1};
  }

  // ---- tables ----
  void read_kernel(const toml::table& t) {
    // The family first: its descriptor says which keys a kernel of it may have.
    const Family* family = &kMapFamily;
    if (const toml::node* n = get(t, "family")) {
      const std::string f = string_of(*n, "family");
      family = find_family(f);
      if (!family) error(*n, fmt::format("unknown kernel family '{}' (families: {})", f, family_names()));
    }
    check_keys(t, "kernel", family->manifest_keys);
    std::string alias;
    if (const toml::node* n = get(t, "name")) {
      alias = string_of(*n, "name");
      const bool ok = !alias.empty() && !std::isdigit(static_cast<unsigned char>(alias[0])) &&
                      std::all_of(alias.begin(), alias.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                      });
      if (!ok) error(*n, fmt::format("kernel name '{}' must be an identifier (letters, digits, _)", alias));
      if (reserved_cpp_name(alias))
        error(*n, fmt::format("kernel name '{}' is reserved in C++ or by the generated header; rename it", alias));
    }
    const toml::node& inputs_node = require(t, "kernel", "inputs");
    std::vector<std::string> names;
    std::vector<DType> inputs = input_list(inputs_node, &names);
    if (inputs.empty()) error(inputs_node, "'inputs' must list at least one dtype");
    // A family without an expression slot in manifests (rows) takes its inputs as they are listed.
    const bool has_expr = std::find(family->manifest_keys.begin(), family->manifest_keys.end(), "expr") !=
                          family->manifest_keys.end();
    Expr e;
    const toml::node* expr_ptr = nullptr;
    if (!has_expr) {
      e.set_root(e.input(0, inputs[0]));
    } else {
      const toml::node& expr_node = require(t, "kernel", "expr");
      expr_ptr = &expr_node;
      const std::string text = string_of(expr_node, "expr");
      auto [line, col] = content_start(expr_node);
      const std::vector<std::string_view> name_views(names.begin(), names.end());
      e = parse_expr_named(text, inputs, name_views, origin_, line, col);
      std::vector<bool> used(inputs.size(), false);
      for (const Node& node : e.nodes())
        if (node.kind == NodeKind::input && node.input >= 0 && std::size_t(node.input) < used.size()) used[node.input] = true;
      for (std::size_t i = 0; i < used.size(); ++i)
        if (!used[i])
          error(expr_node, fmt::format("input {} ({}) is listed in 'inputs' but the expression does not use it", i,
                                       !names[i].empty() ? names[i] : i < 4 ? std::string(1, "xyzw"[i]) : fmt::format("in{}", i)));
    }
    const toml::node& expr_node = expr_ptr ? *expr_ptr : static_cast<const toml::node&>(t);

    std::optional<DType> output;
    if (const toml::node* n = get(t, "output")) output = dtype_of(*n, "output");
    KernelSpec spec = family->from_manifest(TableView(*this, t, inputs, names), e, output);
    spec.block_size = block_size_of(t);

    Targets targets = targets_of(t);
    if (!targets.explicit_) targets.set = requested_;
    std::string why;
    // A target the kernel cannot run is an error, whether the kernel lists it or the build asks
    // for it: a kernel silently left out failed only at run time, far from its manifest line.
    for (auto [target, on, name] : {std::tuple{Target::glsl, &targets.set.vulkan, "vulkan"},
                                   std::tuple{Target::cuda, &targets.set.cuda, "cuda"}}) {
      if (!*on || target_supports(spec, target, &why)) continue;
      if (targets.explicit_) error(*targets.node, fmt::format("the kernel cannot target {}: {}", name, why));
      const Target other_target = target == Target::glsl ? Target::cuda : Target::glsl;
      const std::string other = target == Target::glsl ? "cuda" : "vulkan";
      if (!target_supports(spec, other_target, nullptr))
        error(expr_node, fmt::format("no target can run the kernel: {}", why));
      error(expr_node, fmt::format("the kernel cannot target {} ({}), which this build compiles for; add "
                                   "targets = [\"{}\"] to build it for {} only", name, why, other, other));
    }
    if (!targets.set.cuda && !targets.set.vulkan) error(t, "the kernel is supported by no target: " + why);
    add(std::move(spec), targets.set, alias, t, get(t, "name"), names);
  }

  // The family descriptor's view of a [[kernel]] table (codegen/family.hpp).
  class TableView : public ManifestTable {
   public:
    TableView(const Reader& r, const toml::table& t, const std::vector<DType>& inputs, const std::vector<std::string>& names)
        : r_(r), t_(t), inputs_(inputs), names_(names) {}
    const std::vector<DType>& inputs() const override { return inputs_; }
    const std::vector<std::string>& input_names() const override { return names_; }
    std::optional<bool> boolean(std::string_view key) const override {
      const toml::node* n = r_.get(t_, key);
      if (!n) return std::nullopt;
      if (!n->is_boolean()) r_.error(*n, fmt::format("'{}' must be true or false, not {}", key, type_name(*n)));
      return n->as_boolean()->get();
    }
    std::optional<std::string> string(std::string_view key) const override {
      const toml::node* n = r_.get(t_, key);
      if (!n) return std::nullopt;
      return r_.string_of(*n, key);
    }
    std::optional<Expr> expr(std::string_view key, const std::vector<DType>& dtypes,
                             const std::vector<std::string_view>& names,
                             std::size_t positional = ~std::size_t(0)) const override {
      const toml::node* n = r_.get(t_, key);
      if (!n) return std::nullopt;
      const std::string text = r_.string_of(*n, key);
      auto [line, col] = r_.content_start(*n);
      return parse_expr_named(text, dtypes, names, r_.origin_, line, col, positional);
    }
   protected:
    void raise(std::string_view key, const std::string& message) const override {
      const toml::node* n = key.empty() ? nullptr : r_.get(t_, key);
      if (n) r_.error(*n, message);
      r_.error(t_, message);
    }

   private:
    const Reader& r_;
    const toml::table& t_;
    const std::vector<DType>& inputs_;
    const std::vector<std::string>& names_;
  };

  // [[ops]]: the family's ops (map: the op table; reduce: the reductions) over dtypes.
  void read_ops(const toml::table& t) {
    static constexpr std::string_view kOpsKeys[] = {"ops", "dtypes", "targets", "block_size", "family"};
    check_keys(t, "ops", kOpsKeys);
    const Family* family = &kMapFamily;
    if (const toml::node* f = get(t, "family")) {
      const std::string name = string_of(*f, "family");
      family = find_family(name);
      if (!family) error(*f, fmt::format("unknown kernel family '{}' (families: {})", name, family_names()));
    }
    const std::vector<DType> all_dtypes(kAllDTypes.begin(), kAllDTypes.end());
    const toml::node& ops_node = require(t, "ops", "ops");
    std::vector<std::string> ops;
    bool all_ops = false;
    if (ops_node.is_string() && ops_node.as_string()->get() == "*") {
      all_ops = true;
      for (std::string_view n : family->op_names()) ops.emplace_back(n);
    } else if (const auto* arr = ops_node.as_array()) {
      for (const toml::node& e : *arr) {
        const std::string s = string_of(e, "ops");
        if (family->expand_op(s, all_dtypes).empty())
          error(e, fmt::format("unknown op '{}'{} (kilnc ops lists them)", s, did_you_mean(s, family->op_names())));
        ops.push_back(s);
      }
    } else {
      error(ops_node, "'ops' must be \"*\" or a list of op names");
    }
    const toml::node& dtypes_node = require(t, "ops", "dtypes");
    const std::vector<DType> dtypes = dtype_list(dtypes_node, "dtypes", true);
    const int block = block_size_of(t);
    Targets targets = targets_of(t);
    if (!targets.explicit_) targets.set = requested_;  // the build's targets, as for [[kernel]]

    for (std::size_t i = 0; i < ops.size(); ++i) {
      std::vector<KernelSpec> specs = family->expand_op(ops[i], dtypes);
      if (specs.empty() && !all_ops)
        error(*ops_node.as_array()->get(i), fmt::format("op '{}' accepts none of the listed dtypes", ops[i]));
      for (KernelSpec& spec : specs) {
        spec.block_size = block;
        TargetSet set = targets.set;
        if (set.vulkan && !target_supports(spec, Target::glsl)) set.vulkan = false;
        if (set.cuda && !target_supports(spec, Target::cuda)) set.cuda = false;
        if (!set.cuda && !set.vulkan) continue;  // e.g. exp on f64 with targets = ["vulkan"]
        add(std::move(spec), set, "", t);
      }
    }
  }

  void add(KernelSpec spec, TargetSet targets, const std::string& alias, const toml::table& at,
           const toml::node* alias_node = nullptr, const std::vector<std::string>& input_names = {}) {
    std::string name = spec.name();
    auto [it, inserted] = kernels_.try_emplace(name);
    ManifestKernel& k = it->second;
    if (inserted || (k.input_names.empty() && !input_names.empty())) k.input_names = input_names;
    if (inserted) {
      k.name = name;
      k.origin = where(at.source().begin);
      k.targets = targets;
      k.spec = std::move(spec);
    } else {
      if (k.spec.canonical() != spec.canonical())
        fail(ErrorCode::internal, fmt::format("{}: kernel name {} collides with the kernel defined at {}",
                                              where(at.source().begin), name, k.origin));
      k.targets.cuda |= targets.cuda;
      k.targets.vulkan |= targets.vulkan;
    }
    if (!alias.empty()) {
      auto [a, fresh] = aliases_.try_emplace(alias, name);
      if (!fresh && a->second != name)
        error(alias_node ? *alias_node : at, fmt::format("kernel name '{}' is already used for a different kernel ({})", alias, a->second));
      k.aliases.push_back(alias);
    }
  }

  std::string_view text_;
  std::string origin_;
  TargetSet requested_;
  std::vector<std::string_view> lines_;
  std::map<std::string, ManifestKernel> kernels_;
  std::map<std::string, std::string> aliases_;
};

}  // namespace

Manifest parse_manifest(std::string_view text, std::string_view origin, TargetSet requested) {
  return Reader(text, origin, requested).read();
}

Manifest read_manifest(const std::filesystem::path& file, TargetSet requested) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))  // (an ifstream opens a directory and reads nothing)
    fail(ErrorCode::io_error, fmt::format("{}: is a directory, not a manifest", file.string()));
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(ErrorCode::io_error, fmt::format("{}: cannot open the manifest", file.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(ErrorCode::io_error, fmt::format("{}: cannot read the manifest", file.string()));
  return parse_manifest(ss.str(), file.string(), requested);
}

}  // namespace kiln
