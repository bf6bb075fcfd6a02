"""Datums and the h3 prefilter, as pure functions (no database)."""

from __future__ import annotations

import random

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from haina.o2o import geo


def test_gcj02_and_wgs84_round_trip_within_a_metre_at_100_random_points_in_china():
    rnd = random.Random(13)
    worst = 0.0
    for _ in range(100):
        lat, lng = rnd.uniform(18.5, 45.0), rnd.uniform(98.0, 125.0)
        glat, glng = geo.wgs84_to_gcj02(lat, lng)
        # the datums differ by hundreds of metres in China: the conversion does something
        assert geo.haversine_km(lat, lng, glat, glng) > 0.05
        back = geo.gcj02_to_wgs84(glat, glng)
        worst = max(worst, geo.haversine_km(lat, lng, *back) * 1000)
        # and the other way: a GCJ-02 point read off a map, to WGS-84 and back
        again = geo.wgs84_to_gcj02(*geo.gcj02_to_wgs84(lat, lng))
        worst = max(worst, geo.haversine_km(lat, lng, *again) * 1000)
    assert worst < 1.0


def test_outside_china_the_datums_are_the_same():
    assert geo.wgs84_to_gcj02(48.8566, 2.3522) == (48.8566, 2.3522)
    assert geo.gcj02_to_wgs84(40.7128, -74.0060) == (40.7128, -74.0060)


def test_haversine_knows_a_degree_of_latitude_and_shanghai_to_beijing():
    assert abs(geo.haversine_km(0, 0, 1, 0) - 111.195) < 0.01
    assert abs(geo.haversine_km(31.2304, 121.4737, 39.9042, 116.4074) - 1067) < 5


@settings(max_examples=150, deadline=None)
@given(lat=st.floats(18.0, 50.0), lng=st.floats(75.0, 134.0),
       radius=st.floats(0.1, geo.MAX_RADIUS_KM), bearing=st.floats(0, 360),
       share=st.floats(0, 1))
def test_the_covering_cells_hold_every_point_within_the_radius(lat, lng, radius, bearing,
                                                               share):
    import math
    res, cells = geo.covering_cells(lat, lng, radius)
    # a point at a random bearing, at a random share of the radius (the edge included)
    d = radius * share / geo.EARTH_RADIUS_KM
    p1, l1, b = math.radians(lat), math.radians(lng), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    plat, plng = math.degrees(p2), math.degrees(l2)
    assert geo.haversine_km(lat, lng, plat, plng) <= radius + 1e-6
    assert h3.latlng_to_cell(plat, plng, res) in set(cells)
