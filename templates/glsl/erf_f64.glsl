// f64 erf, erfc and erf_inv, inlined after glsl/math_f64.glsl (its double-doubles and e^x) when an
// expression uses one on f64. Bounds: erf 2 ulp, erfc 5, erf_inv 5 (CUDA's, for double).
//
// erf: |x| <= 1 by its Maclaurin series (to x^39), 2/sqrt(pi) x exact as a double-double; beyond,
// 1 - erfc(|x|) (erfc <= 0.16 there, so its error shrinks). erfc(x) = e^(-x^2) erfcx(x) for x >=
// 1/2, with x^2 split exactly and erfcx(x) = e^(x^2) erfc(x) smooth: a Taylor series around the
// nearest a = 1/2 + k/4 (|h| <= 1/8) whose coefficients follow from erfcx' = 2x erfcx - 2/sqrt(pi)
// (t_{n+1} = (2a t_n + 2 t_{n-1}) / (n+1)), the first two exact from a table (mpmath); beyond 6.125
// its continued fraction (30 terms). ~1.9 ulp for erfcx, ~3 for erfc.

// erfcx(a) and erfcx'(a) at a = 1/2 + k/4, k = 0 .. 22.
dvec2 kiln_erfcx_base64(int k) {
  switch (k) {
    case 0: return dvec2(0.6156903441929259LF, -0.5126888229025867LF);
    case 1: return dvec2(0.5069376502931449LF, -0.3679726916557954LF);
    case 2: return dvec2(0.427583576155807LF, -0.27321201478389856LF);
    case 3: return dvec2(0.3678229164523611LF, -0.20882187596460985LF);
    case 4: return dvec2(0.3215854164543175LF, -0.16362291773256007LF);
    case 5: return dvec2(0.2849722347374364LF, -0.1309763455144852LF);
    case 6: return dvec2(0.25539567631050575LF, -0.1067964618534896LF);
    case 7: return dvec2(0.23108725873039188LF, -0.08848650280874916LF);
    case 8: return dvec2(0.2108063640611436LF, -0.07434734678979467LF);
    case 9: return dvec2(0.1936620962790687LF, -0.06323763756063484LF);
    case 10: return dvec2(0.17900115118138996LF, -0.05437226000717287LF);
    case 11: return dvec2(0.16633534842682188LF, -0.047199402321170376LF);
    case 12: return dvec2(0.1552936556088943LF, -0.041323577833252495LF);
    case 13: return dvec2(0.14558972127503855LF, -0.03645625753272353LF);
    case 14: return dvec2(0.13699945762506138LF, -0.032383506095021455LF);
    case 15: return dvec2(0.12934527478598792LF, -0.028944331414615332LF);
    case 16: return dvec2(0.12248480427384142LF, -0.026015928630939815LF);
    case 17: return dvec2(0.11630270721024731LF, -0.02350344859816315LF);
    case 18: return dvec2(0.11070463773306863LF, -0.02133278976482631LF);
    case 19: return dvec2(0.1056127354688918LF, -0.01944544467214865LF);
    case 20: return dvec2(0.10096221839949909LF, -0.017794764701022602LF);
    case 21: return dvec2(0.09669877816971392LF, -0.016343218143802483LF);
    default: return dvec2(0.09277656780053835LF, -0.015060353489052321LF);
  }
}
// e^(x^2) erfc(x) for x >= 0.375.
double kiln_erfcx64(double x) {
  if (x > 6.125LF) {  // erfcx = (1/sqrt(pi)) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))
    precise double f = x;
    [[unroll]] for (int n = 30; n > 0; --n) f = x + (0.5LF * double(n)) / f;
    precise double r = 0.5641895835477563LF / f;
    return r;
  }
  const int k = clamp(int(roundEven((x - 0.5LF) * 4.0LF)), 0, 22);
  const double a = 0.5LF + 0.25LF * double(k);
  const dvec2 t01 = kiln_erfcx_base64(k);
  precise double h = x - a;  // exact
  double t[13];
  t[0] = t01.x;
  t[1] = t01.y;
  [[unroll]] for (int n = 1; n < 12; ++n) {
    precise double tn = (2.0LF * a * t[n] + 2.0LF * t[n - 1]) / double(n + 1);
    t[n + 1] = tn;
  }
  precise double s = t[12];
  [[unroll]] for (int n = 11; n >= 0; --n) s = s * h + t[n];
  return s;
}
// erfc(x) for x >= 1/2: e^(-x^2) (as 2^k (hi + lo)) times erfcx, scaled once (subnormal results
// rounded once); 0 beyond 27.23 (erfc < 2^-1075).
double kiln_erfc_pos64(double x) {
  if (x > 27.23LF) return 0.0LF;
  double p, pl;
  kiln_two_prod(x, x, p, pl);
  int k;
  double lo;
  const double hi = kiln_exp_core64(-p, -pl, k, lo);
  const double c = kiln_erfcx64(x);
  precise double v = hi * c + lo * c;
  return kiln_scale64(v, k);
}
// erf(x) for |x| <= 1: x (2/sqrt(pi) + x^2 P(x^2)), the leading product exact.
double kiln_erf_series64(double x) {
  precise double z = x * x;
  precise double p = -2.3784598852774293e-19LF;
  p = p * z + 4.763348040515068e-18LF;
  p = p * z - 9.063970842808673e-17LF;
  p = p * z + 1.6342614095367152e-15LF;
  p = p * z - 2.7835162072109215e-14LF;
  p = p * z + 4.4632242632864775e-13LF;
  p = p * z - 6.7113668551641105e-12LF;
  p = p * z + 9.422759064650411e-11LF;
  p = p * z - 1.2290555301717928e-09LF;
  p = p * z + 1.4807192815879218e-08LF;
  p = p * z - 1.6365844691234924e-07LF;
  p = p * z + 1.6462114365889248e-06LF;
  p = p * z - 1.492565035840625e-05LF;
  p = p * z + 0.00012055332981789664LF;
  p = p * z - 0.0008548327023450853LF;
  p = p * z + 0.005223977625442188LF;
  p = p * z - 0.026866170645131252LF;
  p = p * z + 0.11283791670955126LF;
  p = p * z - 0.37612638903183754LF;
  double h, l;
  kiln_two_prod(x, 1.1283791670955126LF, h, l);
  precise double r = h + (l + (x * 1.533545961316588e-17LF + x * z * p));
  return r;
}
double kiln_erf(double x) {
  if (x == 0.0LF) return x;  // +-0 keeps its sign (the reference, CUDA)
  if (kiln_isnan(x)) return x;
  const double a = abs(x);
  if (a <= 1.0LF) return kiln_erf_series64(x);
  if (a > 6.0LF) return kiln_copysign(1.0LF, x);  // erfc(6) < 2^-55
  precise double r = 1.0LF - kiln_erfc_pos64(a);
  return kiln_copysign(r, x);
}
double kiln_erfc(double x) {
  if (kiln_isnan(x)) return x;
  if (x < -6.0LF) return 2.0LF;
  if (abs(x) < 0.5LF) {
    precise double r = 1.0LF - kiln_erf_series64(x);
    return r;
  }
  if (x > 0.0LF) return kiln_erfc_pos64(x);
  precise double r = 2.0LF - kiln_erfc_pos64(-x);
  return r;
}
// erf_inv: Giles' f32 approximation as the first guess (glsl/math_f32.glsl; w from 1 - |y|, exact
// for |y| >= 1/2), then Newton steps: on erf for |y| < 1/2, and for |y| >= 1/2 on log erfc(x) =
// log(1 - |y|), i.e. log erfcx(x) - x^2 = log q, nearly quadratic in x: it converges from the
// guess even where Giles' fit is extrapolated (w > 17, |y| > 1 - 2^-24; 7 % off at 1 - 2^-53).
double kiln_erf_inv(double y) {
  if (y == 0.0LF) return y;  // +-0 keeps its sign (the reference, CUDA)
  const double a = abs(y);
  if (kiln_isnan(y) || a > 1.0LF) return kiln_nan_f64();
  if (a == 1.0LF) return kiln_copysign(kiln_inf_f64(), y);
  if (a < 1.0e-300LF) return y * 0.886226925452758LF;  // sqrt(pi)/2 y (keeps -0; subnormals)
  const double q = 1.0LF - a;  // exact for a >= 1/2
  const float w = -log(float(q * (1.0LF + a)));
  precise double x = double(kiln_erf_inv_poly(w)) * a;
  if (a < 0.5LF) {
    [[unroll]] for (int i = 0; i < 3; ++i) {
      precise double step = (a - kiln_erf_series64(x)) * 0.886226925452758LF * kiln_exp(x * x);
      x = x + step;
    }
  } else {
    const double lq = kiln_log(q);
    [[unroll]] for (int i = 0; i < 4; ++i) {  // d/dx log erfc(x) = -2 / (sqrt(pi) erfcx(x))
      const double c = kiln_erfcx64(max(x, 0.375LF));
      double s, sl;
      kiln_two_prod(x, x, s, sl);
      precise double step = ((kiln_log(c) - s) - (sl + lq)) * 0.886226925452758LF * c;
      x = x + step;
    }
  }
  return kiln_copysign(x, y);
}
