// Unit tests of the codegen core: dtypes and promotion, the op table, the expression IR and
// parser, and the scalar semantics of the CPU reference against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <typeinfo>

#include "codegen/emit.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/families/scan.hpp"
#include "core/half.hpp"
#include "codegen/spec.hpp"
#include "core/error.hpp"
#include "core/suggest.hpp"
#include "tests/narrowing_cases.hpp"

namespace kiln {
namespace {

using D = DType;

TEST(DType, NamesRoundTrip) {
  for (DType t : kAllDTypes) EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  EXPECT_FALSE(parse_dtype("f8"));
  EXPECT_EQ(dtype_size(D::bf16), 2u);
  EXPECT_EQ(dtype_size(D::pred), 1u);
}

TEST(DType, NxPromotion) {
  // Nx.Type.merge, hand-checked.
  EXPECT_EQ(promote(D::s8, D::u8), D::s16);
  EXPECT_EQ(promote(D::u32, D::s8), D::s64);
  EXPECT_EQ(promote(D::u64, D::s64), D::s64);
  EXPECT_EQ(promote(D::s32, D::f16), D::f16);
  EXPECT_EQ(promote(D::f16, D::bf16), D::f32);
  EXPECT_EQ(promote(D::f32, D::f64), D::f64);
  EXPECT_EQ(promote(D::u8, D::u16), D::u16);
  EXPECT_EQ(promote(D::pred, D::pred), D::pred);
  EXPECT_EQ(promote(D::pred, D::s8), D::s16);  // pred is u8
  EXPECT_EQ(promote(D::pred, D::u32), D::u32);
  EXPECT_EQ(to_floating(D::s64), D::f32);
  EXPECT_EQ(to_floating(D::bf16), D::bf16);
  // Promotion is commutative.
  for (DType a : kAllDTypes)
    for (DType b : kAllDTypes) EXPECT_EQ(promote(a, b), promote(b, a));
}

TEST(OpTable, CoversNxElementwiseOps) {
  EXPECT_EQ(op_table().size(), 60u);
  for (const OpInfo& o : op_table()) {
    EXPECT_EQ(find_op(o.name), o.op);
    EXPECT_NE(o.accepts, 0);
    EXPECT_FALSE(o.formula.empty());
  }
  EXPECT_EQ(result_dtype(Op::exp, D::s32), D::f32);
  EXPECT_EQ(result_dtype(Op::divide, D::u8), D::f32);
  EXPECT_EQ(result_dtype(Op::less, D::f16), D::pred);
  EXPECT_FALSE(result_dtype(Op::bitwise_and, D::f32));
}

TEST(Half, F16RoundTripsEveryValue) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_bits_to_f32(std::uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16_bits(f), h) << std::hex << h;
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16_bits(1.0f + 1.0f / 2048), 0x3C00);           // tie, even stays
  EXPECT_EQ(f32_to_f16_bits(1.0f + 3.0f / 2048), 0x3C02);           // tie, odd rounds up
  EXPECT_EQ(f32_to_f16_bits(65520.0f), 0x7C00);                     // overflow to inf
  EXPECT_EQ(f32_to_f16_bits(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -25)), 0x0000);        // half of min subnormal: even
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16_bits(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(f16_bits_to_f32(f32_to_f16_bits(NAN))));
  EXPECT_EQ(f32_to_bf16_bits(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16_bits(1.0f + 1.0f / 256), 0x3F80);           // tie to even
  EXPECT_EQ(f32_to_bf16_bits(1.0f + 3.0f / 256), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16_bits_to_f32(f32_to_bf16_bits(NAN))));
}

