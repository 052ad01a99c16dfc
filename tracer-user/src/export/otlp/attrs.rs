//! OTLP attribute values and the resource: who produced the spans.
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
};

pub fn text(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

pub fn int(key: &str, value: impl TryInto<i64>) -> KeyValue {
    // Counters and ports fit; a value that does not is said as the maximum.
    kv(key, Value::IntValue(value.try_into().unwrap_or(i64::MAX)))
}

pub fn flag(key: &str, value: bool) -> KeyValue {
    kv(key, Value::BoolValue(value))
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// The process the spans describe: here, the tracer itself.
pub struct ProcessResource<'a> {
    pub service_name: &'a str,
    pub pid: u32,
    pub executable: String,
}

impl ProcessResource<'_> {
    pub fn to_resource(&self) -> Resource {
        Resource {
            attributes: vec![
                text("service.name", self.service_name),
                text("host.name", host_name()),
                int("process.pid", self.pid),
                text("process.executable.name", self.executable.clone()),
            ],
            ..Default::default()
        }
    }
}

/// This program's file name, as `process.executable.name` wants it.
pub fn own_executable() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tracer".into())
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
