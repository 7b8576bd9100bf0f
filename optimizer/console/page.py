"""The console page as server-rendered HTML (no JavaScript: it reloads itself with a meta refresh). Every value
shown is escaped; the cells a test or a script reads carry `data-pool` / `data-field` attributes."""

from __future__ import annotations

import json
from html import escape

from hashpivot.optimizer.console.state import age_text

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header span{opacity:.85}
main{padding:12px 18px;max-width:1500px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;margin:0 0 12px}
h2{font-size:15px;margin:2px 0 8px}
table{border-collapse:collapse;width:100%}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;vertical-align:top}
th{background:#f4f6f8;font-weight:600}td.t,th.t{text-align:left}
.banner{padding:10px 14px;margin:0 0 10px;border-radius:6px;font-weight:600}
.banner.safe{background:#c0392b;color:#fff}.banner.kept,.banner.old{background:#e67e22;color:#fff}
.banner.stale{background:#f1c40f;color:#222}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #eee;border-radius:5px;padding:6px 10px;min-width:150px}
.card b{display:block;font-size:17px}.card small{color:#666}
.meter{height:12px;background:#eee;border-radius:6px;overflow:hidden;margin-top:4px}
.meter div{height:100%;background:#2e86de}.meter div.over{background:#c0392b}
.ok{color:#1e8449}.bad{color:#c0392b;font-weight:600}.warn{color:#b9770e}
.why{color:#444;text-align:left;max-width:520px}
form.inline{display:inline}button{cursor:pointer}
.chart svg{width:100%;height:auto}
footer{color:#666;font-size:12px;padding:0 18px 18px}
"""


def _num(v, digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def _cell(value, field: str | None = None, cls: str = "") -> str:
    attr = f' data-field="{field}"' if field else ""
    return f'<td class="{cls}"{attr}>{escape(str(value))}</td>'


def _banners(o: dict) -> str:
    return "".join(f'<div class="banner {escape(b["kind"])}" role="alert" data-banner="{escape(b["kind"])}">'
                   f'{escape(b["text"])}</div>' for b in o["banners"])


def _decision(d: dict | None) -> str:
    if d is None:
        return "<section><h2>Last decision</h2><p>No decision stored yet.</p></section>"
    share = d["site_power_kw"] / d["cap_kw"] if d["cap_kw"] else 0.0
    binding = "".join(f"<li>{escape(t)}</li>" for t in (d["binding_explained"] or d["binding_constraints"])) or "<li>none</li>"
    reserve = f'{_num(d["reserve_kw"], 0)} kW'
    if d.get("reserve_price_usd_per_mw_hour") is not None:
        reserve += f' at {_num(d["reserve_price_usd_per_mw_hour"], 2)} USD/MW-h'
    cards = [
        ("status", f'<span data-field="status">{escape(d["status"])}</span>', escape(d["reason"] or "")),
        ("decided", escape(str(d["decided_at_utc"] or "–")), f'for {escape(d["interval_start_utc"])} · {age_text(d["age_s"])} ago'),
        ("horizon profit", f'<span data-field="objective_usd">{_num(d["objective_usd"], 0)}</span> USD', escape(d["method"] or "")),
        ("site meter vs cap", f'<span data-field="site_power_kw">{_num(d["site_power_kw"], 1)}</span> kW',
         f'of {_num(d["cap_kw"], 0)} kW ({share:.0%})<div class="meter"><div class="{"over" if share > 1.0001 else ""}" '
         f'style="width:{min(share, 1.0) * 100:.1f}%"></div></div>'),
        ("power price", f'{_num(d["power_price_usd_per_mwh"], 2)} USD/MWh',
         f'marginal {_num(d["marginal_power_price_usd_per_mwh"], 2)} USD/MWh'),
        ("hashprice", f'{_num(d["hashprice_usd_per_ph_day"], 2)} USD/PH/day', f'BTC {_num(d["btc_usd"], 0)} USD'),
        ("reserve offer", reserve, escape(d.get("reserve_product") or "")),
        ("interconnect shadow price", f'<span data-field="shadow_price">{_num(d["shadow_price_usd_per_mw_hour"], 2)}</span>',
         "USD per extra MW-hour"),
    ]
    if d.get("four_cp_expected_cost_usd") is not None:
        cards.append(("expected 4CP charge", f'{_num(d["four_cp_expected_cost_usd"], 0)} USD', "over the horizon (p × rate/4 × kW)"))
    cards_html = "".join(f'<div class="card"><small>{k}</small><b>{v}</b><small>{s}</small></div>' for k, v, s in cards)
    rows = []
    for p in d["pools"]:
        modes = ", ".join(f"{n:,} {m}" for m, n in p["units_by_mode"].items() if n) or "all off"
        margin = p["margin_usd_per_mwh"]
        cls = "" if margin is None else ("ok" if margin >= 0 else "bad")
        rows.append(
            f'<tr data-pool="{escape(p["name"])}">{_cell(p["name"], "name", "t")}{_cell(p["kind"], "kind", "t")}'
            f'{_cell(_num(p["units_on"], 0), "units_on")}{_cell(_num(p["units_available"], 0), "units_available")}'
            f'{_cell(modes, "units_by_mode", "t")}{_cell(_num(p["power_kw"]), "power_kw")}'
            f'{_cell(_num(p["revenue_usd_per_hour"], 2), "revenue_usd_per_hour")}'
            f'{_cell(_num(p["breakeven_usd_per_mwh"], 2), "breakeven_usd_per_mwh")}'
            f'{_cell(_num(p["price_usd_per_mwh"], 2), "price_usd_per_mwh")}'
            f'{_cell(_num(margin, 2), "margin_usd_per_mwh", cls)}{_cell(p["reason"], "reason", "why")}</tr>')
    return (f'<section id="decision"><h2>Last decision #{d["seq"]}</h2><div class="cards">{cards_html}</div>'
            f'<h2 style="margin-top:12px">Pools at step 0</h2><table id="pools"><thead><tr><th class="t">pool</th>'
            '<th class="t">kind</th><th>units on</th><th>available</th><th class="t">on by mode</th><th>IT kW</th>'
            '<th>revenue USD/h</th><th>breakeven USD/MWh</th><th>price USD/MWh</th><th>margin USD/MWh</th>'
            f'<th class="t">why</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<h2 style="margin-top:12px">Binding at step 0</h2><ul id="binding">{binding}</ul></section>')


def _feeds(o: dict) -> str:
    rows = []
    for f in o["feeds"]:
        state = ("fresh", "ok") if f["fresh"] else (("STALE", "bad") if f["required"] else ("stale", "warn"))
        source = f["source"] or "–"
        if f["fallback"]:
            source += " (fallback)"
        elif f["source_kind"] in ("imported", "derived"):
            source += f' ({f["source_kind"]})'
        rows.append(f'<tr data-series="{escape(f["series"])}">{_cell(f["series"], "series", "t")}'
                    f'{_cell(_num(f["value"], 4) if f["value"] is not None and abs(f["value"]) < 100 else _num(f["value"], 1), "value")}'
                    f'{_cell(f["unit"], None, "t")}{_cell(age_text(f["age_s"]), "age")}{_cell(age_text(f["staleness_s"]), "limit")}'
                    f'{_cell(source, "source", "t")}{_cell("yes" if f["required"] else "no", None)}'
                    f'{_cell(state[0], "fresh", state[1])}</tr>')
    errors = "".join(f'<tr>{_cell(e.get("fetched_at_utc"), None, "t")}{_cell(e.get("group_name"), None, "t")}'
                     f'{_cell(e.get("source"), None, "t")}{_cell(e.get("reason"), None, "why")}</tr>' for e in o["errors"])
    fails = ", ".join(f"{k} {v:,}" for k, v in o["feed_failures"].items()) or "none"
    return ('<section id="feeds"><h2>Feeds</h2><table><thead><tr><th class="t">series</th><th>last value</th>'
            '<th class="t">unit</th><th>age</th><th>limit</th><th class="t">source in use</th><th>required</th>'
            f'<th>state</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<h2 style="margin-top:12px">Last feed errors</h2><p>failed fetches per source: {escape(fails)}</p>'
            '<table id="errors"><thead><tr><th class="t">at (UTC)</th><th class="t">group</th><th class="t">source</th>'
            f'<th class="t">reason</th></tr></thead><tbody>{errors or "<tr><td class=t colspan=4>none</td></tr>"}</tbody></table>'
            '</section>')


def _form(action: str, csrf: str, body: str, label: str) -> str:
    return (f'<form class="inline" method="post" action="{escape(action)}"><input type="hidden" name="csrf" '
            f'value="{escape(csrf)}">{body}<button type="submit">{escape(label)}</button></form>')


def _fleet(o: dict, actions: bool, csrf: str, pools: list[str]) -> str:
    f = o["fleet"]
    parts = ['<section id="fleet"><h2>Fleet</h2>']
    if f is None:
        parts.append("<p>No fleet configured (fleet.inventory or fleet.ranges) and no telemetry stored.</p>")
    else:
        override = f["apply_override"]
        note = (f' (switched from the config\'s {escape(f["apply_config"])} by {escape(override.get("by", "?"))} at '
                f'{escape(override.get("at_utc", "?"))})') if override else (
            " (pinned by --set on the daemon's command line)" if f.get("apply_pinned") else " (from the config)")
        parts.append(f'<p>fleet.apply: <b data-field="fleet_apply">{escape(f["apply"])}</b>{note}</p>')
        if actions:
            choices = "".join(f'<option value="{m}"{" selected" if m == f["apply"] else ""}>{m}</option>'
                              for m in ("off", "dry-run", "on"))
            parts.append("<p>" + _form("/actions/fleet-apply", csrf, f'<select name="apply">{choices}</select> '
                                       '<input name="reason" placeholder="reason" required> ', "switch fleet.apply") + "</p>")
        rows = "".join(f'<tr data-fleet-pool="{escape(str(p["pool"]))}">{_cell(p["pool"], None, "t")}{_cell(p["machines"])}'
                       f'{_cell(p["healthy"])}{_cell(p["mining"])}{_cell(p["sleeping"])}{_cell(p["unreachable"])}'
                       f'{_cell(p["erroring"])}{_cell(_num(p["measured_kw"]))}{_cell(p["last_scan_utc"], None, "t")}</tr>'
                       for p in f["pools"])
        parts.append('<table><thead><tr><th class="t">pool</th><th>machines</th><th>healthy</th><th>mining</th>'
                     '<th>sleeping</th><th>unreachable</th><th>erroring</th><th>measured kW</th><th class="t">last scan</th>'
                     f'</tr></thead><tbody>{rows or "<tr><td class=t colspan=9>no telemetry yet</td></tr>"}</tbody></table>')
        a = f["last_apply"]
        parts.append("<p>last apply: none</p>" if a is None else
                     f'<p data-field="last_apply">last apply at {escape(a["at_utc"])} (decision {a["decision_seq"]}): '
                     f'{a["planned"]:,} planned, {a["ok"]:,} applied, {a["failed"]:,} failed</p>')
    holds = []
    for h in o["holds"]:
        what = "off" if h.get("off") else (f'exactly {int(h["units"]):,} units' if h.get("units") is not None
                                          else f'in {h.get("mode")} mode')
        remove = _form(f'/actions/holds/{int(h["id"])}/remove', csrf, "", "remove") if actions else ""
        holds.append(f'<tr data-hold="{int(h["id"])}">{_cell(h["id"])}{_cell(h.get("pool") or h.get("ip"), None, "t")}'
                     f'{_cell(what, None, "t")}{_cell(h.get("until_utc") or "until removed", None, "t")}'
                     f'{_cell(h.get("reason"), None, "why")}<td>{remove}</td></tr>')
    parts.append('<h2 style="margin-top:12px">Active holds</h2><table id="holds"><thead><tr><th>id</th><th class="t">pool / machine</th>'
                 '<th class="t">hold</th><th class="t">until</th><th class="t">reason</th><th></th></tr></thead>'
                 f'<tbody>{"".join(holds) or "<tr><td class=t colspan=6>none</td></tr>"}</tbody></table>')
    if actions:
        options = "".join(f'<option value="{escape(p)}">{escape(p)}</option>' for p in pools)
        body = (f'<select name="pool">{options}</select> <select name="what"><option value="off">off</option>'
                '<option value="units">exactly N units</option><option value="mode">only mode</option></select> '
                '<input name="units" type="number" min="0" placeholder="N"> <input name="mode" placeholder="mode"> '
                '<input name="until" placeholder="until (UTC ISO, optional)"> <input name="reason" placeholder="reason" required> ')
        parts.append("<p>" + _form("/actions/holds", csrf, body, "add hold") + "</p>")
    parts.append("</section>")
    return "".join(parts)


def render_page(o: dict, chart_svg: str, refresh_s: int, actions: bool, csrf: str, pools: list[str],
                flash: str | None = None) -> str:
    d = o["decision"]
    title = f'{o["site"]["name"]} · hashpivot'
    status = "no decision" if d is None else f'#{d["seq"]} {d["status"]} at {d["decided_at_utc"]}'
    flash_html = f'<div class="banner kept" data-banner="flash">{escape(flash)}</div>' if flash else ""
    four_cp = '' if d is None or not d.get("four_cp_field") else ", 4CP probability"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{int(refresh_s)}">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
        f'<style>{CSS}</style></head><body><header><h1>{escape(o["site"]["name"])}</h1>'
        f'<span>last decision {escape(status)}</span><span>now {escape(o["now_utc"][:19])}Z</span>'
        f'<span>refreshes every {int(refresh_s)} s</span><span>{"actions on" if actions else "read-only"}</span></header><main>'
        f'<div id="banners">{flash_html}{_banners(o)}</div>{_decision(d)}'
        f'<section class="chart" id="chart"><h2>Last 48 h and the planned horizon: price, site kW by pool, the cap{four_cp}</h2>'
        f'{chart_svg}</section>{_feeds(o)}{_fleet(o, actions, csrf, pools)}</main>'
        '<footer>JSON: <a href="/api/overview">/api/overview</a> · <a href="/api/decision">/api/decision</a> · '
        '<a href="/api/chart.svg">/api/chart.svg</a> · <a href="/healthz">/healthz</a></footer></body></html>')


def render_login(message: str = "") -> str:
    note = f"<p class=bad>{escape(message)}</p>" if message else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hashpivot console: sign in</title>'
            f'<style>{CSS}</style></head><body><main><section><h2>hashpivot console</h2>{note}'
            '<form method="post" action="/login"><input type="password" name="token" placeholder="console token" '
            'autocomplete="current-password" required> <button type="submit">sign in</button></form>'
            '<p><small>Scripts send the token as <code>Authorization: Bearer …</code>.</small></p></section></main></body></html>')


def dumps(value) -> str:
    return json.dumps(value, default=str)
