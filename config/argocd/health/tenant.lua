-- Argo CD health of a tollgate.dev Tenant, from its Ready condition: True is
-- Healthy; False is Healthy when Suspended (an intended state, said in the
-- message), Progressing while KeysPending and Degraded for any other reason;
-- a status older than the spec (observedGeneration) is Progressing.
-- Runs without Lua's standard libraries (argocd-cm's default): no string.*.
local hs = {}
local generation = obj.metadata.generation
local status = obj.status or {}
local conditions = status.conditions or {}

local function findCondition(conditionType)
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- describe is "Reason: message" of a condition.
local function describe(c)
  if c.message == nil or c.message == "" then
    return tostring(c.reason)
  end
  return tostring(c.reason) .. ": " .. tostring(c.message)
end

-- oldestObserved is the oldest generation the status was written for.
local function oldestObserved()
  local oldest = status.observedGeneration
  for _, c in ipairs(conditions) do
    if c.observedGeneration ~= nil and (oldest == nil or c.observedGeneration < oldest) then
      oldest = c.observedGeneration
    end
  end
  return oldest
end

local observed = oldestObserved()
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation .. " (status is for generation " .. observed .. ")"
  return hs
end

local ready = findCondition("Ready")
if ready == nil or (ready.status ~= "True" and ready.status ~= "False") then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report the Ready condition"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif ready.reason == "Suspended" then
  hs.status = "Healthy"
  hs.message = describe(ready) .. " (spec.suspended: intended, not a failure)"
elseif ready.reason == "KeysPending" then
  hs.status = "Progressing"
  hs.message = describe(ready)
else
  hs.status = "Degraded"
  hs.message = "Not ready: " .. describe(ready)
end
return hs
