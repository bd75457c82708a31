-- Point selects on sbtest1 by primary key with Zipf keys, as sysbench's
-- oltp_point_select runs them but for the key distribution (sysbench
-- 1.0 has no zipfian): P(k) ∝ 1/k^s over 1..rows, drawn by inverting the
-- cumulative distribution.
sysbench.cmdline.options = {
  rows = {"Rows in sbtest1", 100000},
  zipf_s = {"Zipf exponent", 1.01},
  -- Taken and ignored, as the bench's sysbench runner passes them to
  -- every test.
  tables = {"unused", 1},
  table_size = {"unused", 0},
  auto_inc = {"unused", false},
}

function thread_init()
  drv = sysbench.sql.driver()
  con = drv:connect()
  local n, s = sysbench.opt.rows, sysbench.opt.zipf_s
  cdf = {}
  local sum = 0
  for i = 1, n do
    sum = sum + 1 / math.pow(i, s)
    cdf[i] = sum
  end
  for i = 1, n do cdf[i] = cdf[i] / sum end
  stmt = con:prepare("SELECT c FROM sbtest1 WHERE id=?")
  param = stmt:bind_create(sysbench.sql.type.INT)
  stmt:bind_param(param)
end

function thread_done()
  stmt:close()
  con:disconnect()
end

local function key()
  local u = sysbench.rand.uniform_double()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function event()
  param:set(key())
  stmt:execute()
end
