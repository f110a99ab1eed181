#!/usr/bin/python3
"""Phone-number oracle for tests/phone_oracle.rs (SPEC §12).

Generates, from a fixed seed, a few thousand phone numbers across Italy's
whole numbering plan and a few foreign ones, written in the ways people write
them, and judges each with libphonenumber (Debian's python3-phonenumbers):
`parse(s, "IT")` then `is_valid_number`. Prints one JSON document:

    {"version": "...", "cases": [{"input": s, "e164": "+39..." | null,
                                  "kind": "mobile" | "landline" | "other" | null}]}

`kind` is what allerta must make of the number type: MOBILE and
FIXED_LINE_OR_MOBILE can receive an SMS ("mobile"), FIXED_LINE cannot
("landline"), every other valid type is "other".

Usage: phone_cases.py SEED COUNT_SCALE
"""

import json
import random
import sys

import phonenumbers
from phonenumbers import PhoneNumberType as T

NBSP = "\u00a0"


def italian_bodies(rng):
    """National significant numbers (digits only), Italian numbering plan."""
    bodies = []
    # Every mobile prefix 3xx, with the usual 10 digits and too short/long.
    for xx in range(100):
        prefix = f"3{xx:02d}"
        for rest in (7, 7, 7, 6, 8, 5, 9):
            bodies.append(prefix + digits(rng, rest))
    # Geographic: 0x, 0xx, 0xxx area codes, subscriber numbers of any length.
    for a in range(10):
        bodies.append(f"0{a}" + digits(rng, rng.randint(4, 9)))
    for a in range(100):
        for _ in range(3):
            bodies.append(f"0{a:02d}" + digits(rng, rng.randint(3, 8)))
    for a in range(1000):
        bodies.append(f"0{a:03d}" + digits(rng, rng.randint(2, 7)))
    # Toll-free, premium, shared cost, and the rest of the 8, 1, 4, 5, 7 ranges.
    for prefix in ("800", "803", "892", "893", "894", "895", "899", "840", "841", "847", "848"):
        for rest in (3, 4, 5, 6, 7, 8):
            bodies.append(prefix + digits(rng, rest))
    for first in "14578":
        for _ in range(30):
            bodies.append(first + digits(rng, rng.randint(4, 11)))
    # Too short and too long, whatever the prefix.
    for _ in range(40):
        bodies.append(digits(rng, rng.randint(1, 5)))
        bodies.append(str(rng.randint(1, 9)) + digits(rng, rng.randint(12, 16)))
    return bodies


def foreign_numbers(rng):
    """(country code, national number) pairs written with +CC or 00CC."""
    out = []
    plans = {
        "44": ["7" + "#" * 9, "20" + "#" * 8, "121" + "#" * 7, "7" + "#" * 7, "7" + "#" * 11],
        "49": ["15" + "#" * 9, "16" + "#" * 8, "17" + "#" * 8, "30" + "#" * 8, "89" + "#" * 7, "1" + "#" * 3],
        "33": ["6" + "#" * 8, "7" + "#" * 8, "1" + "#" * 8, "9" + "#" * 8, "6" + "#" * 6, "6" + "#" * 10],
        "1": ["212" + "#" * 7, "415" + "#" * 7, "617" + "#" * 7, "202" + "#" * 7,
              "011" + "#" * 7, "111" + "#" * 7, "212" + "#" * 5, "415" + "#" * 9],
        "41": ["79" + "#" * 7, "44" + "#" * 7],
        "34": ["6" + "#" * 8, "91" + "#" * 7],
        "386": ["41" + "#" * 6],
        "999": ["#" * 9],
    }
    for cc, shapes in plans.items():
        for shape in shapes:
            for _ in range(12):
                out.append((cc, "".join(c if c != "#" else str(rng.randint(0, 9)) for c in shape)))
    return out


def digits(rng, n):
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def group(rng, s, sep):
    """Splits s into random groups of 2 to 4 digits joined by sep."""
    parts = []
    while s:
        k = rng.randint(2, 4)
        parts.append(s[:k])
        s = s[k:]
    return sep.join(parts)


def italian_styles(rng, body):
    """Ways a person writes an Italian number."""
    area = area_split(body)
    head, tail = area
    seps = [" ", ".", "-", NBSP]
    styles = [
        body,
        group(rng, body, rng.choice(seps)),
        f"{head} {tail}",
        f"{head}/{tail}",
        f"{head}-{tail}",
        f"({head}) {tail}",
        f"{head}.{group(rng, tail, '.')}",
        f"+39 {head} {tail}",
        f"+39{body}",
        f"0039 {head} {group(rng, tail, ' ')}",
        f"+39 ({head}) {tail}",
        f"39 {head} {tail}",
        f"39{body}",
        f"+39{NBSP}{head}{NBSP}{tail}",
    ]
    # Not every style for every number: keeps the list in the thousands.
    return rng.sample(styles, 3)


def area_split(body):
    """Where people put the first space: after the area code or mobile prefix."""
    if body.startswith("0"):
        n = 2 if body[1] in "26" else (3 if len(body) > 7 else 2)
        return body[:n], body[n:]
    if body.startswith("3"):
        return body[:3], body[3:]
    if len(body) > 4:
        return body[:3], body[3:]
    return body[:1], body[1:]


def foreign_styles(rng, cc, national):
    return rng.sample(
        [
            f"+{cc} {group(rng, national, ' ')}",
            f"+{cc}{national}",
            f"00{cc} {national}",
            f"00{cc}-{group(rng, national, '-')}",
            f"+{cc}.{group(rng, national, '.')}",
            f"(+{cc}) {national}",
        ],
        2,
    )


KINDS = {
    T.MOBILE: "mobile",
    T.FIXED_LINE_OR_MOBILE: "mobile",
    T.FIXED_LINE: "landline",
}


def judge(s):
    try:
        n = phonenumbers.parse(s, "IT")
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_valid_number(n):
        return None, None
    e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    return e164, KINDS.get(phonenumbers.number_type(n), "other")


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 20261201
    rng = random.Random(seed)
    inputs = []
    for body in italian_bodies(rng):
        inputs.extend(italian_styles(rng, body))
    for cc, national in foreign_numbers(rng):
        inputs.extend(foreign_styles(rng, cc, national))
    seen = set()
    cases = []
    for s in inputs:
        if s in seen:
            continue
        seen.add(s)
        e164, kind = judge(s)
        cases.append({"input": s, "e164": e164, "kind": kind})
    json.dump({"version": phonenumbers.__version__, "seed": seed, "cases": cases},
              sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
