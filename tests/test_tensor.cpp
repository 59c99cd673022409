// Tensors and tensor ops on the CPU backend (and, where present, the Vulkan device): views,
// transfers, broadcasting, promotion, and the errors users see.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>

#include <kiln/kiln.hpp>  // the umbrella header alone: the README example below compiles with it

namespace kiln {
namespace {

template <class T>
Tensor make(const std::vector<T>& v, const Shape& shape, DType t, Device& d = device("cpu")) {
  return Tensor::from_host(v.data(), v.size() * sizeof(T), shape, t, d);
}

template <class T>
std::vector<T> values(const Tensor& t) {
  std::vector<T> v(std::size_t(t.numel()));
  t.to_host(v.data(), v.size() * sizeof(T));
  return v;
}

TEST(Tensor, ViewsAreZeroCopyAndReadCorrectly) {
  auto x = make<float>({0, 1, 2, 3, 4, 5}, {2, 3}, DType::f32);
  auto t = x.transpose({1, 0});
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.storage(), x.storage());
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(values<float>(t), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  auto s = x.slice(1, 0, 3, 2);
  EXPECT_EQ(values<float>(s), (std::vector<float>{0, 2, 3, 5}));
  // A step past the axis (one element left): the stride is not multiplied (no overflow).
  auto one = x.slice(0, 0, 2, std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(one.shape(), (Shape{1, 3}));
  EXPECT_EQ(values<float>(one), (std::vector<float>{0, 1, 2}));
  auto b = make<float>({7, 8}, {2, 1}, DType::f32).broadcast_to({2, 3});
  EXPECT_EQ(values<float>(b), (std::vector<float>{7, 7, 7, 8, 8, 8}));
  EXPECT_EQ(values<float>(t.contiguous()), values<float>(t));
  EXPECT_EQ(x.reshape({3, 2}).shape(), (Shape{3, 2}));
  EXPECT_THROW(t.reshape({6}), Error);
}

TEST(Tensor, ViewOutsideStorageIsRejected) {
  auto x = make<float>({1, 2, 3}, {3}, DType::f32);
  EXPECT_THROW(Tensor::view(x.storage(), {4}, {1}, 0, DType::f32), Error);
  EXPECT_THROW(Tensor::view(x.storage(), {2}, {1}, 2, DType::f32), Error);
}

// Runs |f|, which must throw kiln::Error with |code| and a message containing |text|.
template <class F>
void expect_error(F f, ErrorCode code, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << text << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// View errors say which argument is wrong and why, with the call's arguments and the tensor.
TEST(Tensor, ViewErrorsSayWhatIsWrong) {
  auto x = make<float>(std::vector<float>(12), {3, 4}, DType::f32);
  const ErrorCode bad = ErrorCode::invalid_argument;
  expect_error([&] { x.slice(0, 2, 1); }, bad, "Tensor::slice: axis 0 range [2:1:1] of [3,4] f32 on cpu: stop 1 is before start 2");
  expect_error([&] { x.slice(1, 0, 4, 0); }, bad, "the step 0 must be >= 1");
  expect_error([&] { x.slice(1, 0, 5); }, bad, "stop 5 is past the axis's size 4");
  expect_error([&] { x.slice(-3, 0, 1); }, bad, "axis -3 is out of range for rank 2");
  expect_error([&] { x.slice(0, -1, 2); }, bad, "start -1 is outside [0, 3]");
  expect_error([&] { x.transpose({0, 0}); }, bad, "axes [0,0] are not a permutation of 0..1 for [3,4] f32 on cpu (axis 0 is given twice)");
  expect_error([&] { x.transpose({0, 2}); }, bad, "(axis 2 is out of range)");
  expect_error([&] { x.transpose({1, 0, 2}); }, bad, "3 axes [1,0,2] given for [3,4] f32 on cpu, which has 2");
  EXPECT_EQ(x.slice(1, 4, 4).shape(), (Shape{3, 0}));  // an empty range at the end is fine
}

TEST(Tensor, EveryMemberOfAnUndefinedTensorWorksOrThrows) {
  // Regression: to_host(), to(dev) and device() of a default-constructed or moved-from tensor
  // crashed; contiguous(), transpose() and reshape() returned silently.
  Tensor moved_from = make<float>({1, 2}, {2}, DType::f32);
  const Tensor keeper = std::move(moved_from);
  const Tensor never_made;
  for (const Tensor* t : std::initializer_list<const Tensor*>{&moved_from, &never_made}) {
    EXPECT_FALSE(t->defined());
    EXPECT_EQ(t->describe(), "undefined tensor");
    EXPECT_EQ(t->storage(), nullptr);
    const auto inv = ErrorCode::invalid_argument;
    expect_error([&] { (void)t->to_host(); }, inv, "Tensor::to_host: the tensor is undefined");
    expect_error([&] { (void)t->to(device("cpu")); }, inv, "Tensor::to:");
    expect_error([&] { (void)t->device(); }, inv, "Tensor::device:");
    expect_error([&] { (void)t->address(); }, inv, "Tensor::address:");
    expect_error([&] { (void)t->contiguous(); }, inv, "Tensor::contiguous:");
    expect_error([&] { (void)t->transpose({}); }, inv, "Tensor::transpose:");
    expect_error([&] { (void)t->reshape({1}); }, inv, "Tensor::reshape:");
    expect_error([&] { (void)t->slice(0, 0, 0); }, inv, "Tensor::slice:");
    expect_error([&] { (void)t->broadcast_to({2}); }, inv, "Tensor::broadcast_to:");
    expect_error([&] { (void)exp(*t); }, inv, "undefined tensor");
  }
  EXPECT_EQ(values<float>(keeper), (std::vector<float>{1, 2}));
}

TEST(Tensor, ShapesWhoseCountsOverflowAreRefused) {
  // Regression: {1<<40, 1<<40} gave numel 0, {3, 1<<62} a negative numel, and {1<<62} f32 a tensor
  // over a 1-byte storage on which exp crashed.
  Device& cpu = device("cpu");
  const std::int64_t g40 = std::int64_t(1) << 40, g62 = std::int64_t(1) << 62;
  expect_error([&] { Tensor::empty({g40, g40}, DType::f32, cpu); }, ErrorCode::invalid_argument, "[1099511627776,1099511627776] (f32)");
  expect_error([&] { Tensor::empty({3, g62}, DType::u8, cpu); }, ErrorCode::invalid_argument, "more than 2^63 elements");
  expect_error([&] { Tensor::empty({g62}, DType::f32, cpu); }, ErrorCode::out_of_memory, "[4611686018427387904] of f32");
  expect_error([&] { Tensor::empty({0, g62, g62}, DType::f32, cpu); }, ErrorCode::invalid_argument, "more than 2^63");
  expect_error([&] { Tensor::empty({2, -1}, DType::f32, cpu); }, ErrorCode::invalid_argument, "negative dimension");
  expect_error([&] { Tensor::from_host(nullptr, 0, {g40, g40}, DType::u8, cpu); }, ErrorCode::invalid_argument,
               "Tensor::from_host");
  const Tensor one = make<float>({1}, {1}, DType::f32);
  expect_error([&] { (void)one.broadcast_to({g62, g62}); }, ErrorCode::invalid_argument, "Tensor::broadcast_to");
  expect_error([&] { (void)one.reshape({g62, 4}); }, ErrorCode::invalid_argument, "Tensor::reshape");
  // Strides whose extent overflows are outside the storage, not a wrapped-around offset inside it.
  expect_error([&] { Tensor::view(one.storage(), {3}, {g62}, 0, DType::f32); }, ErrorCode::invalid_argument,
               "reaches outside");
  // A broadcast view of 2^40 elements is fine as a view; an op on it needs 2^42 bytes and says so.
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    const Tensor big = make<float>({1}, {1}, DType::f32, *d).broadcast_to({g40});
    EXPECT_EQ(big.numel(), g40);
    expect_error([&] { (void)exp(big); }, ErrorCode::out_of_memory, "");
  }
  // Slices with huge steps do not overflow the size computation.
  const Tensor x = make<float>({1, 2, 3}, {3}, DType::f32);
  EXPECT_EQ(x.slice(0, 0, 3, std::numeric_limits<std::int64_t>::max()).shape(), (Shape{1}));
  EXPECT_EQ(x.slice(0, 1, 1).shape(), (Shape{0}));
}

template <class T>
void expect_round_trip(const std::vector<T>& v, Device& d) {
  const Tensor t = Tensor::from_vector(v, {std::int64_t(v.size())}, d);
  EXPECT_EQ(t.dtype(), dtype_of<T>());
  EXPECT_EQ(t.device().id(), d.id());
  EXPECT_EQ(t.to_vector<T>(), v) << dtype_name(dtype_of<T>()) << " on " << d.id();
}

TEST(Tensor, TypedHostIoOfEveryDtypeOnEveryDevice) {
  for (Device* d : devices()) {
    expect_round_trip<bool>({true, false, true}, *d);
    expect_round_trip<std::int8_t>({-128, 0, 127}, *d);
    expect_round_trip<std::int16_t>({-32768, 1, 32767}, *d);
    expect_round_trip<std::int32_t>({std::numeric_limits<std::int32_t>::min(), -1, 7}, *d);
    expect_round_trip<std::int64_t>({std::numeric_limits<std::int64_t>::min(), 0, std::numeric_limits<std::int64_t>::max()}, *d);
    expect_round_trip<std::uint8_t>({0, 1, 255}, *d);
    expect_round_trip<std::uint16_t>({0, 65535}, *d);
    expect_round_trip<std::uint32_t>({0, 4294967295u}, *d);
    expect_round_trip<std::uint64_t>({0, ~std::uint64_t(0)}, *d);
    expect_round_trip<float>({-0.0f, 1.5f, std::numeric_limits<float>::denorm_min()}, *d);
    expect_round_trip<double>({-1e300, 2.5, std::numeric_limits<double>::infinity()}, *d);
    // half / bfloat16: the bit patterns travel unchanged; the float conversions round to nearest even.
    const Tensor h = Tensor::from_vector(std::vector<half>{half(1.0f), half(0.1f), half::from_bits(0x7C00)}, {3}, *d);
    const auto hv = h.to_vector<half>();
    EXPECT_EQ(hv[1].bits, half(0.1f).bits);
    EXPECT_EQ(float(hv[1]), 0.0999755859375f);  // the f16 nearest 0.1
    EXPECT_TRUE(std::isinf(float(hv[2])));
    const auto bv = Tensor::from_vector(std::vector<bfloat16>{bfloat16(3.0f)}, {1}, *d).to_vector<bfloat16>();
    EXPECT_EQ(float(bv[0]), 3.0f);
  }
  expect_error([] { Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}, device("cpu")); },
               ErrorCode::invalid_argument, "3 values for shape [2,2] (4 elements of f32)");
  expect_error([] { (void)Tensor::from_vector(std::vector<float>{1, 2}, {2}, device("cpu")).to_vector<double>(); },
               ErrorCode::dtype_mismatch, "the tensor is [2] f32 on cpu, the host type is f64");
  expect_error([] { (void)Tensor().to_vector<float>(); }, ErrorCode::invalid_argument, "undefined");
}

TEST(Tensor, CreationHelpersConvertAsAsTypeDoes) {
  Device& cpu = device("cpu");
  EXPECT_EQ(zeros({2, 2}, DType::f32, cpu).to_vector<float>(), (std::vector<float>{0, 0, 0, 0}));
  EXPECT_EQ(ones({3}, DType::u8, cpu).to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 1, 1}));
  EXPECT_EQ(full({3}, 2.5, DType::s32, cpu).to_vector<std::int32_t>(), (std::vector<std::int32_t>{2, 2, 2}));
  EXPECT_EQ(full({1}, 1e10, DType::s8, cpu).to_vector<std::int8_t>(), (std::vector<std::int8_t>{127}));  // saturates
  EXPECT_EQ(full({1}, -1.0, DType::u16, cpu).to_vector<std::uint16_t>(), (std::vector<std::uint16_t>{0}));
  EXPECT_EQ(full({1}, std::nan(""), DType::s64, cpu).to_vector<std::int64_t>(), (std::vector<std::int64_t>{0}));
  EXPECT_EQ(full({1}, 0.1, DType::f16, cpu).to_vector<half>()[0].bits, half(0.1f).bits);
  const Tensor s = scalar(7, DType::f64, cpu);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.to_vector<double>(), (std::vector<double>{7}));
  EXPECT_EQ(arange(5, DType::s64, cpu).to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(0, DType::f32, cpu).numel(), 0);
  expect_error([&] { arange(-1, DType::f32, cpu); }, ErrorCode::invalid_argument, "negative dimension");
  // Filled on the device: every dtype and device; more than memory holds is the device's
  // out_of_memory, not a host allocation failing first.
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    for (DType t : kAllDTypes) {
      const Tensor f = full({3, 5}, -2.0, t, *d);
      EXPECT_TRUE(f.is_contiguous());
      const Tensor want = as_type(Tensor::from_vector(std::vector<double>(15, -2.0), {3, 5}, cpu), t);
      EXPECT_EQ(f.to(cpu).to_host(), want.to_host()) << dtype_name(t);
    }
  }
  expect_error([&] { zeros({std::int64_t(1) << 45}, DType::f32, cpu); }, ErrorCode::out_of_memory, "allocat");
}

