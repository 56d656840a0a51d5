// Size: the seed's first example with @devicescript/net's MQTTClient.
import * as ds from "@devicescript/core"
import { startMQTTClient } from "@devicescript/net"

const TOPIC = "/public/TEST/devicescript"
const mq = await startMQTTClient({ host: "127.0.0.1", port: 1883, proto: "tcp", clientId: "umqtt_client" })
let received = false
await mq.subscribe(TOPIC, msg => {
    console.log(`${msg.topic}: ${msg.content.toString()}`)
    received = true
})
await mq.publish(TOPIC, "my name is DeviceScript!")
while (!received) await ds.sleep(100)
await mq.stop()
