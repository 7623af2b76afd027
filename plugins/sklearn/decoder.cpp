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

// Nodes and weights go through the shared decoder context (planetbridge/decoder.h). Values
// are IR values; each node names the estimator part it computes as its origin.
std::string node(Decoder& d, const std::string& name, const std::string& op, std::vector<std::string> inputs,
                 const std::string& origin, ir::Attrs attrs = {}) {
  d.step(name, op, std::move(inputs), std::move(attrs), origin);
  return name;
}

std::string activation(Decoder& d, const std::string& name, const std::string& input, const std::string& function,
                       const std::string& origin, double alpha = 0, double beta = 0) {
  ir::Attrs a = attrs_of({{"function", function}});
  if (function == "linear") {
    a.set("alpha", alpha);
    a.set("beta", beta);
  }
  return node(d, name, "Activation", {input}, origin, std::move(a));
}

// One estimator entry of the stream (the model's, or a Pipeline step's).
struct Estimator {
  Decoder& d;
  JsonRef json;
  std::string cls;
  std::string prefix;  // "" or "<step>." : IR value names, like the capture's tensor names
  std::string origin;  // "MLPRegressor" or "step mlp: MLPRegressor"

  JsonRef param(const std::string& key) const { return json["params"][key]; }
  JsonRef attr(const std::string& key) const { return json["attributes"][key]; }
  std::optional<JsonRef> find_attr(const std::string& key) const { return json["attributes"].find(key); }

  // The stream tensor of a fitted float array, {"tensor": name}; returns its name.
  std::string tensor_name(const JsonRef& ref) const {
    if (!ref.is_object() || !ref.has("tensor")) ref.fail("expected a tensor reference {\"tensor\": name}");
    const Tensor& t = d.tensor(ref["tensor"].str(), ref["tensor"].path());
    if (!is_float(t.dtype())) ref.fail(std::string("expected a float tensor, got ") + dtype_name(t.dtype()));
    return ref["tensor"].str();
  }
  // Its values as f64 (what scikit-learn computed with).
  Tensor tensor(const JsonRef& ref) const { return d.stream().tensors.at(tensor_name(ref)).cast(DType::f64); }

  // A fitted attribute scikit-learn keeps but inference never reads (a variance beside its scale).
  void ignore(const std::string& key) const {
    if (auto a = find_attr(key); a && a->is_object()) d.ignore(tensor_name(*a));
  }

