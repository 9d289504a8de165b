-- Argo CD health of a tollgate.dev ProxyConfig, from its Accepted condition:
-- True is Healthy, False is Degraded, and a status older than the spec
-- (observedGeneration) is Progressing.
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

local accepted = findCondition("Accepted")
if accepted ~= nil and accepted.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(accepted)
  return hs
end
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = "Not accepted: " .. describe(accepted)
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the controller to report the Accepted condition"
return hs
