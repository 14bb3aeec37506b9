// Optimizes WebAssembly modules in place for size, as `wasm-opt -Oz --low-memory-unused
// --zero-filled-memory --strip-producers --strip-target-features` does, in one process: the
// split app has hundreds of small modules, and the npm wasm-opt (binaryen compiled to JS) takes
// about 0.6 s to start, per module.
//
//   node scripts/wasm_opt.mjs <file.wasm>...
//
// The two memory assumptions hold for a wasm-bindgen module and its split parts: the memory is
// the module's own (zero when created) and Rust keeps nothing in its first KiB.

import { readFile, writeFile } from "node:fs/promises";
import binaryen from "binaryen";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/wasm_opt.mjs <file.wasm>...");
  process.exit(2);
}
binaryen.setOptimizeLevel(2);
binaryen.setShrinkLevel(2);
binaryen.setLowMemoryUnused(true);
binaryen.setZeroFilledMemory(true);
binaryen.setDebugInfo(false);
for (const file of files) {
  const module = binaryen.readBinary(await readFile(file));
  try {
    if (!module.validate()) throw new Error(`${file}: not a valid module before optimizing`);
    module.optimize();
    // The toolchain's notes (`producers`, `target_features`): read by no browser.
    module.runPasses(["strip-producers", "strip-target-features"]);
    if (!module.validate()) throw new Error(`${file}: not a valid module after optimizing`);
    await writeFile(file, module.emitBinary());
  } finally {
    module.dispose();
  }
}
