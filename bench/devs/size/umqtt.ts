// Size: the seed's first example with this client (connect, subscribe,
// publish, wait for the message, disconnect).
import { MQTTClient } from "../../../src/index"

const TOPIC = "/public/TEST/devicescript"
const c = new MQTTClient("umqtt_client", "127.0.0.1", 1883)
let received = false
c.setCallback((topic, msg) => {
    console.log(`${topic}: ${msg.toString()}`)
    received = true
})
await c.connect()
await c.subscribe(TOPIC)
await c.publish(TOPIC, "my name is DeviceScript!")
while (!received) await c.waitMsg()
await c.disconnect()
