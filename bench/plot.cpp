// The SVG report: a roofline (log-log: arithmetic intensity in FLOP/byte against achieved
// GFLOP/s, under the measured bandwidth roof and compute roofs), numbered points with a legend,
// and a bar chart of every case's achieved GB/s as a fraction of the measured bandwidth roof.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <fmt/format.h>

#include "bench/bench.hpp"

namespace kiln::bench {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(double v) {
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

struct Point {
  std::string label;
  double ai = 0, gflops = 0, gbps = 0, pct_bw = -1;
};

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

}  // namespace

std::string roofline_svg(const nlohmann::json& rep) {
  const auto& dev = rep.at("device");
  const auto peaks = rep.value("peaks", nlohmann::json::object());
  const double bw = peaks.value("bandwidth_gb_per_s", 0.0);
  struct Roof {
    std::string name;
    double gflops;
  };
  std::vector<Roof> roofs;
  if (peaks.contains("list"))
    for (const auto& p : peaks.at("list"))
      if (p.value("unit", "") == "GFLOP/s" && p.contains("value") && p.at("value").is_number())
        roofs.push_back({p.value("name", "?"), p.at("value").get<double>()});

  std::vector<std::uint64_t> sizes;
  for (const auto& c : rep.at("cases")) sizes.push_back(c.value("elements", std::uint64_t(0)));
  std::sort(sizes.begin(), sizes.end());
  const bool many_sizes = !sizes.empty() && sizes.front() != sizes.back();
  std::vector<Point> pts, bars;
  for (const auto& c : rep.at("cases")) {
    if (!c.contains("gb_per_s")) continue;
    Point p;
    p.label = c.value("name", "?");
    if (many_sizes) p.label.append("@").append(format_count(c.value("elements", std::uint64_t(0))));
    p.gbps = c.value("gb_per_s", 0.0);
    p.gflops = c.value("gflop_per_s", 0.0);
    const double bytes = c.value("bytes", 0.0), flops = c.value("flops", 0.0);
    p.ai = bytes > 0 ? flops / bytes : 0;
    if (c.contains("pct_of_peak_bandwidth") && c.at("pct_of_peak_bandwidth").is_number())
      p.pct_bw = c.at("pct_of_peak_bandwidth").get<double>();
    bars.push_back(p);
    if (p.ai > 0 && p.gflops > 0) pts.push_back(p);
  }

  // Layout.
  const double W = 1100, left = 80, top = 70, pw = 560, ph = 400;
  const double legend_x = left + pw + 40;
  const double bar_top = top + ph + 90, bar_h = 18, bar_w = 560;
  const double H = bar_top + 40 + bar_h * double(std::max<std::size_t>(bars.size(), 1)) + 50;

  // Axis ranges (decades).
  double ai_lo = 1e9, ai_hi = 0, f_lo = 1e30, f_hi = 0;
  for (const Point& p : pts) ai_lo = std::min(ai_lo, p.ai), ai_hi = std::max(ai_hi, p.ai), f_lo = std::min(f_lo, p.gflops),
                              f_hi = std::max(f_hi, p.gflops);
  for (const Roof& r : roofs) {
    f_hi = std::max(f_hi, r.gflops);
    f_lo = std::min(f_lo, r.gflops);
    if (bw > 0) ai_hi = std::max(ai_hi, r.gflops / bw), ai_lo = std::min(ai_lo, r.gflops / bw);
  }
  if (ai_hi <= 0) ai_lo = 0.01, ai_hi = 100;
  if (f_hi <= 0) f_lo = 0.01, f_hi = 100;
  if (bw > 0) f_lo = std::min(f_lo, bw * ai_lo);
  const double x0 = std::floor(std::log10(ai_lo)) - 0.0, x1 = std::ceil(std::log10(ai_hi) + 0.3);
  const double y0 = std::floor(std::log10(f_lo) - 0.3), y1 = std::ceil(std::log10(f_hi) + 0.3);
  auto X = [&](double ai) { return left + pw * (std::log10(ai) - x0) / (x1 - x0); };
  auto Y = [&](double g) { return top + ph - ph * (std::log10(g) - y0) / (y1 - y0); };

  std::ostringstream s;
  s << fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
                   R"(font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">)" "\n", W, H);
  s << fmt::format(R"(<rect width="{}" height="{}" fill="white"/>)" "\n", W, H);
  const auto& kiln = rep.value("kiln", nlohmann::json::object());
  s << fmt::format(R"(<text x="{}" y="24" font-size="16" font-weight="bold">Roofline: {} ({})</text>)" "\n", left,
                   esc(dev.value("name", "?")), esc(dev.value("id", "?")));
  s << fmt::format(R"(<text x="{}" y="44" fill="#444">kiln {} {}, driver {}, {}; roofs measured in the same run)"
                   R"(</text>)" "\n", left, esc(kiln.value("commit", "?")), esc(kiln.value("build_type", "?")),
                   esc(dev.value("driver", "?")), esc(rep.value("timestamp", "?")));