// kiln::half and kiln::bfloat16 built from a double, a long double or an integer round once, as
// as_type does (tests/narrowing_cases.hpp: the expected bits come from the formats). A long double
// just above a midpoint, by less than half a double's step, is the case that goes wrong through
// double: it lands on the midpoint there and ties to even.
TEST(Half, HostTypesFromWiderNumbersRoundOnce) {
  for (bool bf16 : {false, true}) {
    auto bits = [&](auto x) { return bf16 ? bfloat16(x).bits : half(x).bits; };
    int wrong = 0;
    for (const auto& c : narrowing::float_cases(bf16)) {
      if (bits(c.x) != c.want && ++wrong < 5)
        ADD_FAILURE() << (bf16 ? "bf16" : "f16") << "(double " << std::hexfloat << c.x << std::defaultfloat << ") = 0x"
                      << std::hex << bits(c.x) << ", want 0x" << c.want << std::dec;
    }
    if constexpr (std::numeric_limits<long double>::digits > 53) {
      const std::uint32_t inf = bf16 ? 0x7F80u : 0x7C00u;
      for (std::uint32_t b = 1; b + 1 < inf; ++b) {
        const long double v = narrowing::value_of(bf16, b), w = narrowing::value_of(bf16, b + 1);
        const long double mid = (v + w) / 2, nudge = std::ldexp(1.0L, std::ilogb(mid) - 56);  // < half a double's step
        ASSERT_EQ((long double)(double)(mid + nudge), mid) << "the case must land on the midpoint as a double";
        EXPECT_EQ(bits(mid + nudge), b + 1) << std::hex << "0x" << b;
        EXPECT_EQ(bits(-(mid - nudge)), 0x8000u | b) << std::hex << "0x" << b;
      }
    }
    EXPECT_EQ(wrong, 0);
  }
  for (auto [bits, is_signed] : {std::pair{64, true}, std::pair{64, false}, std::pair{32, true}, std::pair{32, false}})
    for (const auto& c : narrowing::int_cases(bits, is_signed)) {
      const std::uint16_t got = is_signed ? bfloat16(std::int64_t(c.negative ? 0 - c.magnitude : c.magnitude)).bits
                                          : bfloat16(c.magnitude).bits;
      ASSERT_EQ(got, c.want) << (c.negative ? "-" : "") << c.magnitude << " (" << bits << " bits)";
    }
}

// Evaluates "expr" on scalar inputs through the parser and the reference evaluator.
double eval1(const std::string& text, std::vector<DType> dts, std::vector<double> xs) {
  Expr e = parse_expr(text, dts);
  Evaluator ev(e);
  std::vector<Scalar> in;
  for (std::size_t i = 0; i < xs.size(); ++i) in.push_back(cast_scalar(Scalar::from_f(xs[i]), D::f64, dts[i]));
  return scalar_to_double(ev.eval(in.data()), ev.result_dtype());
}

TEST(Semantics, IntegerDivisionAndRemainder) {
  EXPECT_EQ(eval1("quotient(x, y)", {D::s32, D::s32}, {-7, 2}), -3);   // truncates
  EXPECT_EQ(eval1("x % y", {D::s32, D::s32}, {-7, 2}), -1);            // sign of dividend
  EXPECT_EQ(eval1("x % y", {D::s32, D::s32}, {7, -2}), 1);
  EXPECT_EQ(eval1("quotient(x, y)", {D::s32, D::s32}, {5, 0}), -1);
  EXPECT_EQ(eval1("x % y", {D::s32, D::s32}, {5, 0}), 5);
  EXPECT_EQ(eval1("quotient(x, y)", {D::s8, D::s8}, {-128, -1}), -128);
  EXPECT_EQ(eval1("x % y", {D::s8, D::s8}, {-128, -1}), 0);
  EXPECT_EQ(eval1("quotient(x, y)", {D::u8, D::u8}, {9, 0}), 255);
  EXPECT_DOUBLE_EQ(eval1("x % y", {D::f32, D::f32}, {-7.5, 2}), -1.5);
}

