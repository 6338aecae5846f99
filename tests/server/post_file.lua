-- wrk script: POSTs the body in the file named by $KPT_BODY (a KServe v2 inference request)
-- on every request of every keep-alive connection.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("KPT_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
