-- carrel-serve twin of ../../../shared/peer-workerd/rnd.lua: kv put across 1000 objects.
request = function()
  return wrk.format("POST", "/objects/Obj/obj" .. math.random(1, 1000) .. "/put")
end
