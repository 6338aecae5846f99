#pragma once
// Loading models for analysis (kpt inspect), including weight-stripped skeletons.
#include <string>
#include <vector>

#include "ir/model.hpp"

namespace kpt::analysis {

// A weight the file names in metadata_props["stripped_initializers"] (as the project's
// skeleton models do: [{"name", "dims", "data_type"}, ...]) but does not contain.
struct StrippedWeight {
  std::string name;
  DType dtype = DType::Undefined;
  Dims dims;
};

struct AnalysisModel {
  ir::Model model;
  std::vector<StrippedWeight> stripped;  // absent weights; their types are in value_types
  std::string engine_metadata;           // an engine file's metadata section (JSON), else empty
};

// Imports a model file, or the optimized graph of an engine file (.kpt, told by its magic).
// Stripped weights that the file does not contain are declared to the importer as typed graph
// inputs (so the graph verifies) and then moved from the inputs to graph.value_types: shapes flow
// through them, and they are not mistaken for model inputs.
AnalysisModel load_for_analysis(const std::string& path);

}  // namespace kpt::analysis
