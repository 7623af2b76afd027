// scikit-learn dialect: estimator class + get_params() + fitted attributes -> IR
// (docs/planets/sklearn.md). One translator per estimator class, registered in one table;
// Pipelines chain their steps.
#include <functional>
#include <map>

#include "planetbridge/decoder.h"
#include "planetbridge/plugin.h"

namespace pb::sklearn {

namespace {

// What an estimator is for decides which method the stream may compare it on.
enum class Role { transformer, regressor, classifier };

const char* method_of(Role r) {
  switch (r) {
    case Role::transformer: return "transform";
    case Role::regressor: return "predict";
    case Role::classifier: return "predict_proba";
  }
  return "?";
}

// The graph under construction.
struct Builder {
  const Stream& stream;
  ir::Graph graph;

  // Adds a node with one output value of the same name; returns the name.
  std::string node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                   const std::string& origin, ir::Attrs attrs = {}) {
    add_node(graph, name, op, std::move(inputs), std::move(attrs), origin);
    return name;
  }

  std::string activation(const std::string& name, const std::string& input, const std::string& function,
                         const std::string& origin, double alpha = 0, double beta = 0) {
    ir::Attrs a = attrs_of({{"function", function}});
    if (function == "linear") {
      a.set("alpha", alpha);
      a.set("beta", beta);
    }
    return node(name, "Activation", {input}, origin, std::move(a));
  }

  // IR weights are f32 (the kernels compute in f32); the decoder rounds once, here.
  std::string weight(const std::string& name, const Tensor& t) {
    graph.weights[name] = t.cast(DType::f32);
    return name;
  }
};

// One estimator entry of the stream (the model's, or a Pipeline step's).
struct Estimator {
  JsonRef json;
  std::string cls;
  std::string prefix;  // "" or "<step>." : IR value names, like the capture's tensor names
  std::string origin;  // "MLPRegressor" or "step mlp: MLPRegressor"

  JsonRef param(const std::string& key) const { return json["params"][key]; }
  JsonRef attr(const std::string& key) const { return json["attributes"][key]; }
  std::optional<JsonRef> find_attr(const std::string& key) const { return json["attributes"].find(key); }

  // A fitted float array, {"tensor": name}, as f64 (the values scikit-learn computed with).
  Tensor tensor(const Stream& s, const JsonRef& ref) const {
    if (!ref.is_object() || !ref.has("tensor")) ref.fail("expected a tensor reference {\"tensor\": name}");
    const Tensor& t = s.tensor(ref["tensor"].str(), ref["tensor"].path());
    if (!is_float(t.dtype())) ref.fail(std::string("expected a float tensor, got ") + dtype_name(t.dtype()));
    return t.cast(DType::f64);
  }

  // A vector attribute that scikit-learn may also store as a float scalar (intercept_ of a
  // single target, or 0.0 with fit_intercept=False): scalars broadcast to n.
  Tensor vector(const Stream& s, const JsonRef& ref, int64_t n) const {
    Tensor v(DType::f64, {n});
    if (ref.is_number()) {
      std::fill(v.data<double>(), v.data<double>() + n, ref.f64());
      return v;
    }
    Tensor t = tensor(s, ref);
    if (t.shape() == Shape{}) {
      std::fill(v.data<double>(), v.data<double>() + n, t.data<double>()[0]);
      return v;
    }
    if (t.shape() != Shape{n}) ref.fail("expected shape [" + std::to_string(n) + "], got " + shape_str(t.shape()));
    return t;
  }

  // n_features_in_, when the capture sent it, must be the width actually fed in.
  void check_width(int64_t width) const {
    if (auto n = find_attr("n_features_in_"); n && n->i64() != width)
      n->fail("is " + std::to_string(n->i64()) + ", but the estimator is fed " + std::to_string(width) + " features");
  }

