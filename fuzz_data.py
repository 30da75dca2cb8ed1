import random, shutil, sys, tempfile, traceback
import numpy as np
from pathlib import Path
from planarpy.data.store import OHLCVStore
from planarpy.data.ohlcv import load_csv
from planarpy.data.sample import sample_path
from planarpy.core.errors import DataError
from planarpy.cli.main import main
x = load_csv(sample_path("binance", "ETH/BTC", "5m"))
root = Path(tempfile.mkdtemp()) / "data"
s = OHLCVStore(root); s.save("binance", "ETH/BTC", "5m", x[:3000]); s.append("binance", "ETH/BTC", "5m", x[3000:])
def same(a, b):
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in ("timestamp","open","high","low","close","volume"))
files = sorted(p for p in root.rglob("*") if p.is_file())
print(len(files), [str(f.relative_to(root)) for f in files])
rng = random.Random(int(sys.argv[1])); per = int(sys.argv[2])
bad = []
for f in files:
    data = f.read_bytes(); rel = f.relative_to(root)
    for _ in range(per):
        bit = rng.randrange(len(data) * 8)
        d = bytearray(data); d[bit // 8] ^= 1 << (bit % 8); f.write_bytes(bytes(d))
        for what in ("load", "check", "append"):
            st = OHLCVStore(root)
            try:
                if what == "load":
                    o = st.load("binance", "ETH/BTC", "5m", derive=False)
                    if not same(o, x): bad.append((str(rel), bit, "CHANGED", len(o)))
                    loaded = True
                elif what == "check":
                    probs = st.check("binance", "ETH/BTC", "5m")
                    infos = st.series()
                    if not probs and not loaded: bad.append((str(rel), bit, "check silent but load failed"))
                else:
                    cp = root.parent / "cp"; shutil.rmtree(cp, ignore_errors=True); shutil.copytree(root, cp)
                    st = OHLCVStore(cp)
                    step = 300000
                    extra = type(x)(*(np.r_[getattr(x, c)[-1:]] for c in ("timestamp","open","high","low","close","volume")))
                    extra.timestamp[:] = x.timestamp[-1] + step
                    st.append("binance", "ETH/BTC", "5m", extra)
                    o = OHLCVStore(cp).load("binance", "ETH/BTC", "5m", derive=False)
                    if not same(o[:len(x)], x) or len(o) != len(x) + 1: bad.append((str(rel), bit, "APPEND CHANGED"))
            except DataError:
                if what == "load": loaded = False
            except Exception as e:
                bad.append((str(rel), bit, what, "EXC", type(e).__name__, str(e)[:150]))
                if what == "load": loaded = False
    f.write_bytes(data)
for b in bad: print(b)
print("findings", len(bad))
