// The DeviceScript compiler inside this process, for the build server
// (test/tools/buildserver.mjs): `devs build` as a child process spends
// ~1.5 s loading the 28 MB CLI bundle and runs the TypeScript checker cold
// every time; loaded once, later compiles take about half as long.
//
// The CLI bundle exports only `mainCli`, so it is loaded from its source
// with its own `compileFile` (what `devs build` calls) exported as well. The
// version is pinned in package.json; the check below fails loudly if a new
// one renames it.

import Module from "node:module"
import { mkdirSync, readFileSync, rmSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { format } from "node:util"
import { cliPath, repoRoot } from "./sim.mjs"

let cli

function load() {
    if (cli) return cli
    const src = readFileSync(cliPath, "utf8")
    if (!/\nasync function compileFile\(/.test(src) || !/\nfunction setConsoleColors\(/.test(src))
        throw new Error(`${cliPath}: no compileFile/setConsoleColors (another CLI version?)`)
    const m = new Module(cliPath)
    m.filename = cliPath
    m.paths = Module._nodeModulePaths(dirname(cliPath))
    m._compile(
        src +
            "\nmodule.exports.__umqttCompileFile = compileFile" +
            "\nmodule.exports.__umqttSetConsoleColors = setConsoleColors\n",
        cliPath
    )
    cli = m.exports
    cli.__umqttSetConsoleColors(false)
    return cli
}

/** Loads the CLI bundle now (the first compile would otherwise). */
export function preload() {
    load()
}

/**
 * Compiles `entryAbs` like `devs build --no-colors <entry>`, run in the
 * repository root, with the output in `outDir` instead of
 * .devicescript/bin. Calls must not overlap (the console is captured while
 * one runs).
 * @param {string} entryAbs
 * @param {string} outDir absolute, under the repository
 * @returns {Promise<{ ok: boolean, output: string, bytecode: string }>}
 *   bytecode: path of the .devs in outDir (exists when ok)
 */
export async function compileInProcess(entryAbs, outDir) {
    const c = load()
    if (process.cwd() !== repoRoot) process.chdir(repoRoot)
    rmSync(outDir, { recursive: true, force: true })
    mkdirSync(outDir, { recursive: true })
    // the compiler reports diagnostics on the console: collect them for the
    // caller, as `devs build` would print them
    const out = []
    const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info, debug: console.debug }
    const grab = (...a) => out.push(format(...a))
    Object.assign(console, { log: grab, error: grab, warn: grab, info: grab, debug: () => {} })
    try {
        const res = await c.__umqttCompileFile(relative(repoRoot, entryAbs), {
            outDir: relative(repoRoot, outDir),
        })
        return { ok: !!res.success, output: out.join("\n"), bytecode: join(outDir, "bytecode.devs") }
    } catch (e) {
        out.push(`exception: ${e?.message || e}`)
        return { ok: false, output: out.join("\n"), bytecode: join(outDir, "bytecode.devs") }
    } finally {
        Object.assign(console, saved)
    }
}
