// The hand-written JSON reader and writer of inference requests and responses: wherever the
// reader takes a body it must give exactly what the nlohmann parser gives, it must give up on
// every body outside its form (so that the nlohmann parser words the error), and what the
// writer writes must parse back to the same values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "kpt/error.hpp"
#include "server/infer_json.hpp"
#include "server/protocol.hpp"

namespace kpt::server {
namespace {

bool same_tensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.dims() != b.dims()) return false;
  if (a.dtype() == DType::String) return a.strings() == b.strings();
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

void expect_same_as_dom(const std::string& body, std::optional<size_t> header_length = {}) {
  SCOPED_TRACE(body.substr(0, 200));
  std::string_view header = header_length ? std::string_view(body).substr(0, *header_length) : body;
  std::string_view binary =
      header_length ? std::string_view(body).substr(*header_length) : std::string_view();
  auto fast = read_infer_request_fast(header, binary, header_length.has_value());
  ASSERT_TRUE(fast.has_value()) << "the fast reader gave up on a body in its form";
  InferRequest dom = parse_infer_request_dom(body, header_length);
  EXPECT_EQ(fast->id, dom.id);
  EXPECT_EQ(fast->binary_outputs, dom.binary_outputs);
  EXPECT_EQ(fast->timeout_us, dom.timeout_us);
  ASSERT_EQ(fast->inputs.size(), dom.inputs.size());
  for (size_t i = 0; i < dom.inputs.size(); ++i) {
    EXPECT_EQ(fast->inputs[i].first, dom.inputs[i].first);
    EXPECT_TRUE(same_tensor(fast->inputs[i].second, dom.inputs[i].second))
        << "input " << i << ": " << fast->inputs[i].second.describe() << " vs "
        << dom.inputs[i].second.describe();
  }
  ASSERT_EQ(fast->outputs.size(), dom.outputs.size());
  for (size_t i = 0; i < dom.outputs.size(); ++i) {
    EXPECT_EQ(fast->outputs[i].name, dom.outputs[i].name);
    EXPECT_EQ(fast->outputs[i].binary, dom.outputs[i].binary);
  }
}

TEST(ServerInferJson, FastReaderMatchesTheDomParser) {
  expect_same_as_dom(
      R"({"inputs":[{"name":"INPUT0","shape":[3],"datatype":"FP32","data":[0.5,-1e-3,3]}]})");
  expect_same_as_dom(R"( { "id" : "r1" , "inputs" : [ { "name" : "a" , "shape" : [ 2 , 2 ] ,
      "datatype" : "FP64" , "data" : [ [ 1.7976931348623157e308 , -0 ] , [ 0.1 , 5E-324 ] ] } ],
      "outputs" : [ { "name" : "y" , "parameters" : { "binary_data" : true } } , {"name":"z"} ],
      "parameters" : { "binary_data_output" : false , "timeout" : 1500 } } )");
  expect_same_as_dom(R"({"inputs":[
      {"name":"i8","shape":[3],"datatype":"INT8","data":[-128,0,127]},
      {"name":"u8","shape":[2],"datatype":"UINT8","data":[0,255]},
      {"name":"i16","shape":[2],"datatype":"INT16","data":[-32768,32767]},
      {"name":"u16","shape":[1],"datatype":"UINT16","data":[65535]},
      {"name":"i32","shape":[2],"datatype":"INT32","data":[-2147483648,2147483647]},
      {"name":"u32","shape":[1],"datatype":"UINT32","data":[4294967295]},
      {"name":"i64","shape":[2],"datatype":"INT64","data":[-9223372036854775808,9223372036854775807]},
      {"name":"u64","shape":[1],"datatype":"UINT64","data":[9223372036854775807]},
      {"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},
      {"name":"h","shape":[2],"datatype":"FP16","data":[1.5,-65504]},
      {"name":"bf","shape":[1],"datatype":"BF16","data":[3.140625]},
      {"name":"s","shape":[2],"datatype":"BYTES","data":["hi",""]},
      {"name":"e","shape":[0,4],"datatype":"FP32","data":[]}]})");
  // Integers, huge integers and exponents in float data convert as the DOM converts them.
  expect_same_as_dom(
      R"({"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[16777217,1e39,123456789012345678901234,-0.0]}]})");
  // Binary tensors after the JSON header.
  std::string header =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true}})";
  float values[2] = {1.25f, -2.0f};
  std::string body = header + std::string(reinterpret_cast<const char*>(values), 8);
  expect_same_as_dom(body, header.size());
}

