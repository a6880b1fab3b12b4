"""The Lua scripts of the Redis jobboard: each board operation is one script,
so it is atomic and costs one round trip.

Keys the original TaskFlow reads and writes (same names, same values):
``<ns>:listings`` (uuid -> msgpack posting), ``<ns>:sequence``,
``<ns>:trash`` (uuid -> posting), ``<ns>:<uuid>.owned`` (the owner's name,
with the claim's expiry) and ``<ns>:<uuid>.last_modified``.

Keys only taskflow-ng uses (the original ignores them):
``<ns>:<uuid>.token`` (the claim-token counter, INCR on every claim) and
``<ns>:<uuid>.history`` (claim token -> JSON attempt).

Scripts answer ``{status, detail}``; statuses are the ``S_*`` constants.
"""

from __future__ import annotations

S_OK = b'ok'
S_UNKNOWN_JOB = b'unknown_job'
S_UNKNOWN_OWNER = b'unknown_owner'
S_NOT_OWNER = b'not_owner'
S_ALREADY_CLAIMED = b'already_claimed'

# KEYS: sequence, listings, the job's token key; ARGV: uuid, posting
# without its sequence entry (a map header counting it), channel the
# posting is published on (waiters and POSTED listeners).
# Answers the sequence, or -1 when this is a retry of a post that happened
# (the job is listed, or was claimed since: never post it again).
POST = """
if redis.call('hexists', KEYS[2], ARGV[1]) == 1
    or redis.call('exists', KEYS[3]) == 1 then
  return -1
end
local seq = redis.call('incr', KEYS[1])
local posting = ARGV[2] .. cmsgpack.pack('sequence') .. cmsgpack.pack(seq)
redis.call('hset', KEYS[2], ARGV[1], posting)
redis.call('publish', ARGV[3], posting)
return seq
"""

# The current attempt (history entry of the latest token), or nil.
# KEYS[4] is the token counter and KEYS[5] the history hash in the scripts
# that use it.
_CURRENT = """
local function current()
  local token = redis.call('get', KEYS[4])
  if not token then
    return nil, nil
  end
  local raw = redis.call('hget', KEYS[5], token)
  if not raw then
    return token, nil
  end
  return token, cjson.decode(raw)
end
"""

# Each call carries a nonce (ARGV[6] of CLAIM, ARGV[8] of END): when the
# client retries a call whose reply was lost (the connection dropped after
# the script ran), the retry finds its own nonce and answers 'ok' instead of
# "already claimed by you" / "not found".

# KEYS: listings, owner, last_modified, token, history
# ARGV: uuid, who, expiry ms, now (epoch seconds), packed last_modified, nonce
CLAIM = _CURRENT + """
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
  return {'unknown_job'}
end
local owner = redis.call('get', KEYS[2])
if owner then
  if owner == ARGV[2] then
    local token, attempt = current()
    if attempt and attempt['nonce'] == ARGV[6] then
      return {'ok', tonumber(token)}
    end
  end
  return {'already_claimed', owner}
end
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('set', KEYS[3], ARGV[5])
local token = redis.call('incr', KEYS[4])
redis.call('hset', KEYS[5], token,
           cjson.encode({who=ARGV[2], claimed_at=ARGV[4], token=token,
                         nonce=ARGV[6]}))
return {'ok', token}
"""

# KEYS: listings, owner, token; ARGV: uuid, who, expiry ms, expected token
# ('' when unknown: a job object listed by another board)
RENEW = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
  return {'unknown_job'}
end
local owner = redis.call('get', KEYS[2])
if not owner then
  return {'unknown_owner'}
end
if owner ~= ARGV[2] then
  return {'not_owner', owner}
end
if ARGV[4] ~= '' and redis.call('get', KEYS[3]) ~= ARGV[4] then
  return {'not_owner', owner}
end
redis.call('pexpire', KEYS[2], ARGV[3])
return {'ok'}
"""

# consume / abandon / trash in one script (ARGV[3] says which).
# KEYS: listings, owner, last_modified, token, history, trash
# ARGV: uuid, who, outcome ('consumed', 'abandoned', 'trashed'), now,
#       reason ('' for none), packed last_modified, seconds to keep the
#       history of a consumed job, nonce, channel a consumed or trashed
#       posting is published on (REMOVAL listeners)
END = _CURRENT + """
local function done_already()
  local _, attempt = current()
  return attempt and attempt['end_nonce'] == ARGV[8]
end
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
  if done_already() then
    return {'ok'}
  end
  return {'unknown_job'}
end
local owner = redis.call('get', KEYS[2])
if not owner then
  if done_already() then
    return {'ok'}
  end
  return {'unknown_owner'}
end
if owner ~= ARGV[2] then
  return {'not_owner', owner}
end
local token, attempt = current()
if attempt and attempt['who'] == ARGV[2] and not attempt['outcome'] then
  attempt['ended_at'] = ARGV[4]
  attempt['outcome'] = ARGV[3]
  attempt['end_nonce'] = ARGV[8]
  if ARGV[5] ~= '' then
    attempt['reason'] = ARGV[5]
  end
  redis.call('hset', KEYS[5], token, cjson.encode(attempt))
end
redis.call('del', KEYS[2])
if ARGV[3] == 'consumed' then
  local posting = redis.call('hget', KEYS[1], ARGV[1])
  redis.call('hdel', KEYS[1], ARGV[1])
  redis.call('del', KEYS[3])
  redis.call('expire', KEYS[4], ARGV[7])
  redis.call('expire', KEYS[5], ARGV[7])
  redis.call('publish', ARGV[9], posting)
elseif ARGV[3] == 'trashed' then
  local posting = redis.call('hget', KEYS[1], ARGV[1])
  redis.call('hset', KEYS[6], ARGV[1], posting)
  redis.call('hdel', KEYS[1], ARGV[1])
  redis.call('set', KEYS[3], ARGV[6])
  redis.call('publish', ARGV[9], posting)
else
  redis.call('set', KEYS[3], ARGV[6])
end
return {'ok'}
"""

# KEYS: listings, owner; ARGV: uuid -> 0 unclaimed, 1 claimed, 2 complete
STATE = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
  return 2
end
return redis.call('exists', KEYS[2])
"""

# KEYS: listings, then the owner key of each job; ARGV: the jobs' uuids ->
# one 1 (still listed and unclaimed) or 0 per job.
UNCLAIMED = """
local out = {}
for i, uuid in ipairs(ARGV) do
  if redis.call('hexists', KEYS[1], uuid) == 1
      and redis.call('exists', KEYS[i + 1]) == 0 then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