TEST(Ops, EveryOpWritesIntoAGivenOutput) {
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 4}, {3}, *d);
    Tensor out = zeros({3}, DType::f32, *d);
    const Tensor r = add(x, x, &out);
    EXPECT_EQ(r.storage(), out.storage());
    EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{2, 4, 8}));
    exp(zeros({3}, DType::f32, *d), &out);
    EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, 1, 1}));
    Tensor pred = zeros({3}, DType::pred, *d);
    less(x, full({3}, 3, DType::f32, *d), &pred);
    EXPECT_EQ(pred.to_vector<bool>(), (std::vector<bool>{true, true, false}));
    Tensor half_out = zeros({3}, DType::f16, *d);
    as_type(x, DType::f16, &half_out);
    EXPECT_EQ(float(half_out.to_vector<half>()[2]), 4.0f);
    Tensor copy = zeros({3}, DType::f32, *d);
    as_type(x, DType::f32, &copy);  // same dtype: a copy into |copy|
    EXPECT_EQ(copy.to_vector<float>(), x.to_vector<float>());
    select(pred, x, -x, &out);
    EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, 2, -4}));
    // The wrong dtype for the result: the message shows both.
    Tensor wrong = zeros({3}, DType::s32, *d);
    expect_error([&] { add(x, x, &wrong); }, ErrorCode::invalid_argument, "must be a contiguous [3] f32");
  }
}

