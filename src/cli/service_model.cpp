#include "cli/service_model.hpp"

#include <algorithm>

namespace sluice::cli {
namespace json = boost::json;

std::string model_text(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

ServiceModel::ServiceModel(std::string name, const json::object& model)
    : name_(std::move(name)), model_(&model) {}

std::string ServiceModel::protocol() const {
  return model_text(*model_, "protocol");
}
std::string ServiceModel::api_version() const {
  return model_text(*model_, "apiVersion");
}
std::string ServiceModel::signing_name() const {
  return model_text(*model_, "signingName");
}
std::string ServiceModel::target_prefix() const {
  return model_text(*model_, "targetPrefix");
}

const json::object* ServiceModel::operation(const std::string& cli_name) const {
  const auto* found = model_->at("operations").as_object().if_contains(cli_name);
  return found ? &found->as_object() : nullptr;
}

std::vector<std::string> ServiceModel::operation_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : model_->at("operations").as_object()) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const json::object& ServiceModel::shape(const std::string& name) const {
  return model_->at("shapes").as_object().at(name).as_object();
}

const json::object& ServiceModel::shape_of(const json::object& reference) const {
  return shape(model_text(reference, "shape"));
}

const std::vector<ServiceModel>& service_models() {
  // Parsed on first use and kept for the process: the CLI runs one command.
  static const json::value parsed = json::parse(embedded_service_models());
  static const std::vector<ServiceModel> models = [] {
    std::vector<ServiceModel> out;
    for (const auto& [name, model] : parsed.as_object())
      out.emplace_back(std::string(name), model.as_object());
    std::sort(out.begin(), out.end(),
              [](const ServiceModel& a, const ServiceModel& b) { return a.name() < b.name(); });
    return out;
  }();
  return models;
}

const ServiceModel* find_service(const std::string& name) {
  for (const auto& model : service_models())
    if (model.name() == name) return &model;
  return nullptr;
}

}  // namespace sluice::cli