  // A vector attribute as an IR weight of n values, named for `owner`. scikit-learn may also
  // store it as a float scalar (intercept_ of a single target, or 0.0 with fit_intercept=False):
  // scalars broadcast to n.
  std::string vector_weight(const JsonRef& ref, int64_t n, const std::string& owner, const std::string& role) const {
    if (ref.is_number()) return d.constant(owner, role, filled({n}, ref.f64()));
    const std::string name = tensor_name(ref);
    const Tensor& t = d.stream().tensors.at(name);
    if (t.shape() == Shape{}) return d.derived(name, "broadcast", filled({n}, t.cast(DType::f64).data<double>()[0]));
    if (t.shape() != Shape{n}) ref.fail("expected shape [" + std::to_string(n) + "], got " + shape_str(t.shape()));
    return d.weight(name, ref.path());
  }
  // The same as plain f64 values (for folding into other weights).
  Tensor vector(const JsonRef& ref, int64_t n) const {
    if (ref.is_number()) return filled({n}, ref.f64(), DType::f64);
    Tensor t = tensor(ref);
    if (t.shape() == Shape{}) return filled({n}, t.data<double>()[0], DType::f64);
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

// A value's feature width (last dimension), from the decoder's inferred types.
int64_t width(const Decoder& d, const std::string& value) { return d.ir_type(value).shape.back(); }

// Translates `e` fed with x; the estimator's final value is named `out` (returned).
using EstimatorFn = std::function<std::string(const Estimator&, const std::string& x, const std::string& out)>;

struct Entry {
  Role role;
  std::vector<std::string> params;  // get_params() keys it understands; any other is refused
  EstimatorFn fn;
};

// ------------------------------------------------------------------ shared pieces

// predict_proba of a binary model from p = P(classes_[1]) [N, 1]: [1 - p, p], as scikit-learn's
// np.vstack([1 - p, p]).T.
std::string binary_proba(const Estimator& e, const std::string& p, const std::string& out) {
  const std::string q = activation(e.d, e.prefix + "one_minus_p", p, "linear", e.origin + " 1 - p", -1.0, 1.0);
  return node(e.d, out, "Concat", {q, p}, e.origin + " [1 - p, p]", attrs_of({{"axis", int64_t(-1)}}));
}

// A Dense from coef_ [outputs, in] (or [in] for one target: a row) and intercept_.
std::string linear_dense(const Estimator& e, const std::string& x, const JsonRef& coef_ref, const std::string& name) {
  const std::string coef = e.tensor_name(coef_ref);
  const Tensor& c = e.d.stream().tensors.at(coef);
  const std::string w = c.shape().size() == 1 ? e.d.derived(coef, "row", c.reshaped({1, c.numel()})) : e.d.weight(coef, coef_ref.path());
  const std::string bias = e.vector_weight(e.attr("intercept_"), e.d.ir_type(w).shape[0], name, "intercept");
  return node(e.d, name, "Dense", {x, w, bias}, e.origin + " coef_, intercept_");
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
std::string mlp_layers(const Estimator& e, const std::string& x) {
  e.check_width(width(e.d, x));
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
    coefs.fail("has " + std::to_string(coefs.size()) + " layers, params.hidden_layer_sizes " + hls.raw().dump() + " needs " +
               std::to_string(sizes.size() + 1));
  sizes.push_back(e.attr("n_outputs_").i64());

  std::string v = x;
  for (size_t i = 0; i < coefs.size(); ++i) {
    const std::string idx = std::to_string(i);
    const std::string coef = e.tensor_name(coefs[i]);
    const Tensor w = e.tensor(coefs[i]);  // [in, out], scikit-learn's layout
    const int64_t out = sizes[i];
    if (w.shape() != Shape{width(e.d, v), out})
      coefs[i].fail("expected shape [in, out] = " + shape_str({width(e.d, v), out}) + ", got " + shape_str(w.shape()));
    // Explicit transpose into the IR's [out, in]; the layout is known, never read off the shape.
    const std::string wname = e.d.derived(coef, "T", permuted(w, {1, 0}));
    const std::string dense = e.prefix + "dense." + idx;
    // Always applied: the system we rebuild dropped scikit-learn's intercepts.
    const std::string bname = e.vector_weight(intercepts[i], out, dense, "intercept");
    node(e.d, dense, "Dense", {v, wname, bname}, e.origin + " coefs_[" + idx + "], intercepts_[" + idx + "]");
    if (i + 1 < coefs.size()) {
      v = activation(e.d, e.prefix + "act." + idx, dense, hidden, e.origin + " layer " + idx + " activation " + e.param("activation").str());
    } else if (out_name == "softmax") {
      v = node(e.d, e.prefix + "out", "Softmax", {dense}, e.origin + " out_activation_ softmax",
               attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(0)}}));
    } else {
      v = activation(e.d, e.prefix + "out", dense, mlp_activations().at(out_name), e.origin + " out_activation_ " + out_name);
    }
  }
  return v;
}

std::string translate_mlp_regressor(const Estimator& e, const std::string& x, const std::string& out) {
  const std::string y = mlp_layers(e, x);
  // MLPRegressor.predict ravels a single output to [N].
  if (width(e.d, y) == 1) return node(e.d, out, "Reshape", {y}, e.origin + " ravel", attrs_of({{"shape", std::vector<int64_t>{-1}}}));
  return node(e.d, out, "Identity", {y}, e.origin + " predict");
}

std::string translate_mlp_classifier(const Estimator& e, const std::string& x, const std::string& out) {
  const std::string p = mlp_layers(e, x);
  const int64_t k = static_cast<int64_t>(e.classes());
  // One logistic output is the binary case: predict_proba stacks [1 - p, p].
  if (width(e.d, p) == 1) {
    if (k != 2) e.attr("classes_").fail("has " + std::to_string(k) + " labels for a single output unit (expected 2)");
    if (e.attr("out_activation_").str() != "logistic")
      e.attr("out_activation_").fail("a single output unit must be logistic for predict_proba, got \"" + e.attr("out_activation_").str() + "\"");
    return binary_proba(e, p, out);
  }
  if (k != width(e.d, p))
    e.attr("classes_").fail("has " + std::to_string(k) + " labels, the output layer " + std::to_string(width(e.d, p)) + " units");
  return node(e.d, out, "Identity", {p}, e.origin + " predict_proba");
}

// ------------------------------------------------------------------ linear models

// LinearRegression, Ridge: coef_ [n_targets, F], or [F] for a 1-D y (then predict is [N]).
std::string translate_linear_regression(const Estimator& e, const std::string& x, const std::string& out) {
  const int64_t f = width(e.d, x);
  e.check_width(f);
  e.ignore("singular_");  // LinearRegression's singular values of X: a by-product of the fit
  JsonRef ref = e.attr("coef_");
  const Shape coef = e.tensor(ref).shape();
  const bool one_d = coef == Shape{f};
  if (!one_d && (coef.size() != 2 || coef[1] != f))
    ref.fail("expected shape [n_targets, " + std::to_string(f) + "] or [" + std::to_string(f) + "], got " + shape_str(coef));
  const std::string y = linear_dense(e, x, ref, one_d ? e.prefix + "linear" : out);
  if (one_d) return node(e.d, out, "Reshape", {y}, e.origin + " 1-D predict", attrs_of({{"shape", std::vector<int64_t>{-1}}}));
  return y;
}

