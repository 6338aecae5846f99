// The server's pure parts without HTTP: the KServe v2 codec (JSON and binary tensors), the
// dynamic batcher's concatenation and split, model configuration and model name checks.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "kpt/error.hpp"
#include "server/batching.hpp"
#include "server/model_config.hpp"
#include "server/protocol.hpp"
#include "tests/testing/error_of.hpp"

namespace kpt::server {
namespace {

using testing::error_of;

TEST(ServerProtocol, ParsesJsonTensorsFlatAndNested) {
  auto r = parse_infer_request(
      R"({"id":"7","inputs":[{"name":"a","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]},
                             {"name":"b","shape":[3],"datatype":"INT8","data":[-128,0,127]},
                             {"name":"c","shape":[2],"datatype":"BOOL","data":[true,false]},
                             {"name":"s","shape":[1],"datatype":"BYTES","data":["hi"]}],
          "outputs":[{"name":"y","parameters":{"binary_data":true}}]})",
      std::nullopt);
  EXPECT_EQ(r.id, "7");
  ASSERT_EQ(r.inputs.size(), 4u);
  const Tensor& a = r.inputs[0].second;
  EXPECT_EQ(a.dtype(), DType::F32);
  EXPECT_EQ(a.dims(), (Dims{2, 2}));
  EXPECT_FLOAT_EQ(a.data<float>()[3], 4.5f);
  EXPECT_EQ(r.inputs[1].second.data<int8_t>()[0], -128);
  EXPECT_EQ(r.inputs[2].second.data<uint8_t>()[1], 0);
  EXPECT_EQ(r.inputs[3].second.strings()[0], "hi");
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_TRUE(r.outputs[0].binary);
}

TEST(ServerProtocol, RejectsBadRequestsWithClearMessages) {
  auto parse = [](const std::string& body) {
    return error_of([&] { parse_infer_request(body, std::nullopt); });
  };
  EXPECT_NE(parse("{not json").find("malformed JSON"), std::string::npos);
  EXPECT_NE(parse("[]").find("JSON object"), std::string::npos);
  EXPECT_NE(parse(R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1]}]})")
                .find("holds 1 elements"),
            std::string::npos);
  EXPECT_NE(parse(R"({"inputs":[{"name":"a","shape":[1],"datatype":"UINT8","data":[256]}]})")
                .find("range"),
            std::string::npos);
  EXPECT_NE(parse(R"({"inputs":[{"name":"a","shape":[1],"datatype":"INT32","data":[1.5]}]})")
                .find("integer"),
            std::string::npos);
  EXPECT_NE(parse(R"({"inputs":[{"name":"a","shape":[1],"datatype":"F32","data":[1]}]})")
                .find("unknown datatype 'F32'"),
            std::string::npos);
  EXPECT_NE(parse(R"({"inputs":[{"name":"a","shape":[-1],"datatype":"FP32","data":[]}]})")
                .find("non-negative"),
            std::string::npos);
  EXPECT_NE(parse(R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},
                                {"name":"a","shape":[1],"datatype":"FP32","data":[1]}]})")
                .find("given twice"),
            std::string::npos);
  EXPECT_NE(
      parse(
          R"({"inputs":[{"name":"a","shape":[4294967296,4294967296],"datatype":"FP32","data":[]}]})")
          .size(),
      0u);
  EXPECT_NE(
      parse(
          R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]})")
          .find("Inference-Header-Content-Length"),
      std::string::npos);
}

TEST(ServerProtocol, BinaryTensorsBothWays) {
  std::string header =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},
                    {"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}],
          "parameters":{"binary_data_output":true}})";
  float xs[2] = {1.5f, -2.0f};
  std::string body = header + std::string(reinterpret_cast<char*>(xs), 8);
  uint32_t len = 2;
  body.append(reinterpret_cast<char*>(&len), 4).append("ab");
  len = 1;
  body.append(reinterpret_cast<char*>(&len), 4).append("c");
  auto r = parse_infer_request(body, header.size());
  EXPECT_FLOAT_EQ(r.inputs[0].second.data<float>()[1], -2.0f);
  EXPECT_EQ(r.inputs[1].second.strings()[1], "c");
  EXPECT_TRUE(r.binary_outputs);

  auto enc = encode_infer_response("m", "1", "", {"y"}, {r.inputs[0].second}, r);
  ASSERT_TRUE(enc.header_length.has_value());
  auto j = nlohmann::json::parse(enc.body.substr(0, *enc.header_length));
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 8);
  EXPECT_EQ(enc.body.size(), *enc.header_length + 8);
  float back[2];
  std::memcpy(back, enc.body.data() + *enc.header_length, 8);
  EXPECT_FLOAT_EQ(back[0], 1.5f);

  EXPECT_NE(error_of([&] {
              parse_infer_request(body.substr(0, body.size() - 1), header.size());
            }).find("past the end"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { parse_infer_request(body + "zz", header.size()); }).find("belong to no input"),
      std::string::npos);
  EXPECT_NE(error_of([&] { parse_infer_request(body, body.size() + 1); }).find("only"),
            std::string::npos);
}

