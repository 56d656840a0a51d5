// npm's `prepare` step (`npm install` / `npm ci` in this repository, `npm pack`,
// and the preparation of a git dependency): builds devs/main.ts once, which
// also writes the DeviceScript packages (@devicescript/core, net, ...) into
// node_modules for editors and type checks. The tests build their programs
// themselves and do not depend on it.
//
// It runs for this repository only: a project that installs the package
// from a tarball or the registry runs no script of it at all (the package
// has no install scripts), and where devs/ or the DeviceScript CLI is
// missing this does nothing.
//
// `devs build` writes the fixed path .devicescript/bin, so the build takes
// the build lock of test/tools/sim.mjs (a test run may be building too).

import { existsSync } from "node:fs"
import { join } from "node:path"
import { cliPath, repoRoot, runCollect, withBuildLock } from "../test/tools/sim.mjs"

const entry = "devs/main.ts"
if (!existsSync(join(repoRoot, entry)) || !existsSync(cliPath)) {
    console.log(`prepare: ${entry} or the DeviceScript CLI is missing: nothing to build`)
    process.exit(0)
}
const r = await withBuildLock(() =>
    runCollect(process.execPath, [cliPath, "--no-colors", "build", "--quiet", entry], {
        timeoutMs: 180_000,
        name: `prepare: devs build ${entry}`,
    })
)
if (r.code !== 0) {
    console.error(r.output)
    console.error(`prepare: devs build ${entry} failed (${r.timedOut ? "timed out" : `exit code ${r.code}`})`)
    process.exit(1)
}
console.log(`prepare: built ${entry}`)