TEST(Semantics, WrappingAndShifts) {
  EXPECT_EQ(eval1("x + y", {D::s8, D::s8}, {127, 1}), -128);
  EXPECT_EQ(eval1("x * y", {D::u8, D::u8}, {16, 17}), 16);             // 272 mod 256
  EXPECT_EQ(eval1("-x", {D::u16}, {1}), 65535);
  EXPECT_EQ(eval1("abs(x)", {D::s16}, {-32768}), -32768);
  EXPECT_EQ(eval1("x << y", {D::s32, D::s32}, {1, 31}), -2147483648.0);
  EXPECT_EQ(eval1("x << y", {D::s32, D::s32}, {1, 32}), 0);
  EXPECT_EQ(eval1("x >> y", {D::s32, D::s32}, {-8, 1}), -4);           // arithmetic
  EXPECT_EQ(eval1("x >> y", {D::s32, D::s32}, {-8, 40}), -1);          // past the width: sign fill
  EXPECT_EQ(eval1("x >> y", {D::u32, D::u32}, {8, 40}), 0);
  EXPECT_EQ(eval1("x << y", {D::s32, D::s32}, {1, -1}), 0);
  EXPECT_EQ(eval1("count_leading_zeros(x)", {D::u8}, {1}), 7);
  EXPECT_EQ(eval1("count_leading_zeros(x)", {D::s16}, {0}), 16);
  EXPECT_EQ(eval1("count_leading_zeros(x)", {D::s8}, {-1}), 0);
  EXPECT_EQ(eval1("population_count(x)", {D::s8}, {-1}), 8);
  EXPECT_EQ(eval1("pow(x, y)", {D::s32, D::s32}, {3, 4}), 81);
  EXPECT_EQ(eval1("pow(x, y)", {D::s32, D::s32}, {-1, -3}), -1);
  EXPECT_EQ(eval1("pow(x, y)", {D::s32, D::s32}, {2, -1}), 0);
  EXPECT_EQ(eval1("pow(x, y)", {D::u8, D::u8}, {2, 9}), 0);           // 512 wraps
}

TEST(Semantics, FloatRules) {
  EXPECT_EQ(eval1("round(x)", {D::f32}, {2.5}), 3);
  EXPECT_EQ(eval1("round(x)", {D::f32}, {-2.5}), -3);
  EXPECT_EQ(eval1("round(x)", {D::f32}, {0.49999997}), 0);
  EXPECT_TRUE(std::isnan(eval1("max(x, y)", {D::f32, D::f32}, {NAN, 1})));
  EXPECT_TRUE(std::isnan(eval1("min(x, y)", {D::f32, D::f32}, {1, NAN})));
  EXPECT_TRUE(std::isnan(eval1("sign(x)", {D::f32}, {NAN})));
  EXPECT_TRUE(std::signbit(eval1("sign(x)", {D::f32}, {-0.0})));
  EXPECT_EQ(eval1("x != y", {D::f32, D::f32}, {NAN, NAN}), 1);
  EXPECT_EQ(eval1("x == y", {D::f32, D::f32}, {NAN, NAN}), 0);
  EXPECT_EQ(eval1("is_nan(x)", {D::s32}, {5}), 0);
  EXPECT_EQ(eval1("x / y", {D::s32, D::s32}, {7, 2}), 3.5);          // divide is floating
  EXPECT_FLOAT_EQ(eval1("erf_inv(erf(x))", {D::f64}, {0.7}), 0.7);
  // erf_inv f64 against 60-digit values (mpmath.erfinv, rounded to double), within 2 ulp: near
  // +-1 the reference was 28,000 ulp off before it refined on erfc.
  const std::pair<double, double> kErfInv[] = {
      {0.9999999, 3.7665625816384707},           {0.999999999999, 5.042031898572696},
      {-0.9999999999999999, -5.8635847487551676}, {0.5, 0.4769362762044699},
      {0.75, 0.8134198475976185},                {0.1, 0.08885599049425769},
      {-0.3, -0.2724627147267543},               {0.9, 1.1630871536766743}};
  for (auto [y, want] : kErfInv) {
    const double got = eval1("erf_inv(x)", {D::f64}, {y});
    EXPECT_LE(std::fabs(got - want), 2 * (std::nextafter(std::fabs(want), INFINITY) - std::fabs(want)))
        << "erf_inv(" << y << ") = " << got << ", want " << want;
  }
  EXPECT_EQ(eval1("x + y", {D::f16, D::f16}, {2048, 1}), 2048);     // f16 rounding per op
  EXPECT_EQ(eval1("exp(x)", {D::s32}, {0}), 1);
}