TEST(ServerInferJson, FastReaderGivesUpOutsideItsForm) {
  const char* bodies[] = {
      R"({"inputs":[{"name":"a\u0062","shape":[1],"datatype":"FP32","data":[1]}]})",  // escape
      R"({"inputs":[{"name":"a","data":[1],"shape":[1],"datatype":"FP32"}]})",        // data first
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"extra":1}]})",
      R"({"inputs":[],"inputs":[]})",                                             // twice
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]} x)",  // trailing
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"UINT8","data":[256]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"INT32","data":[1.0]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]})",
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1]}]})",  // count
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[01]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[+1]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[.5]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1.]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[NaN]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":["1"]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FLOAT","data":[1]}]})",
      R"({"inputs":[{"name":"a","shape":[-1],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},
                    {"name":"a","shape":[1],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"é","shape":[1],"datatype":"FP32","data":[1]}]})",
      R"({"id":"x"})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"x":1}})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]})",  // unterminated
      // A shape the body cannot hold: no allocation sized by it.
      R"({"inputs":[{"name":"a","shape":[4000000000],"datatype":"FP32","data":[1]}]})",
  };
  for (const char* body : bodies)
    EXPECT_FALSE(read_infer_request_fast(body, {}, false).has_value()) << body;
  // Binary sizes that do not add up to the binary part.
  std::string header =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  EXPECT_FALSE(read_infer_request_fast(header, std::string(12, '\0'), true).has_value());
  EXPECT_FALSE(read_infer_request_fast(header, std::string(4, '\0'), true).has_value());
  EXPECT_FALSE(read_infer_request_fast(header, std::string(8, '\0'), false).has_value());
}

TEST(ServerInferJson, ParseFallsBackToTheDomForItsMessages) {
  try {
    parse_infer_request(R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1]}]})",
                        std::nullopt);
    FAIL() << "a wrong element count was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds 1 elements"), std::string::npos) << e.what();
  }
  // Deep nesting is refused by both, without recursing a million levels.
  std::string deep = R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":)" +
                     std::string(1000000, '[') + "1" + std::string(1000000, ']') + "}]}";
  try {
    parse_infer_request(deep, std::nullopt);
    FAIL() << "nesting a million levels deep was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deeper than 32 levels"), std::string::npos) << e.what();
  }
  // Escapes are valid JSON: the DOM reads them.
  auto r = parse_infer_request(
      R"({"inputs":[{"name":"a\u0062","shape":[1],"datatype":"FP32","data":[2]}]})", std::nullopt);
  EXPECT_EQ(r.inputs[0].first, "ab");
}

TEST(ServerInferJson, WriterOutputParsesBackExactly) {
  Tensor f = Tensor::uninitialized(DType::F32, {6});
  float fv[6] = {0.1f,   -3.4028235e38f, 1.17549435e-38f,
                 1e-45f, std::nanf(""),  std::numeric_limits<float>::infinity()};
  std::memcpy(f.raw(), fv, sizeof fv);
  Tensor i = Tensor::uninitialized(DType::I64, {2});
  i.data<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  i.data<int64_t>()[1] = 42;
  Tensor s(DType::String, {3});
  s.strings()[0] = "quote\" back\\ nl\n";
  s.strings()[1] = "\xc3\xa9t\xc3\xa9";  // UTF-8
  s.strings()[2] = "bad \xff byte";
  Tensor b = Tensor::uninitialized(DType::Bool, {2});
  b.data<uint8_t>()[0] = 1;
  b.data<uint8_t>()[1] = 0;
  InferRequest req;
  req.id = "id \"1\"";
  auto enc = encode_infer_response("m", "1", req.id, {"f", "i", "s", "b"}, {f, i, s, b}, req);
  EXPECT_FALSE(enc.header_length.has_value());
  nlohmann::json j = nlohmann::json::parse(enc.body);
  EXPECT_EQ(j["model_name"], "m");
  EXPECT_EQ(j["model_version"], "1");
  EXPECT_EQ(j["id"], "id \"1\"");
  const auto& out = j["outputs"];
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["datatype"], "FP32");
  EXPECT_EQ(out[0]["shape"], nlohmann::json::array({6}));
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(static_cast<float>(out[0]["data"][k].get<double>()), fv[k]) << k;
  EXPECT_TRUE(out[0]["data"][4].is_null());
  EXPECT_TRUE(out[0]["data"][5].is_null());
  EXPECT_EQ(out[1]["data"][0].get<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(out[2]["data"][0], "quote\" back\\ nl\n");
  EXPECT_EQ(out[2]["data"][1], "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(out[2]["data"][2], "bad \xef\xbf\xbd byte");  // replaced, as nlohmann's dump does
  EXPECT_EQ(out[3]["data"], nlohmann::json::array({true, false}));
}

}  // namespace
}  // namespace kpt::server
