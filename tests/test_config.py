"""Config validation: every error names the file, the key path, the bad value and what is allowed."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest

from hashpivot.models.config import SiteConfig, apply_override, load_config, validate_config
from hashpivot.models.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "site.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _edited(tmp_path: Path, *overrides: str) -> Path:
    """The example site with raw TOML edits applied through the same override parser, written to disk."""
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for item in overrides:
        apply_override(raw, item)

    lines = _to_toml(raw)
    return _write(tmp_path, lines)


def _to_toml(raw: dict) -> str:
    """A minimal TOML writer (inline tables) good enough for these configs."""
    import json

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)

    return "\n".join(f"{k} = {value(v)}" for k, v in raw.items()) + "\n"


def test_example_site_loads():
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg, SiteConfig)
    assert cfg.site.interconnect_cap_kw == 90_000
    assert {p.name for p in cfg.asic_pools} >= {"s19jpro", "s19xp", "s21"}
    assert {p.name for p in cfg.gpu_pools} == {"a40", "h100"}
    # the allocation matters: installed load at stock exceeds the interconnect
    stock_kw = sum(p.units_installed * next(m for m in p.modes if m.name == "stock").power_w / 1000 for p in cfg.asic_pools)
    gpu_kw = sum(g.gpus_installed * g.full_power_kw for g in cfg.gpu_pools)
    assert (stock_kw + gpu_kw) * cfg.site.pue > cfg.site.interconnect_cap_kw


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("asic_pools[2].modes[0].power_w=-5", r"asic_pools\[2\]\.modes\[0\]\.power_w = -5: must be greater than 0"),
        ("asic_pools[0].units_installed=-3", r"asic_pools\[0\]\.units_installed = -3: must be greater than or equal to 0"),
        ("site.pue=0.8", r"site\.pue = 0\.8: must be greater than or equal to 1"),
        ("horizon.step_minutes=7", r"horizon\.step_minutes = 7: must be 5, 15, 30 or 60"),
        ("asic_pools[1].model='Antminer S99'",
         r"asic_pools\[1\]: model = 'Antminer S99': .*must be one of: .*Antminer S19 XP.* give its hashrate_th and power_w"),
        ("gpu_pools[0].hall='nowhere'", r"gpu_pools\[0\]\.hall = 'nowhere': must be one of the halls: hall-a"),
        ("asic_pools[0].units_available=7000", r"asic_pools\[0\]\.units_available = 7000: must be <= units_installed \(6000\)"),
        ("gpu_pools[1].contract.committed_gpus=5000", r"gpu_pools\[1\]\.contract\.committed_gpus = 5000: must be <= gpus_installed \(4096\)"),
        ("site.interconnect_cap_kw='lots'", r"site\.interconnect_cap_kw = 'lots': must be a valid number"),
        ("site.colour='blue'", r"site\.colour: unknown key; allowed keys here: name, interconnect_cap_kw, pue"),
        ("gpu_pools[0].marketplace_fee=1.5", r"gpu_pools\[0\]\.marketplace_fee = 1\.5: must be less than 1"),
    ],
)
def test_each_bad_value_names_file_key_value_and_what_is_allowed(tmp_path, override, expected):
    path = _edited(tmp_path, override)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert message.startswith(str(path) + ": "), message
    assert re.search(expected, message), message


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"site\.toml: not valid TOML"):
        load_config(_write(tmp_path, "[site\nname = 1"))
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load_config(tmp_path / "nope.toml")


def test_missing_required_key(tmp_path):
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    del raw["site"]["interconnect_cap_kw"]
    with pytest.raises(ConfigError, match=r"site\.interconnect_cap_kw: required key is missing"):
        load_config(_write(tmp_path, _to_toml(raw)))


def test_set_overrides_by_index_and_by_name():
    cfg = load_config(EXAMPLE, ["site.interconnect_cap_kw=80000", "asic_pools.s21.units_available=5000", "gpu_pools[0].utilisation=0.9"])
    assert cfg.site.interconnect_cap_kw == 80_000
    assert next(p for p in cfg.asic_pools if p.name == "s21").units_available == 5000
    assert cfg.gpu_pools[0].utilisation == 0.9


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("site.pue", "expected key.path=value"),
        ("asic_pools[9].units_available=1", "index 9 is out of range"),
        ("asic_pools.s99.units_available=1", "no item named 's99'; names here: s19jpro"),
        ("site.pue=0.5", r"\(with --set overrides\): site\.pue = 0\.5"),
    ],
)
def test_bad_overrides(item, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(EXAMPLE, [item])


def test_mode_with_more_hashrate_at_less_power_than_stock_warns(tmp_path, caplog):
    path = _edited(tmp_path, "asic_pools[2].modes[0].hashrate_th=250")  # s21 eco: 2650 W, now 250 TH > stock 200 TH
    with caplog.at_level(logging.WARNING):
        load_config(path)
    assert re.search(r"asic_pools\[2\]\.modes\[0\] \(eco\): more hashrate .* than stock", caplog.text)


def test_off_switches_what_toml_cannot_write_as_null():
    """TOML has no null: `"off"` switches the metrics endpoint and a family's jump filter off."""
    from hashpivot.models.config import load_config

    cfg = load_config(EXAMPLE, ['daemon.metrics_port="off"', 'feeds.jump_limits.btc_usd="off"'])
    assert cfg.daemon.metrics_port is None and cfg.feeds.jump_limits == {"btc_usd": None}


