// `npm start`: an embedded broker (aedes) on 127.0.0.1:1883 and a device
// program in the simulator against it. Exits 0 once the program prints
// "round trip done" (or the line given with --until).
import { startAedes, canConnect } from "./brokers.mjs"
import { buildDevs, startDevice } from "./sim.mjs"

const file = process.argv[2] || "devs/main.ts"
const untilArg = process.argv.indexOf("--until")
const until = untilArg > 0 ? process.argv[untilArg + 1] : "round trip done"
const timeoutMs = 60000
const PORT = 1883

if (await canConnect(PORT)) {
    console.error(
        `port ${PORT} is already in use: stop the broker there, or point the program elsewhere`
    )
    process.exit(1)
}
const broker = await startAedes({ port: PORT })
broker.broker.on("client", c => console.log(`[broker] ${c.id} connected`))
broker.broker.on("publish", (p, c) => {
    if (c) console.log(`[broker] ${c.id} published ${p.topic}: ${p.payload}`)
})
broker.broker.on("clientDisconnect", c => console.log(`[broker] ${c.id} disconnected`))
console.log(`[broker] aedes listening on 127.0.0.1:${PORT}`)

let code = 1
try {
    const devs = await buildDevs(file)
    const dev = startDevice(devs, {
        timeoutMs,
        onLine: l => console.log(`[device] ${l}`),
    })
    try {
        await dev.waitFor(until, timeoutMs)
        code = 0
    } catch (e) {
        console.error(`${file} did not finish: ${e.message}`)
    }
    await dev.kill()
} finally {
    await broker.close()
}
process.exit(code)
