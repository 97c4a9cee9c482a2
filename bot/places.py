"""Coordinates to an approximate place name, offline.

`reverse-geocode` ships GeoNames' cities with more than 1,000 inhabitants inside the package, so
no position ever leaves the machine. Loading its index takes about half a second, once.
"""

import math
from functools import cache

from babel import Locale

from bot.i18n import babel_locale

# Beyond this, the nearest town says little about where the photo was taken (sea, wilderness).
MAX_DISTANCE_KM = 50.0
_EARTH_RADIUS_KM = 6371.0


def nearby(latitude: float, longitude: float, language: str) -> str | None:
    """ "Kreuzberg, Berlin, Germany" (country in `language`), or None when nothing is close."""
    import reverse_geocode  # heavy (numpy, scipy): loaded on first use

    hit = reverse_geocode.get((latitude, longitude))
    if _distance_km(latitude, longitude, hit["latitude"], hit["longitude"]) > MAX_DISTANCE_KM:
        return None
    country = _country(str(hit.get("country_code", "")), language) or str(hit.get("country", ""))
    parts = [str(hit.get("city", "")), _region(str(hit.get("state", ""))), country]
    unique = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
    return ", ".join(unique) or None


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