TEST(Ops, OperatorsAreTheOpsWithNxWeakLiterals) {
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 4}, {3}, *d);
    const Tensor y = Tensor::from_vector(std::vector<float>{2, 2, 2}, {3}, *d);
    EXPECT_EQ((x + y).to_vector<float>(), add(x, y).to_vector<float>());
    EXPECT_EQ((x - y).to_vector<float>(), (std::vector<float>{-1, 0, 2}));
    EXPECT_EQ((x * y / x).to_vector<float>(), (std::vector<float>{2, 2, 2}));
    EXPECT_EQ((-x).to_vector<float>(), (std::vector<float>{-1, -2, -4}));
    EXPECT_EQ((x < y).to_vector<bool>(), (std::vector<bool>{true, false, false}));
    EXPECT_EQ((x == y).to_vector<bool>(), (std::vector<bool>{false, true, false}));
    EXPECT_EQ((x >= y).dtype(), DType::pred);
    EXPECT_EQ((1.0 - x * 0.5).to_vector<float>(), (std::vector<float>{0.5f, 0, -1}));
    const Tensor i = Tensor::from_vector(std::vector<std::int32_t>{1, 2, 3}, {3}, *d);
    EXPECT_EQ((i * 2.0).dtype(), DType::s32);  // an integer literal the dtype holds
    EXPECT_EQ((i * 2.0).to_vector<std::int32_t>(), (std::vector<std::int32_t>{2, 4, 6}));
    EXPECT_EQ((i * 2.5).dtype(), DType::f32);  // promotes, as Nx
    // An integer the dtype cannot hold: the smallest wider integer dtype (Nx.Type.merge_number),
    // as the expression parser types it.
    const Tensor s8 = as_type(i, DType::s8), u8 = as_type(i, DType::u8);
    EXPECT_EQ((s8 + 300.0).dtype(), DType::s16);
    EXPECT_EQ((s8 + 300.0).to_vector<std::int16_t>(), (std::vector<std::int16_t>{301, 302, 303}));
    EXPECT_EQ((u8 + -1.0).dtype(), DType::s16);
    EXPECT_EQ((u8 - 1.0).dtype(), DType::u8);
    EXPECT_EQ((s8 + 300.0).dtype(), map(parse_expr("x + 300", {DType::s8}), {s8}).dtype());
    EXPECT_EQ((s8 + 300.0).to_vector<std::int16_t>(), map(parse_expr("x + 300", {DType::s8}), {s8}).to_vector<std::int16_t>());
    // pred reads as u8 on both paths: a true + 2 is 3, and true == 2 is false.
    const Tensor pt = as_type(i, DType::pred);
    EXPECT_EQ((pt + 2.0).to_vector<std::uint8_t>(), map(parse_expr("x + 2", {DType::pred}), {pt}).to_vector<std::uint8_t>());
    EXPECT_EQ((pt + 2.0).to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{3, 3, 3}));
    EXPECT_EQ(map(parse_expr("x == 2", {DType::pred}), {pt}).to_vector<bool>(), (std::vector<bool>{false, false, false}));
    EXPECT_EQ((i * 2.5).to_vector<float>(), (std::vector<float>{2.5f, 5, 7.5f}));
    const Tensor h = Tensor::from_vector(std::vector<half>{half(1.0f)}, {1}, *d);
    EXPECT_EQ((h * 0.1).dtype(), DType::f16);  // a float tensor keeps its dtype
    // Just past every signed dtype: s64, wrapped (Nx's fallback, as expressions: never the
    // saturated maximum); past 64 bits: f32.
    const Tensor s64 = Tensor::from_vector(std::vector<std::int64_t>{0}, {1}, *d);
    const Tensor u64 = Tensor::from_vector(std::vector<std::uint64_t>{0}, {1}, *d);
    EXPECT_EQ((s64 + 0x1p63).dtype(), DType::s64);
    EXPECT_EQ((s64 + 0x1p63).to_vector<std::int64_t>(), (std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min()}));
    EXPECT_EQ((i + 0x1p63).dtype(), DType::s64);
    EXPECT_EQ((i + 0x1p63).to_vector<std::int64_t>(), map(parse_expr("x + 9223372036854775808", {DType::s32}), {i}).to_vector<std::int64_t>());
    EXPECT_EQ((s64 + -0x1p63).dtype(), DType::s64);  // the minimum is held
    EXPECT_EQ((s64 + -0x1p63).to_vector<std::int64_t>(), (std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min()}));
    EXPECT_EQ((u64 + 0x1p64).dtype(), DType::f32);
    EXPECT_EQ((u64 + 0x1p63).to_vector<std::uint64_t>(), (std::vector<std::uint64_t>{std::uint64_t(1) << 63}));
  }
}

