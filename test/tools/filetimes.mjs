// A node:test reporter next to spec (test/run.mjs): at the end, the time of
// each test file (the sum of its top-level tests) and the slowest first, to
// see what bounds a run.

import { basename } from "node:path"

export default async function* fileTimes(source) {
    const files = new Map() // file -> ms
    for await (const event of source) {
        if (event.type !== "test:pass" && event.type !== "test:fail") continue
        const { data } = event
        if (data.nesting !== 0 || !data.file) continue
        const f = basename(data.file)
        files.set(f, (files.get(f) || 0) + (data.details?.duration_ms || 0))
    }
    const rows = [...files].sort((a, b) => b[1] - a[1])
    if (!rows.length) return
    yield "\ntime per test file (its top-level tests), slowest first:\n"
    for (const [f, ms] of rows) yield `  ${(ms / 1000).toFixed(1).padStart(6)} s  ${f}\n`
}
