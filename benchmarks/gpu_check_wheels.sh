#!/usr/bin/env bash
# Download into .whl/ the wheels a lent GPU machine lacks, for benchmarks/gpu_check.sh.
#
#   benchmarks/gpu_check_wheels.sh            # the libraries, papermill + kernel, jupyter-book
#   benchmarks/gpu_check_wheels.sh --no-html  # without jupyter-book (part (a) then skips the HTML)
#
# The GPU machines have PyTorch, numpy, scipy, h5py, pandas, matplotlib, scikit-learn, numba,
# requests, pyyaml, jinja2, tqdm ... but not librosa, soundfile, soxr, the SED metrics, papermill,
# a Jupyter kernel or Jupyter Book, and no package registry. This fetches those (and each of their
# needs the machine lacks) for CPython 3.12 on manylinux x86-64, at the versions of
# constraints.txt, one version of each. sed_eval, dcase_util and sed_scores_eval ship as source
# only: the first two become pure-Python wheels here, sed_scores_eval (Cython) travels as its
# source archive and gpu_check.sh builds it there. Wheels already in .whl/ are kept (run it
# once); another version of the same package is removed. Prints the total, which must stay under
# 60 MiB (the working tree and the wheels travel together, 64 MiB per call).
#
# Then, on the GPU machine (carry: [".whl"]): benchmarks/gpu_check.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
DEST=.whl
LIMIT_MIB=60
WITH_HTML=1
for arg in "$@"; do
  case "$arg" in
    --no-html) WITH_HTML=0 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "error: unknown option $arg (expected --no-html)" >&2; exit 2 ;;
  esac
done

# paperlib's own needs the GPU image lacks, and papermill with a Python kernel.
CORE=(
  librosa audioread soundfile cffi pycparser soxr pooch platformdirs decorator
  sed_scores_eval sed_eval dcase_util lazy_dataset future pydot-ng python-magic validators
  setuptools
  papermill nbclient nbformat fastjsonschema jsonschema jsonschema-specifications referencing
  rpds-py jupyter_client jupyter_core traitlets pyzmq tornado entrypoints tenacity
  ipykernel comm debugpy ipython ipython_pygments_lexers jedi parso pexpect ptyprocess
  prompt_toolkit wcwidth stack_data asttokens executing pure_eval matplotlib-inline
  nest-asyncio2
)
# jupyter-book 1 and the Sphinx stack it builds the site with (about 31 MiB).
HTML=(
  jupyter-book jupyter-cache myst-nb myst-parser mdit-py-plugins linkify-it-py sphinx
  sphinx-book-theme pydata-sphinx-theme accessible-pygments alabaster babel beautifulsoup4
  soupsieve docutils imagesize importlib_metadata zipp latexcodec lazy-importer pybtex
  pybtex-docutils snowballstemmer sphinx-comments sphinx-copybutton sphinx-design
  sphinx-external-toc sphinx-jupyterbook-latex sphinx-multitoc-numbering sphinx-thebe
  sphinx-togglebutton sphinxcontrib-applehelp sphinxcontrib-bibtex sphinxcontrib-devhelp
  sphinxcontrib-htmlhelp sphinxcontrib-jsmath sphinxcontrib-qthelp
  sphinxcontrib-serializinghtml sqlalchemy
)
NAMES=("${CORE[@]}")
[ "$WITH_HTML" = 1 ] && NAMES+=("${HTML[@]}")

PLATFORMS=()
for tag in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 \
  manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  PLATFORMS+=(--platform "${tag}_x86_64")
done

normalise() { echo "$1" | tr 'A-Z_.' 'a-z--'; }

pinned() {  # the version constraints.txt pins for a package, or an error
  local want line
  want=$(normalise "$1")
  while IFS= read -r line; do
    case "$line" in '#'* | '') continue ;; esac
    if [ "$(normalise "${line%%==*}")" = "$want" ]; then echo "${line#*==}"; return 0; fi
  done <constraints.txt
  echo "error: $1 is not pinned in constraints.txt" >&2
  return 1
}

present() {  # the wheel files in $DEST of a package (any version), one per line
  local want f base
  want=$(normalise "$1")
  for f in "$DEST"/*.whl "$DEST"/*.tar.gz; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    [ "$(normalise "${base%%-*}")" = "$want" ] && echo "$f"
  done
  return 0
}

mkdir -p "$DEST"
exclude=$(git rev-parse --git-path info/exclude 2>/dev/null || true)
if [ -n "$exclude" ] && ! grep -qx '/.whl/' "$exclude" 2>/dev/null; then
  mkdir -p "$(dirname "$exclude")" && echo '/.whl/' >>"$exclude"
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

for name in "${NAMES[@]}"; do
  version=$(pinned "$name")
  wanted=$(normalise "$name")-$(normalise "$version")
  keep=0
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    base=$(basename "$f"); base=${base%.whl}; base=${base%.tar.gz}
    IFS=- read -r fname fversion _ <<<"$base"
    if [ "$(normalise "$fname")-$(normalise "$fversion")" = "$wanted" ]; then
      keep=1
    else
      echo "[wheels] removing $f (not the pinned $name==$version)"
      rm -f "$f"
    fi
  done < <(present "$name")
  [ "$keep" = 1 ] && continue
  if ! "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]}" -d "$DEST" "$name==$version" >/dev/null 2>&1; then
    # source only: a pure-Python one becomes a wheel here; one with compiled parts travels
    # as its source archive, which gpu_check.sh builds there (the image has Cython and a compiler)
    rm -rf "${build:?}"/*
    "$PYTHON" -m pip download -q --no-deps --no-binary "$name" -d "$build" "$name==$version" \
      >/dev/null 2>&1
    "$PYTHON" -m pip wheel -q --no-deps -w "$build" "$build"/*.tar.gz >/dev/null 2>&1
    case "$(ls "$build"/*.whl)" in
      *-py3-none-any.whl | *-py2.py3-none-any.whl) mv "$build"/*.whl "$DEST"/ ;;
      *) mv "$build"/*.tar.gz "$DEST"/; echo "[wheels] $name: source archive (built there)" ;;
    esac
  fi
  echo "[wheels] $name==$version"
done

bytes=$(du -cb "$DEST"/* | tail -1 | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
count=$(ls "$DEST" | wc -l)
echo "[wheels] $count wheels and source archives in $DEST/: $mib MiB (limit $LIMIT_MIB MiB)"
if [ "$mib" -gt "$LIMIT_MIB" ]; then
  echo "error: $DEST/ holds $mib MiB, over $LIMIT_MIB MiB; rerun with --no-html after" \
    "removing $DEST/ (part (a) then records that the HTML step is skipped)" >&2
  exit 1
fi