def test_overriding_one_key_of_a_table_keeps_the_table_s_other_defaults():
    """Deep merges: `--set daemon.feed_crons.btc.second='*/3'` reschedules btc and keeps collecting every
    other group; one source's or one family's override leaves the others at their defaults."""
    from hashpivot.models.config import DEFAULT_FEED_CRONS, load_config

    cfg = load_config(EXAMPLE, ["daemon.feed_crons.btc.second='*/3'", "feeds.sources.coinbase.enabled=false",
                                "feeds.jump_limits.btc_usd=0.5"])
    assert cfg.daemon.feed_crons["btc"] == {"second": "*/3"}
    assert {g: c for g, c in cfg.daemon.feed_crons.items() if g != "btc"} == {
        g: c for g, c in DEFAULT_FEED_CRONS.items() if g != "btc"}
    assert not cfg.feeds.source("coinbase").enabled and cfg.feeds.source("kraken").enabled
    assert cfg.feeds.jump_limits == {"btc_usd": 0.5}  # other families keep the series' default limits


@pytest.mark.parametrize("key, url, expected", [
    ("feeds.sources.coinbase.base_url", "file:///etc/passwd", "must be an http:// or https:// URL with a host"),
    ("feeds.sources.mempool.base_url", "gopher://example.org", "must be an http:// or https:// URL with a host"),
    ("feeds.sources.kraken.base_url", "127.0.0.1:8080", "must be an http:// or https:// URL with a host"),
    ("daemon.webhook_url", "ftp://example.org/hook", "must be an http:// or https:// URL with a host"),
    ("daemon.webhook_url", "http://user:secret@example.org/hook", "must not carry user:password"),
])
def test_urls_must_be_http_with_a_host_and_no_credentials(key, url, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(EXAMPLE, [f"{key}='{url}'"])
    assert "secret" not in str(err.value)


def test_secret_files_are_relative_to_the_config_file_not_the_working_directory(tmp_path):
    """A drill found console.token_file read from the working directory while fleet.password_file was read
    beside the config: one rule for both."""
    from hashpivot.models.config import load_config

    site = Path(__file__).resolve().parents[1] / "configs" / "site.toml"
    cfg = load_config(site, ["console.token_file='console.token'", "fleet.password_file='miners.pw'"])
    assert cfg.console.token_file == str(site.parent / "console.token")
    assert cfg.fleet.password_file == str(site.parent / "miners.pw")


def test_a_model_outside_the_catalogue_runs_on_its_own_figures(tmp_path):
    cfg = load_config(_edited(tmp_path, "asic_pools[1].model='Antminer S99'"), [
        "asic_pools[1].hashrate_th=300", "asic_pools[1].power_w=4500"])
    stock = next(m for m in cfg.asic_pools[1].modes if m.name == "stock")
    assert (cfg.asic_pools[1].model, stock.hashrate_th, stock.power_w) == ("Antminer S99", 300, 4500)


def test_a_contract_only_gpu_pool_needs_no_marketplace_rate():
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    del raw["gpu_pools"][1]["rate_series"]
    cfg = validate_config(raw)
    assert not cfg.gpu_pools[1].has_marketplace and cfg.gpu_pools[1].contract is not None
    from hashpivot.feeds.embedded import load_market_data
    from hashpivot.optimizer.milp.explain import explain
    from hashpivot.optimizer.pipeline.decide import decide

    solution = decide(cfg, load_market_data(), "2024-08-05T14:00Z").solution
    h100 = next(p for p in explain(solution).pools if p.name == "h100")
    assert h100.market_on == 0 and "marketplace" not in h100.reason  # no marketplace to curtail or explain
    del raw["gpu_pools"][1]["contract"]
    with pytest.raises(ConfigError, match=r"gpu_pools\[1\].*give `marketplace_rate_usd_per_gpu_hour` or a `rate_series`"):
        validate_config(raw)


@pytest.mark.parametrize(("override", "message"), [
    ('power.four_cp.rate_usd_per_kw_year="68.5"', r"power.four_cp.rate_usd_per_kw_year = '68.5': must be a valid number"),
    ('power.four_cp.enabled="yes"', r"power.four_cp.enabled = 'yes': must be a valid boolean"),
    ("power.four_cp.enabled=1", r"power.four_cp.enabled = 1: must be a valid boolean"),
    ("site.interconnect_cap_kw='90000'", r"site.interconnect_cap_kw = '90000': must be a valid number"),
    ("power.four_cp.months=[7, 7, 8]", r"months lists 7 twice"),
])
def test_a_value_of_the_wrong_type_is_named_not_coerced(override, message):
    """A drill: `rate = "68.5"`, `enabled = "yes"` (true) and `enabled = 1` ran; `months = [7, 7, 8]` too."""
    with pytest.raises(ConfigError, match=message):
        load_config(EXAMPLE, [override])
    assert load_config(EXAMPLE, ["site.interconnect_cap_kw=90000"]).site.interconnect_cap_kw == 90000.0  # an int is a number
