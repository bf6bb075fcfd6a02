"""Coordinates: GCJ-02 ↔ WGS-84, great-circle distance, and the h3 cells of a nearby search.

GCJ-02 is the datum China's maps (AMap, Tencent, Baidu's base) show: WGS-84 shifted by an
obfuscating function of the position, published in many open implementations (e.g.
googollee/eviltransform). WGS-84 → GCJ-02 is that function; the inverse has no closed form and
is found by fixed-point iteration to well under a millimetre. Outside China both are the same.
A pure library: no database, no other module.
"""

from __future__ import annotations

import math
from typing import Literal

import h3

Datum = Literal["wgs84", "gcj02"]

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)
# the Krasovsky 1940 ellipsoid GCJ-02 is defined on
_A = 6378245.0
_EE = 0.00669342162296594323

#: the resolutions stored per point: a search of the whole radius picks the finest whose disk
#: stays small (5 or 7); resolution 7 also counts the points per cell (where a nearest-first
#: search starts), 9 is shown with the point
RESOLUTIONS = (5, 7, 9)
#: the search radius up to which resolution 7 (cells ~1.4 km across an edge) is used
FINE_RADIUS_KM = 15.0
#: latitude bands of the nearest-first search, per degree (0.01°: ~1.1 km tall); a point's
#: band and longitude key the box a nearest-first search reads (``box_degrees_per_km``)
BANDS_PER_DEGREE = 100
#: km per degree of latitude on the sphere of ``EARTH_RADIUS_KM``
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180
MAX_RADIUS_KM = 100.0


def out_of_china(lat: float, lng: float) -> bool:
    """The box GCJ-02 is applied in (as every open implementation draws it)."""
    return not (73.66 < lng < 135.05 and 3.86 < lat < 53.55)


def _shift(lat: float, lng: float) -> tuple[float, float]:
    x, y = lng - 105.0, lat - 35.0
    pi = math.pi
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
            + (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
            + (160.0 * math.sin(y / 12.0 * pi) + 320.0 * math.sin(y * pi / 30.0)) * 2.0 / 3.0)
    dlng = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
            + (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
            + (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * pi)
    dlng = (dlng * 180.0) / (_A / sqrtmagic * math.cos(radlat) * pi)
    return dlat, dlng


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    dlat, dlng = _shift(lat, lng)
    return lat + dlat, lng + dlng


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 image is (lat, lng): iterate w ← w − (gcj(w) − g); the
    shift varies slowly (its derivative is ~1e-5), so each step gains five digits."""
    if out_of_china(lat, lng):
        return lat, lng
    wlat, wlng = lat, lng
    for _ in range(10):
        glat, glng = wgs84_to_gcj02(wlat, wlng)
        dlat, dlng = glat - lat, glng - lng
        wlat, wlng = wlat - dlat, wlng - dlng
        if abs(dlat) < 1e-12 and abs(dlng) < 1e-12:
            break
    return wlat, wlng


def to_wgs84(lat: float, lng: float, datum: Datum) -> tuple[float, float]:
    return gcj02_to_wgs84(lat, lng) if datum == "gcj02" else (lat, lng)


def from_wgs84(lat: float, lng: float, datum: Datum) -> tuple[float, float]:
    return wgs84_to_gcj02(lat, lng) if datum == "gcj02" else (lat, lng)


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Distance on the sphere of the Earth's mean radius (error < 0.5 % against the
    ellipsoid: well inside what "3.2 km away" promises)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def lat_band(lat: float) -> int:
    """The latitude band a point is stored in (``BANDS_PER_DEGREE``)."""
    return math.floor(lat * BANDS_PER_DEGREE)


def box_degrees_per_km(lat: float, lng: float, radius_km: float) -> tuple[float, float]:
    """(latitude, longitude) degrees per km of distance from (lat, lng), such that every point
    within ``d`` ≤ ``radius_km`` of it lies within ``d`` times each of them in latitude and in
    longitude: the box a nearest-first search reads for a distance. A point at distance d
    differs in latitude by at most d / R (radians) and in longitude by at most
    asin(sin(d / R) / cos φ) where φ is the farthest latitude within d; asin(x) / x stays below
    1.001 up to x = 0.077 (100 km at 78°). Near a pole or across the antimeridian the
    longitude is not bounded (a huge factor)."""
    per_km = 1 / KM_PER_DEGREE * 1.000001
    far = abs(lat) + radius_km * per_km
    lng_per_km = 1e6  # every longitude
    if far < 78.0:
        candidate = per_km * 1.001 / math.cos(math.radians(far))
        if -180.0 < lng - radius_km * candidate and lng + radius_km * candidate < 180.0:
            lng_per_km = candidate
    return per_km, lng_per_km


def cells_of(lat: float, lng: float) -> dict[int, str]:
    """The point's h3 cell at each stored resolution."""
    return {res: h3.latlng_to_cell(lat, lng, res) for res in RESOLUTIONS}


def resolution_for(radius_km: float) -> int:
    return 7 if radius_km <= FINE_RADIUS_KM else 5


def _local_scale(centre: str) -> tuple[float, float]:
    """(circumradius e, spacing d) of the cells around ``centre``, in km."""
    clat, clng = h3.cell_to_latlng(centre)
    e = max(haversine_km(clat, clng, vlat, vlng) for vlat, vlng in h3.cell_to_boundary(centre))
    d = min(haversine_km(clat, clng, *h3.cell_to_latlng(n)) for n in h3.grid_ring(centre, 1))
    return e, d


def rings_for(radius_km: float, e: float, d: float) -> int:
    """Rings of a disk that holds every point within ``radius_km`` (see covering_cells)."""
    return math.ceil((radius_km + 2 * e) / (d * math.cos(math.pi / 6))) + 1


def covering_cells(lat: float, lng: float, radius_km: float) -> tuple[int, list[str]]:
    """(resolution, cells) such that every point within ``radius_km`` of (lat, lng) lies in
    one of the cells: the prefilter of a nearby search (distances are then computed exactly).

    A point p within R of q lies in a cell whose centre is within R + 2e of q's cell centre
    (e: a cell's circumradius). A grid disk of k rings holds every centre within
    k · d · cos 30° (d: the distance between neighbouring centres). Both e and d are measured
    around q (cells vary in size over the globe, slowly), with a margin of one ring."""
    res = resolution_for(radius_km)
    centre = h3.latlng_to_cell(lat, lng, res)
    e, d = _local_scale(centre)
    return res, sorted(h3.grid_disk(centre, rings_for(radius_km, e, d)))
