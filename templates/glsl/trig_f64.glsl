// f64 trigonometric functions (sin cos tan atan atan2 asin acos), inlined after glsl/math_f64.glsl
// (its double-double helpers) when an expression uses one on f64. Bounds: 2 ulp each (CUDA's
// documented sin cos tan asin acos atan atan2 for double), measured by kiln-accuracy.
const double kiln_kPi_2_hi = 1.5707963267948966LF, kiln_kPi_2_lo = 6.123233995736766e-17LF;
const double kiln_kPi_hi = 3.141592653589793LF, kiln_kPi_lo = 1.2246467991473532e-16LF;

// ---- argument reduction: a = q pi/2 + (r + rl), |r| <= pi/4 (about), a >= 0 -------------------
// 2/pi in binary from the binary point, 32 bits a word (1280 bits: every f64 exponent plus the
// 192-bit window). A switch, not an indexed constant array (see kiln_2_over_pi_word in math_f32).
uint kiln_2_over_pi_word64(int i) {
  switch (i) {
    case 0: return 0xA2F9836Eu; case 1: return 0x4E441529u; case 2: return 0xFC2757D1u; case 3: return 0xF534DDC0u;
    case 4: return 0xDB629599u; case 5: return 0x3C439041u; case 6: return 0xFE5163ABu; case 7: return 0xDEBBC561u;
    case 8: return 0xB7246E3Au; case 9: return 0x424DD2E0u; case 10: return 0x06492EEAu; case 11: return 0x09D1921Cu;
    case 12: return 0xFE1DEB1Cu; case 13: return 0xB129A73Eu; case 14: return 0xE88235F5u; case 15: return 0x2EBB4484u;
    case 16: return 0xE99C7026u; case 17: return 0xB45F7E41u; case 18: return 0x3991D639u; case 19: return 0x835339F4u;
    case 20: return 0x9C845F8Bu; case 21: return 0xBDF9283Bu; case 22: return 0x1FF897FFu; case 23: return 0xDE05980Fu;
    case 24: return 0xEF2F118Bu; case 25: return 0x5A0A6D1Fu; case 26: return 0x6D367ECFu; case 27: return 0x27CB09B7u;
    case 28: return 0x4F463F66u; case 29: return 0x9E5FEA2Du; case 30: return 0x7527BAC7u; case 31: return 0xEBE5F17Bu;
    case 32: return 0x3D0739F7u; case 33: return 0x8A5292EAu; case 34: return 0x6BFB5FB1u; case 35: return 0x1F8D5D08u;
    case 36: return 0x56033046u; case 37: return 0xFC7B6BABu; case 38: return 0xF0CFBC20u; default: return 0x9AF4361Du;
  }
}
// The 32 bits of 2/pi weighing 2^-(s+1) ... 2^-(s+32) (zeros before the binary point).
uint kiln_2_over_pi_bits64(int s) {
  if (s <= -32) return 0u;
  if (s < 0) return 0xA2F9836Eu >> uint(-s);
  const int i = s >> 5, o = s & 31;
  const uint hi = kiln_2_over_pi_word64(i), lo = kiln_2_over_pi_word64(i + 1);
  return o == 0 ? hi : (hi << uint(o)) | (lo >> uint(32 - o));
}
// Payne-Hanek for a >= 2^20: a = M 2^E (M < 2^53). The bits of 2/pi weighing 2^-k, k <= E - 2, add
// multiples of 4 to a 2/pi, so the 192 bits V from 2^-(E-1) on give a 2/pi = M V 2^-190 (mod 4;
// the bits after them add < 2^-137): q = bits 190-191 of M V, the fraction the 190 bits below,
// centred to [-1/2, 1/2), as a double-double (sum of its 32-bit limbs, each exact), times pi/2.
double kiln_trig_reduce_huge64(double a, out int q, out double rl) {
  const uint64_t ua = doubleBitsToUint64(a);
  const int s = int(ua >> 52) - 1077;  // E - 2
  const uint64_t m = (ua & 0xFFFFFFFFFFFFFul) | 0x10000000000000ul;
  const uint64_t ml = m & 0xFFFFFFFFul, mh = m >> 32;
  uint64_t L[6], H[6];  // M V = sum over k of (ml + mh 2^32) V_k 2^(32 (5 - k)), V_0 the top word
  [[unroll]] for (int k = 0; k < 6; ++k) {
    const uint64_t v = uint64_t(kiln_2_over_pi_bits64(s + 32 * k));
    L[k] = ml * v;
    H[k] = mh * v;
  }
  uint limb[6];
  uint64_t carry = 0ul;
  [[unroll]] for (int c = 0; c < 6; ++c) {  // column c weighs 2^(32 c)
    uint64_t sum = carry + (L[5 - c] & 0xFFFFFFFFul);
    if (c >= 1) sum += (L[6 - c] >> 32) + (H[6 - c] & 0xFFFFFFFFul);
    if (c >= 2) sum += H[7 - c] >> 32;
    limb[c] = uint(sum);
    carry = sum >> 32;
  }
  q = int(limb[5] >> 30);
  limb[5] &= 0x3FFFFFFFu;
  const bool neg = (limb[5] >> 29) != 0u;  // fraction >= 1/2: take fraction - 1
  if (neg) {
    q += 1;
    uint borrow = 1u;  // 2^190 - F: complement and add one
    [[unroll]] for (int c = 0; c < 6; ++c) {
      const uint v = ~limb[c] + borrow;
      borrow = (borrow == 1u && v == 0u) ? 1u : 0u;
      limb[c] = v;
    }
    limb[5] &= 0x3FFFFFFFu;
  }
  q &= 3;
  double h = double(limb[5]) * kiln_pow2_64(-30), l = 0.0LF;
  [[unroll]] for (int c = 4; c >= 0; --c) kiln_dd_add(h, l, double(limb[c]) * kiln_pow2_64(32 * c - 190), 0.0LF);
  double r;
  kiln_two_prod(h, kiln_kPi_2_hi, r, rl);
  rl = rl + (h * kiln_kPi_2_lo + l * kiln_kPi_2_hi);
  double rh;
  kiln_fast_two_sum(r, rl, rh, rl);
  if (neg) {
    rh = -rh;
    rl = -rl;
  }
  return rh;
}
// Cody-Waite below 2^20 (j < 2^20): pi/2 in three 33-bit parts and a fourth, so each j P_i is
// exact, the first difference exact and the next two summed exactly; j hidden as in kiln_exp_core64.
double kiln_trig_reduce64(double a, out int q, out double rl) {
  if (a >= 1048576.0LF) return kiln_trig_reduce_huge64(a, q, rl);
  const double j = floor(a * 0.6366197723675814LF + 0.5LF);
  q = int(j) & 3;
  const double j2 = kiln_hide(j, 1), j3 = kiln_hide(j, 2), j4 = kiln_hide(j, 3);
  precise double r0 = a - j * 1.5707963267341256LF;
  double r1, e1, r2, e2;
  kiln_two_sum(r0, -(j2 * 6.077100506303966e-11LF), r1, e1);
  kiln_two_sum(r1, -(j3 * 2.0222662487111665e-21LF), r2, e2);
  precise double lo = (e1 + e2) - j4 * 8.4784276603689e-32LF;
  double r;
  kiln_fast_two_sum(r2, lo, r, rl);
  return r;
}
// sin(r + rl) = s + sl: r + r^3 (-1/6 + ... + r^16/17!) (truncation < 2^-60 for |r| <= pi/4 + a bit).
void kiln_sin_dd64(double r, double rl, out double s, out double sl) {
  precise double z = r * r;
  precise double p = 2.8114572543455206e-15LF;
  p = p * z - 7.647163731819816e-13LF;
  p = p * z + 1.6059043836821613e-10LF;
  p = p * z - 2.505210838544172e-08LF;
  p = p * z + 2.7557319223985893e-06LF;
  p = p * z - 0.0001984126984126984LF;
  p = p * z + 0.008333333333333333LF;
  p = p * z - 0.16666666666666666LF;
  precise double t = r * z * p + rl * (1.0LF - 0.5LF * z);
  s = r;
  sl = t;
}
// cos(r + rl) = c + cl: 1 - r^2/2 with r^2 split exactly and 1 - h summed exactly, + r^4 (...r^18).
void kiln_cos_dd64(double r, double rl, out double c, out double cl) {
  double z, ze;
  kiln_two_prod(r, r, z, ze);
  precise double p = -1.5619206968586225e-16LF;
  p = p * z + 4.779477332387385e-14LF;
  p = p * z - 1.1470745597729725e-11LF;
  p = p * z + 2.08767569878681e-09LF;
  p = p * z - 2.755731922398589e-07LF;
  p = p * z + 2.48015873015873e-05LF;
  p = p * z - 0.001388888888888889LF;
  p = p * z + 0.041666666666666664LF;
  const double h = 0.5LF * z;
  const double w = kiln_hide(1.0LF - h);
  precise double e = (1.0LF - w) - h;
  precise double t = e + (z * z * p - (0.5LF * ze + r * rl));
  c = w;
  cl = t;
}
double kiln_sin(double x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f64();
  const double a = abs(x);
  if (a < 1.0e-8LF) return x;  // x^3/6 below half an ulp; keeps -0
  int q;
  double rl, v, vl;
  const double r = kiln_trig_reduce64(a, q, rl);
  if ((q & 1) == 0) kiln_sin_dd64(r, rl, v, vl); else kiln_cos_dd64(r, rl, v, vl);
  precise double y = v + vl;
  if (q >= 2) y = -y;
  return kiln_signbit(x) ? -y : y;
}
double kiln_cos(double x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f64();
  int q;
  double rl, v, vl;
  const double r = kiln_trig_reduce64(abs(x), q, rl);
  if ((q & 1) == 0) kiln_cos_dd64(r, rl, v, vl); else kiln_sin_dd64(r, rl, v, vl);
  precise double y = v + vl;
  return (q == 1 || q == 2) ? -y : y;
}
// tan = sin / cos (or -cos / sin), both double-doubles, the quotient corrected once.
double kiln_tan(double x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f64();
  const double a = abs(x);
  if (a < 1.0e-8LF) return x;
  int q;
  double rl, s, sl, c, cl;
  const double r = kiln_trig_reduce64(a, q, rl);
  kiln_sin_dd64(r, rl, s, sl);
  kiln_cos_dd64(r, rl, c, cl);
  kiln_fast_two_sum(s, sl, s, sl);  // normalized: the quotient's correction divides by the high part
  kiln_fast_two_sum(c, cl, c, cl);
  double n = s, nl = sl, d = c, dl = cl;
  if ((q & 1) == 1) {
    n = -c;
    nl = -cl;
    d = s;
    dl = sl;
  }
  const double t = kiln_hide(n / d);
  precise double y = t + (kiln_residual64(t, d, n) + (nl - t * dl)) / d;
  return kiln_signbit(x) ? -y : y;
}