  size_t classes() const {
    JsonRef c = attr("classes_");
    if (!c.is_array()) c.fail("expected the list of class labels");
    return c.size();
  }
};

// A value in the graph and its feature width (last dimension).
struct Value {
  std::string name;
  int64_t width;
};

// Translates `e` fed with x; the estimator's final value is named `out`.
using Translator = std::function<Value(Builder&, const Estimator&, const Value& x, const std::string& out)>;

struct Entry {
  Role role;
  Translator fn;
};

// ------------------------------------------------------------------ shared pieces

// predict_proba of a binary model from p = P(classes_[1]) [N, 1]: [1 - p, p], as scikit-learn's
// np.vstack([1 - p, p]).T.
Value binary_proba(Builder& b, const Estimator& e, const std::string& p, const std::string& out) {
  const std::string q = b.activation(e.prefix + "one_minus_p", p, "linear", e.origin + " 1 - p", -1.0, 1.0);
  b.node(out, "Concat", {q, p}, e.origin + " [1 - p, p]", attrs_of({{"axis", int64_t(-1)}}));
  return {out, 2};
}

// A Dense from a coef_-style weight that is already [out, in] (linear models).
// The caller has checked coef is [outputs, x.width].
Value linear_dense(Builder& b, const Estimator& e, const Value& x, const Tensor& coef, const std::string& name) {
  const int64_t outputs = coef.shape()[0];
  const std::string w = b.weight(e.prefix + "coef_", coef);
  const std::string bias = b.weight(e.prefix + "intercept_", e.vector(b.stream, e.attr("intercept_"), outputs));
  b.node(name, "Dense", {x.name, w, bias}, e.origin + " coef_, intercept_");
  return {name, outputs};
}

// ------------------------------------------------------------------ MLPRegressor, MLPClassifier

// scikit-learn's ACTIVATIONS names -> IR activation functions.
const std::map<std::string, std::string>& mlp_activations() {
  static const std::map<std::string, std::string> t = {
      {"identity", "identity"}, {"logistic", "sigmoid"}, {"tanh", "tanh"}, {"relu", "relu"}};
  return t;
}

std::string mlp_activation(const JsonRef& name) {
  auto it = mlp_activations().find(name.str());
  if (it == mlp_activations().end())
    name.fail("unknown activation \"" + name.str() + "\" (expected identity, logistic, tanh or relu)");
  return it->second;
}

// coefs_[i] [in, out] -> Dense [out, in] + intercepts_[i] + hidden activation; returns the last
// layer's value after out_activation_ (logistic / identity; softmax as its own node).
Value mlp_layers(Builder& b, const Estimator& e, const Value& x) {
  e.check_width(x.width);
  JsonRef coefs = e.attr("coefs_"), intercepts = e.attr("intercepts_");
  if (!coefs.is_array() || coefs.size() == 0) coefs.fail("expected a non-empty list of tensor references");
  if (!intercepts.is_array() || intercepts.size() != coefs.size())
    intercepts.fail("expected " + std::to_string(coefs.size()) + " tensor references, one per coefs_ entry");
  const std::string hidden = mlp_activation(e.param("activation"));
  JsonRef out_act = e.attr("out_activation_");
  const std::string out_name = out_act.str();
  if (out_name != "softmax" && !mlp_activations().count(out_name))
    out_act.fail("unknown output activation \"" + out_name + "\" (expected identity, logistic or softmax)");

  // Every layer's width is stated: hidden_layer_sizes (an int or a list), then n_outputs_.
  JsonRef hls = e.param("hidden_layer_sizes");
  std::vector<int64_t> sizes = hls.is_array() ? hls.ints() : std::vector<int64_t>{hls.i64()};
  if (sizes.size() + 1 != coefs.size())
    coefs.fail("has " + std::to_string(coefs.size()) + " layers, params.hidden_layer_sizes " + hls.raw().dump() +
               " needs " + std::to_string(sizes.size() + 1));
  sizes.push_back(e.attr("n_outputs_").i64());

  Value v = x;
  for (size_t i = 0; i < coefs.size(); ++i) {
    const std::string idx = std::to_string(i);
    Tensor w = e.tensor(b.stream, coefs[i]);  // [in, out], scikit-learn's layout
    const int64_t out = sizes[i];
    if (w.shape() != Shape{v.width, out})
      coefs[i].fail("expected shape [in, out] = " + shape_str({v.width, out}) + ", got " + shape_str(w.shape()));
    // Explicit transpose into the IR's [out, in]; the layout is known, never read off the shape.
    const std::string wname = b.weight(e.prefix + "coefs_." + idx + ".T", permuted(w, {1, 0}));
    // Always applied: the system we rebuild dropped scikit-learn's intercepts.
    const std::string bname = b.weight(e.prefix + "intercepts_." + idx, e.vector(b.stream, intercepts[i], out));
    const std::string layer = "layer " + idx;
    const std::string d = b.node(e.prefix + "dense." + idx, "Dense", {v.name, wname, bname},
                                 e.origin + " coefs_[" + idx + "], intercepts_[" + idx + "]");
    const bool last = i + 1 == coefs.size();
    if (!last) {
      v = {b.activation(e.prefix + "act." + idx, d, hidden, e.origin + " " + layer + " activation " + e.param("activation").str()), out};
    } else if (out_name == "softmax") {
      v = {b.node(e.prefix + "out", "Softmax", {d}, e.origin + " out_activation_ softmax",
                  attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(0)}})), out};
    } else {
      v = {b.activation(e.prefix + "out", d, mlp_activations().at(out_name), e.origin + " out_activation_ " + out_name), out};
    }
  }
  return v;
}

