"""The README's Supervision section: its planar.toml block is accepted as written, and
each of its tables is what a run reads."""

import tomllib

from planarpy.modes.live.alignment import Aligner
from planarpy.modes.runtime.alerts import AlertConfig
from planarpy.modes.runtime.shadow import ShadowConfig
from planarpy.modes.runtime.stopping import mode_tables

from readmekit import section_blocks


def test_the_supervision_config_block_is_valid(repo_root):
    (block,) = [code for lang, code in section_blocks(repo_root, "#### Supervision")
                if lang == "toml"]
    cfg = tomllib.loads(block)
    general, _ = mode_tables(cfg, "live", "SmaCross")
    assert general == {"reconcile_every": 60, "reconcile_policy": "warn",
                       "checkpoint_every": 60}
    alerts = AlertConfig.from_config(cfg["alerts"])
    assert alerts.webhooks == ("http://127.0.0.1:9000/hook",) and alerts.retries == 2
    shadow = ShadowConfig.of(cfg["shadow"])
    assert shadow.enabled and shadow.max_slippage_bps == 50 and not shadow.halt
    assert Aligner.__init__.__defaults__[:2] == (60.0, "warn")  # the README's defaults