TEST(Ops, TheReadmeExampleRuns) {
  // README.md, "Using the tensor API", with <kiln/kiln.hpp> only; checked against hand-computed values.
  auto x = kiln::Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});  // on the default device
  auto y = kiln::exp(x + x.transpose({1, 0})) * 0.5;            // broadcasting, views, Nx weak literals
  auto gelu = kiln::parse_expr("0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))",
                               {kiln::DType::f32});
  auto z = kiln::map(gelu, {y});                                 // one fused kernel
  std::vector<float> out = z.to_vector<float>();                 // dtype checked
  auto mask = z > kiln::zeros({2, 2}, kiln::DType::f32);         // pred tensor
  auto rows = kiln::sum(x, {-1});                                // reductions: [3, 7]
  auto where = kiln::argmax(x, 0);                               // s64 indices: [1, 1]
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{3, 7}));
  EXPECT_EQ(where.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 1}));
  const float s01 = 0.5f * std::exp(2.0f + 3.0f);                // y[0][1] = exp(x01 + x10) / 2
  EXPECT_NEAR(out[1], s01, 1e-5f * s01);                          // GELU(v) ~ v for large v
  EXPECT_EQ(mask.to_vector<bool>(), (std::vector<bool>{true, true, true, true}));
  kiln::ConvOptions same;
  same.padding = kiln::ConvPadding::same;
  auto img = kiln::conv(kiln::ones({1, 3, 8, 8}, kiln::DType::f32), kiln::ones({4, 3, 3, 3}, kiln::DType::f32), same);
  EXPECT_EQ(img.shape(), (Shape{1, 4, 8, 8}));
  const std::vector<float> px = img.to_vector<float>();  // windows of 3 channels: corner 2x2, edge 2x3, inside 3x3
  EXPECT_EQ(px[0], 12.0f);
  EXPECT_EQ(px[1], 18.0f);
  EXPECT_EQ(px[9], 27.0f);
}

