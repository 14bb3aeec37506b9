#!/usr/bin/env bash
# Builds the release app into <dist>: the main module, with the small pages, and a module for each
# group of heavy pages (/chat, /workers, the console, /playground), which the browser fetches the
# first time one of its pages is opened (src/pages/lazy.rs). What ./run.sh serves, and what the
# end-to-end tests and the benchmark load.
#
#   bash scripts/build_app.sh <dist>      # then: node e2e/serve.mjs <dist> 3000
#
# The steps trunk cannot take (trunk-rs/trunk#1022), in the order they must run:
#   1. cargo: the app with the `split` feature, linked with its relocations (--emit-relocs), which
#      tell the splitter which function calls which;
#   2. wasm-split-cli: the main module, each group's module and the chunks groups share, and
#      __wasm_split.js, which loads a group's modules into the main module's memory and table;
#   3. wasm-bindgen on the main module (keeping the exports the groups' modules import);
#   4. scripts/wasm_opt.mjs: every module optimized for size (-Oz);
#   5. the build's name on every file, and index.html from the project's, with trunk's links
#      replaced by the built files;
#   6. esbuild: the JS and the stylesheet minified.
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
# The module this build is made of, copied: a cargo build in the same target directory (./test.sh
# while ./run.sh runs) may replace it meanwhile.
cp "$target_dir/wasm32-unknown-unknown/release/via.wasm" "$work/via.wasm"

# What the steps below make depends on nothing else: with the same inputs, <dist> is left as it
# is (a second ./run.sh starts in seconds rather than re-running every step).
inputs=$(
  {
    sha256sum "$work/via.wasm" index.html style/main.css \
      src/lib.rs src/pages/lazy.rs scripts/build_app.sh scripts/wasm_opt.mjs package-lock.json
    sha256sum "$(command -v wasm-split-cli)" "$(command -v wasm-bindgen)"
    esbuild --version
  } | sed "s|$work/||" | sha256sum | cut -d' ' -f1
)
if [[ -f $dist/.inputs && $(cat "$dist/.inputs") == "$inputs" && -f $dist/index.html ]]; then
  echo "build_app: $dist is up to date"
  exit 0
fi

wasm-split-cli "$work/via.wasm" "$work/split" --out-name via
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
minify=(--minify --log-level=error)
MINIFY="esbuild $(esbuild --version) ${minify[*]}" \
  python3 - index.html "$dist" src/lib.rs src/pages/lazy.rs <<'PY'
import hashlib, json, os, pathlib, re, sys
src, dist, app_rs, lazy_rs = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]

# Each lazy route's modules: its group's and the chunks the group shares with others, as the
# loader lists them (`makeLoad(() => … "./<file>" …, [<the loaders it waits for>])`).
loader = (dist / "__wasm_split.js").read_text(encoding="utf-8")
loads = {}
for m in re.finditer(r'const (?:__wasm_split_load_)?(\w+) = (?:wrapAsyncCb\()?makeLoad\(\(\) => \{\s*'
                     r'const src = fetch\(new URL\("\./([\w.]+)".*?\n, \[([\w, ]*)\]', loader, re.S):
    loads[m.group(1)] = (m.group(2), [d.strip() for d in m.group(3).split(",") if d.strip()])
def modules(name):
    file, deps = loads[name]
    return [file] + [f for d in deps for f in modules(d)]
# pages/lazy.rs: `<group> {` then its `<Route> => <component>,` lines.
group_of_route, group = {}, None
for line in open(lazy_rs, encoding="utf-8"):
    if m := re.fullmatch(r"    (\w+) \{\n", line):
        group = m.group(1)
    elif (m := re.fullmatch(r"\s+(\w+Route) => [\w:]+,\n", line)) and group:
        group_of_route[m.group(1)] = group
routes = re.findall(r'path=path!\("([^"]*)"\) view=\{Lazy::<pages::lazy::(\w+)>::new\(\)\}',
                    open(app_rs, encoding="utf-8").read())
if not routes or len(routes) != len(group_of_route):
    sys.exit(f"build_app: {len(routes)} lazy routes in {app_rs}, {len(group_of_route)} in {lazy_rs}")
route_modules = {}
for path, route in routes:
    group = group_of_route[route]
    if group not in loads:
        sys.exit(f"build_app: no module for group {group} (route {path}) in __wasm_split.js")
    route_modules[path] = list(dict.fromkeys(modules(group)))
files = sorted(p for p in dist.iterdir() if p.suffix in (".wasm", ".js", ".css"))
digest = hashlib.sha256()
# The minifier runs after the naming (it would hide the names the steps above read): its
# version and flags name the build too.
digest.update(os.environ["MINIFY"].encode() + b"\0")
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
split_js = renamed["__wasm_split.js"]
# The opened route's modules, fetched alongside the main module rather than after it started
# (the loader's fetches then find them; the other groups' come 2 s after the start).
# Short: the group's name, then its chunks' numbers ({"/streams":"console 3 4"}).
short = {}
for path, mods in route_modules.items():
    group = re.fullmatch(r"split_(\w+)\.wasm", mods[0])
    chunks = [re.fullmatch(r"chunk_(\d+)\.wasm", f) for f in mods[1:]]
    if not group or not all(chunks):
        sys.exit(f"build_app: unexpected module names for {path}: {mods}")
    short[path] = " ".join([group.group(1)] + [c.group(1) for c in chunks])
preloads = json.dumps(short, separators=(",", ":"))
ours = "".join(
    f"{indent}{line}\n"
    for line in [
        f'<link rel="stylesheet" href="/{css}" />',
        f'<link rel="modulepreload" href="/{js}" />',
        f'<link rel="modulepreload" href="/{split_js}" />',
        f'<link rel="preload" href="/{wasm}" as="fetch" type="application/wasm" crossorigin />',
        f'<script>(() => {{ const pages = {preloads}; '
        'const [page, ...chunks] = (pages[location.pathname.replace(/(.)\\/$/, "$1")] ?? "").split(" "); '
        f'const files = page ? [`split_${{page}}-{build}.wasm`, ...chunks.map((n) => `chunk_${{n}}-{build}.wasm`)] : []; '
        'for (const f of files) { '
        'const l = document.createElement("link"); l.rel = "preload"; l.as = "fetch"; '
        'l.crossOrigin = "anonymous"; l.href = "/" + f; document.head.append(l); } })();</script>',
        f'<script type="module">import init from "/{js}"; init({{ module_or_path: "/{wasm}" }});</script>',
    ]
)
html = html.replace(links[0], ours).replace(links[1], "")
(dist / "index.html").write_text(html, encoding="utf-8")
PY

# The JS (wasm-bindgen's glue, the splitter's loader) and the stylesheet minified, last: the
# steps above read the loader as the splitter wrote it. esbuild keeps their exports and
# `import.meta`; it warns that the glue lists the loader's module three times as one key.
for file in "$dist"/*.js "$dist"/*.css; do
  esbuild "$file" "${minify[@]}" --outfile="$file" --allow-overwrite
done
echo "$inputs" >"$dist/.inputs.tmp"
mv "$dist/.inputs.tmp" "$dist/.inputs"
echo "build_app: $dist ($modules modules)"
