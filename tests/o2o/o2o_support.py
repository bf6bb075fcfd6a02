"""Helpers shared by the O2O tests."""

from __future__ import annotations

SHANGHAI = (31.2304, 121.4737)
EVERY_DAY = [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)]


def point_body(name="Tire shop", lat=SHANGHAI[0], lng=SHANGHAI[1], datum="wgs84",
               timezone="Asia/Shanghai", hours=None, capacity=2, duration=60, fitment=None,
               **extra):
    return {"name": name, "location": {"lat": lat, "lng": lng, "datum": datum},
            "timezone": timezone, "opening_hours": EVERY_DAY if hours is None else hours,
            "services": [{"code": "tire-fitting", "duration_minutes": duration,
                          "capacity": capacity, "price": {"amount": "80.00", "currency": "CNY"}}],
            "fitment": {"rim_diameter": [15, 19]} if fitment is None else fitment, **extra}


def make_point(client, **kwargs):
    r = client.post("/v1/service-points", json=point_body(**kwargs))
    assert r.status_code == 201, r.text
    return r.json()