TEST(Ops, TheReadmeJitExampleRuns) {
  // README.md, "Traced functions": layer norm written op by op, fused, against hand-computed values.
  auto x = kiln::Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  auto layer_norm = kiln::jit([](const kiln::Tensor& x, const kiln::Tensor& g, const kiln::Tensor& b) {
    auto d = x - kiln::sum(x, {-1}, true) / double(x.shape().back());          // written op by op ...
    return d * kiln::rsqrt(kiln::sum(d * d, {-1}, true) / double(x.shape().back()) + 1e-5) * g + b;
  });
  auto h = layer_norm(x, kiln::ones({2}, kiln::DType::f32), kiln::zeros({2}, kiln::DType::f32));
  const float s = 1.0f / std::sqrt(0.25f + 1e-5f);  // each row is mean +- 0.5
  const std::vector<float> got = h.to_vector<float>();
  const std::vector<float> want{-0.5f * s, 0.5f * s, -0.5f * s, 0.5f * s};
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(got[i], want[i], 1e-5f) << i;
  const std::string plan = layer_norm.plan(x, kiln::ones({2}, kiln::DType::f32), kiln::zeros({2}, kiln::DType::f32));
  EXPECT_NE(plan.find("11 launches traced; fused: 11 launches -> 1"), std::string::npos) << plan;
  EXPECT_EQ(layer_norm.stats().traces, 1u);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Ops, BroadcastAndPromoteLikeNx) {
  auto a = make<std::int32_t>({1, 2, 3}, {3}, DType::s32);
  auto b = make<float>({0.5f, 1.5f}, {2, 1}, DType::f32);
  auto c = add(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(c.dtype(), DType::f32);
  EXPECT_EQ(values<float>(c), (std::vector<float>{1.5f, 2.5f, 3.5f, 2.5f, 3.5f, 4.5f}));
  auto u = make<std::uint8_t>({200, 100}, {2}, DType::u8);
  auto s = make<std::int8_t>({-100, 50}, {2}, DType::s8);
  auto r = add(u, s);  // u8 + s8 -> s16, no wrap
  EXPECT_EQ(r.dtype(), DType::s16);
  EXPECT_EQ(values<std::int16_t>(r), (std::vector<std::int16_t>{100, 150}));
  auto e = exp(make<std::int32_t>({0, 1}, {2}, DType::s32));  // integers become f32
  EXPECT_EQ(e.dtype(), DType::f32);
  EXPECT_FLOAT_EQ(values<float>(e)[1], std::exp(1.0f));
  auto p = less(a, make<std::int32_t>({2}, {1}, DType::s32));
  EXPECT_EQ(p.dtype(), DType::pred);
  EXPECT_EQ(values<std::uint8_t>(p), (std::vector<std::uint8_t>{1, 0, 0}));
  auto sel = select(p, a, make<std::int32_t>({-1}, {}, DType::s32));
  EXPECT_EQ(values<std::int32_t>(sel), (std::vector<std::int32_t>{1, -1, -1}));
  // A pred operand of an op whose kernels do not take pred reads as u8 (floating ops: f32).
  const Tensor pr = as_type(make<float>({0, 1}, {2}, DType::f32), DType::pred);
  EXPECT_EQ(add(pr, pr).dtype(), DType::u8);
  EXPECT_EQ(values<std::uint8_t>(add(pr, pr)), (std::vector<std::uint8_t>{0, 2}));
  EXPECT_EQ(values<std::uint8_t>(negate(pr)), (std::vector<std::uint8_t>{0, 255}));
  EXPECT_EQ(exp(pr).dtype(), DType::f32);
  auto h = as_type(make<float>({1.5f, 70000.f}, {2}, DType::f32), DType::f16);
  EXPECT_EQ(values<std::uint16_t>(h), (std::vector<std::uint16_t>{0x3E00, 0x7C00}));
  // Seven dimensions that do not merge (broadcasts alternating between the operands: more than a
  // kernel takes): the operands are copied dense first; the values of the CPU reference.
  std::vector<float> va(24), vb(24);
  for (int i = 0; i < 24; ++i) va[std::size_t(i)] = float(i), vb[std::size_t(i)] = float(100 * i);
  Device& cpu = device("cpu");
  const Tensor a7 = Tensor::from_vector(va, {2, 1, 2, 1, 2, 1, 3}, cpu), b7 = Tensor::from_vector(vb, {1, 2, 1, 2, 1, 2, 3}, cpu);
  const std::vector<float> want = add(a7, b7).to_vector<float>();
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    const Tensor got = add(a7.to(*d), b7.to(*d));
    EXPECT_EQ(got.shape(), (Shape{2, 2, 2, 2, 2, 2, 3}));
    EXPECT_EQ(got.to(cpu).to_vector<float>(), want);
  }
  // One operand, seven dimensions that do not merge (a transposed view): copied dense first too.
  std::vector<float> v128(128);
  for (int i = 0; i < 128; ++i) v128[std::size_t(i)] = float(i) - 60;
  const Tensor x7 = Tensor::from_vector(v128, {2, 2, 2, 2, 2, 2, 2}, cpu).transpose({1, 0, 3, 2, 5, 4, 6});
  const std::vector<float> neg = negate(x7).to_vector<float>(), ex = exp(x7).to_vector<float>();
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    EXPECT_EQ(negate(x7.to(*d)).to(cpu).to_vector<float>(), neg);
    const Tensor e = exp(x7.to(*d)).to(cpu);
    EXPECT_EQ(e.shape(), x7.shape());
    EXPECT_EQ(as_type(x7.to(*d), DType::f64).to(cpu).to_vector<double>(), as_type(x7, DType::f64).to_vector<double>());
    // An identity map (a copy) of the same view: through the host, where the kernel cannot go.
    EXPECT_EQ(map(parse_expr("x", {DType::f32}), {x7.to(*d)}).to(cpu).to_vector<float>(), x7.to_vector<float>());
    EXPECT_EQ(x7.to(*d).contiguous().to(cpu).to_vector<float>(), x7.to_vector<float>());
  }
  // Rank 8, transposed: a row op and a scan copy dense first on a GPU; the values of the CPU's.
  std::vector<float> v256(256);
  for (int i = 0; i < 256; ++i) v256[std::size_t(i)] = float((i * 37) % 19) - 9;
  const Tensor x8 = Tensor::from_vector(v256, {2, 2, 2, 2, 2, 2, 2, 2}, cpu).transpose({1, 0, 3, 2, 5, 4, 7, 6});
  const Tensor g = Tensor::from_vector(std::vector<float>{0.5f, 2}, {2}, cpu), be = Tensor::from_vector(std::vector<float>{1, -1}, {2}, cpu);
  const std::vector<float> sm = softmax(x8, -1).to_vector<float>(), cs = cumulative_sum(x8, {.axis = 1}).to_vector<float>();
  const std::vector<float> ln = layer_norm(x8, &g, &be).to_vector<float>();
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    const std::vector<float> got = softmax(x8.to(*d), -1).to(cpu).to_vector<float>();
    ASSERT_EQ(got.size(), sm.size());
    for (std::size_t i = 0; i < sm.size(); ++i) EXPECT_NEAR(got[i], sm[i], 1e-6f);
    EXPECT_EQ(cumulative_sum(x8.to(*d), {.axis = 1}).to(cpu).to_vector<float>(), cs);
    const Tensor gd = g.to(*d), bd = be.to(*d);
    const std::vector<float> gl = layer_norm(x8.to(*d), &gd, &bd).to(cpu).to_vector<float>();
    for (std::size_t i = 0; i < ln.size(); ++i) EXPECT_NEAR(gl[i], ln[i], 1e-5f);
  }
}