TEST(Semantics, Casts) {
  EXPECT_EQ(eval1("as_type(x, s8)", {D::f32}, {300.7}), 127);       // saturates
  EXPECT_EQ(eval1("as_type(x, s8)", {D::f32}, {-300}), -128);
  EXPECT_EQ(eval1("as_type(x, u8)", {D::f32}, {-3.5}), 0);
  EXPECT_EQ(eval1("as_type(x, s32)", {D::f32}, {NAN}), 0);
  EXPECT_EQ(eval1("as_type(x, s32)", {D::f32}, {-2.9}), -2);        // truncates
  EXPECT_EQ(eval1("as_type(x, u64)", {D::f64}, {1e30}), double(~0ull));
  EXPECT_EQ(eval1("as_type(x, s8)", {D::s32}, {200}), -56);         // wraps
  EXPECT_EQ(eval1("as_type(x, pred)", {D::f32}, {NAN}), 1);
  EXPECT_EQ(eval1("as_type(x, pred)", {D::s32}, {-4}), 1);
  EXPECT_EQ(eval1("as_type(x, f16)", {D::f32}, {1e6}), INFINITY);
  EXPECT_EQ(eval1("as_type(x, u32)", {D::s8}, {-1}), 4294967295.0);
}

TEST(Parser, GeluParsesAndEvaluates) {
  const char* gelu = "0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))";
  Expr e = parse_expr(gelu, {D::f32});
  EXPECT_EQ(e.dtype(e.root()), D::f32);
  const double x = 1.3;
  const double want = 0.5 * x * (1 + std::tanh(0.7978845608 * (x + 0.044715 * x * x * x)));
  EXPECT_NEAR(eval1(gelu, {D::f64}, {x}), want, 1e-12);
  // f16 input: the literals become f16 (weak scalars) and so does the result.
  Expr h = parse_expr(gelu, {D::f16});
  EXPECT_EQ(h.dtype(h.root()), D::f16);
}

