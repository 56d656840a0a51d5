import { readSetting } from "@devicescript/settings"

/**
 * Where the device applications find their broker: DeviceScript settings
 * (`.env.defaults`, secrets in `.env.local`), keys of at most 13 characters.
 * The simulator does not load settings files, so every default works there
 * against the broker `npm start` runs on 127.0.0.1:1883.
 */
export interface BrokerSettings {
    host: string
    port: number
    user: string
    password: string
    clientId: string
    tls: boolean
}

/** Reads the broker settings, falling back to the simulator's defaults. */
export async function brokerSettings(defaultClientId: string): Promise<BrokerSettings> {
    const user: string = await readSetting("MQTT_USER", "")
    const password: string = await readSetting("MQTT_PASS", "")
    return {
        host: await readSetting("MQTT_HOST", "127.0.0.1"),
        port: await readSetting("MQTT_PORT", 1883),
        user: user || undefined,
        password: password || undefined,
        clientId: await readSetting("MQTT_CLIENT", defaultClientId),
        tls: await readSetting("MQTT_TLS", false),
    }
}
