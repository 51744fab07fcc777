//! The document `_id` (`shipper.sysmon.ecs.document_id`).

use base64::Engine;
use blake2::digest::{Update, VariableOutput};

use super::data::Data;
use super::system::System;
use super::time::parse_utc_time;

pub(super) fn document_id(sys: &System<'_>, data: &Data) -> String {
    let utc = data.get("UtcTime").unwrap_or("");
    let utc_norm = parse_utc_time(utc).unwrap_or_else(|| utc.to_string());
    let material = [
        sys.computer.to_ascii_lowercase(),
        sys.channel.to_string(),
        sys.provider.to_string(),
        sys.record_id.map(|r| r.to_string()).unwrap_or_default(),
        sys.event_id.to_string(),
        utc_norm,
    ]
    .join("\x1f");
    let mut material = material.into_bytes();
    if sys.record_id.is_none() {
        // Python adds orjson.dumps(data, option=OPT_SORT_KEYS) so that events never collide
        let mut entries: Vec<&(String, String)> = data.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        material.push(0x1f);
        material.push(b'{');
        for (i, (k, v)) in entries.into_iter().enumerate() {
            if i > 0 {
                material.push(b',');
            }
            crate::json::write_str(k, &mut material);
            material.push(b':');
            crate::json::write_str(v, &mut material);
        }
        material.push(b'}');
    }
    let mut hasher = blake2::Blake2bVar::new(20).expect("20 is a valid BLAKE2b size");
    hasher.update(&material);
    let mut out = [0u8; 20];
    hasher
        .finalize_variable(&mut out)
        .expect("output size matches");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}
