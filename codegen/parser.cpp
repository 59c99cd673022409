// The infix expression parser (see parse_expr in expr.hpp). A recursive-descent parser over a small
// tokenizer; numbers stay "weak" (untyped) until they meet a typed operand.
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <charconv>
#include <numbers>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "codegen/expr.hpp"
#include "core/error.hpp"
#include "core/suggest.hpp"

namespace kiln {

namespace {

enum class Tok { end, number, ident, punct };

struct Token {
  Tok kind = Tok::end;
  std::string text;
  double number = 0;
  bool integral = false;
  std::uint64_t bits = 0;  // integral: the exact value
  int line = 1, col = 1;
};

// A parsed operand: a node, or a weak number not yet given a dtype.
struct Val {
  std::optional<NodeId> node;
  double number = 0;       // the value as a float (rounded to nearest)
  bool integral = false;
  std::uint64_t bits = 0;  // integral: the exact value, modulo 2^64 (folds and negation wrap)
  int line = 1, col = 1;
};

class Parser {
 public:
  Parser(std::string_view text, const std::vector<DType>& inputs, std::string_view origin, int line,
         int col)
      : text_(text), inputs_(inputs), origin_(origin), line_(line), col_(col) {
    advance();
  }

  void set_names(const std::vector<std::string_view>& names) { names_ = names; }
  void set_positional(std::size_t count) { positional_ = count; }

  Expr parse() {
    if (tok_.kind == Tok::end) error(tok_, "expected an expression, found end of input");
    Val v = ternary();
    if (tok_.kind != Tok::end) error(tok_, fmt::format("expected an operator or end of input, found '{}'", tok_.text));
    expr_.set_root(materialize(v, std::nullopt));
    return expr_.pruned();
  }

 private:
  [[noreturn]] void error(int line, int col, const std::string& msg) {
    fail(ErrorCode::parse_error, fmt::format("{}:{}:{}: {}", origin_, line, col, msg));
  }
  [[noreturn]] void error(const Token& t, const std::string& msg) { error(t.line, t.col, msg); }