TEST(Parser, UnknownNamesSuggestTheClosest) {
  auto message = [](const char* text) {
    try {
      parse_expr(text, {DType::f32});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("sigmod(x)").find("unknown function 'sigmod'; did you mean 'sigmoid'?"), std::string::npos);
  EXPECT_NE(message("f23(x)").find("did you mean 'f32'?"), std::string::npos);  // conversions too
  EXPECT_EQ(message("frobnicate(x)").find("did you mean"), std::string::npos);  // nothing close: no guess
  const std::string_view names[] = {"exp", "expm1", "log"};
  EXPECT_EQ(closest_name("ex", names), "exp");
  EXPECT_EQ(closest_name("expm2", names), "expm1");
  EXPECT_EQ(closest_name("exp", names), "");  // exact names are not typos
  EXPECT_EQ(closest_name("zzzzzz", names), "");
}

TEST(Parser, PrecedenceAndAssociativity) {
  EXPECT_EQ(eval1("x + y * 2", {D::s32, D::s32}, {1, 3}), 7);
  EXPECT_EQ(eval1("x - y - 1", {D::s32, D::s32}, {10, 3}), 6);
  EXPECT_EQ(eval1("-x ** 2", {D::s32}, {3}), -9);
  EXPECT_EQ(eval1("2 ** 3 ** 2", {D::s32}, {0}), 512);
  EXPECT_EQ(eval1("x < 3 && y > 1 ? 10 : 20", {D::s32, D::s32}, {1, 2}), 10);
  EXPECT_EQ(eval1("x & 6 | 1", {D::s32}, {7}), 7);
  EXPECT_EQ(eval1("1 << x + 1", {D::s32}, {2}), 8);
  EXPECT_EQ(eval1("!x", {D::s32}, {0}), 1);
  EXPECT_EQ(eval1("x + 0.5", {D::s32}, {1}), 1.5);  // a fractional literal makes an integer f32
}

void expect_parse_error(const std::string& text, const std::string& where, const std::string& what) {
  try {
    parse_expr(text, {D::f32, D::f32});
    FAIL() << "no error for " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::parse_error);
    const std::string m = e.what();
    EXPECT_NE(m.find(where), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}

TEST(Parser, ErrorsGiveLineColumnAndExpectation) {
  expect_parse_error("x + ", "expr:1:5", "expected");
  expect_parse_error("(x + y", "expr:1:7", "expected ')'");
  expect_parse_error("x +\n  foo(y)", "expr:2:3", "unknown function 'foo'");
  expect_parse_error("x $ y", "expr:1:3", "unexpected character");
  expect_parse_error("z + 1", "expr:1:1", "input 'z'");
  expect_parse_error("x & y", "expr:1:3", "bitwise_and does not accept f32");
  expect_parse_error("pow(x)", "expr:1:1", "takes 2 argument");
  expect_parse_error("as_type(x, f17)", "expr:1:12", "expected a dtype");
  expect_parse_error("x + 0x", "expr:1:5", "expected hexadecimal digits after '0x'");
  expect_parse_error("x + 99999999999999999999", "expr:1:5", "does not fit in 64 bits");
  expect_parse_error("x + 1e400", "expr:1:5", "beyond the range of f64");
  expect_parse_error("x +\n in4294967296", "expr:2:2", "input 'in4294967296' is not given");  // not in0
  try {  // more inputs than an expression takes: the position too
    parse_expr("x + in64", std::vector<DType>(65, D::f32));
    ADD_FAILURE() << "no error for in64";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expr:1:5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at most 64 inputs"), std::string::npos) << e.what();
  }
}

// Integer literals: decimal (a leading 0 is not octal) or 0x hexadecimal, exact up to 2^64 - 1
// (not through a double), wrapped to the dtype they meet.
TEST(Parser, IntegerLiteralsAreExact) {
  auto constant_of = [](const char* text, DType t) {
    const Expr e = parse_expr(text, {t});
    for (const Node& n : e.nodes())
      if (n.kind == NodeKind::constant) return n.value.u;
    return std::uint64_t(0xdead);
  };
  EXPECT_EQ(constant_of("x + 9007199254740993", D::s64), 9007199254740993ull);  // 2^53 + 1
  EXPECT_EQ(constant_of("x & 0xFFFFFFFF00000001", D::u64), 0xFFFFFFFF00000001ull);
  EXPECT_EQ(constant_of("x + 18446744073709551615", D::u64), ~0ull);
  EXPECT_EQ(std::int64_t(constant_of("x + -9223372036854775808", D::s64)), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(constant_of("x + (4294967296 * 4294967296 + 7)", D::u64), 7u);  // folds wrap modulo 2^64
  EXPECT_EQ(eval1("x + 010", {D::s32}, {0}), 10);
  EXPECT_EQ(eval1("x + 09", {D::s32}, {0}), 9);
  EXPECT_EQ(eval1("x + 0x10", {D::s32}, {0}), 16);
  auto result_of = [](const char* text, std::vector<DType> dts) {
    const Expr e = parse_expr(text, dts);
    return e.dtype(e.root());
  };
  // Nx.Type.merge_number: an integer the dtype cannot hold takes the smallest wider one, which the
  // op promotes to (s8 + 300 is s16); past every signed dtype (above 2^63 for a signed operand) it
  // is s64, wrapped (Nx's fallback). The sign is the exact value's, not the rounded double's.
  EXPECT_EQ(result_of("x + 300", {D::s8}), D::s16);
  EXPECT_EQ(eval1("x + 300", {D::s8}, {1}), 301);
  EXPECT_EQ(result_of("x + 100", {D::s8}), D::s8);
  EXPECT_EQ(result_of("x + -1", {D::u8}), D::s16);
  EXPECT_EQ(result_of("x - 1", {D::u8}), D::u8);
  EXPECT_EQ(result_of("x & 65536", {D::u16}), D::u32);
  EXPECT_EQ(result_of("x + -129", {D::s8}), D::s16);
  EXPECT_EQ(result_of("x + -128", {D::s8}), D::s8);
  EXPECT_EQ(result_of("x + -1", {D::u64}), D::s64);
  EXPECT_EQ(eval1("x + 9100000000000000000", {D::s32}, {0}), 9100000000000000000.0);  // s64
  EXPECT_EQ(result_of("x + 9300000000000000000", {D::s32}), D::s64);
  EXPECT_EQ(eval1("x + 9300000000000000000", {D::s32}, {0}), double(std::int64_t(9300000000000000000ull)));
  EXPECT_EQ(result_of("x + (9007199254740992 - 9007199254740993)", {D::u8}), D::s16);  // -1, though 0 as a double
  EXPECT_EQ(eval1("x + (9007199254740992 - 9007199254740993)", {D::u8}, {5}), 4);
  EXPECT_EQ(result_of("x == 2", {D::pred}), D::pred);
  EXPECT_EQ(eval1("x == 2", {D::pred}, {1}), 0);  // true is 1 (as u8), not 2
  EXPECT_EQ(eval1("x + 9007199254740993", {D::f64}, {0}), 9007199254740992.0);  // a float meets it: rounded
}

TEST(Expr, HashConsingSharesSubexpressions) {
  Expr e = parse_expr("x * y + x * y", {D::f32, D::f32});
  // in0, in1, multiply, add: the product appears once.
  EXPECT_EQ(e.nodes().size(), 4u);
  Expr a = parse_expr("exp(x) + 1", {D::f32});
  Expr b = parse_expr("exp(x)+1.0", {D::f32});
  EXPECT_EQ(a.canonical(), b.canonical());
  Expr c = parse_expr("exp(x) + 2", {D::f32});
  EXPECT_NE(a.canonical(), c.canonical());
}

TEST(Expr, ToStringParsesBackToTheSameExpression) {
  Expr e = parse_expr("select(x > 0, sqrt(x), as_type(y, f16)) * 3", {D::f32, D::s8});
  Expr back = parse_expr(e.to_string(), {D::f32, D::s8});
  EXPECT_EQ(e.canonical(), back.canonical()) << e.to_string();
}

// Kernel comments print expressions: deep chains print without deep recursion, and shared
// subexpressions (whose text doubles with each squaring) are summarized past 2^16 characters.
TEST(Expr, ToStringOfDeepAndSharedExpressions) {
  Expr chain;
  const NodeId x = chain.input(0, D::f32);
  NodeId y = x;
  for (int i = 0; i < 5000; ++i) y = chain.apply(Op::add, {y, x});
  chain.set_root(y);
  const std::string text = chain.to_string();
  EXPECT_EQ(text.size(), 5000 * std::string("add(, in0)").size() + 3);
  EXPECT_EQ(text.substr(0, 8), "add(add(");
  EXPECT_EQ(text.substr(text.size() - 12), ", in0), in0)");
  for (int i = 0; i < 200000; ++i) y = chain.apply(Op::add, {y, x});
  chain.set_root(y);
  EXPECT_NE(chain.to_string().find("an expression of 205001 nodes"), std::string::npos);
  Expr square;
  NodeId z = square.input(0, D::f32);
  for (int i = 0; i < 60; ++i) z = square.apply(Op::multiply, {z, z});
  square.set_root(z);
  EXPECT_NE(square.to_string().find("an expression of 61 nodes"), std::string::npos) << square.to_string();
  Expr small;
  NodeId w = small.input(0, D::f32);
  for (int i = 0; i < 3; ++i) w = small.apply(Op::multiply, {w, w});
  small.set_root(w);
  EXPECT_EQ(small.to_string(), "multiply(multiply(multiply(in0, in0), multiply(in0, in0)), multiply(multiply(in0, in0), "
                               "multiply(in0, in0)))");
}

TEST(Expr, ToStringKeepsConstantsExact) {
  // A number inside a dtype call takes that dtype directly (no detour through f32).
  Expr e = parse_expr("x * f64(1e-30) + f64(0.1)", {D::f64});
  Expr back = parse_expr(e.to_string(), {D::f64});
  EXPECT_EQ(e.canonical(), back.canonical()) << e.to_string();
  EXPECT_DOUBLE_EQ(eval1("f64(0.1) + x", {D::f64}, {0}), 0.1);
  EXPECT_EQ(eval1("s8(300)", {D::s32}, {0}), 44);  // integers still wrap like a cast
}

TEST(Expr, SimplifiedFoldsConstantsAndRemovesIdentities) {
  auto same = [](const char* text, const char* want, std::vector<D> in) {
    const Expr got = simplified(parse_expr(text, in));
    EXPECT_EQ(got.canonical(), parse_expr(want, in).canonical()) << text << " gave " << got.to_string();
  };
  same("((x + 0) * 1) / 1", "x", {D::f32});
  same("0 + 1 * x - 0", "x", {D::f64});
  same("-(-x)", "x", {D::s32});
  same("x + (2 * 3)", "x + 6", {D::f32});
  same("exp(f32(0)) + x", "1 + x", {D::f32});
  same("as_type(as_type(x, f32), f32)", "as_type(x, f32)", {D::s8});
  // x + 0 where the sum is wider than x: the conversion stays.
  same("x + f32(0)", "as_type(x, f32)", {D::s8});
  // An integer's x / 1 is a float division (Nx): what stays is the conversion.
  same("x / 1", "as_type(x, f32)", {D::s32});
  same("x * y + x * y", "x * y + x * y", {D::f32, D::f32});
  // x - (-0) is not x: at x = -0 it is +0 (and the fused kernel must agree with eager ops).
  EXPECT_FALSE(std::signbit(eval1("x - f32(-0.0)", {D::f32}, {-0.0})));
  Evaluator minus_zero(simplified(parse_expr("x - f32(-0.0)", {D::f32})));
  Scalar mz[1] = {Scalar::from_f(-0.0)};
  EXPECT_FALSE(std::signbit(minus_zero.eval(mz).f)) << "simplified x - (-0) at x = -0 gave -0";
  // The inputs keep their indices even when one disappears.
  const Expr e = simplified(parse_expr("y * 1 + 0 * 0", {D::f32, D::f32}));
  EXPECT_EQ(e.num_inputs(), 2);
  // Folding follows the reference: integer wrap, NaN propagation.
  EXPECT_EQ(eval1("s8(100) + s8(100) + x", {D::s8}, {0}), -56);
  const Expr w = simplified(parse_expr("s8(100) + s8(100) + x", {D::s8}));
  EXPECT_EQ(w.nodes().size(), 3u) << w.to_string();  // x, -56, add
  const Expr n = simplified(parse_expr("x + sqrt(f32(-1))", {D::f32}));
  Evaluator ev(n);
  Scalar in[1] = {Scalar::from_f(1.0)};
  EXPECT_TRUE(std::isnan(ev.eval(in).f)) << n.to_string();
}

TEST(Spec, NamesAreStableAndEncodeDtypes) {
  KernelSpec s = single_op_spec(Op::add, D::f32);
  EXPECT_EQ(s.name().substr(0, 15), "map_f32f32_f32_");
  EXPECT_EQ(s.name().size(), 23u);
  EXPECT_EQ(s.name(), single_op_spec(Op::add, D::f32).name());
  EXPECT_NE(s.name(), single_op_spec(Op::subtract, D::f32).name());
  KernelSpec c = single_op_spec(Op::as_type, D::f32, D::s8);
  EXPECT_EQ(c.name().substr(0, 11), "map_f32_s8_");
}

// The canonical text (generated headers, the registry, AOT kernels) read back: malformed numbers
// are a parse_error naming the text, never a std:: exception or a silent value.
TEST(Spec, CanonicalTextRejectsMalformedNumbers) {
  const std::string ok = "map|in=f32|out=f32|block=256|%0=f32:in0;%1=f32:exp(%0);";
  EXPECT_EQ(spec_from_canonical(ok).canonical(), ok);
  for (const char* bad : {"map|in=f32|out=f32|block=abc|%0=f32:in0;", "map|in=f32|out=f32|block=99999999999|%0=f32:in0;",
                          "map|in=f32|out=f32|block=0|%0=f32:in0;", "map|in=f32|out=f32|block=-7|%0=f32:in0;",
                          "map|in=f32|out=f32|block=96|%0=f32:in0;", "map|in=f32|out=f32|block=256|%0=f32:in;",
                          "map|in=f32|out=f32|block=256|%0=f32:const();",
                          "map|in=f32|out=f32|block=256|%0=f32:const(0xfffffffffffffffff);",
                          "map|in=f32|out=f32|block=256|%0=f32:in0;%1=f32:exp(%x);",
                          "map|in=f32|out=f32|block=256|%0=f32:in0;%1=f32:exp(%0);>%0,%12345678901234567890123;"}) {
    try {
      spec_from_canonical(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::parse_error) << bad << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("not a canonical kernel spec"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << bad << ": a " << typeid(e).name() << " escaped: " << e.what();
    }
  }
}

// The templates are embedded in the library (the JIT and kilnc read them from there).
// emit_cuda(spec, functions) defines the entry points asked for and no other (the JIT compiles
// only those a plan uses); kAllFunctions, the default, is every one, as kilnc builds them.
TEST(EmitCuda, OnlyTheEntryPointsAsked) {
  const Expr two = parse_expr("x * y + 1", {D::f32, D::f16});
  Expr multi = parse_expr("x * y + 1", {D::f32, D::f32});
  multi.set_more_roots({multi.input(0, D::f32)});
  const std::vector<KernelSpec> specs = {make_map_spec(two, D::f32), make_map_spec(multi, D::f32),
                                         make_reduce_spec(Combiner::sum, parse_expr("x * x", {D::f32})),
                                         make_scan_spec(Combiner::max, D::s32)};
  for (const KernelSpec& spec : specs) {
    const std::vector<std::string> symbols = cuda_symbols(spec);
    ASSERT_EQ(symbols.size(), family_of(spec).entry_points.size());
    EXPECT_EQ(emit_cuda(spec), emit_cuda(spec, kAllFunctions));
    for (FunctionSet set = 1; set < (FunctionSet(1) << symbols.size()); ++set) {
      const std::string src = emit_cuda(spec, set);
      for (std::size_t f = 0; f < symbols.size(); ++f)
        EXPECT_EQ(src.find(" " + symbols[f] + "(") != std::string::npos, bool(set >> f & 1))
            << spec.canonical() << ": function " << f << " with set " << set;
    }
  }
}

TEST(EmitTemplates, AreEmbedded) {
  std::set<std::string> paths;
  for (const auto& t : template_sources()) {
    paths.insert(std::string(t.path));
    EXPECT_GT(t.text.size(), 100u) << t.path;
  }
  for (const char* p : {"cuda/map.cuh", "cuda/ops.cuh", "glsl/map.glsl", "glsl/ops.glsl", "glsl/math_f32.glsl",
                        "glsl/erf_f32.glsl"})
    EXPECT_TRUE(paths.count(p)) << p;
}

}  // namespace
}  // namespace kiln
