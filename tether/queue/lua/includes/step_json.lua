-- Step records are JSON objects stored verbatim: user payloads are spliced in as the
-- JSON text the client sent, never decoded and re-encoded (cjson would turn big integers
-- into floats and empty objects into arrays).
local function with_at(json, now)
  return string.sub(json, 1, -2) .. ',"at":' .. now .. '}'
end

local function step_json(name, kind, status, now, extra)
  return '{"name":' .. cjson.encode(name) .. ',"kind":"' .. kind .. '","status":"' ..
    status .. '","at":' .. now .. extra .. '}'
end

local function step_status(json)
  if not json then return nil end
  return cjson.decode(json).status
end
