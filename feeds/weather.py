"""Ambient temperature forecast for the site (Open-Meteo forecast API, no key), for the halls' cooling derate.

`GET /v1/forecast?latitude=…&longitude=…&hourly=temperature_2m&timezone=UTC&forecast_days=2` returns
`{"hourly_units": {"temperature_2m": "°C"}, "hourly": {"time": ["2024-08-05T00:00", …], "temperature_2m": […]}}`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hashpivot.feeds.base import Collector, FeedError, Observation, Payload


class OpenMeteo(Collector):
    name = "open_meteo"
    group = "weather"
    default_base_url = "https://api.open-meteo.com"

    def fetch(self, client) -> list[Payload]:
        params = {
            "latitude": self.options["latitude"],
            "longitude": self.options["longitude"],
            "hourly": "temperature_2m",
            "timezone": "UTC",
            "forecast_days": 2,
        }
        return [client.get(self.name, f"{self.base_url}/v1/forecast", params=params)]

    def parse(self, payloads: list[Payload]) -> list[Observation]:
        (p,) = payloads
        body = p.json()
        try:
            hourly = body["hourly"]
            times, temps = hourly["time"], hourly["temperature_2m"]
            unit = body.get("hourly_units", {}).get("temperature_2m", "°C")
        except (KeyError, TypeError):
            raise FeedError(self.name, "expected hourly.time and hourly.temperature_2m", p.body) from None
        if unit not in ("°C", "C"):
            raise FeedError(self.name, f"temperature unit {unit!r}, expected °C", p.body)
        if len(times) != len(temps):
            raise FeedError(self.name, f"{len(times)} times but {len(temps)} temperatures", p.body)
        out = []
        for t, value in zip(times, temps):
            start = datetime.fromisoformat(t).replace(tzinfo=timezone.utc)
            out.append(self.obs("ambient_temp_c", start, self.number(value, f"temperature_2m at {t}", p), "degC", p.fetched_at_utc))
        return out
