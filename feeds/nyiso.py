"""NYISO real-time zonal LBMP from the public MIS daily CSV (no key), so the tool is not ERCOT-only.

`http://mis.nyiso.com/public/csv/realtime/<YYYYMMDD>realtime_zone.csv`; columns "Time Stamp" (Eastern local,
MM/DD/YYYY HH:MM:SS, the END of the 5-minute interval), "Name" (zone), "PTID", "LBMP ($/MWHr)", losses and
congestion. The file has no DST flag: the repeated hour of a fall-back day is resolved by order ('infer').
"""

from __future__ import annotations

import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from hashpivot.feeds.base import Collector, FeedError, Observation, Payload, whole_csv
from hashpivot.models.clock import now_utc

MARKET_TZ = "America/New_York"
COLUMNS = ["Time Stamp", "Name", "PTID", "LBMP ($/MWHr)"]


class NyisoRealTime(Collector):
    name = "nyiso_mis"
    group = "power_rt_nyiso"
    default_base_url = "http://mis.nyiso.com"

    def fetch(self, client) -> list[Payload]:
        today = self.options.get("date") or now_utc().astimezone(ZoneInfo(MARKET_TZ)).strftime("%Y%m%d")
        return [client.get(self.name, f"{self.base_url}/public/csv/realtime/{today}realtime_zone.csv")]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        if p.body.lstrip()[:1] == b"<":
            raise FeedError(self.name, "got HTML instead of CSV", p.body)
        text = whole_csv(self.name, p.body)
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise FeedError(self.name, f"not a CSV ({exc})", p.body) from None
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise FeedError(self.name, f"CSV lacks columns {missing}", p.body)
        per_zone = df.groupby(df["Name"].str.strip()).size()
        if per_zone.nunique() > 1:  # every zone is priced at every interval: fewer rows for some = a cut file
            short = per_zone[per_zone < per_zone.max()]
            raise FeedError(self.name, f"zones have {per_zone.min()}..{per_zone.max()} rows ({', '.join(short.index[:3])} "
                                       "short): the file is incomplete", p.body)
        out: list[Observation] = []
        for zone in self.options.get("zones", ["N.Y.C."]):
            z = df[df["Name"].str.strip() == zone]
            if z.empty:
                raise FeedError(self.name, f"zone {zone} not in the file", p.body)
            try:
                ends = pd.to_datetime(z["Time Stamp"], format="%m/%d/%Y %H:%M:%S")
            except ValueError as exc:
                raise FeedError(self.name, f"bad Time Stamp ({exc})", p.body) from None
            ends_utc = pd.DatetimeIndex(ends).tz_localize(MARKET_TZ, ambiguous="infer").tz_convert("UTC")
            prices = pd.to_numeric(z["LBMP ($/MWHr)"], errors="coerce")
            for end, price in zip(ends_utc, prices):
                start = (end - timedelta(minutes=5)).to_pydatetime()
                out.append(self.obs(f"power_rt_usd_per_mwh.{zone}", start, price, "USD/MWh", p.fetched_at_utc))
        return out