// Inputs declared to parse_expr but not read keep their place and dtype: the operands line up
// (an unused first input read as an s32 placeholder before, and an unused last one as absent).
TEST(Ops, DeclaredInputsKeepTheirPlaceUsedOrNot) {
  const Expr second = parse_expr("y / 4", {DType::f32, DType::f32});
  EXPECT_EQ(second.input_dtypes(), (std::vector<DType>{DType::f32, DType::f32}));
  const Expr first = parse_expr("round(x)", {DType::f32, DType::bf16});
  EXPECT_EQ(first.input_dtypes(), (std::vector<DType>{DType::f32, DType::bf16}));
  Device& cpu = device("cpu");
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2}, {2}, cpu), b = Tensor::from_vector(std::vector<float>{8, 12}, {2}, cpu);
  for (Device* d : devices()) {
    SCOPED_TRACE(d->id());
    EXPECT_EQ(map(second, {a.to(*d), b.to(*d)}).to(cpu).to_vector<float>(), (std::vector<float>{2, 3}));
    EXPECT_EQ(map(first, {b.to(*d), as_type(a, DType::bf16).to(*d)}).to(cpu).to_vector<float>(), (std::vector<float>{8, 12}));
  }
}

TEST(Ops, ScalarAndEmptyTensors) {
  auto s = make<float>({2}, {}, DType::f32);
  EXPECT_EQ(multiply(s, s).shape(), Shape{});
  EXPECT_FLOAT_EQ(values<float>(multiply(s, s))[0], 4);
  auto z = Tensor::empty({0, 3}, DType::f32, device("cpu"));
  EXPECT_EQ(add(z, z).numel(), 0);
  EXPECT_EQ(add(z, s).shape(), (Shape{0, 3}));
}


