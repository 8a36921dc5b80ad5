// A thread-safe registry of Prometheus counters, gauges and histograms (text format 0.0.4).
#include "common/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace blobferry {
namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(const std::string& name) {
  if (name.empty() || !(name_start(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return name_char(c) || c == ':'; });
}

// [a-zA-Z_][a-zA-Z0-9_]*, and names starting "__" are Prometheus's own.
bool valid_label_name(const std::string& name) {
  if (name.empty() || !name_start(name[0]) || name.rfind("__", 0) == 0) return false;
  return std::all_of(name.begin(), name.end(), name_char);
}

// HELP text escapes backslash and newline; label values also the double quote.
std::string escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// Shortest text that parses back to the same double, in Go's ParseFloat syntax.
std::string format_double(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

void check_buckets(const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      throw std::invalid_argument(
          "histogram buckets must be finite and strictly increasing (+Inf is implicit)");
    }
  }
}

}  // namespace

struct Metrics::Family {
  static const char* type_name(Type type) {
    switch (type) {
      case Type::kCounter: return "counter";
      case Type::kGauge: return "gauge";
      case Type::kHistogram: return "histogram";
    }
    return "untyped";
  }

  struct Series {
    std::vector<std::string> values;  // in label_names order
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };

  std::string name;
  std::string help;
  Type type = Type::kCounter;
  std::vector<std::string> label_names;
  std::vector<double> buckets;
  std::vector<std::unique_ptr<Series>> series;  // creation order, for a stable rendering
  std::map<std::vector<std::string>, Series*> by_values;

  // The label values in this family's order; throws unless the names match it.
  std::vector<std::string> values_of(const Labels& labels) const {
    if (labels.size() != label_names.size()) throw mismatch();
    std::vector<std::string> values;
    values.reserve(labels.size());
    for (const auto& label_name : label_names) {
      auto found = std::find_if(labels.begin(), labels.end(),
                                [&](const auto& label) { return label.first == label_name; });
      if (found == labels.end()) throw mismatch();
      values.push_back(found->second);
    }
    return values;
  }

  Series& series_for(const Labels& labels) {
    auto values = values_of(labels);
    auto found = by_values.find(values);
    if (found != by_values.end()) return *found->second;
    auto created = std::make_unique<Series>();
    created->values = values;
    if (type == Type::kCounter) created->counter = std::make_unique<Counter>();
    if (type == Type::kGauge) created->gauge = std::make_unique<Gauge>();
    if (type == Type::kHistogram) created->histogram = std::make_unique<Histogram>(buckets);
    Series& result = *created;
    by_values.emplace(std::move(values), &result);
    series.push_back(std::move(created));
    return result;
  }

  std::invalid_argument mismatch() const {
    std::string expected;
    for (const auto& label_name : label_names) {
      expected += (expected.empty() ? "" : ",") + label_name;
    }
    return std::invalid_argument("metric " + name + " takes exactly the labels {" + expected + "}");
  }

  // {a="x",b="y"} with an optional trailing le, or nothing when there are no labels.
  std::string label_set(const std::vector<std::string>& values, const std::string* le) const {
    if (label_names.empty() && le == nullptr) return {};
    std::string out = "{";
    for (std::size_t i = 0; i < label_names.size(); ++i) {
      if (i > 0) out += ',';
      out += label_names[i] + "=\"" + escape(values[i], true) + '"';
    }
    if (le != nullptr) out += std::string(label_names.empty() ? "" : ",") + "le=\"" + *le + '"';
    return out + "}";
  }

  void render(std::string& out) const {
    out += "# HELP " + name + ' ' + escape(help, false) + '\n';
    out += "# TYPE " + name + ' ' + type_name(type) + '\n';
    for (const auto& one : series) {
      std::string labels = label_set(one->values, nullptr);
      if (one->counter) sample(out, "", labels, std::to_string(one->counter->value()));
      if (one->gauge) sample(out, "", labels, format_double(one->gauge->value()));
      if (one->histogram) render_histogram(*one, out);
    }
  }

  void render_histogram(const Series& one, std::string& out) const {
    const Histogram& histogram = *one.histogram;
    const auto& bounds = histogram.bounds();
    auto counts = histogram.cumulative_counts();
    for (std::size_t i = 0; i < counts.size(); ++i) {
      std::string le = i < bounds.size() ? format_double(bounds[i]) : "+Inf";
      sample(out, "_bucket", label_set(one.values, &le), std::to_string(counts[i]));
    }
    // _count is the +Inf bucket read above, so the two always agree in one scrape.
    std::string labels = label_set(one.values, nullptr);
    sample(out, "_sum", labels, format_double(histogram.sum()));
    sample(out, "_count", labels, std::to_string(counts.back()));
  }

  void sample(std::string& out, const char* suffix, const std::string& labels,
              const std::string& value) const {
    out += name + suffix + labels + ' ' + value + '\n';
  }
};

Metrics::Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  check_buckets(bounds_);
}

void Metrics::Histogram::observe(double value) noexcept {
  if (std::isnan(value)) return;
  auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Metrics::Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> counts(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

std::vector<double> Metrics::default_duration_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

Metrics::Family& Metrics::family(const std::string& name, const std::string& help, Type wanted,
                                 const Labels& labels, const std::vector<double>& buckets) {
  auto found = by_name_.find(name);
  if (found != by_name_.end()) {
    Family& existing = *found->second;
    if (existing.type != wanted) {
      throw std::invalid_argument("metric " + name + " is already a " +
                                  Family::type_name(existing.type));
    }
    if (wanted == Type::kHistogram && existing.buckets != buckets) {
      throw std::invalid_argument("histogram " + name +
                                  " is already registered with other buckets");
    }
    return existing;
  }

  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name '" + name + "'");
  auto created = std::make_unique<Family>();
  for (const auto& [label_name, value] : labels) {
    bool reserved = wanted == Type::kHistogram && label_name == "le";
    if (!valid_label_name(label_name) || reserved) {
      throw std::invalid_argument("invalid label name '" + label_name + "' for metric " + name);
    }
    if (std::find(created->label_names.begin(), created->label_names.end(), label_name) !=
        created->label_names.end()) {
      throw std::invalid_argument("label '" + label_name + "' given twice for metric " + name);
    }
    created->label_names.push_back(label_name);
  }
  if (wanted == Type::kHistogram) check_buckets(buckets);
  created->name = name;
  created->help = help;
  created->type = wanted;
  created->buckets = buckets;
  Family& result = *created;
  by_name_.emplace(name, &result);
  families_.push_back(std::move(created));
  return result;
}

Metrics::Counter& Metrics::counter(const std::string& name, const std::string& help,
                                   const Labels& labels) {
  std::lock_guard lock(mutex_);
  return *family(name, help, Type::kCounter, labels, {}).series_for(labels).counter;
}

Metrics::Gauge& Metrics::gauge(const std::string& name, const std::string& help,
                               const Labels& labels) {
  std::lock_guard lock(mutex_);
  return *family(name, help, Type::kGauge, labels, {}).series_for(labels).gauge;
}

Metrics::Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                                       const Labels& labels, const std::vector<double>& buckets) {
  std::lock_guard lock(mutex_);
  return *family(name, help, Type::kHistogram, labels, buckets).series_for(labels).histogram;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& one : families_) one->render(out);
  return out;
}

}  // namespace blobferry
