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
#: stays small (5 or 7); a nearest-first search starts at 9 (cells ~0.2 km across an edge), so
#: that in a dense city it reads a few dozen points, not thousands
RESOLUTIONS = (5, 7, 9)
#: rings of the finest resolution searched before a nearest-first search widens (~2 km)
FINE_RINGS = 8
#: the search radius up to which resolution 7 (cells ~1.4 km across an edge) is used
FINE_RADIUS_KM = 15.0
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


def covered_km(rings: int, e: float, d: float) -> float:
    """How far from the query a disk of ``rings`` rings surely holds every point: the
    inverse of ``rings_for`` (one ring of margin)."""
    return max(0.0, (rings - 1) * d * math.cos(math.pi / 6) - 2 * e)


#: how many more points than asked for a first disk should be expected to hold: status,
#: service and fitment filter some out, and a second query costs more than a few extra rows
DENSITY_MARGIN = 3.0


def _disk_size(rings: int) -> int:
    """Cells in a grid disk of ``rings`` rings (the centre and 6k cells in ring k)."""
    return 1 + 3 * rings * (rings + 1)


class RingSearch:
    """A nearest-first search: a disk around the query grows ring by ring (in batches) until
    the points found are closer than what the disk surely covers (``covered_km``).

    Where it starts comes from the density (``per_r7``: the merchant's points per
    resolution-7 cell around the query, kept in a small table): at resolution 9 (cells
    ~0.2 km across an edge) with the rings expected to hold ``DENSITY_MARGIN`` × ``want``
    points when that is within ``FINE_RINGS``, else at the coarser cells of
    ``resolution_for`` (7, then 5 for a wide radius) with the rings expected to hold them.
    If the fine disk runs out, the search starts again with coarse cells, leaving out those
    wholly within what the fine disk surely covered. Without a density it starts with one fine ring. Any start
    gives the same answer (the stop rule is exact); a good one gives it in one query."""

    def __init__(self, lat: float, lng: float, radius_km: float,
                 per_r7: float | None = None, want: int = 10) -> None:
        self.lat, self.lng, self.radius_km = lat, lng, radius_km
        phases = [9, 7] if resolution_for(radius_km) == 7 else [9, 7, 5]
        first = 1
        if per_r7 is not None:
            needed = DENSITY_MARGIN * want
            fine = [k for k in range(1, FINE_RINGS + 1)
                    if per_r7 / 49 * _disk_size(k) >= needed]  # 49 res-9 cells per res-7
            if fine:
                first = fine[0]
            else:
                phases = phases[1:]
                first = next((k for k in range(1, 64)
                              if per_r7 * _disk_size(k) >= needed), 64)
        self.phases = phases
        self._start(phases[0], first)

    def _start(self, res: int, first: int = 1) -> None:
        self.res = res
        self.centre = h3.latlng_to_cell(self.lat, self.lng, res)
        self.e, self.d = _local_scale(self.centre)
        full = rings_for(self.radius_km, self.e, self.d)
        last = res == self.phases[-1]
        if res == 7 and not last:  # up to the fine radius, then resolution 5
            full = rings_for(FINE_RADIUS_KM, self.e, self.d)
        self.max_rings = full if last or res != 9 else min(full, FINE_RINGS)
        self.first = first
        self.done = -1  # rings of this resolution searched so far

    def next_cells(self) -> tuple[int, list[str]]:
        """(resolution, cells) of the next batch of rings; no cells when the radius is
        covered. A new resolution starts from its centre cell again, without the cells
        whose every child the finer disk before it has read."""
        skip: set[str] = set()
        if self.done >= self.max_rings:
            i = self.phases.index(self.res)
            if i + 1 == len(self.phases):
                return self.res, []
            read_km = self.covered_km()  # every point this near was read
            self._start(self.phases[i + 1])
            # a cell's points lie within its circumradius of its centre (h3 cells do not nest:
            # the children of a cell do not tile it, so a cell is judged by distance)
            skip = {c for c in h3.grid_disk(self.centre, 2)
                    if haversine_km(self.lat, self.lng, *h3.cell_to_latlng(c))
                    + 1.1 * self.e <= read_km}
        first = self.first if self.done < 0 else 2 * self.done + 2
        last = min(self.max_rings, max(1, first))
        cells = [c for k in range(self.done + 1, last + 1) for c in h3.grid_ring(self.centre, k)
                 if c not in skip]
        self.done = last
        return self.res, cells

    def covered_km(self) -> float:
        return covered_km(self.done, self.e, self.d)


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
