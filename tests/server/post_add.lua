-- wrk script: POSTs a KServe v2 JSON inference request for the trivial Add model
-- (two f32[3,4,5] inputs) on every request of every keep-alive connection.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local vals = {}
for i = 1, 60 do vals[i] = tostring(i * 0.5) end
local data = "[" .. table.concat(vals, ",") .. "]"
wrk.body = '{"inputs":[{"name":"INPUT0","shape":[3,4,5],"datatype":"FP32","data":' .. data ..
  '},{"name":"INPUT1","shape":[3,4,5],"datatype":"FP32","data":' .. data .. '}]}'
