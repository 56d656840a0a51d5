/**
 * devicescript-umqtt: the umqtt client API for DeviceScript.
 * The reference of these exports is docs/api.md; the codec, framer,
 * session and transport are exported for tests and advanced use.
 */
export * from "./errors"
export * from "./client"
export * from "./codec"
export * from "./topic"
export * from "./framer"
export * from "./session"
export * from "./signal"
export * from "./transport"
export * from "./connectivity"
