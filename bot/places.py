"""Coordinates to an approximate place name, offline.

The place data is GeoNames' list of cities with more than 1,000 inhabitants (CC BY 4.0, see
NOTICE), shipped with the package as `bot/data/places.bin.gz` (rebuilt by
scripts/build_places.py), so no position ever leaves the machine. It is read once into compact
arrays, bucketed by half-degree cells, so a lookup compares only the few hundred cities in the
cells within MAX_DISTANCE_KM instead of all 155,000 (and the bot needs no numpy).
"""

import gzip
import math
import struct
from array import array
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from babel import Locale

from bot.i18n import babel_locale

# Beyond this, the nearest town says little about where the photo was taken (sea, wilderness).
MAX_DISTANCE_KM = 50.0
_EARTH_RADIUS_KM = 6371.0
_KM_PER_DEGREE = 111.19  # along a meridian (a great circle)
_CELL = 0.5  # degrees: a cell is at least 55 km high, so one ring of cells reaches 50 km
_DATA_FILE = "places.bin.gz"
_MAGIC = b"scrubbot-places-1\n"
_SCALE = 100_000  # coordinates are stored as whole 1e-5 degrees


@dataclass(frozen=True)
class _Cities:
    latitudes: "array[int]"  # 1e-5 degrees
    longitudes: "array[int]"
    names: tuple[str, ...]
    regions: tuple[str, ...]
    countries: tuple[str, ...]  # ISO 3166 codes
    cells: dict[tuple[int, int], list[int]]  # (row, column) of a half-degree cell -> cities


def nearby(latitude: float, longitude: float, language: str) -> str | None:
    """ "Kreuzberg, Berlin, Germany" (country in `language`), or None when nothing is close."""
    cities = _cities()
    index = _nearest(cities, latitude, longitude)
    if index is None:
        return None
    found = (cities.latitudes[index] / _SCALE, cities.longitudes[index] / _SCALE)
    if _distance_km(latitude, longitude, *found) > MAX_DISTANCE_KM:
        return None
    country = _country(cities.countries[index], language)
    parts = [cities.names[index], _region(cities.regions[index]), country]
    unique = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
    return ", ".join(unique) or None


def _nearest(cities: _Cities, latitude: float, longitude: float) -> int | None:
    """The city nearest to the point on a locally flat earth (the nearest on the sphere at
    these distances), among those in the cells MAX_DISTANCE_KM can reach."""
    row, column = _cell(latitude, longitude)
    squeeze = max(math.cos(math.radians(latitude)), 1e-9)
    columns = min(
        int(360 / _CELL), math.ceil(MAX_DISTANCE_KM / (_KM_PER_DEGREE * squeeze * _CELL))
    )
    best, best_distance = None, math.inf
    for dy in (-1, 0, 1):
        for dx in range(-columns, columns + 1):
            for index in cities.cells.get((row + dy, (column + dx) % int(360 / _CELL)), ()):
                north = cities.latitudes[index] / _SCALE - latitude
                east = (cities.longitudes[index] / _SCALE - longitude + 180.0) % 360.0 - 180.0
                east *= squeeze
                distance = north * north + east * east
                if distance < best_distance:
                    best, best_distance = index, distance
    return best


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude / _CELL), math.floor((longitude % 360.0) / _CELL)


@cache
def _cities() -> _Cities:
    """Read the bundled index once (its layout is written by scripts/build_places.py)."""
    data = gzip.decompress(files("bot").joinpath("data", _DATA_FILE).read_bytes())
    if not data.startswith(_MAGIC):
        raise ValueError("bot/data/places.bin.gz is not a place index")
    offset = len(_MAGIC)
    count, _, _ = struct.unpack_from("<III", data, offset)
    offset += 12
    columns = []
    for code, size in (("i", 4), ("i", 4), ("H", 2), ("H", 2)):
        column = array(code, data[offset : offset + count * size])
        if struct.pack("=H", 1) != struct.pack("<H", 1):
            column.byteswap()  # the file is little-endian
        columns.append(column)
        offset += count * size
    names, regions, countries = (
        part.decode("utf-8").split("\n") for part in data[offset:].split(b"\0")
    )
    latitudes, longitudes, region_of, country_of = columns
    cells: dict[tuple[int, int], list[int]] = {}
    for index, (lat, lon) in enumerate(zip(latitudes, longitudes, strict=True)):
        cells.setdefault(_cell(lat / _SCALE, lon / _SCALE), []).append(index)
    return _Cities(
        latitudes,
        longitudes,
        tuple(names),
        tuple(regions[i] for i in region_of),
        tuple(countries[i] for i in country_of),
        cells,
    )


def _region(state: str) -> str:
    """GeoNames calls Berlin's region "State of Berlin"; people say "Berlin"."""
    return state.removeprefix("State of ").removeprefix("Land ")


@cache
def _country(code: str, language: str) -> str:
    return str(Locale.parse(babel_locale(language)).territories.get(code, ""))


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(a))