TEST(ServerProtocol, JsonResponseKeepsOnlyRequestedOutputs) {
  InferRequest req;
  req.outputs.push_back({"b", false});
  Tensor a(DType::I64, {2}), b(DType::F16, {1});
  a.data<int64_t>()[1] = -5;
  b.data<uint16_t>()[0] = float_to_half(0.5f);
  auto enc = encode_infer_response("m", "3", "id9", {"a", "b"}, {a, b}, req);
  EXPECT_FALSE(enc.header_length.has_value());
  auto j = nlohmann::json::parse(enc.body);
  EXPECT_EQ(j["model_version"], "3");
  EXPECT_EQ(j["id"], "id9");
  ASSERT_EQ(j["outputs"].size(), 1u);
  EXPECT_EQ(j["outputs"][0]["datatype"], "FP16");
  EXPECT_EQ(j["outputs"][0]["data"][0], 0.5);
}

TEST(ServerBatching, ConcatenatesAndSplitsAlongDimZero) {
  std::map<std::string, Tensor> a, b, c;
  a["x"] = Tensor(DType::F32, {1, 3});
  b["x"] = Tensor(DType::F32, {2, 3});
  c["x"] = Tensor(DType::F32, {1, 4});
  for (int i = 0; i < 3; ++i) a["x"].data<float>()[i] = static_cast<float>(i);
  for (int i = 0; i < 6; ++i) b["x"].data<float>()[i] = static_cast<float>(10 + i);
  EXPECT_TRUE(batch_compatible(a, b));
  EXPECT_FALSE(batch_compatible(a, c));
  auto joined = concat_batch({&a, &b});
  EXPECT_EQ(joined["x"].dims(), (Dims{3, 3}));
  EXPECT_FLOAT_EQ(joined["x"].data<float>()[4], 11.0f);
  Tensor second = slice_rows(joined["x"], 1, 2);
  EXPECT_EQ(second.dims(), (Dims{2, 3}));
  EXPECT_FLOAT_EQ(second.data<float>()[0], 10.0f);
  EXPECT_THROW(slice_rows(joined["x"], 2, 2), Error);

  std::map<std::string, Tensor> s1, s2;
  s1["s"] = Tensor(DType::String, {1});
  s2["s"] = Tensor(DType::String, {1});
  s1["s"].strings()[0] = "p";
  s2["s"].strings()[0] = "q";
  auto strings = concat_batch({&s1, &s2});
  EXPECT_EQ(slice_rows(strings["s"], 1, 1).strings()[0], "q");
}

TEST(ServerConfig, ParsesTritonStyleFieldsAndRejectsUnknownOnes) {
  auto j = nlohmann::json::parse(R"({"max_batch_size": 8,
      "dynamic_batching": {"max_queue_delay_microseconds": 500, "preferred_batch_size": [4, 8]},
      "instance_group": [{"count": 2, "kind": "KIND_CPU"}],
      "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}]})");
  ModelConfig c = parse_model_config(j, {}, "config.json");
  EXPECT_EQ(c.max_batch_size, 8);
  EXPECT_TRUE(c.dynamic_batching);
  EXPECT_EQ(c.max_queue_delay_us, 500);
  EXPECT_EQ(c.preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c.instance_count, 2);
  EXPECT_EQ(c.inputs[0].dtype, DType::F32);
  auto err = [](const std::string& text) {
    return error_of([&] { parse_model_config(nlohmann::json::parse(text), {}, "cfg"); });
  };
  EXPECT_NE(err(R"({"max_batch_sise": 4})").find("unknown field 'max_batch_sise'"),
            std::string::npos);
  EXPECT_NE(err(R"({"dynamic_batching": {}})").find("max_batch_size > 0"), std::string::npos);
  EXPECT_NE(err(R"({"max_batch_size": 4, "dynamic_batching": {"preferred_batch_size": [8]}})")
                .find("exceeds"),
            std::string::npos);
  EXPECT_NE(err(R"({"max_batch_size": -1})").find("at least 0"), std::string::npos);
}

TEST(ServerConfig, ModelNamesCannotLeaveTheRepository) {
  EXPECT_NO_THROW(validate_model_name("bert_base-v2.1"));
  for (const std::string& bad : std::vector<std::string>{"", "..", "../x", "a/b", ".hidden", "a\\b",
                                                         "x y", std::string(129, 'a')})
    EXPECT_THROW(validate_model_name(bad), Error) << bad;
  EXPECT_TRUE(is_version_string("12"));
  EXPECT_FALSE(is_version_string("012"));
  EXPECT_FALSE(is_version_string("1a"));
  EXPECT_FALSE(is_version_string(""));
}

}  // namespace
}  // namespace kpt::server
