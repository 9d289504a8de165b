-- Argo CD health of a tollgate.dev AIRoute, from status.parents (Gateway
-- API's RouteStatus): Healthy when every parent Gateway has Accepted and
-- ResolvedRefs True, Degraded when any of them is False (naming the parent
-- and the reason), Progressing while no parent is reported yet or any
-- condition is older than the spec (observedGeneration).
-- Runs without Lua's standard libraries (argocd-cm's default): no string.*.
local hs = {}
local generation = obj.metadata.generation
local status = obj.status or {}
local parents = status.parents or {}

local function findCondition(conditions, conditionType)
  for _, c in ipairs(conditions or {}) do
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

-- parentName names a parentRef: "Gateway namespace/name", with its
-- sectionName and port when set.
local function parentName(p)
  local ref = p.parentRef or {}
  local namespace = ref.namespace or obj.metadata.namespace
  local name = tostring(ref.name)
  if namespace ~= nil then
    name = namespace .. "/" .. name
  end
  name = (ref.kind or "Gateway") .. " " .. name
  if ref.sectionName ~= nil then
    name = name .. " sectionName " .. ref.sectionName
  end
  if ref.port ~= nil then
    name = name .. " port " .. ref.port
  end
  return name
end

-- oldestObserved is the oldest generation a parent's conditions were written for.
local function oldestObserved()
  local oldest = nil
  for _, p in ipairs(parents) do
    for _, c in ipairs(p.conditions or {}) do
      if c.observedGeneration ~= nil and (oldest == nil or c.observedGeneration < oldest) then
        oldest = c.observedGeneration
      end
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

if #parents == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report the route's parent Gateways"
  return hs
end

local failures = {}
local waiting = {}
local names = {}
for _, p in ipairs(parents) do
  local name = parentName(p)
  local accepted = findCondition(p.conditions, "Accepted")
  local refs = findCondition(p.conditions, "ResolvedRefs")
  if accepted ~= nil and accepted.status == "False" then
    table.insert(failures, name .. " does not accept the route: " .. describe(accepted))
  end
  if refs ~= nil and refs.status == "False" then
    table.insert(failures, name .. " has unresolved references: " .. describe(refs))
  end
  if accepted == nil or accepted.status ~= "True" or refs == nil or refs.status ~= "True" then
    table.insert(waiting, name)
  end
  table.insert(names, name)
end

if #failures > 0 then
  hs.status = "Degraded"
  hs.message = table.concat(failures, "; ")
elseif #waiting > 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for Accepted and ResolvedRefs on " .. table.concat(waiting, ", ")
else
  hs.status = "Healthy"
  hs.message = "Accepted by " .. table.concat(names, ", ") .. "; every reference resolves"
end
return hs
