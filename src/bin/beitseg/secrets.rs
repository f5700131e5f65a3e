// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Camera URLs carry passwords (`rtsp://admin:s3cret@cam/stream`). Everything `beitseg` prints
//! goes through [`masked`], which shows the userinfo of every URL in a text as `***`: errors,
//! warnings, status and reconnect lines, the closing line.

/// `text` with the userinfo (`user:password@`) of every URL in it replaced by `***@`.
pub(crate) fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority runs to the first '/', '?', '#' or white space.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn userinfo_is_masked_wherever_a_url_appears() {
        assert_eq!(
            masked("error: camera rtsp://admin:s3cret@127.0.0.1:9/stream: Could not open"),
            "error: camera rtsp://***@127.0.0.1:9/stream: Could not open"
        );
        assert_eq!(
            masked("http://u@h/a http://h/b"),
            "http://***@h/a http://h/b"
        );
        // A password holding '@' or ':' is masked whole.
        assert_eq!(masked("rtsp://a:b@c:d@[::1]:8554"), "rtsp://***@[::1]:8554");
        assert_eq!(masked("no url here"), "no url here");
        assert_eq!(masked("rtsp://cam/x?user=a"), "rtsp://cam/x?user=a");
    }
}
