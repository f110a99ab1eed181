"""Times Apprise sending N individually addressed emails to a local SMTP sink.

Usage: python apprise_bench.py PORT [N] [--mode targets|urls]

  targets  one mailto:// URL whose to= lists all N recipients: Apprise sends
           one message per recipient over one SMTP connection (its fastest way)
  urls     N mailto:// URLs, one per recipient, in one Apprise object: each is
           its own notification and SMTP connection (Apprise may run them in
           parallel threads)

Prints one line: `APPRISE mode=M sent=S seconds=T msg_per_s=R` and exits 0 when
every message was accepted. Run with the venv's python (bench/run.sh --apprise).
"""

import argparse
import sys
import time

import apprise

BODY = (
    "Allerta meteo codice arancione per rischio idraulico dalle ore 14, "
    "fino a nuovo avviso. Evita argini, ponti, cantine e sottopassi."
)
TITLE = "Allerta arancione - rischio idraulico"


def main() -> int:
    p = argparse.ArgumentParser(description="Apprise email fan-out timing")
    p.add_argument("port", type=int)
    p.add_argument("n", type=int, nargs="?", default=1000)
    p.add_argument("--mode", choices=["targets", "urls"], default="targets")
    a = p.parse_args()
    port, n, mode = a.port, a.n, a.mode
    base = (
        f"mailto://127.0.0.1:{port}?smtp=127.0.0.1&mode=insecure"
        "&from=protezionecivile@comune.example.it&name=Protezione%20Civile"
    )
    ap = apprise.Apprise()
    if mode == "targets":
        to = ",".join(f"user{i}@example.org" for i in range(n))
        if not ap.add(f"{base}&to={to}"):
            print("apprise rejected the URL", file=sys.stderr)
            return 2
    else:
        for i in range(n):
            if not ap.add(f"{base}&to=user{i}@example.org"):
                print("apprise rejected the URL", file=sys.stderr)
                return 2
    start = time.monotonic()
    ok = ap.notify(body=BODY, title=TITLE)
    seconds = time.monotonic() - start
    print(
        f"APPRISE mode={mode} sent={n if ok else 'FAILED'} seconds={seconds:.3f} "
        f"msg_per_s={n / seconds:.0f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