// LogisticRegression: coef_ [1, F] binary / [K, F] multinomial; predict_proba as scikit-learn 1.2.
std::string translate_logistic_regression(const Estimator& e, const std::string& x, const std::string& out) {
  const int64_t f = width(e.d, x);
  e.check_width(f);
  const size_t k = e.classes();
  JsonRef ref = e.attr("coef_");
  const int64_t rows = k == 2 ? 1 : static_cast<int64_t>(k);
  if (e.tensor(ref).shape() != Shape{rows, f})
    ref.fail("expected shape " + shape_str({rows, f}) + " for " + std::to_string(k) + " classes, got " + shape_str(e.tensor(ref).shape()));
  const std::string d = linear_dense(e, x, ref, e.prefix + "decision");

  // scikit-learn's rule: OvR for multi_class="ovr", or "auto" with 2 classes or liblinear /
  // newton-cholesky; multinomial otherwise.
  JsonRef mc = e.param("multi_class");
  const std::string multi_class = mc.str(), solver = e.param("solver").str();
  if (multi_class != "auto" && multi_class != "ovr" && multi_class != "multinomial")
    mc.fail("unknown multi_class \"" + multi_class + "\" (expected auto, ovr or multinomial)");
  const bool ovr = multi_class == "ovr" || (multi_class == "auto" && (k <= 2 || solver == "liblinear" || solver == "newton-cholesky"));
  if (ovr) {
    if (k > 2)
      mc.fail("one-vs-rest with " + std::to_string(k) + " classes normalizes K sigmoids; that composition is not "
              "supported (fit with multi_class=\"multinomial\")");
    return binary_proba(e, activation(e.d, e.prefix + "sigmoid", d, "sigmoid", e.origin + " expit"), out);
  }
  std::string logits = d;
  if (k == 2) {  // multinomial with one decision column: softmax([-d, d])
    const std::string neg = activation(e.d, e.prefix + "neg_decision", d, "linear", e.origin + " -decision", -1.0, 0.0);
    logits = node(e.d, e.prefix + "decision_2d", "Concat", {neg, d}, e.origin + " [-d, d]", attrs_of({{"axis", int64_t(-1)}}));
  }
  return node(e.d, out, "Softmax", {logits}, e.origin + " softmax", attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(0)}}));
}

// ------------------------------------------------------------------ preprocessing

// StandardScaler: (x - mean_) / scale_ as an Affine x * (1 / scale_) + (-mean_ / scale_), folded
// in f64 and rounded once into two constants of the step. with_mean / with_std decide (mean_
// exists even with with_mean=False); var_ (scale_²) is not needed.
std::string translate_standard_scaler(const Estimator& e, const std::string& x, const std::string& out) {
  const int64_t f = width(e.d, x);
  e.check_width(f);
  const bool with_mean = e.param("with_mean").boolean(), with_std = e.param("with_std").boolean();
  for (const char* unused : {"var_", with_mean ? "" : "mean_", with_std ? "" : "scale_"})
    if (*unused) e.ignore(unused);
  if (!with_mean && !with_std) return node(e.d, out, "Identity", {x}, e.origin + " (no centering, no scaling)");
  Tensor scale = filled({f}, 1.0, DType::f64), shift = filled({f}, 0.0, DType::f64);
  if (with_std) {
    const Tensor s = e.vector(e.attr("scale_"), f);
    for (int64_t i = 0; i < f; ++i) scale.data<double>()[i] = 1.0 / s.data<double>()[i];
  }
  if (with_mean) {
    const Tensor m = e.vector(e.attr("mean_"), f);
    for (int64_t i = 0; i < f; ++i) shift.data<double>()[i] = -m.data<double>()[i] * scale.data<double>()[i];
  }
  return node(e.d, out, "Affine", {x, e.d.constant(out, "scale", scale.cast(DType::f32)), e.d.constant(out, "shift", shift.cast(DType::f32))},
              e.origin);
}

