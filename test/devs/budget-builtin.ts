import * as ds from "@devicescript/core"
import { startMQTTClient } from "@devicescript/net"
import { brokerSettings } from "../../devs/settings"

/*
 * Size reference for docs/budgets.md: the seed's first example (devs/main.ts)
 * written on @devicescript/net's built-in MQTT client instead of this
 * library. Same settings, same topic, same messages.
 */
const TOPIC = "/public/TEST/devicescript"

const cfg = await brokerSettings("umqtt_client")
const c = await startMQTTClient({
    host: cfg.host,
    port: cfg.port,
    proto: cfg.tls ? "tls" : "tcp",
    username: cfg.user,
    password: cfg.password,
    clientId: cfg.clientId,
})

let received = false
await c.subscribe(TOPIC, async msg => {
    console.log(`Subscribe Recv: Topic=${msg.topic},Msg=${msg.content.toString()}`)
    received = true
})
console.log(`Connected to ${cfg.host}:${cfg.port}, subscribed to ${TOPIC}`)
await c.publish(TOPIC, "my name is DeviceScript!")
console.log(`Publish topic: ${TOPIC}, msg: my name is DeviceScript!`)

while (!received) await ds.sleep(100)
await c.stop()
console.log("round trip done")
