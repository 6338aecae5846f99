// Triton's config.pbtxt: the protobuf text format reader and the mapping of its fields onto
// ModelConfig, with good files and bad ones (each error names the field and its line).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kpt/error.hpp"
#include "server/model_config.hpp"
#include "server/text_proto.hpp"
#include "tests/testing/error_of.hpp"

namespace kpt::server {
namespace {

using testing::error_of;

const char* kTritonConfig = R"(# A Triton model configuration
name: "bert"
platform: "onnxruntime_onnx"
max_batch_size: 16
input [
  {
    name: "input_ids"
    data_type: TYPE_INT64
    dims: [ -1 ]
  },
  {
    name: 'attention_mask'   # single quotes work too
    data_type: TYPE_INT64
    dims: -1
  }
]
output { name: "logits", data_type: TYPE_FP32, dims: [ 2 ] }
dynamic_batching {
  max_queue_delay_microseconds: 2000
  preferred_batch_size: [ 8, 16 ]
  default_queue_policy { max_queue_size: 128; default_timeout_microseconds: 500000 }
}
instance_group [ { count: 2, kind: KIND_CPU } ]
)";

ModelConfig parse_text(const std::string& text) {
  return parse_model_config(triton_text_config_to_json(text, "config.pbtxt"), ModelConfig{},
                            "config.pbtxt");
}

TEST(ServerTextConfig, ReadsTritonsConfigFields) {
  ModelConfig c = parse_text(kTritonConfig);
  EXPECT_EQ(c.max_batch_size, 16);
  EXPECT_TRUE(c.dynamic_batching);
  EXPECT_EQ(c.max_queue_delay_us, 2000);
  EXPECT_EQ(c.preferred_batch_sizes, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(c.max_queue_size, 128);
  EXPECT_EQ(c.default_timeout_us, 500000);
  EXPECT_EQ(c.instance_count, 2);
  ASSERT_EQ(c.inputs.size(), 2u);
  EXPECT_EQ(c.inputs[0].name, "input_ids");
  EXPECT_EQ(c.inputs[0].dtype, DType::I64);
  EXPECT_EQ(c.inputs[0].dims, (Dims{-1}));
  EXPECT_EQ(c.inputs[1].name, "attention_mask");
  EXPECT_EQ(c.inputs[1].dims, (Dims{-1}));  // the repeated form of a one-element list
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_EQ(c.outputs[0].dtype, DType::F32);
  EXPECT_EQ(c.outputs[0].dims, (Dims{2}));
}

TEST(ServerTextConfig, EmptyDynamicBatchingTurnsItOn) {
  ModelConfig c = parse_text("max_batch_size: 4\ndynamic_batching { }\n");
  EXPECT_TRUE(c.dynamic_batching);
  EXPECT_EQ(c.max_queue_delay_us, 0);
  EXPECT_FALSE(parse_text("max_batch_size: 4").dynamic_batching);
}

TEST(ServerTextConfig, ErrorsNameTheFieldAndLine) {
  auto err = [](const std::string& text) { return error_of([&] { parse_text(text); }); };
  std::string e = err("max_batch_size: 4\ndynamic_batching {\n  max_queue_delay_microsecond: 5\n}");
  EXPECT_NE(e.find("config.pbtxt:3: unknown field 'max_queue_delay_microsecond' in "
                   "dynamic_batching"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("known: max_queue_delay_microseconds"), std::string::npos) << e;
  e = err("name: \"m\"\nversion_policy: { latest { num_versions: 1 } }");
  EXPECT_NE(e.find("config.pbtxt:2: unknown field 'version_policy' in the model config"),
            std::string::npos)
      << e;
  e = err("max_batch_size: \"8\"");
  EXPECT_NE(e.find("config.pbtxt:1: 'max_batch_size' must be an integer"), std::string::npos) << e;
  e = err("max_batch_size: 8.5");
  EXPECT_NE(e.find("'max_batch_size' must be an integer, got '8.5'"), std::string::npos) << e;
  e = err("input { name: \"x\" data_type: \"TYPE_FP32\" }");
  EXPECT_NE(e.find("'data_type' must be an enum name"), std::string::npos) << e;
  e = err("input { name: \"x\" data_type: TYPE_FLOAT }");
  EXPECT_NE(e.find("unknown datatype 'FLOAT'"), std::string::npos) << e;
  e = err("max_batch_size: 4\nmax_batch_size: 8");
  EXPECT_NE(e.find("config.pbtxt:2: field 'max_batch_size' given twice"), std::string::npos) << e;
  e = err("instance_group [ { count: 1, kind: KIND_GPU } ]");
  EXPECT_NE(e.find("KIND_GPU"), std::string::npos) << e;
  e = err("dynamic_batching { }");
  EXPECT_NE(e.find("dynamic_batching needs max_batch_size > 0"), std::string::npos) << e;
  e = err("max_batch_size 4");
  EXPECT_NE(e.find("config.pbtxt:1: expected ':' after field name 'max_batch_size'"),
            std::string::npos)
      << e;
  e = err("input {\n name: \"x\"\n");
  EXPECT_NE(e.find("unexpected end of file, expected '}'"), std::string::npos) << e;
  e = err("name: \"unterminated\n");
  EXPECT_NE(e.find("config.pbtxt:1: string not closed"), std::string::npos) << e;
  e = err("input [ { name: \"a\" } { name: \"b\" } ]");
  EXPECT_NE(e.find("expected ',' or ']' in the list of field 'input'"), std::string::npos) << e;
}

TEST(ServerTextConfig, TextProtoReaderKeepsTypesAndLines) {
  TextMessage m =
      parse_text_proto("a: 1\n# comment\nb: \"x\\\"y\" 'z'\nc: ENUM_V\nd < e: -2.5e3 >", "t");
  ASSERT_EQ(m.fields.size(), 4u);
  EXPECT_EQ(m.fields[0].type, TextField::Type::Number);
  EXPECT_EQ(m.fields[0].text, "1");
  EXPECT_EQ(m.fields[1].type, TextField::Type::String);
  EXPECT_EQ(m.fields[1].text, "x\"yz");  // escapes, adjacent literals concatenated
  EXPECT_EQ(m.fields[1].line, 3);
  EXPECT_EQ(m.fields[2].type, TextField::Type::Identifier);
  EXPECT_EQ(m.fields[3].type, TextField::Type::Message);
  ASSERT_EQ(m.fields[3].message->fields.size(), 1u);
  EXPECT_EQ(m.fields[3].message->fields[0].text, "-2.5e3");
  EXPECT_EQ(m.fields[3].message->fields[0].line, 5);
}

TEST(ServerTextConfig, JsonBesideTheTextConfigOverridesIt) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("kpt_text_config_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.pbtxt") << kTritonConfig;
  ModelConfig only_text = load_model_config(dir.string(), ModelConfig{});
  EXPECT_EQ(only_text.instance_count, 2);
  std::ofstream(dir / "config.json")
      << R"({"threads_per_instance": 1, "dynamic_batching": {"max_queue_delay_microseconds": 10}})";
  ModelConfig both = load_model_config(dir.string(), ModelConfig{});
  EXPECT_EQ(both.threads_per_instance, 1);
  EXPECT_EQ(both.max_queue_delay_us, 10);
  EXPECT_EQ(both.preferred_batch_sizes, (std::vector<int64_t>{8, 16}));  // kept from the text
  EXPECT_EQ(both.max_batch_size, 16);
  fs::remove(dir / "config.pbtxt");
  // Alone, the same JSON lacks the max_batch_size that the text config gave.
  std::string e = error_of([&] { load_model_config(dir.string(), ModelConfig{}); });
  EXPECT_NE(e.find("config.json: dynamic_batching needs max_batch_size > 0"), std::string::npos)
      << e;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kpt::server
