"""ERCOT settlement point prices from the public MIS (no key): real-time 15-minute (NP6-905-CD, report type
12301) and day-ahead hourly (NP4-190-CD, 12331).

Chosen over the `gridstatus` library: two small documented endpoints (a JSON document list, then a zipped CSV)
are all we need, and owning them keeps the fetch/parse split, our retry/timeout policy and loopback tests;
gridstatus would pull in a large dependency tree for the same two requests. Its parsing rules were followed
(hour-ending local time, DSTFlag marks the repeated hour when Central time falls back).
"""

from __future__ import annotations

import io
import zipfile

import pandas as pd

from hashpivot.feeds.base import Collector, FeedError, Observation, Payload, whole_csv

MARKET_TZ = "America/Chicago"
RT_COLUMNS = ["DeliveryDate", "DeliveryHour", "DeliveryInterval", "SettlementPointName", "SettlementPointType",
              "SettlementPointPrice", "DSTFlag"]
DA_COLUMNS = ["DeliveryDate", "HourEnding", "SettlementPoint", "SettlementPointPrice", "DSTFlag"]


def local_to_utc(local_naive: pd.Series, dst_flag: pd.Series) -> pd.Series:
    """Central local interval starts -> UTC. In the repeated hour of a fall-back day ERCOT marks the second
    (standard-time) occurrence DSTFlag=Y; the first is daylight time."""
    is_dst = (dst_flag.astype(str).str.strip().str.upper() != "Y").to_numpy()
    index = pd.DatetimeIndex(local_naive)
    return pd.Series(index.tz_localize(MARKET_TZ, ambiguous=is_dst, nonexistent="raise").tz_convert("UTC"), index=local_naive.index)


class _ErcotMis(Collector):
    default_base_url = "https://www.ercot.com"
    report_type_id: int = 0

    def fetch(self, client) -> list[Payload]:
        listing = client.get(self.name, f"{self.base_url}/misapp/servlets/IceDocListJsonWS",
                             params={"reportTypeId": self.report_type_id})
        doc_id = self._newest_csv(listing)
        document = client.get(self.name, f"{self.base_url}/misdownload/servlets/mirDownload", params={"doclookupId": doc_id})
        return [listing, document]

    def _newest_csv(self, listing: Payload) -> str:
        body = listing.json()
        try:
            docs = [d["Document"] for d in body["ListDocsByRptTypeRes"]["DocumentList"]]
        except (KeyError, TypeError):
            raise FeedError(self.name, "document list: expected ListDocsByRptTypeRes.DocumentList[].Document", listing.body) from None
        csvs = [d for d in docs if str(d.get("FriendlyName", "")).endswith("_csv")]
        if not csvs:
            raise FeedError(self.name, f"document list for report {self.report_type_id} has no CSV document", listing.body)
        try:
            newest = max(csvs, key=lambda d: pd.Timestamp(d["PublishDate"]))
            return str(newest["DocID"])
        except (KeyError, ValueError, TypeError) as exc:
            raise FeedError(self.name, f"document list: bad PublishDate/DocID ({exc})", listing.body) from None

    def _csv(self, document: Payload, columns: list[str]) -> pd.DataFrame:
        try:
            with zipfile.ZipFile(io.BytesIO(document.body)) as z:
                names = [n for n in z.namelist() if n.lower().endswith(".csv")]
                if not names:
                    raise FeedError(self.name, "zip holds no CSV", document.body)
                text = whole_csv(self.name, z.read(names[0]), f"{names[0]} in the zip")
                df = pd.read_csv(io.StringIO(text), dtype=str)
        except zipfile.BadZipFile:
            head = document.body[:60]
            raise FeedError(self.name, f"download is not a zip (starts {head!r})", document.body) from None
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise FeedError(self.name, f"CSV lacks columns {missing}; has {list(df.columns)}", document.body)
        return df

    def _points(self) -> list[str]:
        return list(self.options.get("settlement_points", ["HB_WEST"]))

    def _rows(self, df: pd.DataFrame, starts_utc: pd.Series, point_col: str, series: str, document: Payload) -> list[Observation]:
        prices = pd.to_numeric(df["SettlementPointPrice"], errors="coerce")
        out: list[Observation] = []
        for point in self._points():
            mask = df[point_col].str.strip() == point
            if not mask.any():
                raise FeedError(self.name, f"settlement point {point} not in the file", document.body)
            for start, price in sorted(zip(starts_utc[mask], prices[mask])):
                out.append(self.obs(f"{series}.{point}", start.to_pydatetime(), price, "USD/MWh", document.fetched_at_utc))
        return out


class ErcotRealTime(_ErcotMis):
    name = "ercot_mis"
    group = "power_rt"
    report_type_id = 12301

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        document = payloads[-1]
        df = self._csv(document, RT_COLUMNS)
        try:
            day = pd.to_datetime(df["DeliveryDate"], format="%m/%d/%Y")
            hour = df["DeliveryHour"].astype(int)
            interval = df["DeliveryInterval"].astype(int)
        except (ValueError, TypeError) as exc:
            raise FeedError(self.name, f"bad DeliveryDate/DeliveryHour/DeliveryInterval ({exc})", document.body) from None
        local = day + pd.to_timedelta(hour - 1, unit="h") + pd.to_timedelta((interval - 1) * 15, unit="min")
        return self._rows(df, local_to_utc(local, df["DSTFlag"]), "SettlementPointName", "power_rt_usd_per_mwh", document)


class ErcotDayAhead(_ErcotMis):
    name = "ercot_mis"
    group = "power_da"
    report_type_id = 12331

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        document = payloads[-1]
        df = self._csv(document, DA_COLUMNS)
        try:
            day = pd.to_datetime(df["DeliveryDate"], format="%m/%d/%Y")
            hour_ending = df["HourEnding"].str.split(":").str[0].astype(int)
        except (ValueError, TypeError, AttributeError) as exc:
            raise FeedError(self.name, f"bad DeliveryDate/HourEnding ({exc})", document.body) from None
        for point in self._points():  # an operating day has 24 hours (23 or 25 on DST days) per point
            mask = df["SettlementPoint"].str.strip() == point
            for delivery, hours in hour_ending[mask].groupby(day[mask]):
                if mask.any() and not 23 <= len(hours) <= 25:
                    raise FeedError(self.name, f"{point} has {len(hours)} hours on {delivery:%Y-%m-%d} (23 to 25 "
                                               "expected): the file is incomplete", document.body)
        local = day + pd.to_timedelta(hour_ending - 1, unit="h")
        return self._rows(df, local_to_utc(local, df["DSTFlag"]), "SettlementPoint", "power_da_usd_per_mwh", document)


