import { MQTTClient } from "../src/index"
import { brokerSettings } from "./settings"

/*
 * The seed's first example, ported: connect, subscribe, publish, wait for
 * the message to come back, disconnect.
 */
const TOPIC = "/public/TEST/devicescript"

const cfg = await brokerSettings("umqtt_client")
const c = new MQTTClient(cfg.clientId, cfg.host, cfg.port, {
    user: cfg.user,
    password: cfg.password,
    ssl: cfg.tls,
})

let received = false
c.setCallback((topic, msg) => {
    console.log(`Subscribe Recv: Topic=${topic},Msg=${msg.toString()}`)
    received = true
})

await c.connect()
await c.subscribe(TOPIC)
console.log(`Connected to ${cfg.host}:${cfg.port}, subscribed to ${TOPIC}`)
await c.publish(TOPIC, "my name is DeviceScript!")
console.log(`Publish topic: ${TOPIC}, msg: my name is DeviceScript!`)

while (!received) await c.waitMsg()
await c.disconnect()
console.log("round trip done")