  // Grid and axes.
  s << fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/>)" "\n", left, top, pw, ph);
  for (double e = x0; e <= x1 + 1e-9; e += 1) {
    const double x = X(std::pow(10, e));
    s << fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/>)" "\n", x, top, top + ph);
    s << fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)" "\n", x, top + ph + 16, num(std::pow(10, e)));
  }
  for (double e = y0; e <= y1 + 1e-9; e += 1) {
    const double y = Y(std::pow(10, e));
    s << fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/>)" "\n", left, y, left + pw);
    s << fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)" "\n", left - 6, y + 4, num(std::pow(10, e)));
  }
  s << fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">arithmetic intensity (FLOP per byte moved)</text>)" "\n",
                   left + pw / 2, top + ph + 36);
  s << fmt::format(R"S(<text transform="translate({},{}) rotate(-90)" text-anchor="middle">achieved GFLOP/s</text>)S" "\n",
                   left - 50, top + ph / 2);

  // Roofs: the bandwidth slope up to the highest compute roof, one flat line per compute roof.
  s << fmt::format(R"(<clipPath id="plot"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath>)" "\n", left, top, pw, ph);
  s << R"S(<g clip-path="url(#plot)">)S" "\n";
  const double ai_min = std::pow(10, x0), ai_max = std::pow(10, x1);
  if (bw > 0) {
    double top_roof = 0;
    for (const Roof& r : roofs) top_roof = std::max(top_roof, r.gflops);
    const double ai_end = top_roof > 0 ? top_roof / bw : ai_max;
    s << fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#000" stroke-width="2"/>)" "\n", X(ai_min),
                     Y(bw * ai_min), X(ai_end), Y(bw * ai_end));
  }
  for (std::size_t i = 0; i < roofs.size(); ++i) {
    const Roof& r = roofs[i];
    const double start = bw > 0 ? r.gflops / bw : ai_min;
    s << fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="#000" stroke-width="2" stroke-dasharray="{3}"/>)"
                     "\n", X(start), X(ai_max), Y(r.gflops), i == 0 ? "none" : "6,3");
  }
  s << "</g>\n";
  if (bw > 0) {
    const double ai_lab = std::pow(10, x0 + 0.15);
    // The slope on screen (SVG y grows downwards: a rising line has a negative angle).
    const double ang = std::atan2(Y(bw * ai_lab * 10) - Y(bw * ai_lab), X(ai_lab * 10) - X(ai_lab)) * 180 / M_PI;
    s << fmt::format(R"S(<text transform="translate({},{}) rotate({})" fill="#000">bandwidth roof {} GB/s ({})</text>)S"
                     "\n", X(ai_lab), Y(bw * ai_lab) - 6, ang, num(bw), esc(peaks.value("bandwidth_from", "")));
  }
  for (const Roof& r : roofs)
    s << fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{} {} GFLOP/s</text>)" "\n", left + pw - 4,
                     Y(r.gflops) - 5, esc(r.name), num(r.gflops));

  // Points, numbered; the legend names them.
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const Point& p = pts[i];
    const char* col = kColors[i % std::size(kColors)];
    s << fmt::format(R"(<circle cx="{}" cy="{}" r="5" fill="{}" stroke="#000" stroke-width="0.5"/>)" "\n", X(p.ai),
                     Y(p.gflops), col);
    s << fmt::format(R"(<text x="{}" y="{}" font-size="10" fill="{}">{}</text>)" "\n", X(p.ai) + 7,
                     Y(p.gflops) - 5 - double(i % 2) * 8, col, i + 1);
  }
  s << fmt::format(R"(<text x="{}" y="{}" font-weight="bold">cases (FLOP/byte, GFLOP/s, GB/s)</text>)" "\n", legend_x, top);
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const Point& p = pts[i];
    s << fmt::format(R"(<text x="{}" y="{}" fill="{}">{}. {}: {}, {}, {}</text>)" "\n", legend_x, top + 18 + 16 * double(i),
                     kColors[i % std::size(kColors)], i + 1, esc(p.label), num(p.ai), num(p.gflops), num(p.gbps));
  }
  if (pts.empty())
    s << fmt::format(R"(<text x="{}" y="{}" fill="#666">no case with FLOPs was timed</text>)" "\n", legend_x, top + 18);
  s << fmt::format(R"(<text x="{}" y="{}" fill="#666" font-size="11">1 FLOP per arithmetic op; casts, selects, copies:)"
                   R"( none (see the bars)</text>)" "\n", legend_x, top + 30 + 16 * double(pts.size()));

  // Bars: % of the bandwidth roof.
  s << fmt::format(R"(<text x="{}" y="{}" font-size="14" font-weight="bold">Achieved bandwidth, % of the measured )"
                   R"(bandwidth roof ({} GB/s)</text>)" "\n", left, bar_top - 10, num(bw));
  const double bx = left + 150;
  double max_pct = 100;
  for (const Point& p : bars) max_pct = std::max(max_pct, p.pct_bw);
  for (int t = 0; t <= 100; t += 25) {
    const double x = bx + bar_w * t / max_pct;
    s << fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}"/>)" "\n", x, bar_top,
                     bar_top + bar_h * double(bars.size()), t == 100 ? "#000" : "#ddd");
    s << fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}%</text>)" "\n", x,
                     bar_top + bar_h * double(bars.size()) + 14, t);
  }
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Point& p = bars[i];
    const double y = bar_top + bar_h * double(i);
    const double pct = std::max(0.0, p.pct_bw);
    s << fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)" "\n", bx - 6, y + 13, esc(p.label));
    s << fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="#4c78a8"/>)" "\n", bx, y + 2,
                     bar_w * pct / max_pct, bar_h - 4);
    s << fmt::format(R"(<text x="{}" y="{}" font-size="11">{} GB/s ({})</text>)" "\n", bx + bar_w * pct / max_pct + 4,
                     y + 13, num(p.gbps), p.pct_bw >= 0 ? fmt::format("{:.0f}%", p.pct_bw) : "no roof");
  }
  s << fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">% of the bandwidth roof (bytes: every input read once, )"
                   R"(the output written once)</text>)" "\n", bx + bar_w / 2, bar_top + bar_h * double(bars.size()) + 32);
  s << "</svg>\n";
  return s.str();
}

}  // namespace kiln::bench
