#pragma once
#include <set>
#include <string>

#include "ir/graph.hpp"

namespace kpt::passes {

// Makes every reader of value `from` (in g and in its subgraphs) read `to` instead.
void replace_uses(ir::Graph& g, const std::string& from, const std::string& to);

// Names every graph output and every value a node (or a node's subgraph) reads.
std::set<std::string> used_values(const ir::Graph& g);

bool is_graph_output(const ir::Graph& g, const std::string& value);
bool is_graph_input(const ir::Graph& g, const std::string& value);
// An initializer that no graph input of the same name can override.
const Tensor* constant_initializer(const ir::Graph& g, const std::string& value);
bool has_subgraph(const ir::Node& n);

}  // namespace kpt::passes
