//! DNS check: one query over UDP (hickory-proto for the message codec),
//! then the response code and, if configured, an address in the answer.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RData;

use super::config::rcode_name;
use super::udp::{connected_socket, REPLY_BUFFER};
use super::{random_u64, Check, DnsCheck, ProbeError};

pub(super) async fn probe(check: &Check, dns: &DnsCheck) -> Result<(), ProbeError> {
    let socket = connected_socket(check.target, check.source, check.local_only).await?;
    let id = random_u64(check.target) as u16;
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(dns.name.clone(), dns.record_type));
    let bytes = query.to_vec().map_err(|e| ProbeError::Io {
        what: "encode query",
        source: std::io::Error::other(e.to_string()),
    })?;
    socket
        .send(&bytes)
        .await
        .map_err(|e| ProbeError::io("send", e))?;

    let mut buf = [0u8; REPLY_BUFFER];
    let response = loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| ProbeError::io("recv", e))?;
        let response = Message::from_vec(&buf[..n])
            .map_err(|e| ProbeError::Reply(format!("malformed DNS message: {e}")))?;
        // Only the server can send to a connected socket, but it may still
        // answer an older query late; wait for ours.
        if response.metadata.id == id && response.metadata.message_type == MessageType::Response {
            break response;
        }
    };

    let rcode = response.metadata.response_code;
    if rcode != dns.rcode {
        return Err(ProbeError::Rcode {
            got: rcode_name(rcode),
            want: rcode_name(dns.rcode),
        });
    }
    if let Some(want) = dns.answer {
        let found = response.answers.iter().any(|record| match &record.data {
            RData::A(a) => IpAddr::V4(a.0) == want,
            RData::AAAA(a) => IpAddr::V6(a.0) == want,
            _ => false,
        });
        if !found {
            return Err(ProbeError::Answer(want));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    use tokio::net::UdpSocket;

    use super::super::testutil::{check, ctx};
    use super::super::*;

    /// Answers `www.example.com. A` with 192.0.2.80 and anything else
    /// with NXDOMAIN.
    async fn dns_server() -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let request = Message::from_vec(&buf[..n]).unwrap();
                let mut reply =
                    Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
                let query = request.queries[0].clone();
                if query.name().to_ascii() == "www.example.com." {
                    reply.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 80))),
                    ));
                } else {
                    reply.metadata.response_code = ResponseCode::NXDomain;
                }
                reply.add_query(query);
                let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn noerror_with_expected_answer() {
        let port = dns_server().await;
        let c = check(&format!(
            "type = \"dns\"\nport = {port}\nquery = \"www.example.com\"\nanswer = \"192.0.2.80\""
        ));
        probe(&c, &ctx()).await.unwrap();
    }

    #[tokio::test]
    async fn wrong_answer_fails() {
        let port = dns_server().await;
        let c = check(&format!(
            "type = \"dns\"\nport = {port}\nquery = \"www.example.com\"\nanswer = \"192.0.2.81\""
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "answer", "{err}");
    }

    #[tokio::test]
    async fn nxdomain() {
        let port = dns_server().await;
        let c = check(&format!(
            "type = \"dns\"\nport = {port}\nquery = \"missing.example.com\""
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "rcode");
        assert_eq!(err.to_string(), "rcode NXDOMAIN, expected NOERROR");

        // A check may expect NXDOMAIN (e.g. a resolver that must not
        // invent answers).
        let c = check(&format!(
            "type = \"dns\"\nport = {port}\nquery = \"missing.example.com\"\nrcode = \"nxdomain\""
        ));
        probe(&c, &ctx()).await.unwrap();
    }

    #[tokio::test]
    async fn garbage_reply_fails() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((_, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(b"nope", from).await;
            }
        });
        let c = check(&format!(
            "type = \"dns\"\nport = {port}\nquery = \"www.example.com\""
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "reply", "{err}");
    }
}
