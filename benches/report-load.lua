-- wrk script for benches/report-load.sh: every request POSTs a umc-report/1 report as the
-- next host of the fleet, with that host's Basic credentials, over wrk's keep-alive
-- connections.
--
--   wrk ... -s report-load.lua <base url> -- <hosts file> <threads>
--
-- <hosts file> has "<host> <base64 of host:token>" lines. Thread i (1-based) takes the
-- lines with (line index mod threads) == i - 1, so the threads cover the fleet between them
-- and each thread cycles through its share.

local next_id = 1

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   if not file or not nthreads then
      error("usage: -- <hosts file> <threads>")
   end
   hosts, auths = {}, {}
   local i = 0
   for line in io.lines(file) do
      local h, basic = line:match("^(%S+) (%S+)$")
      if h then
         if i % nthreads == id - 1 then
            hosts[#hosts + 1] = h
            auths[#auths + 1] = "Basic " .. basic
         end
         i = i + 1
      end
   end
   if #hosts == 0 then
      error("no hosts for thread " .. id)
   end
   n = 0
end

local body_fmt = table.concat({
   "Format: umc-report/1",
   "Started: %d",
   "Finished: %d",
   "Step: update 0",
   "Step: install 0",
   "Step: autoremove 0",
   "Installed: umc-node 1.3",
   "Installed: umc-%s 1.3",
   "Reboot-Required: no",
   "Upgradable: 2",
   "",
}, "\n")

function request()
   local k = n % #hosts + 1
   n = n + 1
   local h = hosts[k]
   local now = os.time()
   local body = string.format(body_fmt, now - 30, now, h)
   return wrk.format("POST", "/hosts/" .. h .. "/report", {
      ["Authorization"] = auths[k],
      ["Content-Type"] = "text/plain",
   }, body)
end
