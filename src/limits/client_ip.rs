//! The client's address: the socket's peer, unless that peer is a trusted proxy, in
//! which case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
//! Right-most, because everything left of the last proxy we trust was written by the
//! client and can say anything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Request;
use ipnet::IpNet;

/// Requests that did not come through a socket (in-process `oneshot` calls in tests).
const UNKNOWN: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

pub fn client_ip<B>(request: &Request<B>, trusted: &[IpNet]) -> IpAddr {
    of_parts(request.extensions(), request.headers(), trusted)
}

/// [`client_ip`] from a request's parts (for extractors).
pub fn of_parts(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN, |ConnectInfo(addr)| addr.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, xff: Option<&str>) -> Request<()> {
        let mut builder = Request::builder();
        if let Some(xff) = xff {
            builder = builder.header("x-forwarded-for", xff);
        }
        let mut request = builder.body(()).unwrap();
        request.extensions_mut().insert(ConnectInfo(
            format!("{peer}:5000").parse::<SocketAddr>().unwrap(),
        ));
        request
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let ip = client_ip(&request("203.0.113.9", Some("1.2.3.4")), &trusted);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let spoofed = request("10.0.0.2", Some("6.6.6.6, 198.51.100.7, 10.0.0.5"));
        assert_eq!(
            client_ip(&spoofed, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }
}
