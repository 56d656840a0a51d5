// docs/api.md, the user's API reference, cannot drift from the code: every
// name exported by the modules src/index.ts re-exports, every option of
// `interface MQTTClientOptions` and every public method and field of
// `MQTTClient` must appear in it inside `code`.
import { test } from "node:test"
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { repoRoot } from "../tools/sim.mjs"

const src = f => readFileSync(join(repoRoot, "src", f), "utf8")
const doc = readFileSync(join(repoRoot, "docs/api.md"), "utf8")

/** Text without comments (so that a commented-out export does not count). */
function stripComments(s) {
    return s.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1")
}

/** The modules src/index.ts re-exports (`export * from "./x"`, `export { } from "./x"`). */
function reexportedModules() {
    const index = stripComments(src("index.ts"))
    const mods = [...index.matchAll(/export\s+(?:\*|\{[^}]*\})\s+from\s+"\.\/([^"]+)"/g)].map(m => m[1])
    return [...new Set(mods)]
}

/** Names a module exports: classes, functions, consts, enums, interfaces, types. */
function exportedNames(text) {
    const t = stripComments(text)
    const names = []
    const re =
        /^export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(?:class|function\*?|const\s+enum|enum|const|let|var|interface|type)\s+([A-Za-z_$][\w$]*)/gm
    for (const m of t.matchAll(re)) names.push(m[1])
    // export { a, b as c }
    for (const m of t.matchAll(/^export\s+\{([^}]*)\}\s*(?:;|$)/gm))
        for (const part of m[1].split(","))
            if (part.trim()) names.push(part.trim().split(/\s+as\s+/).pop())
    return names
}

/** The body of `interface|class Name ... {` up to its closing brace at column 0. */
function block(text, kind, name) {
    const t = stripComments(text)
    const start = new RegExp(`^export\\s+(?:abstract\\s+)?${kind}\\s+${name}\\b[^{]*\\{`, "m").exec(t)
    assert.ok(start, `${kind} ${name} not found`)
    const from = start.index + start[0].length
    const end = t.indexOf("\n}", from)
    assert.ok(end > 0, `end of ${kind} ${name} not found`)
    return t.slice(from, end)
}

/** The option names of `interface MQTTClientOptions` (src/client.ts). */
function optionNames() {
    const body = block(src("client.ts"), "interface", "MQTTClientOptions")
    return [...body.matchAll(/^\s{4}(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*:/gm)].map(m => m[1])
}

/** The public methods and fields of `class MQTTClient`, the constructor's `readonly` parameters included. */
function clientMembers() {
    const text = src("client.ts")
    const body = block(text, "class", "MQTTClient")
    const names = []
    for (const m of body.matchAll(/^ {4}(?!private\b|protected\b|static\b|constructor\b)(?:readonly\s+)?(?:async\s+)?([A-Za-z_$][\w$]*)\s*[(=:?]/gm))
        names.push(m[1])
    const ctor = /^ {4}constructor\(([\s\S]*?)^ {4}\)/m.exec(body)
    if (ctor) for (const m of ctor[1].matchAll(/(?:public\s+)?readonly\s+([A-Za-z_$][\w$]*)/g)) names.push(m[1])
    return [...new Set(names)]
}

/** True when `name` appears as a word inside some `code` span or code block of docs/api.md. */
function documented(name) {
    const word = new RegExp(`(^|[^\\w$])${name.replace(/\$/g, "\\$")}([^\\w$]|$)`)
    const spans = [...doc.matchAll(/```[\s\S]*?```|`[^`\n]+`/g)].map(m => m[0])
    return spans.some(s => word.test(s))
}

test("docs/api.md names every export of the modules src/index.ts re-exports", () => {
    const mods = reexportedModules()
    assert.ok(mods.includes("client"), `src/index.ts re-exports ./client (found: ${mods.join(", ")})`)
    const missing = []
    let count = 0
    for (const mod of mods) {
        const names = exportedNames(src(`${mod}.ts`))
        count += names.length
        for (const n of names) if (!documented(n)) missing.push(`${n} (src/${mod}.ts)`)
    }
    assert.ok(count > 40, `found only ${count} exports: the parser is broken`)
    assert.deepEqual(missing, [], "exports missing from docs/api.md")
    console.log(`# ${count} exports of ${mods.length} modules, all in docs/api.md`)
})

test("docs/api.md names every option of MQTTClientOptions and every public member of MQTTClient", () => {
    const opts = optionNames()
    for (const seed of ["user", "password", "keepalive", "ssl", "sslParams", "reconn", "version", "maxIncomingBytes"])
        assert.ok(opts.includes(seed), `the parser finds option ${seed} (found: ${opts.join(", ")})`)
    const members = clientMembers()
    for (const m of ["connect", "publish", "subscribe", "waitMsg", "getMqttsta", "droppedMessages", "clientId"])
        assert.ok(members.includes(m), `the parser finds member ${m} (found: ${members.join(", ")})`)
    const missing = [
        ...opts.filter(o => !documented(o)).map(o => `option ${o}`),
        ...members.filter(m => !documented(m)).map(m => `MQTTClient.${m}`),
    ]
    assert.deepEqual(missing, [], "options and members missing from docs/api.md")
    console.log(`# ${opts.length} options and ${members.length} members of MQTTClient, all in docs/api.md`)
})

test("docs/api.md documents each option with its default in the options table", () => {
    // every option has a row `| \`name\` | type | default | ... |`
    const rows = optionNames().filter(o => !new RegExp(`^\\|\\s*\`${o}\`\\s*\\|[^|\\n]*\\|[^|\\n]*\\|`, "m").test(doc))
    assert.deepEqual(rows, [], "options without a row in the table of options")
})
