// f32 error functions (erf, erfc, erf_inv), inlined after glsl/math_f32.glsl (whose exp and
// float-float helpers they use) by glsl_prelude (codegen/emit.cpp) wherever math_f32.glsl is;
// erf_f64.glsl starts from kiln_erf_inv_poly. Accuracy: docs/semantics.md "Accuracy".
// erfc(z), z >= 1/2, as e^(-z^2) erfcx(z) (the method of erf_f64.glsl in floats): z^2 split exactly,
// e^(-z^2) unrounded (kiln_exp_ff_parts), erfcx = e^(z^2) erfc(z) by its Taylor series around the
// nearest a = 1/2 + k/4 from a table of erfcx(a), erfcx'(a) (mpmath) and the recurrence
// t_{n+1} = (2a t_n + 2 t_{n-1}) / (n+1), or its continued fraction beyond 6.125. (Numerical
// Recipes' erfcc fit, 1.2e-7 relative, left up to 5.7 ulp.)
vec2 kiln_erfcx_base(int k) {
  switch (k) {
    case 0: return vec2(0.6156903505325317, -0.5126888155937195);
    case 1: return vec2(0.5069376230239868, -0.3679727017879486);
    case 2: return vec2(0.42758357524871826, -0.2732120156288147);
    case 3: return vec2(0.36782291531562805, -0.2088218778371811);
    case 4: return vec2(0.32158541679382324, -0.1636229157447815);
    case 5: return vec2(0.284972220659256, -0.1309763491153717);
    case 6: return vec2(0.25539568066596985, -0.10679645836353302);
    case 7: return vec2(0.23108725249767303, -0.08848650008440018);
    case 8: return vec2(0.21080636978149414, -0.0743473470211029);
    case 9: return vec2(0.19366209208965302, -0.06323763728141785);
    case 10: return vec2(0.17900115251541138, -0.054372258484363556);
    case 11: return vec2(0.1663353443145752, -0.04719940200448036);
    case 12: return vec2(0.15529365837574005, -0.041323576122522354);
    case 13: return vec2(0.14558972418308258, -0.03645625710487366);
    case 14: return vec2(0.1369994580745697, -0.0323835052549839);
    case 15: return vec2(0.12934526801109314, -0.028944332152605057);
    case 16: return vec2(0.12248480319976807, -0.026015928015112877);
    case 17: return vec2(0.11630270630121231, -0.02350344881415367);
    case 18: return vec2(0.11070463806390762, -0.021332789212465286);
    case 19: return vec2(0.10561273247003555, -0.019445445388555527);
    case 20: return vec2(0.10096222162246704, -0.017794765532016754);
    case 21: return vec2(0.09669877588748932, -0.016343217343091965);
    default: return vec2(0.09277656674385071, -0.015060353092849255);
  }
}
float kiln_erfcx(float z) {  // z >= 0.375
  if (z > 6.125) {  // asymptotic series to 1/z^17: the next term is < 2e-9 of the sum from 6.125
    const float y = 1.0 / z;
    precise float w = y * y;
    precise float p = -2027025.0 / 256.0;
    p = p * w + 135135.0 / 128.0;
    p = p * w - 10395.0 / 64.0;
    p = p * w + 945.0 / 32.0;
    p = p * w - 105.0 / 16.0;
    p = p * w + 15.0 / 8.0;
    p = p * w - 0.75;
    p = p * w + 0.5;
    precise float r = (0.5641895835477563 * (1.0 - w * p)) / z;  // (1/sqrt(pi) y rounded twice: 4.3 ulp)
    return r;
  }
  const int k = clamp(int(roundEven((z - 0.5) * 4.0)), 0, 22);
  const float a = 0.5 + 0.25 * float(k);
  const vec2 t01 = kiln_erfcx_base(k);
  precise float h = z - a;  // exact
  float t[11];
  t[0] = t01.x;
  t[1] = t01.y;
  [[unroll]] for (int n = 1; n < 10; ++n) {
    precise float tn = (2.0 * a * t[n] + 2.0 * t[n - 1]) * (1.0 / float(n + 1));  // a constant once unrolled
    t[n + 1] = tn;
  }
  precise float s = t[10];
  [[unroll]] for (int n = 9; n >= 0; --n) s = s * h + t[n];
  return s;
}
float kiln_erfc_pos(float z) {
  if (z > 10.06) return 0.0;  // erfc(10.06) < 2^-150
  float p, pl;
  kiln_two_prod(z, z, p, pl);
  int k;
  const float v = kiln_exp_ff_parts(-p, -pl, k);
  precise float r = v * kiln_erfcx(max(z, 0.375));
  const int k1 = k / 2;
  return (r * uintBitsToFloat(uint(k1 + 127) << 23)) * uintBitsToFloat(uint(k - k1 + 127) << 23);
}
// erf(x), |x| < 1: x (2/sqrt(pi) + x^2 P(x^2)), Maclaurin to x^25 (truncation < 1e-10), the leading
// product exact (2/sqrt(pi) in two floats): ~0.6 ulp, which erf_inv's Newton step needs (rounding
// 2/sqrt(pi) (x + ...) cost 1.8 ulp, and erf_inv 2.7). Beyond, 1 - erfc (erfc < 0.16).
// c x for |x| < 2^-60 (erf, erf_inv), c = ch + cl: scaled by 2^64 first so that the exact product's
// low part does not underflow (1.35 ulp at 1.1e-38), then scaled back (exact unless subnormal).
float kiln_times_tiny(float x, float ch, float cl) {
  const float s = x * 18446744073709551616.0;
  float h, l;
  kiln_two_prod(s, ch, h, l);
  precise float r = h + (l + s * cl);
  return r * 5.421010862427522e-20;
}
// erf(x) = h + l unrounded, |x| < 1 (kiln_erf_series and erf_inv's Newton residual)
void kiln_erf_series_parts(float x, out float h, out float l) {
  precise float z = x * x;
  precise float p = 9.4227591007634e-11;
  p = p * z - 1.2290555240213052e-09;
  p = p * z + 1.4807192805221803e-08;
  p = p * z - 1.6365844146548625e-07;
  p = p * z + 1.6462114444948384e-06;
  p = p * z - 1.4925650248187594e-05;
  p = p * z + 0.00012055332626914605;
  p = p * z - 0.0008548327023163438;
  p = p * z + 0.005223977845162153;
  p = p * z - 0.02686617150902748;
  p = p * z + 0.11283791810274124;
  p = p * z - 0.37612637877464294;
  float pl;
  kiln_two_prod(x, 1.128379225730896, h, pl);
  precise float lo = pl + (x * -5.8635382771399236e-08 + x * z * p);
  l = lo;
}
float kiln_erf_series(float x) {
  if (abs(x) < 8.673617379884035e-19) return kiln_times_tiny(x, 1.128379225730896, -5.8635382771399236e-08);
  float h, l;
  kiln_erf_series_parts(x, h, l);
  precise float r = h + l;
  return r;
}
float kiln_erf(float x) {
  if (x == 0.0) return x;  // +-0 keeps its sign (the reference, CUDA)
  if (kiln_isnan(x)) return x;
  const float a = abs(x);
  if (a < 1.0) return kiln_erf_series(x);
  precise float r = 1.0 - kiln_erfc_pos(a);
  return kiln_copysign(r, x);
}
float kiln_erfc(float x) {
  if (kiln_isnan(x)) return x;
  if (abs(x) < 0.5) {
    precise float r = 1.0 - kiln_erf(x);
    return r;
  }
  if (x > 0.0) return kiln_erfc_pos(x);
  precise float r = 2.0 - kiln_erfc_pos(-x);
  return r;
}
// erf_inv: Giles' single-precision approximation ("Approximating the erfinv function", 2010),
// erf_inv(y) ~ y * kiln_erf_inv_poly(-log((1 - y) (1 + y))) (also erf_f64.glsl's first guess), and
// one Newton step on kiln_erf.
float kiln_erf_inv_poly(float w) {
  precise float p;
  if (w < 5.0) {
    w = w - 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  return p;
}
float kiln_erf_inv(float y) {
  if (y == 0.0) return y;  // +-0 keeps its sign (the reference, CUDA)
  if (kiln_isnan(y) || abs(y) > 1.0) return kiln_nan_f32();
  if (abs(y) == 1.0) return kiln_copysign(kiln_inf_f32(), y);
  const float a = abs(y);
  if (a < 8.673617379884035e-19) return kiln_times_tiny(y, 0.8862269520759583, -2.6623199644859596e-08);  // sqrt(pi)/2 y
  precise float w = -log((1.0 - a) * (1.0 + a));
  precise float r = kiln_erf_inv_poly(w) * a;
  // One Newton step, on erf below 3/4 and on erfc(r) = 1 - a (exact) above: near 1 an error in
  // erf(r) is multiplied by e^(r^2) (2.1 ulp at 0.985), one in erfc(r) only by its own size, and
  // from 3/4 erfc < 1/4, a binade down. Below, a - erf(r) from erf's unrounded parts (a rounded erf,
  // or erfc from 5/8, left 2.004 ulp at 0.712; erf's parts up to erf(1), 2.72 at 0.839).
  float d;
  if (a < 0.75) {
    float h, l, s, e;
    kiln_erf_series_parts(r, h, l);
    kiln_two_sum(a, -h, s, e);
    precise float dd = s + (e - l);
    d = dd;
  } else {
    precise float dd = kiln_erfc_pos(r) - (1.0 - a);
    d = dd;
  }
  precise float step = d * 0.886226925452758 * kiln_exp(r * r);
  r = r + step;
  return kiln_copysign(r, y);
}
