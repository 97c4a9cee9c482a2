"""Coordinates to an approximate place name, offline.

The place data is GeoNames' list of cities with more than 1,000 inhabitants (CC BY 4.0, see
NOTICE), shipped with the package as `bot/data/places.bin.gz` (rebuilt by
scripts/build_places.py), so no position ever leaves the machine. It is read once into compact
numpy arrays (about 15 MB in memory), and the nearest city is found with numpy.
"""

import gzip
import math
import struct
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np
from babel import Locale

from bot.i18n import babel_locale

# Beyond this, the nearest town says little about where the photo was taken (sea, wilderness).
MAX_DISTANCE_KM = 50.0
_EARTH_RADIUS_KM = 6371.0
_DATA_FILE = "places.bin.gz"
_MAGIC = b"scrubbot-places-1\n"
_SCALE = 100_000  # coordinates are stored as whole 1e-5 degrees


@dataclass(frozen=True)
class _Cities:
    latitudes: "np.ndarray[tuple[int], np.dtype[np.float64]]"
    longitudes: "np.ndarray[tuple[int], np.dtype[np.float64]]"
    names: tuple[str, ...]
    regions: tuple[str, ...]
    countries: tuple[str, ...]  # ISO 3166 codes


def nearby(latitude: float, longitude: float, language: str) -> str | None:
    """ "Kreuzberg, Berlin, Germany" (country in `language`), or None when nothing is close."""
    cities = _cities()
    # Nearest on a locally flat earth is the nearest on the sphere at these distances.
    east = (cities.longitudes - longitude + 180.0) % 360.0 - 180.0
    east *= math.cos(math.radians(latitude))
    north = cities.latitudes - latitude
    index = int(np.argmin(north * north + east * east))
    found = (float(cities.latitudes[index]), float(cities.longitudes[index]))
    if _distance_km(latitude, longitude, *found) > MAX_DISTANCE_KM:
        return None
    country = _country(cities.countries[index], language)
    parts = [cities.names[index], _region(cities.regions[index]), country]
    unique = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
    return ", ".join(unique) or None


@cache
def _cities() -> _Cities:
    """Read the bundled index once (its layout is written by scripts/build_places.py)."""
    data = gzip.decompress(files("bot").joinpath("data", _DATA_FILE).read_bytes())
    if not data.startswith(_MAGIC):
        raise ValueError("bot/data/places.bin.gz is not a place index")
    offset = len(_MAGIC)
    count, _, _ = struct.unpack_from("<III", data, offset)
    offset += 12
    arrays = []
    for dtype, size in (("<i4", 4), ("<i4", 4), ("<u2", 2), ("<u2", 2)):
        arrays.append(np.frombuffer(data, dtype, count, offset))
        offset += count * size
    names, regions, countries = (
        part.decode("utf-8").split("\n") for part in data[offset:].split(b"\0")
    )
    latitudes, longitudes, region_of, country_of = arrays
    return _Cities(
        latitudes / _SCALE,
        longitudes / _SCALE,
        tuple(names),
        tuple(regions[i] for i in region_of.tolist()),
        tuple(countries[i] for i in country_of.tolist()),
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
