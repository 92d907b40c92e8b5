-- wrk script for benches/report-load.sh: GETs the InRelease of a few hosts in turn, each with
-- its own Basic credentials, and waits <delay ms> after each response, so every connection
-- asks at a modest, fixed pace (wrk starts the latency clock when a request is written, so
-- the pause is not counted).
--
--   wrk ... -s report-load-inrelease.lua <base url> -- <hosts file> <delay ms>
--
-- <hosts file> has "<host> <base64 of host:token>" lines.

function init(args)
   local file = args[1]
   pause = tonumber(args[2]) or 0
   reqs = {}
   for line in io.lines(file) do
      local h, basic = line:match("^(%S+) (%S+)$")
      if h then
         reqs[#reqs + 1] = wrk.format("GET", "/hosts/" .. h .. "/dists/umc/InRelease",
            { ["Authorization"] = "Basic " .. basic })
      end
   end
   if #reqs == 0 then
      error("no hosts in " .. tostring(file))
   end
   n = 0
end

function request()
   n = n + 1
   return reqs[n % #reqs + 1]
end

function delay()
   return pause
end