  // ---- tokenizer ----
  char peek(std::size_t k = 0) const { return pos_ + k < text_.size() ? text_[pos_ + k] : '\0'; }
  void bump() {
    if (text_[pos_] == '\n') { ++line_; col_ = 1; } else { ++col_; }
    ++pos_;
  }
  void advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(peek()))) bump();
    tok_ = Token{};
    tok_.line = line_;
    tok_.col = col_;
    if (pos_ >= text_.size()) { tok_.text = "end of input"; return; }
    const std::size_t start = pos_;
    const char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '.' && std::isdigit(static_cast<unsigned char>(peek(1))))) {
      tok_.kind = Tok::number;
      bool integral = true;
      if (c == '0' && (peek(1) == 'x' || peek(1) == 'X')) {
        bump(); bump();
        while (std::isxdigit(static_cast<unsigned char>(peek()))) bump();
      } else {
        while (std::isdigit(static_cast<unsigned char>(peek()))) bump();
        if (peek() == '.') { integral = false; bump(); while (std::isdigit(static_cast<unsigned char>(peek()))) bump(); }
        if (peek() == 'e' || peek() == 'E') {
          integral = false;
          bump();
          if (peek() == '+' || peek() == '-') bump();
          if (!std::isdigit(static_cast<unsigned char>(peek()))) error(line_, col_, "expected digits in the exponent of a number");
          while (std::isdigit(static_cast<unsigned char>(peek()))) bump();
        }
      }
      tok_.text = std::string(text_.substr(start, pos_ - start));
      tok_.integral = integral;
      // Integers are decimal (a leading 0 is not octal) or 0x hexadecimal, exact up to 2^64 - 1.
      if (integral) {
        const bool hex = tok_.text.size() > 1 && (tok_.text[1] == 'x' || tok_.text[1] == 'X');
        const char* first = tok_.text.data() + (hex ? 2 : 0);
        const char* last = tok_.text.data() + tok_.text.size();
        if (first == last) error(tok_, fmt::format("expected hexadecimal digits after '{}'", tok_.text));
        const auto [end, ec] = std::from_chars(first, last, tok_.bits, hex ? 16 : 10);
        if (ec == std::errc::result_out_of_range)
          error(tok_, fmt::format("the integer {} does not fit in 64 bits (at most 18446744073709551615)", tok_.text));
        if (ec != std::errc() || end != last) error(tok_, fmt::format("malformed integer '{}'", tok_.text));
        tok_.number = double(tok_.bits);
      } else {
        tok_.number = std::strtod(tok_.text.c_str(), nullptr);
        if (std::isinf(tok_.number))
          error(tok_, fmt::format("the number {} is beyond the range of f64 (write inf for infinity)", tok_.text));
      }
      if (std::isalpha(static_cast<unsigned char>(peek())) || peek() == '_')
        error(line_, col_, fmt::format("unexpected '{}' after the number {}", peek(), tok_.text));
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_') bump();
      tok_.kind = Tok::ident;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      return;
    }
    static constexpr std::string_view two[] = {"**", "||", "&&", "==", "!=", "<=", ">=", "<<", ">>"};
    for (auto t : two)
      if (text_.substr(pos_, 2) == t) {
        bump(); bump();
        tok_.kind = Tok::punct;
        tok_.text = std::string(t);
        return;
      }
    if (std::string_view("+-*/%()<>,?:!~&|^").find(c) != std::string_view::npos) {
      bump();
      tok_.kind = Tok::punct;
      tok_.text = std::string(1, c);
      return;
    }
    error(tok_, fmt::format("unexpected character '{}'", c));
  }
  bool is(std::string_view p) const { return tok_.kind == Tok::punct && tok_.text == p; }
  void expect(std::string_view p, const std::string& context) {
    if (!is(p)) error(tok_, fmt::format("expected '{}' {}, found '{}'", p, context, tok_.text));
    advance();
  }

  // ---- typing of weak numbers ----
  NodeId materialize(const Val& v, std::optional<DType> meet) {
    if (v.node) return *v.node;
    DType t = v.integral ? DType::s32 : DType::f32;
    if (meet) {
      if (is_float(*meet)) {
        t = *meet;
      } else if (v.integral) {
        // Nx.Type.merge_number: the integer dtype when it holds the number, else the smallest wider
        // one (x + 300 on s8 is s16: 301), which the op then promotes to (pred counts as u8); s64,
        // wrapped, past them all. The sign: the exact 64-bit value's below 2^63 in magnitude (a fold
        // may round to 0 in double), the double's above.
        const bool negative = std::fabs(v.number) < 0x1p63 ? std::int64_t(v.bits) < 0 : v.number < 0;
        t = merge_integer_literal(*meet, negative, negative ? 0 - v.bits : v.bits);
      }
    }
    try {
      if (v.integral && !is_float(t)) return expr_.constant_int(std::int64_t(v.bits), t);  // wrapped to t
      return expr_.constant(v.number, t);
    } catch (const Error& e) {
      error(v.line, v.col, e.what());
    }
  }
  Val make(NodeId id, const Val& at) { Val r; r.node = id; r.line = at.line; r.col = at.col; return r; }

  Val apply(Op op, std::vector<Val> args, const Val& at) {
    // A weak number takes the dtype of the first typed operand it meets.
    std::optional<DType> meet;
    for (std::size_t i = (op == Op::select ? 1 : 0); i < args.size(); ++i)
      if (args[i].node) { meet = expr_.dtype(*args[i].node); break; }
    std::vector<NodeId> ids;
    for (std::size_t i = 0; i < args.size(); ++i)
      ids.push_back(materialize(args[i], op == Op::select && i == 0 ? std::nullopt : meet));
    try {
      switch (ids.size()) {
        case 1: return make(expr_.apply(op, {ids[0]}), at);
        case 2: return make(expr_.apply(op, {ids[0], ids[1]}), at);
        default: return make(expr_.apply(op, {ids[0], ids[1], ids[2]}), at);
      }
    } catch (const Error& e) {
      error(at.line, at.col, e.what());
    }
  }

  // ---- grammar ----
  // Nesting (parentheses, calls, conditionals, unary operators) is bounded so that hostile input
  // gets an error rather than a stack overflow (found by fuzz/: fuzz/corpus/expr/deep-nesting).
  static constexpr int kMaxDepth = 256;
  struct Nest {
    Parser& p;
    Nest(Parser& parser, const Token& at) : p(parser) {
      if (++p.depth_ > kMaxDepth) {
        --p.depth_;
        p.error(at, fmt::format("the expression nests deeper than {} levels", kMaxDepth));
      }
    }
    ~Nest() { --p.depth_; }
  };

  Val ternary() {
    Nest nest(*this, tok_);
    Val c = binary(0);
    if (!is("?")) return c;
    advance();
    Val a = ternary();
    expect(":", "in a conditional 'c ? a : b'");
    Val b = ternary();
    return apply(Op::select, {c, a, b}, c);
  }

  struct BinOp { std::string_view tok; Op op; int level; };
  static constexpr BinOp kBinOps[] = {
      {"||", Op::logical_or, 0},    {"&&", Op::logical_and, 1}, {"|", Op::bitwise_or, 2},
      {"^", Op::bitwise_xor, 3},    {"&", Op::bitwise_and, 4},  {"==", Op::equal, 5},
      {"!=", Op::not_equal, 5},     {"<", Op::less, 6},         {"<=", Op::less_equal, 6},
      {">", Op::greater, 6},        {">=", Op::greater_equal, 6}, {"<<", Op::left_shift, 7},
      {">>", Op::right_shift, 7},   {"+", Op::add, 8},          {"-", Op::subtract, 8},
      {"*", Op::multiply, 9},       {"/", Op::divide, 9},       {"%", Op::remainder, 9},
  };
  static constexpr int kUnaryLevel = 10;

  const BinOp* current_binop(int level) const {
    if (tok_.kind != Tok::punct) return nullptr;
    for (const auto& b : kBinOps)
      if (b.level == level && b.tok == tok_.text) return &b;
    return nullptr;
  }

  Val binary(int level) {
    if (level == kUnaryLevel) return unary();
    Val lhs = binary(level + 1);
    while (const BinOp* b = current_binop(level)) {
      Token at = tok_;
      advance();
      Val rhs = binary(level + 1);
      Val pos; pos.line = at.line; pos.col = at.col;
      const bool foldable = b->op == Op::add || b->op == Op::subtract || b->op == Op::multiply;
      if (!lhs.node && !rhs.node && foldable) {
        // Two weak numbers: fold in double and keep the result weak.
        const double x = lhs.number, y = rhs.number;
        lhs.number = b->op == Op::add ? x + y : b->op == Op::subtract ? x - y : x * y;
        const std::uint64_t i = lhs.bits, j = rhs.bits;  // integers exactly, modulo 2^64
        lhs.bits = b->op == Op::add ? i + j : b->op == Op::subtract ? i - j : i * j;
        lhs.integral = lhs.integral && rhs.integral;
        continue;
      }
      lhs = apply(b->op, {lhs, rhs}, pos);
    }
    return lhs;
  }

  Val unary() {
    Nest nest(*this, tok_);
    if (is("-") || is("!") || is("~") || is("+")) {
      Token at = tok_;
      advance();
      Val x = unary();
      Val pos; pos.line = at.line; pos.col = at.col;
      if (at.text == "+") return x;
      if (at.text == "-") {
        if (!x.node) { x.number = -x.number; x.bits = 0 - x.bits; return x; }
        return apply(Op::negate, {x}, pos);
      }
      if (at.text == "~") return apply(Op::bitwise_not, {x}, pos);
      Val zero; zero.number = 0; zero.integral = true; zero.line = at.line; zero.col = at.col;
      return apply(Op::equal, {x, zero}, pos);
    }
    return power();
  }

  Val power() {
    Val base = primary();
    if (is("**")) {
      Token at = tok_;
      advance();
      Val e = unary();  // right associative; binds tighter than a unary minus on its left
      Val pos; pos.line = at.line; pos.col = at.col;
      return apply(Op::pow, {base, e}, pos);
    }
    return base;
  }

  Val primary() {
    Token t = tok_;
    Val at; at.line = t.line; at.col = t.col;
    if (t.kind == Tok::number) {
      advance();
      Val v = at;
      v.number = t.number;
      v.integral = t.integral;
      v.bits = t.bits;
      return v;
    }
    if (is("(")) {
      advance();
      Val v = ternary();
      if (!is(")")) error(tok_, fmt::format("expected ')' to close the '(' at {}:{}, found '{}'", t.line, t.col, tok_.text));
      advance();
      return v;
    }
    if (t.kind != Tok::ident) error(t, fmt::format("expected a number, a name or '(', found '{}'", t.text));
    advance();
    if (is("(")) return call(t, at);
    // Names: inputs and constants.
    static constexpr std::string_view kInputs[] = {"x", "y", "z", "w"};
    int index = -1;
    for (int i = 0; i < 4; ++i)
      if (t.text == kInputs[i]) index = i;
    const std::size_t positional = std::min(positional_, inputs_.size());
    if (t.text.size() > 2 && t.text.substr(0, 2) == "in" &&
        t.text.find_first_not_of("0123456789", 2) == std::string::npos) {
      std::uint64_t k = 0;
      const auto [end, ec] = std::from_chars(t.text.data() + 2, t.text.data() + t.text.size(), k);
      if (ec != std::errc() || k >= positional)
        error(t, fmt::format("input '{}' is not given: the kernel has {} input(s)", t.text, positional));
      index = int(k);
    }
    // Past the positional inputs (an epilogue's y, named only): a positional name reaches nothing.
    const int positional_index = index;
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (t.text == names_[i]) index = int(i);
    if (index >= 0 && index == positional_index && std::size_t(index) >= positional)
      error(t, fmt::format("input '{}' (input {}) is not given: the kernel has {} input(s)", t.text, index, positional));
    if (index >= 0) {
      if (index >= int(inputs_.size()))
        error(t, fmt::format("input '{}' (input {}) is not given: the kernel has {} input(s)", t.text, index, inputs_.size()));
      try {
        return make(expr_.input(index, inputs_[index]), at);
      } catch (const Error& e) {  // more inputs than an expression takes
        error(t, e.what());
      }
    }
    Val c = at;
    if (t.text == "pi") { c.number = std::numbers::pi; return c; }
    if (t.text == "e") { c.number = std::numbers::e; return c; }
    if (t.text == "inf") { c.number = INFINITY; return c; }
    if (t.text == "nan") { c.number = NAN; return c; }
    std::string named;  // the names given (each once), then the positional ones
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (!names_[i].empty() && std::find(names_.begin(), names_.begin() + std::ptrdiff_t(i), names_[i]) == names_.begin() + std::ptrdiff_t(i))
        named += fmt::format("{}{}", named.empty() ? "" : ", ", names_[i]);
    error(t, fmt::format("unknown name '{}': inputs are {}{}x, y, z, w or in0, in1, ...", t.text, named,
                         named.empty() ? "" : ", or "));
  }

  Val call(const Token& name, const Val& at) {
    advance();  // '('
    std::vector<Val> args;
    std::optional<DType> cast_to;
    if (!is(")")) {
      while (true) {
        if (name.text == "as_type" && args.size() == 1) {
          if (tok_.kind != Tok::ident || !parse_dtype(tok_.text))
            error(tok_, fmt::format("expected a dtype (pred, s8, ..., f64) as the second argument of as_type, found '{}'", tok_.text));
          cast_to = parse_dtype(tok_.text);
          advance();
        } else {
          args.push_back(ternary());
        }
        if (is(",")) { advance(); continue; }
        break;
      }
    }
    if (!is(")")) error(tok_, fmt::format("expected ',' or ')' in the arguments of {}, found '{}'", name.text, tok_.text));
    advance();
    if (auto dt = parse_dtype(name.text)) cast_to = dt;
    if (cast_to) {
      if (args.size() != 1)
        error(at.line, at.col, fmt::format("{} takes one value to convert", name.text));
      // A number converted to a dtype is that dtype's value of the number: f64(0.1) is exact.
      return make(expr_.cast(materialize(args[0], cast_to), *cast_to), at);
    }
    auto op = find_op(name.text);
    if (!op) {
      std::vector<std::string_view> known(op_names().begin(), op_names().end());
      known.insert(known.end(), dtype_names().begin(), dtype_names().end());  // conversions: f16(x)
      error(name, fmt::format("unknown function '{}'{}", name.text, did_you_mean(name.text, known)));
    }
    if (*op == Op::as_type) error(name, "as_type takes a value and a dtype: as_type(x, f16)");
    const int arity = op_info(*op).arity;
    if (int(args.size()) != arity)
      error(name, fmt::format("{} takes {} argument(s), got {}", name.text, arity, args.size()));
    return apply(*op, args, at);
  }

  std::string_view text_;
  const std::vector<DType>& inputs_;
  std::vector<std::string_view> names_;  // extra names of the inputs, by index
  std::size_t positional_ = ~std::size_t(0);  // inputs x, y, z, w, in<k> may name (the rest: by name only)
  std::string_view origin_;
  int line_, col_;
  int depth_ = 0;
  std::size_t pos_ = 0;
  Token tok_;
  Expr expr_;
};

}  // namespace

Expr parse_expr(std::string_view text, const std::vector<DType>& input_dtypes, std::string_view origin,
                int first_line, int first_col) {
  Parser p(text, input_dtypes, origin, first_line, first_col);
  Expr e = p.parse();
  // Every declared input keeps its dtype, used or not: an unused first input would otherwise read
  // as an s32 placeholder (the caller's operands then seem mistyped), an unused last one as absent.
  const std::vector<bool> used = used_inputs(e, input_dtypes.size());
  if (std::find(used.begin(), used.end(), false) == used.end()) return e;
  for (std::size_t k = 0; k < input_dtypes.size(); ++k)
    if (!used[k]) e.input(int(k), input_dtypes[k]);
  return e.pruned();
}

Expr parse_expr_named(std::string_view text, const std::vector<DType>& input_dtypes,
                      const std::vector<std::string_view>& names, std::string_view origin, int first_line,
                      int first_col, std::size_t positional) {
  Parser p(text, input_dtypes, origin, first_line, first_col);
  p.set_names(names);
  p.set_positional(positional);
  return p.parse();
}

}  // namespace kiln