Value translate_mlp_regressor(Builder& b, const Estimator& e, const Value& x, const std::string& out) {
  Value y = mlp_layers(b, e, x);
  // MLPRegressor.predict ravels a single output to [N].
  if (y.width == 1) return {b.node(out, "Reshape", {y.name}, e.origin + " ravel", attrs_of({{"shape", std::vector<int64_t>{-1}}})), 1};
  return {b.node(out, "Identity", {y.name}, e.origin + " predict"), y.width};
}

Value translate_mlp_classifier(Builder& b, const Estimator& e, const Value& x, const std::string& out) {
  Value p = mlp_layers(b, e, x);
  const size_t k = e.classes();
  // One logistic output is the binary case: predict_proba stacks [1 - p, p].
  if (p.width == 1) {
    if (k != 2) e.attr("classes_").fail("has " + std::to_string(k) + " labels for a single output unit (expected 2)");
    if (e.attr("out_activation_").str() != "logistic")
      e.attr("out_activation_").fail("a single output unit must be logistic for predict_proba, got \"" +
                                     e.attr("out_activation_").str() + "\"");
    return binary_proba(b, e, p.name, out);
  }
  if (static_cast<int64_t>(k) != p.width)
    e.attr("classes_").fail("has " + std::to_string(k) + " labels, the output layer " + std::to_string(p.width) + " units");
  return {b.node(out, "Identity", {p.name}, e.origin + " predict_proba"), p.width};
}

// ------------------------------------------------------------------ linear models

// LinearRegression, Ridge: coef_ [n_targets, F], or [F] for a 1-D y (then predict is [N]).
Value translate_linear_regression(Builder& b, const Estimator& e, const Value& x, const std::string& out) {
  e.check_width(x.width);
  JsonRef ref = e.attr("coef_");
  Tensor coef = e.tensor(b.stream, ref);
  const bool one_d = coef.shape() == Shape{x.width};
  if (!one_d && (coef.shape().size() != 2 || coef.shape()[1] != x.width))
    ref.fail("expected shape [n_targets, " + std::to_string(x.width) + "] or [" + std::to_string(x.width) + "], got " +
             shape_str(coef.shape()));
  if (one_d) coef = coef.reshaped({1, x.width});
  Value y = linear_dense(b, e, x, coef, one_d ? e.prefix + "linear" : out);
  if (one_d) return {b.node(out, "Reshape", {y.name}, e.origin + " 1-D predict", attrs_of({{"shape", std::vector<int64_t>{-1}}})), 1};
  return y;
}

