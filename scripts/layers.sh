#!/usr/bin/env bash
# Draw docs/layers.svg, the folders of src/ and their imports, from the code: dependency-cruiser's folder graph
# (cli/ left out: it imports nearly everything) through Graphviz's dot (Debian's graphviz package).
set -euo pipefail
cd "$(dirname "$0")/.."
npx depcruise src --config .dependency-cruiser.cjs --output-type archi --include-only '^src/' --exclude '^src/cli' | dot -T svg > docs/layers.svg