// ---- inverse functions ----------------------------------------------------------------------------
// atan(c_k) (or pi/2 - atan(c_k) when inv), c_k = k/8, as double-doubles (mpmath).
dvec2 kiln_atan_base64(int k, bool inv) {
  if (inv) {
    switch (k) {
      case 0: return dvec2(1.5707963267948966LF, 6.123233995736766e-17LF);
      case 1: return dvec2(1.446441332248135LF, 9.211323971545052e-17LF);
      case 2: return dvec2(1.3258176636680326LF, -8.824429373951136e-17LF);
      case 3: return dvec2(1.2120256565243244LF, 3.034500430874847e-17LF);
      case 4: return dvec2(1.1071487177940904LF, 9.40447137356638e-17LF);
      case 5: return dvec2(1.0121970114513341LF, 6.668797050595929e-17LF);
      case 6: return dvec2(0.9272952180016122LF, 4.5397554905923374e-17LF);
      case 7: return dvec2(0.8519663271732721LF, -2.831157406069101e-17LF);
      default: return dvec2(0.7853981633974483LF, 3.061616997868383e-17LF);
    }
  }
  switch (k) {
    case 0: return dvec2(0.0LF, 0.0LF);
    case 1: return dvec2(0.12435499454676144LF, -3.1253241424539383e-18LF);
    case 2: return dvec2(0.24497866312686414LF, 1.0698755618734451e-17LF);
    case 3: return dvec2(0.35877067027057225LF, -2.4623815582638635e-17LF);
    case 4: return dvec2(0.4636476090008061LF, 2.2698777452961687e-17LF);
    case 5: return dvec2(0.5585993153435624LF, -5.4556305485916264e-18LF);
    case 6: return dvec2(0.6435011087932844LF, 1.5834785051444286e-17LF);
    case 7: return dvec2(0.7188299996216245LF, -2.1478388444456983e-17LF);
    default: return dvec2(0.7853981633974483LF, 3.061616997868383e-17LF);
  }
}
// atan(y + yl) (inv: pi/2 - atan(y + yl)) as hi + lo for y in [0, 1]: c = k/8 nearest y,
// atan(y) = atan(c) + atan(t), t = (y - c) / (1 + c y) as a double-double (|t| <= 1/16), atan(t)
// by its series to t^19 (truncation < 2^-64 relative).
double kiln_atan_core64(double y, double yl, bool inv, out double lo) {
  const int k = int(roundEven(y * 8.0LF));
  const double c = double(k) * 0.125LF;
  const double nh = y - c;  // exact: c = 0 or within a factor 2 of y
  double cy, cye, dh, dl;
  kiln_two_prod(c, y, cy, cye);
  kiln_two_sum(1.0LF, cy, dh, dl);
  dl = dl + (cye + c * yl);
  const double th = kiln_hide(nh / dh);
  precise double tl = (kiln_residual64(th, dh, nh) + (yl - th * dl)) / dh;
  precise double z = th * th;
  precise double p = -0.05263157894736842LF;
  p = p * z + 0.058823529411764705LF;
  p = p * z - 0.06666666666666667LF;
  p = p * z + 0.07692307692307693LF;
  p = p * z - 0.09090909090909091LF;
  p = p * z + 0.1111111111111111LF;
  p = p * z - 0.14285714285714285LF;
  p = p * z + 0.2LF;
  p = p * z - 0.3333333333333333LF;
  precise double small = tl + th * z * p;
  const dvec2 base = kiln_atan_base64(k, inv);
  double s, e;
  if (inv) {
    kiln_two_sum(base.x, -th, s, e);
    small = e + (base.y - small);
  } else {
    kiln_two_sum(base.x, th, s, e);
    small = e + (base.y + small);
  }
  double hi;
  kiln_fast_two_sum(s, small, hi, lo);
  return hi;
}
double kiln_atan(double x) {
  if (kiln_isnan(x)) return x;
  const double a = abs(x);
  if (a < 1.0e-8LF) return x;
  if (kiln_isinf(x)) return kiln_copysign(kiln_kPi_2_hi, x);
  double h, l;
  if (a <= 1.0LF) {
    h = kiln_atan_core64(a, 0.0LF, false, l);
  } else {
    const double y = kiln_hide(1.0LF / a);
    precise double yl = a < 1.0e290LF ? kiln_residual64(a, y, 1.0LF) / a : 0.0LF;  // beyond, below y's ulp
    h = kiln_atan_core64(y, yl, true, l);
  }
  precise double r = h + l;
  return kiln_copysign(r, x);
}
double kiln_atan2(double y, double x) {  // C atan2 including zeros and infinities
  if (kiln_isnan(x) || kiln_isnan(y)) return kiln_nan_f64();
  const double ay = abs(y), ax = abs(x);
  precise double r;
  if (ay == 0.0LF && ax == 0.0LF) {
    r = kiln_signbit(x) ? kiln_kPi_hi : 0.0LF;
  } else if (kiln_isinf(ax) && kiln_isinf(ay)) {
    r = x > 0.0LF ? 0.7853981633974483LF : 2.356194490192345LF;
  } else if (kiln_isinf(ax)) {
    r = x > 0.0LF ? 0.0LF : kiln_kPi_hi;
  } else if (kiln_isinf(ay)) {
    r = kiln_kPi_2_hi;
  } else {
    // the quotient of the smaller by the larger as a double-double (exact remainder)
    // (scaled so that den is in [1, 2): the exact product needs |den| < 2^995)
    const bool inv = ay > ax;
    const int e = int((doubleBitsToUint64(inv ? ay : ax) >> 52) & 0x7FFul) - 1023;
    const double num = kiln_scale64(inv ? ax : ay, -e), den = kiln_scale64(inv ? ay : ax, -e);
    const double t = kiln_hide(num / den);
    precise double tl = kiln_residual64(t, den, num) / den;
    double h, l;
    h = kiln_atan_core64(t, tl, inv, l);
    if (x < 0.0LF) {
      double s, e;
      kiln_two_sum(kiln_kPi_hi, -h, s, e);
      r = s + (e + (kiln_kPi_lo - l));
    } else {
      r = h + l;
    }
  }
  return kiln_copysign(r, y);
}
// asin(s + sl) = hi + lo for s in [0, 1/2]: s + s^3 (1/6 + ... s^50 c_26) (Taylor to s^53,
// truncation < 2^-62), sl's share to first order.
double kiln_asin_series64(double s, double sl, out double lo) {
  precise double z = s * s;
  precise double p = 0.0020776610325181676LF;
  p = p * z + 0.0022014739737101384LF;
  p = p * z + 0.002338091892111975LF;
  p = p * z + 0.0024894486782468836LF;
  p = p * z + 0.00265787063820729LF;
  p = p * z + 0.002846178401108942LF;
  p = p * z + 0.0030578216492580306LF;
  p = p * z + 0.003297059503473485LF;
  p = p * z + 0.0035692053938259347LF;
  p = p * z + 0.003880964558837669LF;
  p = p * z + 0.004240907093679363LF;
  p = p * z + 0.004660143486915096LF;
  p = p * z + 0.005153309682319905LF;
  p = p * z + 0.005740037670841924LF;
  p = p * z + 0.006447210311889649LF;
  p = p * z + 0.0073125258735988454LF;
  p = p * z + 0.008390335809616815LF;
  p = p * z + 0.009761609529194078LF;
  p = p * z + 0.011551800896139705LF;
  p = p * z + 0.01396484375LF;
  p = p * z + 0.017352764423076924LF;
  p = p * z + 0.022372159090909092LF;
  p = p * z + 0.030381944444444444LF;
  p = p * z + 0.044642857142857144LF;
  p = p * z + 0.075LF;
  p = p * z + 0.16666666666666666LF;
  precise double t = s * z * p + sl * (1.0LF + 0.5LF * z);
  double hi;
  kiln_fast_two_sum(s, t, hi, lo);
  return hi;
}
// sqrt((1 - |x|) / 2) as s + sl, for |x| >= 1/2 ((1 - |x|) / 2 is exact there).
double kiln_asin_half_angle64(double a, out double sl) {
  const double w = (1.0LF - a) * 0.5LF;
  const double s = kiln_hide(sqrt(w));
  precise double l = s == 0.0LF ? 0.0LF : kiln_residual64(s, s, w) / (2.0LF * s);  // s = 0 at |x| = 1
  sl = l;
  return s;
}
double kiln_asin(double x) {
  const double a = abs(x);
  if (kiln_isnan(x) || a > 1.0LF) return kiln_nan_f64();
  if (a < 1.0e-8LF) return x;
  precise double r;
  double h, l;
  if (a <= 0.5LF) {
    h = kiln_asin_series64(a, 0.0LF, l);
    r = h + l;
  } else {  // asin(a) = pi/2 - 2 asin(sqrt((1 - a) / 2))
    double sl;
    const double s = kiln_asin_half_angle64(a, sl);
    h = kiln_asin_series64(s, sl, l);
    double u, e;
    kiln_two_sum(kiln_kPi_2_hi, -2.0LF * h, u, e);
    r = u + (e + (kiln_kPi_2_lo - 2.0LF * l));
  }
  return kiln_copysign(r, x);
}
double kiln_acos(double x) {
  const double a = abs(x);
  if (kiln_isnan(x) || a > 1.0LF) return kiln_nan_f64();
  precise double r;
  double h, l, u, e;
  if (a <= 0.5LF) {  // pi/2 - asin(x)
    h = kiln_asin_series64(a, 0.0LF, l);
    if (kiln_signbit(x)) {
      h = -h;
      l = -l;
    }
    kiln_two_sum(kiln_kPi_2_hi, -h, u, e);
    r = u + (e + (kiln_kPi_2_lo - l));
  } else {  // 2 asin(sqrt((1 - a) / 2)), or pi minus it for x < 0
    double sl;
    const double s = kiln_asin_half_angle64(a, sl);
    h = kiln_asin_series64(s, sl, l);
    if (x > 0.0LF) {
      r = 2.0LF * h + 2.0LF * l;
    } else {
      kiln_two_sum(kiln_kPi_hi, -2.0LF * h, u, e);
      r = u + (e + (kiln_kPi_lo - 2.0LF * l));
    }
  }
  return r;
}
