#!/usr/bin/env bash
# Builds the release app into <dist>: the main module and one module per page, which the browser
# fetches the first time the page is opened (src/pages/lazy.rs). What ./run.sh serves, and what
# the end-to-end tests and the benchmark load.
#
#   bash scripts/build_app.sh <dist>      # then: node e2e/serve.mjs <dist> 3000
#
# The steps trunk cannot take (trunk-rs/trunk#1022), in the order they must run:
#   1. cargo: the app with the `split` feature, linked with its relocations (--emit-relocs), which
#      tell the splitter which function calls which;
#   2. wasm-split-cli: the main module, each page's module and the chunks pages share, and
#      __wasm_split.js, which loads a page's modules into the main module's memory and table;
#   3. wasm-bindgen on the main module (keeping the exports the pages' modules import);
#   4. scripts/wasm_opt.mjs: every module optimized for size (-Oz);
#   5. the build's name on every file, and index.html from the project's, with trunk's links
#      replaced by the built files.
# `trunk build` / `trunk serve` (./run.sh --dev) still build the app as one module, without the
# feature.
set -euo pipefail
cd "$(dirname "$0")/.."

dist=${1:?usage: bash scripts/build_app.sh <dist>}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PWD/node_modules/.bin:$PATH"

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# `cargo rustc` gives the link argument to the app's crate only: the dependencies keep the
# artifacts a `trunk build --release` made.
cargo rustc --quiet --release --target wasm32-unknown-unknown --bin via --features split \
  -- -Clink-args=--emit-relocs

work=$(mktemp -d "${TMPDIR:-/tmp}/via-app-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
wasm-split-cli "$target_dir/wasm32-unknown-unknown/release/via.wasm" "$work/split" --out-name via
wasm-bindgen --target web --keep-lld-exports --no-demangle \
  --out-dir "$work/bindgen" --out-name via "$work/split/via.wasm"
rm "$work/split/via.wasm"

rm -rf "$dist"
mkdir -p "$dist"
cp "$work/split/"*.wasm "$work/split/__wasm_split.js" "$dist/"
cp "$work/bindgen/via.js" "$work/bindgen/via_bg.wasm" "$dist/"
cp style/main.css "$dist/main.css"

# Two optimizers side by side (2 cores); binaryen warns about a name subsection it does not know,
# which the optimized modules no longer have.
modules=$(find "$dist" -name '*.wasm' | wc -l)
find "$dist" -name '*.wasm' -print0 |
  xargs -0 -n $(((modules + 1) / 2)) -P 2 node scripts/wasm_opt.mjs 2> >(grep -v 'unknown name subsection' >&2)

# The build's name on every file (a hash of them all), then index.html: the project's head, with
# trunk's two links replaced by the stylesheet, the main module's preloads and the script that
# starts it. The name keeps two builds apart: a tab still running the previous one (a page's
# module not fetched yet when ./run.sh built again) asks for files that are gone and says the
# page could not be loaded, instead of joining a module of another build to its own.
python3 - index.html "$dist" <<'PY'
import hashlib, pathlib, re, sys
src, dist = sys.argv[1], pathlib.Path(sys.argv[2])
files = sorted(p for p in dist.iterdir() if p.suffix in (".wasm", ".js", ".css"))
digest = hashlib.sha256()
for p in files:
    digest.update(p.name.encode() + b"\0" + p.read_bytes())
build = digest.hexdigest()[:16]
renamed = {p.name: f"{p.stem}-{build}{p.suffix}" for p in files}
# The files name each other in `from "./<name>"` (the JS imports) and `new URL("./<name>"` (the
# loader's fetches). The same names elsewhere stay: a module's imports are keyed by the name
# compiled into the wasm ("./__wasm_split.js").
refs = re.compile(r'(from |new URL\()"\./(' + "|".join(re.escape(n) for n in renamed) + r')"')
for p in files:
    if p.suffix == ".js":
        text = refs.sub(lambda m: f'{m.group(1)}"./{renamed[m.group(2)]}"', p.read_text(encoding="utf-8"))
        p.write_text(text, encoding="utf-8")
    p.rename(dist / renamed[p.name])

html = open(src, encoding="utf-8").read()
links = re.findall(r"^[ \t]*<link data-trunk [^>]*/>\n", html, re.M)
if len(links) != 2:
    sys.exit(f"build_app: expected trunk's two links in {src}, found {len(links)}")
indent = re.match(r"[ \t]*", links[0]).group(0)
css, js, wasm = renamed["main.css"], renamed["via.js"], renamed["via_bg.wasm"]
ours = "".join(
    f"{indent}{line}\n"
    for line in [
        f'<link rel="stylesheet" href="/{css}" />',
        f'<link rel="modulepreload" href="/{js}" />',
        f'<link rel="preload" href="/{wasm}" as="fetch" type="application/wasm" crossorigin />',
        f'<script type="module">import init from "/{js}"; init({{ module_or_path: "/{wasm}" }});</script>',
    ]
)
html = html.replace(links[0], ours).replace(links[1], "")
(dist / "index.html").write_text(html, encoding="utf-8")
PY
echo "build_app: $dist ($(find "$dist" -name '*.wasm' | wc -l) modules)"
