// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Credentials in URLs (`rtsp://admin:s3cret@cam/stream`, `grpc://bob:pw@gpu:8001`,
//! `http://cam/snap?user=admin&password=…`). [`masked`] is the one masking function: the
//! command line's lines, the element's errors and the metrics' labels all go through it.

/// Query keys whose values are secrets (matched case-insensitively, also as the end of a
/// longer key: `api_key`, `access_token`, `x-auth`).
const SECRET_KEYS: [&str; 8] = [
    "password", "passwd", "pass", "pwd", "token", "key", "auth", "secret",
];

/// Characters that end a URL inside a text (none of them may stand in a URL unencoded; `'`
/// may, in a password).
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '<' | '>' | '`')
}

/// `text` with the credentials of every URL in it replaced by `***`: everything between
/// `://` and the URL's last `@` (so a password holding `/`, `#`, `?`, `:` or `@` is masked
/// whole), and the values of secret query parameters (`password=***`).
pub fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(ends_url).unwrap_or(after.len());
        let url = &after[..end];
        let tail = match url.rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                &url[userinfo_end..]
            }
            None => url,
        };
        out.push_str(&masked_query(tail));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The part of a URL after its userinfo, with the values of secret query parameters masked.
fn masked_query(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let (head, query) = url.split_at(q + 1);
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
            _ => param.to_string(),
        })
        .collect();
    format!("{head}{}", params.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| key.ends_with(s))
}

/// `value` percent-encoded for a URL's userinfo: everything but letters, digits and `-._~`,
/// so that a password holding `@`, `/`, `:`, `#`, `?` or `%` stays a password.
pub fn encode_userinfo(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `value` with its `%XX` escapes decoded (invalid escapes are kept as they are).
pub fn decode_percent(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL's credentials taken out: (the URL without its userinfo, user, password), both
/// percent-decoded; None when it has none. The userinfo ends at the URL's last `@`.
pub fn split_credentials(url: &str) -> Option<(String, String, String)> {
    let start = url.find("://")? + 3;
    let end = url[start..].find(ends_url).map_or(url.len(), |e| start + e);
    let at = start + url[start..end].rfind('@')?;
    let userinfo = &url[start..at];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let bare = format!("{}{}", &url[..start], &url[at + 1..]);
    Some((bare, decode_percent(user), decode_percent(password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_with_every_reserved_character_is_masked_whole() {
        for password in [
            "s3cret",
            "Zpw/123",
            "Zp@ss:w/rd222",
            "Sp@c/ial#1?",
            "a?b#c",
            "[::1]",
            "%40x",
            "p;w=,&$!*'()+",
        ] {
            let url = format!("rtsp://admin:{password}@127.0.0.1:8554/cam");
            let text = format!("error: camera {url}: Could not open");
            let shown = masked(&text);
            assert_eq!(
                shown, "error: camera rtsp://***@127.0.0.1:8554/cam: Could not open",
                "{password}"
            );
            assert!(!shown.contains(password), "{password}: {shown}");
        }
    }

    #[test]
    fn hosts_paths_and_several_urls_stay_readable() {
        assert_eq!(masked("rtsp://u:p@[::1]:8554/x"), "rtsp://***@[::1]:8554/x");
        assert_eq!(
            masked("rtsp://u:p@[fe80::1%25eth0]:554/a b"),
            "rtsp://***@[fe80::1%25eth0]:554/a b"
        );
        assert_eq!(
            masked("http://u@h/a http://h/b"),
            "http://***@h/a http://h/b"
        );
        assert_eq!(
            masked("\"grpc://bob:pw@gpu:8001\""),
            "\"grpc://***@gpu:8001\""
        );
        assert_eq!(masked("no url here"), "no url here");
        assert_eq!(masked("rtsp://cam/x"), "rtsp://cam/x");
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        assert_eq!(
            masked("http://cam/snap?user=admin&password=hunter2&size=1"),
            "http://cam/snap?user=admin&password=***&size=1"
        );
        for key in [
            "PWD",
            "passwd",
            "Token",
            "api_key",
            "auth",
            "secret",
            "access_token",
        ] {
            let shown = masked(&format!("rtsp://cam/x?{key}=V4lue9 rest"));
            assert_eq!(shown, format!("rtsp://cam/x?{key}=*** rest"));
        }
        assert_eq!(masked("rtsp://cam/x?channel=1"), "rtsp://cam/x?channel=1");
    }

    #[test]
    fn substituted_passwords_round_trip_through_userinfo() {
        for password in ["x@evil:1/", "Sp@c/ial#1?", "plain", "100%", "é"] {
            let url = format!("rtsp://admin:{}@127.0.0.1:1/cam", encode_userinfo(password));
            let (bare, user, pw) = split_credentials(&url).unwrap();
            assert_eq!(bare, "rtsp://127.0.0.1:1/cam", "{password}");
            assert_eq!(user, "admin");
            assert_eq!(pw, password);
            assert!(!masked(&url).contains(&encode_userinfo(password)));
        }
        assert!(split_credentials("rtsp://cam/x").is_none());
    }
}
