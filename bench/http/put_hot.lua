-- carrel-serve twin of ../../../shared/peer-workerd/hot.lua: kv put on one hot object.
request = function()
  return wrk.format("POST", "/objects/Obj/hot/put")
end
