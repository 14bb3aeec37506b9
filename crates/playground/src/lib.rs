//! The playground's pieces that a tab and a native program share: the `math` service's `math.sum`
//! handler ([`math`]) and the MQTT sensor's readings ([`sensor`]). Pure: no I/O, no clock.

pub mod math;
pub mod sensor;