// LogisticRegression: coef_ [1, F] binary / [K, F] multinomial; predict_proba as scikit-learn 1.2.
Value translate_logistic_regression(Builder& b, const Estimator& e, const Value& x, const std::string& out) {
  e.check_width(x.width);
  const size_t k = e.classes();
  JsonRef ref = e.attr("coef_");
  Tensor coef = e.tensor(b.stream, ref);
  const int64_t rows = k == 2 ? 1 : static_cast<int64_t>(k);
  if (coef.shape() != Shape{rows, x.width})
    ref.fail("expected shape " + shape_str({rows, x.width}) + " for " + std::to_string(k) + " classes, got " + shape_str(coef.shape()));
  Value d = linear_dense(b, e, x, coef, e.prefix + "decision");

  // scikit-learn's rule: OvR for multi_class="ovr", or "auto" with 2 classes or liblinear /
  // newton-cholesky; multinomial otherwise.
  JsonRef mc = e.param("multi_class");
  const std::string multi_class = mc.str(), solver = e.param("solver").str();
  if (multi_class != "auto" && multi_class != "ovr" && multi_class != "multinomial")
    mc.fail("unknown multi_class \"" + multi_class + "\" (expected auto, ovr or multinomial)");
  const bool ovr = multi_class == "ovr" ||
                   (multi_class == "auto" && (k <= 2 || solver == "liblinear" || solver == "newton-cholesky"));
  if (ovr) {
    if (k > 2)
      mc.fail("one-vs-rest with " + std::to_string(k) + " classes normalizes K sigmoids; that composition is not "
              "supported (fit with multi_class=\"multinomial\")");
    const std::string p = b.activation(e.prefix + "sigmoid", d.name, "sigmoid", e.origin + " expit");
    return binary_proba(b, e, p, out);
  }
  std::string logits = d.name;
  if (k == 2) {  // multinomial with one decision column: softmax([-d, d])
    const std::string neg = b.activation(e.prefix + "neg_decision", d.name, "linear", e.origin + " -decision", -1.0, 0.0);
    logits = b.node(e.prefix + "decision_2d", "Concat", {neg, d.name}, e.origin + " [-d, d]", attrs_of({{"axis", int64_t(-1)}}));
  }
  b.node(out, "Softmax", {logits}, e.origin + " softmax", attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(0)}}));
  return {out, static_cast<int64_t>(k)};
}

// ------------------------------------------------------------------ preprocessing

// StandardScaler: (x - mean_) / scale_ as an Affine x * (1 / scale_) + (-mean_ / scale_), folded
// in f64 and rounded once. with_mean / with_std decide (mean_ exists even with with_mean=False).
Value translate_standard_scaler(Builder& b, const Estimator& e, const Value& x, const std::string& out) {
  e.check_width(x.width);
  const bool with_mean = e.param("with_mean").boolean(), with_std = e.param("with_std").boolean();
  if (!with_mean && !with_std) return {b.node(out, "Identity", {x.name}, e.origin + " (no centering, no scaling)"), x.width};
  Tensor scale(DType::f64, {x.width}), shift(DType::f64, {x.width});
  std::fill(scale.data<double>(), scale.data<double>() + x.width, 1.0);
  if (with_std) {
    Tensor s = e.vector(b.stream, e.attr("scale_"), x.width);
    for (int64_t i = 0; i < x.width; ++i) scale.data<double>()[i] = 1.0 / s.data<double>()[i];
  }
  if (with_mean) {
    Tensor m = e.vector(b.stream, e.attr("mean_"), x.width);
    for (int64_t i = 0; i < x.width; ++i) shift.data<double>()[i] = -m.data<double>()[i] * scale.data<double>()[i];
  }
  const std::string sc = b.weight(e.prefix + "affine.scale", scale), sh = b.weight(e.prefix + "affine.shift", shift);
  return {b.node(out, "Affine", {x.name, sc, sh}, e.origin), x.width};
}

