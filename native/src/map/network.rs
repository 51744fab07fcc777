//! Network connection fields and the community ID.

use base64::Engine;
use sha1::{Digest, Sha1};

use super::tree::{add_unique, s, sub, St};
use super::Fallback;
use crate::ip::pton;
use crate::json::{Obj, J};

pub(super) fn community_id(
    transport: &str,
    sip: &str,
    sport: u64,
    dip: &str,
    dport: u64,
) -> Option<String> {
    let proto: u8 = match transport.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        _ => return None,
    };
    if sport > 65535 || dport > 65535 {
        return None;
    }
    let family6 = sip.contains(':');
    let mut src = pton(family6, sip)?;
    let mut dst = pton(family6, dip)?;
    let (mut sp, mut dp) = (sport as u16, dport as u16);
    if (&src, sp) > (&dst, dp) {
        std::mem::swap(&mut src, &mut dst);
        std::mem::swap(&mut sp, &mut dp);
    }
    let mut h = Sha1::new();
    Digest::update(&mut h, [0u8, 0u8]);
    Digest::update(&mut h, &src);
    Digest::update(&mut h, &dst);
    Digest::update(&mut h, [proto, 0u8]);
    Digest::update(&mut h, sp.to_be_bytes());
    Digest::update(&mut h, dp.to_be_bytes());
    let digest = h.finalize();
    Some(format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

pub(super) fn map_network(st: &mut St, doc: &mut Obj) -> Result<(), Fallback> {
    let transport = st.data.pop("Protocol");
    if let Some(t) = &transport {
        sub(doc, "network").insert("transport", s(&t.to_ascii_lowercase()));
    }
    for (side, name) in [("source", "SourceIp"), ("destination", "DestinationIp")] {
        if let Some(ip) = st.take_ip(name)? {
            add_unique(&mut st.ips, &ip);
            sub(doc, side).insert("ip", J::S(ip));
        }
    }
    for name in ["DestinationPortName", "SourcePortName"] {
        if let Some(pn) = st.data.get(name) {
            let lowered = pn.to_ascii_lowercase();
            sub(doc, "network").insert("protocol", J::S(lowered));
            st.data.del(name);
            break;
        }
    }
    if let Some(initiated) = st.take_bool("Initiated")? {
        sub(doc, "network").insert("direction", s(if initiated { "egress" } else { "ingress" }));
    }
    if let Some(v6) = st.take_bool("SourceIsIpv6")? {
        sub(doc, "network").insert("type", s(if v6 { "ipv6" } else { "ipv4" }));
    }
    if let Some(t) = &transport {
        let end = |side: &str| -> Option<(String, u64)> {
            let J::O(m) = doc.get(side)? else { return None };
            Some((m.get("ip")?.as_str()?.to_string(), m.get("port")?.as_u64()?))
        };
        if let (Some((sip, sport)), Some((dip, dport))) = (end("source"), end("destination")) {
            if let Some(cid) = community_id(t, &sip, sport, &dip, dport) {
                sub(doc, "network").insert("community_id", J::S(cid));
            }
        }
    }
    Ok(())
}