TEST(Ops, ErrorsNameOpShapesDtypesAndDevice) {
  auto a = make<float>(std::vector<float>(12), {4, 3}, DType::f32);
  auto b = make<float>(std::vector<float>(8), {4, 2}, DType::f32);
  const std::string m = error_of([&] { add(a, b); });
  EXPECT_NE(m.find("kiln::add"), std::string::npos) << m;
  EXPECT_NE(m.find("[4,3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[4,2]"), std::string::npos) << m;
  EXPECT_NE(m.find("f32"), std::string::npos) << m;
  EXPECT_NE(m.find("cpu"), std::string::npos) << m;
  const std::string d = error_of([&] { bitwise_and(a, a); });
  EXPECT_NE(d.find("bitwise_and does not accept f32"), std::string::npos) << d;
  const std::string u = error_of([] { device("cuda:7"); });
  EXPECT_NE(u.find("cuda:7"), std::string::npos) << u;
  const std::string n = error_of([&] { add(a, Tensor()); });
  EXPECT_NE(n.find("undefined"), std::string::npos) << n;
}

TEST(Ops, ErrorsDescribeEachDeviceAndTheOutputsLayout) {
  auto a = make<float>({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  for (Device* d : devices()) {
    if (d->backend() == Backend::cpu) continue;
    const std::string m = error_of([&] { add(a, a.to(*d)); });
    EXPECT_NE(m.find("f32 on cpu, f32 on " + d->id()), std::string::npos) << m;
    break;
  }
  // An output of the right shape and dtype but not contiguous: the message shows why it differs.
  auto storage = make<float>(std::vector<float>(6), {3, 2}, DType::f32).transpose({1, 0});
  const std::string m = error_of([&] { map(parse_expr("x * 2", {DType::f32}), {a}, std::nullopt, &storage); });
  EXPECT_NE(m.find("must be a contiguous [2,3] f32 on cpu, got [2,3] f32 on cpu, strides [1,2] (not contiguous)"),
            std::string::npos) << m;
  // Five inputs: every device refuses with the map family's limit, the CPU too (a program checked
  // on the CPU reference must not break on a GPU).
  const std::vector<DType> five(5, DType::f32);
  const Expr sum5 = parse_expr("in0 + in1 + in2 + in3 + in4", five);
  for (Device* d : devices()) {
    const std::vector<Tensor> ins_d(5, a.to(*d));
    EXPECT_NE(error_of([&] { map(sum5, ins_d); }).find("5 inputs; map kernels take at most 4"), std::string::npos)
        << d->id();
  }
  EXPECT_EQ(error_code_name(ErrorCode::invalid_argument), "invalid_argument");  // as the docs spell it
  EXPECT_EQ(error_code_name(ErrorCode::out_of_memory), "out_of_memory");
}

TEST(Devices, KilnDeviceErrorsNameTheVariableAndListTheDevices) {
  const char* old = std::getenv("KILN_DEVICE");
  const std::string saved = old ? old : "";
  ::setenv("KILN_DEVICE", "  cpu ", 1);
  EXPECT_EQ(default_device().id(), "cpu");  // surrounding spaces trimmed
  ::setenv("KILN_DEVICE", "vulkan:9", 1);
  const std::string m = error_of([] { default_device(); });
  EXPECT_NE(m.find("KILN_DEVICE=\"vulkan:9\""), std::string::npos) << m;
  EXPECT_NE(m.find("devices here: "), std::string::npos) << m;
  EXPECT_NE(m.find("cpu"), std::string::npos) << m;
  if (old) ::setenv("KILN_DEVICE", saved.c_str(), 1);
  else ::unsetenv("KILN_DEVICE");
}

TEST(Ops, FusedMapMatchesOpByOp) {
  std::vector<float> xs = {-2, -0.5f, 0, 0.25f, 1, 3};
  auto x = make<float>(xs, {6}, DType::f32);
  auto y = make<float>({0.5f}, {1}, DType::f32);
  Expr e = parse_expr("x * sigmoid(x) + y", {DType::f32, DType::f32});
  auto fused = map(e, {x, y});
  auto unfused = add(multiply(x, sigmoid(x)), y);
  EXPECT_EQ(values<float>(fused), values<float>(unfused));
  EXPECT_THROW(map(e, {x}), Error);
  EXPECT_THROW(map(e, {x, as_type(y, DType::f16)}), Error);
}

TEST(Devices, CpuIsAlwaysThereAndDefaultHonoursEnvironment) {
  bool cpu = false;
  for (Device* d : devices()) cpu = cpu || d->backend() == Backend::cpu;
  EXPECT_TRUE(cpu);
  EXPECT_EQ(device("cpu").id(), "cpu");
  EXPECT_FALSE(default_device().id().empty());
  for (const auto& s : backend_status()) {
    if (!s.available) {
      EXPECT_FALSE(s.reason.empty()) << backend_name(s.backend);
    }
  }
}

TEST(Devices, TransfersBetweenDevicesKeepValues) {
  for (Device* d : devices()) {
    auto x = make<std::int16_t>({1, -2, 3, -4, 5, -6}, {2, 3}, DType::s16);
    auto on = x.transpose({1, 0}).to(*d);
    EXPECT_EQ(&on.device(), d);
    EXPECT_EQ(values<std::int16_t>(on.to(device("cpu"))), (std::vector<std::int16_t>{1, -4, -2, 5, 3, -6}))
        << d->id();
  }
}

TEST(Devices, ContiguousCopiesViewsOnEveryDevice) {
  for (Device* d : devices()) {
    for (DType t : {DType::pred, DType::f16, DType::f32, DType::f64}) {
      std::vector<std::uint8_t> bytes(6 * 4 * dtype_size(t));
      for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::uint8_t(i * 7 + 1);
      if (t == DType::pred)
        for (auto& b : bytes) b &= 1;
      auto x = Tensor::from_host(bytes.data(), bytes.size(), {6, 4}, t, *d);
      auto view = x.transpose({1, 0}).slice(1, 1, 6, 2);
      auto dense = view.contiguous();
      EXPECT_TRUE(dense.is_contiguous());
      EXPECT_EQ(dense.dtype(), t);
      EXPECT_EQ(dense.to_host(), view.to(device("cpu")).to_host()) << d->id() << " " << dtype_name(t);
    }
  }
}

}  // namespace
}  // namespace kiln