const std::map<std::string, Entry>& estimator_table() {
  static const std::map<std::string, Entry> t = {
      {"MLPRegressor", {Role::regressor, translate_mlp_regressor}},
      {"MLPClassifier", {Role::classifier, translate_mlp_classifier}},
      {"LinearRegression", {Role::regressor, translate_linear_regression}},
      {"Ridge", {Role::regressor, translate_linear_regression}},
      {"LogisticRegression", {Role::classifier, translate_logistic_regression}},
      {"StandardScaler", {Role::transformer, translate_standard_scaler}},
  };
  return t;
}

// ------------------------------------------------------------------ estimators and Pipelines

// Translates the estimator at `json` for `role`; non-final Pipeline steps are transformers.
Value translate(Builder& b, const JsonRef& json, const std::string& prefix, const std::string& step, Role role,
                const Value& x, const std::string& out) {
  JsonRef cls_ref = json["class"];
  const std::string cls = cls_ref.str();
  const std::string origin = step.empty() ? cls : "step " + step + ": " + cls;
  if (cls == "passthrough") {
    if (role != Role::transformer) cls_ref.fail("a passthrough step has no " + std::string(method_of(role)));
    return {b.node(out, "Identity", {x.name}, origin), x.width};
  }
  if (cls == "Pipeline") {
    JsonRef steps = json["steps"];
    if (!steps.is_array() || steps.size() == 0) steps.fail("expected a non-empty list of steps");
    Value v = x;
    for (size_t i = 0; i < steps.size(); ++i) {
      const bool last = i + 1 == steps.size();
      const std::string name = steps[i]["name"].str();
      v = translate(b, steps[i]["estimator"], prefix + name + ".", prefix + name, last ? role : Role::transformer, v,
                    last ? out : prefix + name);
    }
    return v;
  }
  auto it = estimator_table().find(cls);
  if (it == estimator_table().end()) {
    std::string known;
    for (const auto& kv : estimator_table()) known += (known.empty() ? "" : ", ") + kv.first;
    cls_ref.fail("unsupported estimator class \"" + cls + "\" (supported: " + known + ", Pipeline)");
  }
  if (it->second.role != role)
    cls_ref.fail(cls + " cannot " + (role == Role::transformer ? "be a non-final Pipeline step (it is not a transformer)"
                                                                : std::string("give ") + method_of(role) + " (use " +
                                                                      method_of(it->second.role) + ")"));
  return it->second.fn(b, Estimator{json, cls, prefix, origin}, x, out);
}

class SklearnDialect : public Dialect {
 public:
  std::string planet() const override { return "sklearn"; }
  std::string version() const override { return "0.1.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out = table_keys(estimator_table());
    out.push_back("Pipeline");
    return out;
  }

  CaptureCommand capture() const override {
    return serve_command("PLANETBRIDGE_PYTHON", "/usr/bin/python3", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.py");
  }

  ir::Graph decode(const Stream& stream) const override {
    JsonRef model = model_of(stream, "sklearn.estimator");
    JsonRef method = model["method"];
    Role role;
    if (method.str() == "predict") {
      role = Role::regressor;
    } else if (method.str() == "predict_proba") {
      role = Role::classifier;
    } else {
      method.fail("unsupported method \"" + method.str() + "\" (expected predict or predict_proba)");
    }
    if (stream.inputs.size() != 1) stream.root()["inputs"].fail("expected one input, X");
    if (stream.expected.size() != 1) stream.root()["expected"].fail("expected one output, the method's result");
    const Tensor& x = stream.tensor(stream.inputs[0], "inputs[0]");
    if (x.shape().size() != 2) stream.root()["inputs"][0].fail("X must be [samples, features], got " + shape_str(x.shape()));

    Builder b{stream, {}};
    b.graph.metadata = stream_metadata(stream);
    b.graph.inputs.push_back({"X", DType::f32, {-1, x.shape()[1]}});  // batch fixed when compiled
    Value y = translate(b, model["estimator"], "", "", role, {"X", x.shape()[1]}, method.str());
    b.graph.outputs = {y.name};
    b.graph.validate();
    return std::move(b.graph);
  }
};

}  // namespace
}  // namespace pb::sklearn

PLANETBRIDGE_DIALECT(pb::sklearn::SklearnDialect)