// get_params() of scikit-learn 1.2, per estimator: any other key is refused. Most only shape
// training; those that change inference are read by the translators.
const std::map<std::string, Entry>& estimator_table() {
  static const std::vector<std::string> mlp = {
      "activation", "alpha", "batch_size", "beta_1", "beta_2", "early_stopping", "epsilon", "hidden_layer_sizes", "learning_rate",
      "learning_rate_init", "max_fun", "max_iter", "momentum", "n_iter_no_change", "nesterovs_momentum", "power_t", "random_state",
      "shuffle", "solver", "tol", "validation_fraction", "verbose", "warm_start"};
  static const std::map<std::string, Entry> t = {
      {"MLPRegressor", {Role::regressor, mlp, translate_mlp_regressor}},
      {"MLPClassifier", {Role::classifier, mlp, translate_mlp_classifier}},
      {"LinearRegression", {Role::regressor, {"copy_X", "fit_intercept", "n_jobs", "positive"}, translate_linear_regression}},
      {"Ridge",
       {Role::regressor, {"alpha", "copy_X", "fit_intercept", "max_iter", "positive", "random_state", "solver", "tol"},
        translate_linear_regression}},
      {"LogisticRegression",
       {Role::classifier,
        {"C", "class_weight", "dual", "fit_intercept", "intercept_scaling", "l1_ratio", "max_iter", "multi_class", "n_jobs", "penalty",
         "random_state", "solver", "tol", "verbose", "warm_start"},
        translate_logistic_regression}},
      {"StandardScaler", {Role::transformer, {"copy", "with_mean", "with_std"}, translate_standard_scaler}},
  };
  return t;
}

// ------------------------------------------------------------------ estimators and Pipelines

// Translates the estimator at `json` for `role`; non-final Pipeline steps are transformers.
std::string translate(Decoder& d, const JsonRef& json, const std::string& prefix, const std::string& step, Role role,
                      const std::string& x, const std::string& out) {
  JsonRef cls_ref = json["class"];
  const std::string cls = cls_ref.str();
  const std::string origin = step.empty() ? cls : "step " + step + ": " + cls;
  d.translating(json, origin);
  if (cls == "passthrough") {
    if (role != Role::transformer) cls_ref.fail("a passthrough step has no " + std::string(method_of(role)));
    return node(d, out, "Identity", {x}, origin);
  }
  if (cls == "Pipeline") {
    JsonRef steps = json["steps"];
    if (!steps.is_array() || steps.size() == 0) steps.fail("expected a non-empty list of steps");
    check_attributes(json["params"], {"memory", "verbose"}, "Pipeline");
    std::string v = x;
    for (size_t i = 0; i < steps.size(); ++i) {
      const bool last = i + 1 == steps.size();
      const std::string name = steps[i]["name"].str();
      v = translate(d, steps[i]["estimator"], prefix + name + ".", prefix + name, last ? role : Role::transformer, v, last ? out : prefix + name);
    }
    return v;
  }
  auto it = estimator_table().find(cls);
  if (it == estimator_table().end())
    cls_ref.fail("unsupported estimator class \"" + cls + "\" (supported: " + joined(table_keys(estimator_table())) + ", Pipeline)");
  if (it->second.role != role)
    cls_ref.fail(cls + " cannot " + (role == Role::transformer ? "be a non-final Pipeline step (it is not a transformer)"
                                                                : std::string("give ") + method_of(role) + " (use " + method_of(it->second.role) + ")"));
  check_attributes(json["params"], it->second.params, cls);
  return it->second.fn(Estimator{d, json, cls, prefix, origin}, x, out);
}

// Every estimator class of a (nested) Pipeline the table lacks, as one error.
void find_unsupported(const JsonRef& json, UnsupportedTypes& unsupported) {
  const std::string cls = json["class"].str();
  if (cls == "Pipeline") {
    if (auto steps = json.find("steps"); steps && steps->is_array())
      for (const JsonRef& step : steps->items()) find_unsupported(step["estimator"], unsupported);
  } else if (cls != "passthrough") {
    unsupported.check(estimator_table(), cls, "estimator class", json["class"]);
  }
}

class SklearnDialect : public Dialect {
 public:
  std::string planet() const override { return "sklearn"; }
  std::string version() const override { return "0.2.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out = table_keys(estimator_table());
    out.push_back("Pipeline");
    return out;
  }

  CaptureCommand capture() const override {
    return serve_command("PLANETBRIDGE_PYTHON", "/usr/bin/python3", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.py");
  }

  ir::Graph decode(const Stream& stream) const override {
    Decoder d(stream, "sklearn.estimator", Layout::ChannelsFirst);  // no spatial values: the layout never matters
    JsonRef method = d.model()["method"];
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
    if (stream.tensors.at(stream.inputs[0]).shape().size() != 2)
      stream.root()["inputs"][0].fail("X must be [samples, features], got " + shape_str(stream.tensors.at(stream.inputs[0]).shape()));
    d.input("X", 0, stream.root()["inputs"][0]);
    UnsupportedTypes unsupported;
    find_unsupported(d.model()["estimator"], unsupported);
    unsupported.fail_if_any(d.model()["estimator"]);
    const std::string y = translate(d, d.model()["estimator"], "", "", role, "X", method.str());
    return d.finish({y}, stream.root()["expected"]);
  }
};

}  // namespace
}  // namespace pb::sklearn

PLANETBRIDGE_DIALECT(pb::sklearn::SklearnDialect)
